"""Session fixture: ONE real vLLM server per test session, started by `llmbench serve` as a subprocess.

Skipped when .venv-vllm/bin/python is missing, unless LLMBENCH_REQUIRE_VLLM=1 (CI), which turns that into a
failure. At teardown it sends SIGINT and checks that no process of the server remains.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
# The console script a user runs (pyproject's [project.scripts]), not a shim: lazy command groups and the
# entry point itself are exercised as installed.
LLMBENCH = [str(Path(sys.executable).with_name("llmbench"))]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
READY_TIMEOUT_S = 300.0
_CLEARED = ("LLMBENCH_", "OPENAI_", "ANTHROPIC_", "HF_")
_PUMPS: dict[int, threading.Thread] = {}  # output readers by CLI pid, joined when the CLI stops


@dataclass
class VllmServerInfo:
    """A running `llmbench serve … --backend vllm`: URLs, model name, the CLI process and its output."""

    base_url: str  # …/v1, for OpenAI clients
    root_url: str  # http://HOST:PORT
    model: str
    model_dir: Path
    proc: subprocess.Popen[str]
    ready_line: str
    home: Path
    output: list[str] = field(default_factory=list)


def require_vllm() -> None:
    """Skip (or fail under LLMBENCH_REQUIRE_VLLM=1) when the vLLM venv is missing."""
    if VLLM_PYTHON.exists():
        return
    if os.environ.get("LLMBENCH_REQUIRE_VLLM") == "1":
        pytest.fail(f"LLMBENCH_REQUIRE_VLLM=1 but {VLLM_PYTHON} does not exist: run scripts/setup-vllm")
    pytest.skip("needs .venv-vllm (scripts/setup-vllm)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(home: Path) -> dict[str, str]:
    """A clean environment for a `llmbench` subprocess with its own home, hubs offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED)}
    env.update(LLMBENCH_HOME=str(home), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


def start_cli_server(
    args: list[str], home: Path, timeout_s: float = READY_TIMEOUT_S
) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Run `llmbench serve ARGS` in a new session; return (process, ready line, collected output)."""
    cmd = [*LLMBENCH, "serve", *args]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    output: list[str] = []
    ready: list[str] = []
    got = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip("\n"))
            if line.startswith("ready: "):
                ready.append(line.strip())
                got.set()
        got.set()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    _PUMPS[proc.pid] = thread
    got.wait(timeout_s)
    if not ready:
        stop_cli_server(proc)
        pytest.fail("llmbench serve did not print a ready line:\n" + "\n".join(output[-40:]))
    return proc, ready[0], output


def descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            continue
    return out


def stop_cli_server(
    proc: subprocess.Popen[str], sig: int = signal.SIGINT, timeout_s: float = 60
) -> tuple[int, list[int]]:
    """Send sig to the CLI, wait; return (exit code, processes of its tree still alive afterwards)."""
    tree = descendants(proc.pid)
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        code = proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
    pump = _PUMPS.pop(proc.pid, None)
    if pump is not None:
        pump.join(10)
    if proc.stdout is not None:
        proc.stdout.close()
    deadline = time.monotonic() + 15
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive(tree)
    for pid in left:  # never leave strays behind, even when the assertion is about to fail
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    return code, left


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory, tiny_random_dir: Path) -> Iterator[VllmServerInfo]:
    """`llmbench serve tiny-random --backend vllm` on a free port; SIGINT at the end must leave no process."""
    require_vllm()
    home = tmp_path_factory.mktemp("vllm-home")
    (home / "models").mkdir()
    (home / "models" / "tiny-random").symlink_to(tiny_random_dir.resolve())
    port = free_port()
    proc, line, output = start_cli_server(["tiny-random", "--backend", "vllm", "--port", str(port)], home)
    root = f"http://127.0.0.1:{port}"
    info = VllmServerInfo(f"{root}/v1", root, "tiny-random", tiny_random_dir, proc, line, home, output)
    yield info
    code, left = stop_cli_server(proc)
    if left or code != 0:
        pytest.fail(f"after SIGINT: exit code {code}, processes left {left}\n" + "\n".join(output[-20:]))
