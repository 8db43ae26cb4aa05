"""`serve --backend mock --workers N`: N mock processes answering on one port, with one set of counters.

Why: one mock process is one event loop, so on a many-core box it, not the client, would cap a client
ceiling measurement. Each worker binds the same host and port with SO_REUSEPORT, and the kernel spreads
new connections over them. The parent reserves the port first (a bound, never listening, SO_REUSEPORT
socket: port 0 becomes one number for every worker), starts the workers, announces the URL once all of
them listen, and stops them on SIGINT/SIGTERM. A worker that dies stops the whole server (a benchmark
must not silently lose a share of its server). Workers leave when the parent is gone.

Counters: each worker publishes its MockStats every PUBLISH_EVERY_S to a file of its own in a shared
folder, and GET /metrics from any worker renders the sum of every worker's latest (its own is current,
the others up to PUBLISH_EVERY_S old). GET /llmbench/info says which process answered (`process.pid`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serve.errors import PortInUseError, ServerStartError
from serve.mock.metrics import Histogram, MockStats
from serve.specs import MockSpec

PUBLISH_EVERY_S = 0.2
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
SPEC_ENV = "LLMBENCH_MOCK_SPEC"  # as `python -m serve.mock` reads it
KEY_ENV = "LLMBENCH_MOCK_API_KEY"
WORKER_ENV = "LLMBENCH_MOCK_WORKER"  # index/stats folder: this process is one worker of several
READY = "worker-ready"


# --- counters over processes ---------------------------------------------------------------------------


def add_stats(total: MockStats, more: MockStats) -> None:
    """Add `more` into `total`, field by field (numbers, dicts of numbers, histograms)."""
    for f in dataclasses.fields(MockStats):
        mine, theirs = getattr(total, f.name), getattr(more, f.name)
        if isinstance(mine, Histogram):
            mine.counts = [a + b for a, b in zip(mine.counts, theirs.counts, strict=True)]
            mine.total += theirs.total
            mine.count += theirs.count
        elif isinstance(mine, dict):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value
        elif isinstance(mine, int | float) and not isinstance(mine, bool):
            setattr(total, f.name, mine + theirs)


class SharedStats:
    """One worker's view of every worker's counters, through files in one folder."""

    def __init__(self, folder: Path, index: int, stats: MockStats) -> None:
        self.folder, self.index, self.stats = folder, index, stats
        self._mine = folder / f"{index}.pickle"

    def publish(self) -> None:
        """Write this worker's counters (atomically: readers never see half a file)."""
        partial = self._mine.with_suffix(".tmp")
        partial.write_bytes(pickle.dumps(self.stats))
        partial.replace(self._mine)

    def total(self) -> MockStats:
        """Every worker's counters summed: this one's now, the others' as last published."""
        total = MockStats()
        add_stats(total, self.stats)
        for path in self.folder.glob("*.pickle"):
            if path == self._mine:
                continue
            with contextlib.suppress(OSError, EOFError, pickle.UnpicklingError):
                add_stats(total, pickle.loads(path.read_bytes()))
        return total


# --- the parent ----------------------------------------------------------------------------------------


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket that holds `port` (0: a free one) for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if port and e.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
            raise PortInUseError(f"{host}:{port} is already in use", hint="pick another port, or 0") from e
        raise ServerStartError(f"cannot bind {host}:{port}: {e}") from e
    return sock


def serve_workers(spec: MockSpec, on_ready: Callable[[str], None]) -> None:
    """Run `spec.workers` mock processes on one port until SIGINT/SIGTERM; `on_ready(url)` once all listen."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ServerStartError("--workers needs SO_REUSEPORT, which this platform lacks")
    asyncio.run(_parent(spec, on_ready))


async def _parent(spec: MockSpec, on_ready: Callable[[str], None]) -> None:
    holder = reserve_port(spec.host, spec.port)
    port = holder.getsockname()[1]
    folder = Path(
        tempfile.mkdtemp(prefix="llmbench-mock-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    child_spec = spec.model_copy(update={"port": port, "api_key": None})
    env = {**os.environ, SPEC_ENV: child_spec.model_dump_json()}
    if spec.api_key is not None:
        env[KEY_ENV] = spec.api_key.get_secret_value()
    procs: list[asyncio.subprocess.Process] = []
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for index in range(spec.workers):
            env[WORKER_ENV] = f"{index}:{folder}"
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "serve.mock.workers", env=env, stdout=asyncio.subprocess.PIPE
                )
            )
        url = await asyncio.wait_for(_all_ready(procs), START_TIMEOUT_S)
        holder.close()
        on_ready(url)
        exits = [asyncio.create_task(p.wait()) for p in procs]
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({stopper, *exits}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not stop.is_set():
            dead = next(i for i, p in enumerate(procs) if p.returncode is not None)
            raise ServerStartError(f"mock worker {dead} exited with status {procs[dead].returncode}")
    except TimeoutError as e:
        raise ServerStartError(f"the mock workers did not listen within {START_TIMEOUT_S:g} s") from e
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        holder.close()
        await _stop_all(procs)
        shutil.rmtree(folder, ignore_errors=True)


async def _all_ready(procs: list[asyncio.subprocess.Process]) -> str:
    url = ""
    for index, proc in enumerate(procs):
        assert proc.stdout is not None
        line = (await proc.stdout.readline()).decode().split()
        if len(line) != 2 or line[0] != READY:
            raise ServerStartError(f"mock worker {index} did not start (exit status {await proc.wait()})")
        url = line[1]
    return url


async def _stop_all(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


# --- one worker ------------------------------------------------------------------------------------------


def worker_main() -> None:
    """`python -m serve.mock.workers`, started by the parent: one MockServer on the shared port."""
    from pydantic import SecretStr

    from serve.mock.server import MockServer

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (SIGTERM)
    index_text, _, folder = os.environ[WORKER_ENV].partition(":")
    spec = MockSpec.model_validate_json(os.environ[SPEC_ENV])
    key = os.environ.get(KEY_ENV)
    if key:
        spec = spec.model_copy(update={"api_key": SecretStr(key)})
    parent = os.getppid()

    async def main() -> None:
        process: dict[str, Any] = {"pid": os.getpid(), "worker": int(index_text), "workers": spec.workers}
        server = MockServer(spec, reuse_port=True, process=process)
        shared = SharedStats(Path(folder), int(index_text), server.stats)
        server.metrics_stats = shared.total
        await server.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        sys.stdout.write(f"{READY} {server.url}\n")  # to the parent, which reads it in _all_ready
        sys.stdout.flush()
        try:
            while not stop.is_set() and os.getppid() == parent:  # the parent gone: leave
                shared.publish()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), PUBLISH_EVERY_S)
        finally:
            await server.stop()

    asyncio.run(main())


if __name__ == "__main__":
    worker_main()
