"""`llmbench sweep` as a user runs it: mocks and the tiny model end to end, a failed point, resume after
kill -9, and points in parallel on a local Ray instance with no process left behind.

Each test waits on conditions (stored rows, requests a server counted, processes gone), each with a
deadline, and checks only its own processes: those carrying its LLMBENCH_HOME (tests/waits.py).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import psutil
import pytest
from fixtures_vllm import LLMBENCH, REPO, cli_env
from waits import no_strays, own_processes, wait_for

from bench.store import PointInfo, Store

pytestmark = pytest.mark.slow
_READY = re.compile(r"^ready: (?P<url>\S+) ", re.M)


def sweep(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LLMBENCH, "sweep", *args], cwd=REPO, env=cli_env(home), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def served_requests(url: str) -> int:
    """Requests a mock server has answered in full (its vllm:request_success_total), 0 if unreachable."""
    root = url.removesuffix("/v1")
    try:
        with urllib.request.urlopen(f"{root}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("vllm:request_success_total"))  # fmt: skip


def mock_urls(home: Path) -> list[str]:
    """The URLs of the mock servers the sweep started (their ready lines, in the logs under `home`)."""
    logs = home / "logs"
    found = [m["url"] for log in sorted(logs.glob("*.log")) if log.is_file()
             for m in _READY.finditer(log.read_text(encoding="utf-8", errors="replace"))]  # fmt: skip
    return list(dict.fromkeys(found))


def measuring_workers(proc: subprocess.Popen[str], home: Path, n: int) -> list[psutil.Process]:
    """Wait until `n` of this sweep's Ray workers run a point whose mock server has answered a few
    requests (measuring); return those workers."""

    def measuring() -> list[psutil.Process] | None:
        assert proc.poll() is None, "the sweep ended before its points were measuring"
        workers = [p for p in own_processes(home) if " ".join(p.cmdline()).startswith("ray::_point_task")]
        urls = mock_urls(home)
        if len(workers) == n and len(urls) == n and all(served_requests(u) >= 3 for u in urls):
            return workers
        return None

    return wait_for(measuring, timeout=300, what=f"{n} points measuring on Ray", every=0.5)


RAY_SWEEP = """
schema: llmbench.sweep/1
name: lost
targets: [{name: mock-mini}, {name: mock-openai}]
loads:
  - {profile: concurrent, concurrency: 1, requests: 40, input_tokens: 16, output_tokens: 40, warmup: 0}
"""


def test_a_sweep_over_mocks_and_the_tiny_model_with_a_failed_point(
    tmp_path: Path, tiny_random_dir: Path
) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny-random").symlink_to(tiny_random_dir.resolve())
    file = tmp_path / "sweep.yaml"
    file.write_text(
        """
schema: llmbench.sweep/1
name: e2e
slo: ttft_ms=5000
hardware: cpu-2vcpu
targets:
  - {name: tiny-random, backend: hf}
  - {name: tiny-random, backend: hf, engine_args: {max-num-seqs: 4}}   # the hf backend refuses it
  - {name: mock-mini}
loads:
  - {profile: concurrent, concurrency: 2, requests: 6, input_tokens: 16, output_tokens: 8, warmup: 1}
suites:
  - {suite: "builtin:tiny-skills", limit: 2, concurrency: 4, max_tokens: 8}
""",
        encoding="utf-8",
    )
    report = tmp_path / "report.html"
    done = sweep(tmp_path, str(file), "--report", str(report))
    assert done.returncode == 1, done.stderr  # a point failed: the sweep went on, and says so
    assert "the transformers backend honours only" in done.stderr
    assert "| option |" in done.stdout and "Recommendation" in done.stdout
    assert report.is_file() and "<html" in report.read_text()[:2000].lower()
    with Store.open(tmp_path / "results.sqlite") as store:
        (info,) = store.list_sweeps()
        points = store.list_points(info.id)
        runs = store.list_runs(sweep_id=info.id, limit=None)
    assert info.status == "partial"
    assert sorted(p.status for p in points) == ["complete", "complete", "failed"]
    failed = next(p for p in points if p.status == "failed")
    assert "did not start" in (failed.error or "") and "max-num-seqs" in (failed.error or "")
    served = next(p for p in points if p.status == "complete" and p.detail.url)
    assert (served.detail.prefix_cache or "").startswith("not supported")  # the hf backend has none
    assert {r.kind for r in runs} == {"load", "accuracy"} and len(runs) == 4
    assert all(r.point_id in {p.point_id for p in points} for r in runs)
    no_strays(tmp_path)


def test_resume_after_kill_finishes_without_rerunning_completed_points(tmp_path: Path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text(
        """
schema: llmbench.sweep/1
name: killed
targets: [{name: mock-mini}, {name: mock-openai}, {name: mock-anthropic}]
loads:
  - {profile: concurrent, concurrency: 1, requests: 12, input_tokens: 16, output_tokens: 40, warmup: 0}
