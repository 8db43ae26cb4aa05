"""An engine subprocess in its own process group: log file, log tail, readiness, and shutdown of the group."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

import httpx
import psutil

from serve.errors import ServerDiedError, ServerStartError
from serve.hints import hint_for

LogFn = Callable[[str], None]
# What an engine inherits from our environment: the system basics and its own settings, never other
# providers' keys (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...) or our own PYTHONPATH.
ENV_ALLOW = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "TZ",
        "TERM",
        "TMPDIR",
        "TEMP",
        "TMP",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "PYTHONUNBUFFERED",
    }
)
ENV_ALLOW_PREFIXES = (
    "LC_",
    "XDG_",
    "VLLM_",
    "HF_",
    "HUGGINGFACE_",
    "TRANSFORMERS_",
    "TOKENIZERS_",
    "TORCH",
    "CUDA_",
    "NVIDIA_",
    "NCCL_",
    "OMP_",
    "MKL_",
    "KMP_",
    "RAY_",
    "LLMBENCH_SERVE_",
)


def engine_environment(parent: Mapping[str, str], add: Mapping[str, str]) -> dict[str, str]:
    """The engine's environment: the allow-listed part of `parent`, then `add` (which wins)."""
    kept = {k: v for k, v in parent.items() if k in ENV_ALLOW or k.startswith(ENV_ALLOW_PREFIXES)}
    return {**kept, **add}


ProbeKind = Literal["completions", "chat", "messages"]
TAIL_LINES = 30
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None]:
    """A preexec hook: the kernel sends SIGTERM to the engine if llmbench dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return lambda: None
    prctl = libc.prctl

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    out = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return out


def read_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


# An engine's log lines carry a process tag and vLLM's logger prefix; the first error is read without them.
_PROCESS_TAG = re.compile(r"^\([\w.:-]+ pid=\d+\)\s?")
_LOGGER_PREFIX = re.compile(r"^(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d [\d:.]+ \[[^\]]*\]\s?")
# `AttributeError: …`, `vllm.v1.engine.exceptions.EngineDeadError: …`, `Error: …`; never a `…Warning:`.
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*\w*(?:Error|Exception)(?::\s.*|:?)$")
_SERVER_ERROR = re.compile(r"^ERROR:\s+\S")  # uvicorn's own errors (e.g. the port is taken)
_TRACEBACK = "Traceback (most recent call last):"
FIRST_ERROR_MAX_BYTES = 8 * 1024**2  # read at most this much of a log when looking for its first error
_CONTEXT_LINES = 12  # traceback lines kept before the first error


def _bare(line: str) -> str:
    """A log line without its process tag and logger prefix."""
    return _LOGGER_PREFIX.sub("", _PROCESS_TAG.sub("", line.rstrip()), count=1)


def _ends_message(line: str) -> bool:
    """Whether a line after an exception line starts something new rather than continuing its message."""
    return (
        not line.strip()
        or line == _TRACEBACK
        or line.startswith(("The above exception", "During handling", "  File "))
        or bool(_EXCEPTION_LINE.match(line))
    )


def first_error(text: str) -> tuple[str, str] | None:
    """(the first exception or `Error:` line, the traceback lines that lead to it) in an engine's log.

    Noise such as nanobind's leak report, warnings and the engine's later "see the root cause above"
    errors come after or are not exception lines, so the root cause is the first match.
    """
    lines = [_bare(line) for line in text.splitlines()]
    for i, line in enumerate(lines):
        if not (_EXCEPTION_LINE.match(line) or _SERVER_ERROR.match(line)):
            continue
        start = i
        for j in range(i - 1, max(-1, i - 400), -1):
            if lines[j] == _TRACEBACK:
                start = j
                break
        end = i + 1  # a message that goes on over a few more lines
        while end < min(len(lines), i + 6) and not _ends_message(lines[end]):
            end += 1
        first = max(start, i - _CONTEXT_LINES)
        while first < i and start < first and not lines[first].startswith("  File "):
            first += 1  # start the shortened traceback at a frame, not in the middle of one
        head = [lines[start]] if start < first else []
        return line.strip(), "\n".join(head + lines[first:end])
    return None


def read_log(path: Path, offset: int = 0, limit: int = FIRST_ERROR_MAX_BYTES) -> str:
    """Up to `limit` bytes of a log file from `offset` ('' when it cannot be read)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


