"""The ServeFn the CLI uses: `llmbench serve NAME --backend B` as a detached subprocess on a free port.

Each side runs in its own process (its own session), as a user would serve it, so the load generator in
this process measures it over HTTP and never shares an interpreter with the engine.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from bench.recovery.driver import Served
from bench.serving.plan import free_port
from bench.settings import Settings
from serve.errors import ServerStartError
from serve.lifecycle import start_detached, stop_detached

_READY = re.compile(r"^ready: (?P<url>\S+)/v1 ")


def serve_argv(settings: Settings, name: str, backend: str, port: int, log_file: Path) -> list[str]:
    """The foreground `llmbench serve` command line for one side (the overlays passed on)."""
    argv = [sys.executable, "-c", "from bench.cli import main; main()"]
    for overlay in settings.overlays:
        argv += ["--models-file", str(overlay)]
    return [*argv, "serve", name, "--backend", backend, "--port", str(port), "--log-file", str(log_file)]


@contextmanager
def detached_server(settings: Settings, name: str, backend: str) -> Iterator[Served]:
    """Start `llmbench serve`, yield once it printed its ready line, stop its whole group on exit."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = settings.home / "logs"
    log_file = logs / f"recovery-{name}-{stamp}.log"
    pid_file = logs / f"recovery-{name}-{stamp}.pid"
    line = start_detached(
        serve_argv(settings, name, backend, free_port(), log_file),
        output=log_file.with_suffix(".out"),
        pid_file=pid_file,
    )
    match = _READY.match(line)
    try:
        if match is None:
            raise ServerStartError(f"llmbench serve printed an unexpected ready line: {line!r}")
        yield Served(url=match["url"], backend=backend)
    finally:
        stop_detached(pid_file)


class CliServers:
    """A ServeFn over `llmbench serve` subprocesses, bound to the settings (home, overlays)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, name: str, backend: str) -> AbstractContextManager[Served]:
        return detached_server(self.settings, name, backend)
