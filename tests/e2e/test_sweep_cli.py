"""`llmbench sweep` as a user runs it: mocks and the tiny model end to end, a failed point, resume after
kill -9, and points in parallel on a local Ray instance with no process left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from fixtures_vllm import LLMBENCH, REPO, cli_env

from bench.store import Store

pytestmark = pytest.mark.slow


def sweep(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LLMBENCH, "sweep", *args], cwd=REPO, env=cli_env(home), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def is_server(cmd: str) -> bool:
    """A server llmbench starts for a run: `python -m serve` (hf, mock) or the older entry points."""
    return cmd.endswith(" -m serve") or "serve.mock" in cmd or ("bench serve" in cmd and "--port 0" in cmd)


def strays(home: Path) -> list[str]:
    """Servers or Ray processes this test's sweep started that are still alive. Only our own are looked at:
    a process counts when its environment names this test's LLMBENCH_HOME."""
    out = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["status"] == psutil.STATUS_ZOMBIE or not (is_server(cmd) or "raylet" in cmd):
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("LLMBENCH_HOME") == str(home):
                out.append(cmd[:200])
    return out


def no_strays(home: Path, timeout_s: float = 30.0) -> list[str]:
    """Wait until none is left (a killed worker's server gets its death signal a moment later); the rest."""
    deadline = time.monotonic() + timeout_s
    while (left := strays(home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def measuring_workers(proc: subprocess.Popen[str], n: int) -> list[psutil.Process]:
    """Wait until `n` Ray workers run a sweep point whose mock API server is up (measuring)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        workers = []
        for p in psutil.process_iter(["cmdline"]):
            if " ".join(p.info["cmdline"] or []).startswith("ray::_point_task"):
                with contextlib.suppress(psutil.Error):
                    if any(is_server(" ".join(c.cmdline())) for c in p.children()):
                        workers.append(p)
        if len(workers) == n:
            time.sleep(2)  # a few requests measured
            return workers
    raise AssertionError(f"{n} points did not start measuring on Ray")


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
    served = next(p for p in points if p.status == "complete" and p.detail.get("url"))
    assert served.detail["prefix_cache"].startswith("not supported")  # the hf backend has no such endpoint
    assert {r.kind for r in runs} == {"load", "accuracy"} and len(runs) == 4
    assert all(r.point_id in {p.point_id for p in points} for r in runs)
    assert no_strays(tmp_path) == []


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
    deadline = time.monotonic() + 180
    first = None
    while time.monotonic() < deadline and first is None:
        time.sleep(0.3)
        if not store_path.exists():
            continue
        with Store.open(store_path) as store:
            sweeps = store.list_sweeps()
            points = store.list_points(sweeps[0].id) if sweeps else []
            # the first point done and the second one measuring: kill it mid-point
            second_runs = store.list_runs(sweep_id=sweeps[0].id, limit=None) if sweeps else []
        done = [p for p in points if p.status == "complete"]
        if done and len(second_runs) > len(done[0].run_ids):
            first = done[0]
    assert first is not None, "the sweep did not get past its first point"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    time.sleep(1)
    with Store.open(store_path) as store:
        sweep_id = store.list_sweeps()[0].id
        assert store.get_sweep(sweep_id).status == "partial"  # its process is gone
        before = {r.id: r.status for r in store.list_runs(sweep_id=sweep_id, limit=None)}
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
    assert no_strays(tmp_path) == []


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
    assert no_strays(tmp_path) == []


def test_a_ray_worker_killed_mid_point_fails_that_point_and_the_sweep_goes_on(tmp_path: Path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text(RAY_SWEEP, encoding="utf-8")
    proc = subprocess.Popen(
        [*LLMBENCH, "sweep", str(file), "--ray-address", "local"], cwd=REPO, env=cli_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    victim = measuring_workers(proc, 2)[0]
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
    assert no_strays(tmp_path) == []  # the killed worker's API server died with it


def test_ctrl_c_on_ray_cancels_the_points_and_keeps_what_they_measured(tmp_path: Path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text(RAY_SWEEP.replace("requests: 40", "requests: 400"), encoding="utf-8")
    proc = subprocess.Popen(
        [*LLMBENCH, "sweep", str(file), "--ray-address", "local"], cwd=REPO, env=cli_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    measuring_workers(proc, 2)
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
    assert no_strays(tmp_path) == []