class EngineProcess:
    """A server subprocess started in a new session; its output goes to a log file."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env_add: Mapping[str, str],
        log_file: Path,
        on_log: LogFn | None = None,
        cwd: Path | None = None,
        inherit_env: bool = False,
    ) -> None:
        self.inherit_env = inherit_env  # our own serve command: the whole environment; an engine: ENV_ALLOW
        self.argv = list(argv)
        self.env_add = dict(env_add)
        self.log_file = log_file
        self.on_log = on_log
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_fh: IO[bytes] | None = None
        self._follow_stop = threading.Event()
        self._follower: threading.Thread | None = None
        self.stopping = False
        self._log_offset = 0  # where this run's output starts in the (appended) log file

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self) -> None:
        """Start the process in its own session (so the group can be signalled as one)."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = self.log_file.open("ab")
        self._log_offset = self._log_fh.tell()
        env = (
            {**os.environ, **self.env_add}
            if self.inherit_env
            else engine_environment(os.environ, self.env_add)
        )
        # The death signal is tied to the thread that forks: only use it from the main thread.
        hook = _die_with_parent() if threading.current_thread() is threading.main_thread() else None
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=hook,
        )
        if self.on_log is not None:
            self._follower = threading.Thread(target=self._follow, name="engine-log", daemon=True)
            self._follower.start()

    def _follow(self) -> None:
        assert self.on_log is not None
        with self.log_file.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            pending = b""
            while not self._follow_stop.is_set():
                chunk = fh.read()
                if not chunk:
                    self._follow_stop.wait(0.2)
                    continue
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.on_log(line.decode("utf-8", errors="replace").rstrip())

    def mute(self) -> None:
        """Stop forwarding log lines to the callback (the file keeps everything)."""
        self._follow_stop.set()

    def poll(self) -> int | None:
        """The exit code, or None while running."""
        return None if self.proc is None else self.proc.poll()

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last lines of the log."""
        return read_tail(self.log_file, lines)

    def first_error(self) -> tuple[str, str] | None:
        """The first exception line of this run's log, with its traceback (see `first_error`)."""
        return first_error(read_log(self.log_file, self._log_offset))

    def wait_ready(
        self,
        root_url: str,
        model: str,
        *,
        timeout_s: float,
        api_key: str | None = None,
        probe: ProbeKind | None = "completions",
    ) -> None:
        """Block until /health answers 200 and one real 1-token completion succeeds (`probe` None: /health
        only)."""
        wait_ready(root_url, model, timeout_s=timeout_s, api_key=api_key, probe=probe, alive=self.check_alive)

    def check_alive(self) -> None:
        """ServerStartError (log tail and hint attached) when the process has exited before it was ready."""
        code = self.poll()
        if code is not None:
            tail = self.tail()
            found = self.first_error()
            reason = f": {found[0]}" if found else ""
            raise ServerStartError(
                f"the engine exited with code {code} before it was ready{reason} (full log: {self.log_file})",
                log_tail=found[1] if found else tail,
                hint=hint_for(found[1] if found else tail) or hint_for(read_tail(self.log_file, 400)),
            )

    def died_error(self) -> ServerDiedError:
        """The error for an engine that exited on its own after it was ready."""
        code = self.poll()
        found = self.first_error()
        reason = f": {found[0]}" if found else ""
        return ServerDiedError(
            f"the engine exited unexpectedly after it was ready{reason} (full log: {self.log_file})",
            returncode=code,
            log_tail=found[1] if found else self.tail(),
        )

    def stop(self, grace_s: float = 15.0) -> int | None:
        """SIGTERM the group, wait up to grace_s, then SIGKILL what is left; returns the exit code."""
        self.stopping = True
        if self.proc is None:
            return None
        pgid = self.proc.pid  # session leader: its pid is the group id
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and not group_members(pgid):
                break
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group_members(pgid):
                os.killpg(pgid, signal.SIGKILL)
        code = self.proc.wait()
        end = time.monotonic() + 10
        while group_members(pgid) and time.monotonic() < end:
            time.sleep(0.05)
        self.mute()
        if self._log_fh is not None:
            self._log_fh.close()
        return code


def wait_ready(
    root_url: str,
    model: str,
    *,
    timeout_s: float,
    api_key: str | None = None,
    probe: ProbeKind | None = "completions",
    alive: Callable[[], None] = lambda: None,
) -> None:
    """Poll GET /health until 200, then send one real 1-token request (none when `probe` is None); raise
    ServerStartError on timeout."""
    headers = {"Authorization": f"Bearer {api_key}", "x-api-key": api_key} if api_key else {}
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    with httpx.Client(timeout=30.0, headers=headers, trust_env=False) as client:
        while True:
            alive()
            try:
                resp = client.get(f"{root_url}/health")
                if resp.status_code == 200:
                    break
                last = f"/health answered {resp.status_code}"
            except httpx.HTTPError as exc:
                last = f"/health: {type(exc).__name__}"
            if time.monotonic() > deadline:
                raise ServerStartError(f"not ready after {timeout_s:.0f} s ({last})")
            time.sleep(0.5)
        if probe is None:
            return
        while True:
            alive()
            try:
                resp = client.post(
                    f"{root_url}{_PROBE_PATH[probe]}", json=_probe_body(probe, model), timeout=120.0
                )
                if resp.status_code == 200:
                    return
                last = f"probe request answered {resp.status_code}: {resp.text[:300]}"
                if resp.status_code in (400, 401, 403, 404, 422):
                    raise ServerStartError(f"the server is up but rejects a 1-token request: {last}")
            except httpx.HTTPError as exc:
                last = f"probe request: {type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise ServerStartError(f"not ready after {timeout_s:.0f} s ({last})")
            time.sleep(0.5)


_PROBE_PATH: dict[ProbeKind, str] = {
    "completions": "/v1/completions",
    "chat": "/v1/chat/completions",
    "messages": "/v1/messages",
}


def _probe_body(probe: ProbeKind, model: str) -> dict[str, object]:
    if probe == "completions":
        return {"model": model, "prompt": "Hello", "max_tokens": 1, "temperature": 0}
    return {"model": model, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 1}


def ready_line(url: str, model: str, backend: str) -> str:
    """The one line printed once the server answers: `ready: http://HOST:PORT/v1 model=NAME backend=B`."""
    return f"ready: {url.rstrip('/').removesuffix('/v1')}/v1 model={model} backend={backend}"
