"""The engine subprocess: its own group, readiness, hints on failure, death after ready, no orphans."""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from serve.errors import PortInUseError, ServerDiedError, ServerStartError
from serve.process import group_members
from serve.vllm.command import Launch
from serve.vllm.config import VllmSpec
from serve.vllm.server import VllmServer, ensure_port_free

# A stand-in engine: a child process (like vLLM's engine core) and an HTTP server (/health, completions).
FAKE_ENGINE = textwrap.dedent(
    """
    import http.server, json, signal, subprocess, sys, time
    mode, port = sys.argv[1], int(sys.argv[2])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    if mode == "oom":
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", flush=True)
        sys.exit(1)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code); self.send_header("Content-Length", str(len(data))); self.end_headers()
            self.wfile.write(data)
        def do_GET(self): self._send(200, {})
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self._send(200, {"choices": [{"text": "x"}]})

    print("engine up", flush=True)
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fake_server(tmp_path: Path, mode: str, grace_s: float = 5.0) -> VllmServer:
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE, encoding="utf-8")
    port = free_port()
    spec = VllmSpec(model="m", served_model_name="m", port=port, log_file=tmp_path / "engine.log",
                    startup_timeout_s=60, grace_s=grace_s)  # fmt: skip
    launch = Launch(argv=[sys.executable, str(script), mode, str(port)], env={}, config_text="{}\n",
                    config_path=tmp_path / "engine.config.yaml")  # fmt: skip
    return VllmServer(spec, launch=launch)


def test_start_ready_and_stop_leaves_no_process(tmp_path: Path) -> None:
    server = fake_server(tmp_path, "ok")
    assert server.start() == server.spec.root_url
    pgid = server.engine.pid
    assert os.getpgid(pgid) == pgid != os.getpgid(0)  # its own process group
    assert len(group_members(pgid)) == 2  # the engine and its child
    assert "engine up" in server.engine.tail()
    server.stop()
    # Not os.killpg(pgid, 0): where PID 1 does not reap, orphaned zombies keep the group "existing".
    assert group_members(pgid) == []


@pytest.mark.slow  # about 1.6 s: scripts/test runs it, scripts/check stays under a minute
def test_sigterm_ignored_then_sigkill(tmp_path: Path) -> None:
    server = fake_server(tmp_path, "stubborn", grace_s=1.0)
    server.start()
    pgid = server.engine.pid
    assert server.stop() == -signal.SIGKILL
    assert group_members(pgid) == []


def test_start_failure_carries_log_tail_and_hint(tmp_path: Path) -> None:
    server = fake_server(tmp_path, "oom")
    with pytest.raises(ServerStartError) as exc:
        server.start()
    assert "CUDA out of memory" in exc.value.log_tail
    assert "quantized variant" in exc.value.hint


@pytest.mark.slow  # about 1.1 s: scripts/test runs it, scripts/check stays under a minute
def test_death_after_ready_is_reported(tmp_path: Path) -> None:
    server = fake_server(tmp_path, "ok")
    server.start()
    os.kill(server.engine.pid, signal.SIGKILL)
    try:
        with pytest.raises(ServerDiedError) as exc:
            server.wait(threading.Event())
        assert exc.value.returncode == -signal.SIGKILL
    finally:
        server.stop()  # its orphaned child must still go
    assert group_members(server.engine.pid) == []


def test_port_in_use_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port} is already in use"):
            ensure_port_free("127.0.0.1", port)