""",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [*LLMBENCH, "sweep", str(file)], cwd=REPO, env=cli_env(tmp_path),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    store_path = tmp_path / "results.sqlite"

    def first_done_and_second_measuring() -> PointInfo | None:
        """The first point complete and the second one's run started: kill it mid-point."""
        if not store_path.exists():
            return None
        with Store.open(store_path) as store:
            sweeps = store.list_sweeps()
            points = store.list_points(sweeps[0].id) if sweeps else []
            runs = store.list_runs(sweep_id=sweeps[0].id, limit=None) if sweeps else []
        done = [p for p in points if p.status == "complete"]
        return done[0] if done and len(runs) > len(done[0].run_ids) else None

    first = wait_for(
        first_done_and_second_measuring, timeout=180, what="the sweep past its first point", every=0.3
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)

    def status_after_kill() -> tuple[str, dict[str, str]] | None:
        with Store.open(store_path) as store:
            sweep_id = store.list_sweeps()[0].id
            runs = {r.id: r.status for r in store.list_runs(sweep_id=sweep_id, limit=None)}
            return (sweep_id, runs) if store.get_sweep(sweep_id).status == "partial" else None

    # its process is gone, so the sweep reads as partial
    sweep_id, before = wait_for(status_after_kill, timeout=30, what="the killed sweep stored as partial")
    assert "partial" in before.values()  # the run that was killed keeps its records, marked partial
    resumed = sweep(tmp_path, "--resume", sweep_id[:8])
    assert resumed.returncode == 0, resumed.stderr
    with Store.open(store_path) as store:
        points = {p.point_id: p for p in store.list_points(sweep_id)}
        after = store.list_runs(sweep_id=sweep_id, limit=None)
    assert all(p.status == "complete" for p in points.values())
    assert points[first.point_id].run_ids == first.run_ids  # not run again
    assert [r.id for r in after if r.point_id == first.point_id] == first.run_ids
    assert set(before) <= {r.id for r in after}  # nothing measured before the kill was lost
    no_strays(tmp_path)


def test_points_run_in_parallel_on_a_local_ray_instance(tmp_path: Path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text(
        """
schema: llmbench.sweep/1
name: ray
targets: [{name: mock-mini}, {name: mock-openai}]
loads:
  - {profile: concurrent, concurrency: 1, requests: 20, input_tokens: 16, output_tokens: 40, warmup: 0}
""",
        encoding="utf-8",
    )
    done = sweep(tmp_path, str(file), "--ray-address", "local", timeout=900)
    assert done.returncode == 0, done.stderr
    assert "submitted to Ray" in done.stderr
    with Store.open(tmp_path / "results.sqlite") as store:
        (info,) = store.list_sweeps()
        runs = store.list_runs(sweep_id=info.id, limit=None)
        points = store.list_points(info.id)
    assert info.status == "complete" and [p.status for p in points] == ["complete", "complete"]
    assert len(runs) == 2 and all(r.status == "complete" and r.n_requests == 20 for r in runs)
    a, b = sorted(runs, key=lambda r: r.started_at)
    assert b.started_at < (a.ended_at or "")  # the two points' runs overlapped in time
    no_strays(tmp_path)


def test_a_ray_worker_killed_mid_point_fails_that_point_and_the_sweep_goes_on(tmp_path: Path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text(RAY_SWEEP, encoding="utf-8")
    proc = subprocess.Popen(
        [*LLMBENCH, "sweep", str(file), "--ray-address", "local"], cwd=REPO, env=cli_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    victim = measuring_workers(proc, tmp_path, 2)[0]
    victim.kill()  # SIGKILL: the worker cannot clean up after itself
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err  # a point failed; the sweep finished the other one
    with Store.open(tmp_path / "results.sqlite") as store:
        (info,) = store.list_sweeps()
        points = sorted(store.list_points(info.id), key=lambda p: p.status)
        runs = store.list_runs(sweep_id=info.id, limit=None)
    assert [p.status for p in points] == ["complete", "failed"]
    assert (points[1].error or "").startswith("Ray worker lost mid-point")
    assert len(runs) == 1 and runs[0].status == "complete" and runs[0].n_requests == 40
    assert info.status == "partial" and "| option |" in out
    no_strays(tmp_path)  # the killed worker's API server died with it


def test_ctrl_c_on_ray_cancels_the_points_and_keeps_what_they_measured(tmp_path: Path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text(RAY_SWEEP.replace("requests: 40", "requests: 400"), encoding="utf-8")
    proc = subprocess.Popen(
        [*LLMBENCH, "sweep", str(file), "--ray-address", "local"], cwd=REPO, env=cli_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    measuring_workers(proc, tmp_path, 2)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "--resume" in err
    with Store.open(tmp_path / "results.sqlite") as store:
        (info,) = store.list_sweeps()
        points = store.list_points(info.id)
        runs = store.list_runs(sweep_id=info.id, limit=None)
    assert info.status == "partial"
    assert [p.status for p in points] == ["partial", "partial"]
    assert all("interrupted" in (p.error or "") for p in points)
    assert len(runs) == 2 and all(r.status == "partial" and 0 < r.n_requests < 400 for r in runs)
    assert sorted(r for p in points for r in p.run_ids) == sorted(r.id for r in runs)
    no_strays(tmp_path)
