"""Serve a model with vLLM as a subprocess: plan the launch, start, wait until ready, run, stop the group."""

from __future__ import annotations

import contextlib
import errno
import json
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from serve.errors import PortInUseError, ServerStartError
from serve.hints import hint_for
from serve.info import INFO_ENV, runtime_info
from serve.process import EngineProcess, LogFn
from serve.vllm.command import Launch, VllmEngine, build_launch, find_vllm
from serve.vllm.config import VllmSpec

__all__ = ["VllmServer", "ensure_port_free", "plan_launch", "running_vllm", "serve_vllm"]


def _paths(spec: VllmSpec) -> tuple[Path, Path]:
    log = (
        spec.log_file
        or Path(tempfile.gettempdir()) / f"llmbench-vllm-{spec.served_model_name}-{spec.port}.log"
    )
    return log, log.with_name(log.stem + ".config.yaml")


def plan_launch(
    spec: VllmSpec, *, engine: VllmEngine | None = None, search_dirs: tuple[Path, ...] = ()
) -> Launch:
    """The exact launch for a spec (interpreter discovered unless given); starts nothing."""
    engine = engine or find_vllm(spec.python, search_dirs=search_dirs)
    return build_launch(spec, engine, _paths(spec)[1])


def ensure_port_free(host: str, port: int) -> None:
    """Raise PortInUseError when something already listens on host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR so that sockets in TIME_WAIT from a previous run do not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(
                    f"{host}:{port} is already in use",
                    hint="pick another port with --port, or stop the process that holds it "
                    f"(`ss -ltnp 'sport = :{port}'` shows it)",
                ) from exc
            raise ServerStartError(f"cannot bind {host}:{port}: {exc.strerror}") from exc


class VllmServer:
    """A running vLLM server: start() blocks until ready; stop() ends the whole process group."""

    def __init__(
        self,
        spec: VllmSpec,
        *,
        launch: Launch | None = None,
        on_log: LogFn | None = None,
        search_dirs: tuple[Path, ...] = (),
    ) -> None:
        self.spec = spec
        self.launch = launch or plan_launch(spec, search_dirs=search_dirs)
        log_file, _ = _paths(spec)
        self.engine = EngineProcess(
            self.launch.argv, env_add=self.launch.env, log_file=log_file, on_log=on_log
        )

    @property
    def url(self) -> str:
        """Server root, http://HOST:PORT (no /v1)."""
        return self.spec.root_url

    @property
    def log_file(self) -> Path:
        return self.engine.log_file

    def start(self) -> str:
        """Check the port, write the config, start the engine and wait until ready; returns the root URL."""
        ensure_port_free(self.spec.host, self.spec.port)
        self.launch.write_files()
        if self.spec.info:
            # Completed here, on the serving machine: its accelerators, llmbench's version, the start time.
            self.engine.env_add[INFO_ENV] = json.dumps(runtime_info(self.spec.info), sort_keys=True)
        self.engine.start()
        api_key = self.spec.api_key.get_secret_value() if self.spec.api_key else None
        try:
            self.engine.wait_ready(
                self.url,
                self.spec.served_model_name,
                timeout_s=self.spec.startup_timeout_s,
                api_key=api_key,
            )
        except ServerStartError as exc:
            tail = self.engine.tail()
            self.engine.stop(self.spec.grace_s)
            if not exc.log_tail:
                exc.log_tail = tail
            if not exc.hint:
                exc.hint = hint_for(tail)
            raise
        except BaseException:
            self.engine.stop(self.spec.grace_s)
            raise
        self.engine.mute()
        return self.url

    def wait(self, stop: threading.Event) -> None:
        """Block until `stop` is set (then stop the group) or the engine dies (then raise ServerDiedError)."""
        while not stop.wait(0.5):
            if self.engine.poll() is not None:
                raise self.engine.died_error()
        self.stop()

    def stop(self) -> int | None:
        """SIGTERM, grace period, SIGKILL of the whole group."""
        return self.engine.stop(self.spec.grace_s)


@contextlib.contextmanager
def running_vllm(
    spec: VllmSpec, *, on_log: LogFn | None = None, search_dirs: tuple[Path, ...] = ()
) -> Iterator[str]:
    """Start vLLM, yield its root URL (http://HOST:PORT, no /v1) once ready; stop the whole group on exit."""
    server = VllmServer(spec, on_log=on_log, search_dirs=search_dirs)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def serve_vllm(
    spec: VllmSpec,
    on_ready: Callable[[str], None],
    *,
    on_log: LogFn | None = None,
    launch: Launch | None = None,
    search_dirs: tuple[Path, ...] = (),
) -> None:
    """Serve until SIGINT/SIGTERM (then stop the group); ServerDiedError if the engine dies after ready."""
    server = VllmServer(spec, launch=launch, on_log=on_log, search_dirs=search_dirs)
    stop, ready = threading.Event(), threading.Event()
    with _stop_on_signals(stop, ready):
        server.start()
        ready.set()
        on_ready(server.url)
        try:
            server.wait(stop)
        finally:
            server.stop()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, ready: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            return
        stop.set()
        if not ready.is_set():
            # While starting, a signal must interrupt the readiness wait too (start() then stops the group).
            raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
