"""run_load end to end in process: every profile against the real mock, the store rows, the JSON contract."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from timing_server import Timing, TimingServer

from bench.errors import RunAbortedError, TargetError
from bench.loadgen.results import LoadEvent, RunFinished, RunProgress, RunStarted
from bench.loadgen.spec import LoadSpec
from bench.registry import Registry
from bench.runs import LoadResult, run_load
from bench.settings import Settings
from bench.store import Store

OVERLAY = """\
schema: llmbench.models/1
mock:
  fast-mock:
    provider: openai
    model: fast
    latency: {ttft_ms: 5, itl_ms: 1}
  fast-claude:
    provider: anthropic
    model: fast-claude
    latency: {ttft_ms: 5, itl_ms: 1}
"""
DIST_KEYS = {"mean", "p50", "p90", "p95", "p99", "p999"}


@pytest.fixture
def models_overlay() -> str:
    return OVERLAY


def load(
    registry: Registry, settings: Settings, events: list[LoadEvent] | None = None, **options: Any
) -> LoadResult:
    options.setdefault("target", "fast-mock")
    options.setdefault("output_tokens", "8")
    options.setdefault("input_tokens", "16")
    progress = options.pop("progress", None) or (None if events is None else events.append)
    spec = LoadSpec.from_options(**options)
    return run_load(spec, settings, registry, progress=progress, handle_sigint=False)


def test_concurrent_values_are_separate_stored_runs(registry: Registry, settings: Settings) -> None:
    events: list[LoadEvent] = []
    result = load(
        registry,
        settings,
        events,
        profile="concurrent",
        concurrency=[1, 3],
        requests=12,
        warmup={"requests": 3},
    )
    assert result.aborted is None and len(result.runs) == 2
    assert [r.max_in_flight for r in result.runs] == [1, 3]
    with Store.open(settings.results_path) as store:
        for r in result.runs:
            info = store.get_run(r.run_id)
            assert info.status == "complete" and info.kind == "load" and info.group_id == result.group_id
            assert info.load_profile.kind == "concurrent" and info.target.model == "fast"
            assert info.provenance.llmbench.version and info.provenance.engine.name == "llmbench-mock"
            records = store.load_records(r.run_id)
            assert len(records) == 15 and sum(rec.warmup for rec in records) == 3
            assert all(rec.ok and rec.output_tokens == 8 for rec in records)
            assert r.summary.completed == 12 and r.summary.warmup == 3  # warm-up excluded from results
            assert info.load_summary is not None and info.load_summary.completed == 12
    kinds = [type(e) for e in events]
    assert kinds.count(RunStarted) == 2 and kinds.count(RunFinished) == 2
    assert any(isinstance(e, RunProgress) for e in events)


@pytest.mark.slow  # seconds of real serving: scripts/test runs it
def test_every_profile_runs(registry: Registry, settings: Settings) -> None:
    for options in (
        {"profile": "synchronous"},
        {"profile": "constant", "rate": [40.0]},
        {"profile": "poisson", "rate": [40.0], "seed": 3},
    ):
        result = load(registry, settings, requests=10, **options)
        (run,) = result.runs
        assert run.status == "complete" and run.summary.completed == 10, options
        assert run.profile.kind == options["profile"]


@pytest.mark.slow  # about 1.3 s: scripts/test runs it, scripts/check stays under a minute
def test_open_loop_schedule_against_a_slow_server(registry: Registry, settings: Settings) -> None:
    # 400 ms per request against a 20/s schedule: sends must follow the schedule, not the responses.
    with TimingServer(Timing(ttft_ms=300, itl_ms=20)) as server:
        result = load(registry, settings, target=server.url, profile="constant", rate=[20.0], requests=16)
        assert server.stats.max_in_flight >= 6
    with Store.open(settings.results_path) as store:
        records = store.load_records(result.runs[0].run_id)
    scheduled = sorted(r.scheduled_s for r in records)
    assert [round(b - a, 6) for a, b in itertools.pairwise(scheduled)] == [0.05] * 15
    assert all(r.start_s - r.scheduled_s < 0.15 for r in records)


@pytest.mark.slow  # about 1.1 s: scripts/test runs it, scripts/check stays under a minute
def test_sweep_measures_k_rates_between_sync_and_max(registry: Registry, settings: Settings) -> None:
    result = load(registry, settings, profile="sweep", sweep_points=3, concurrency=[8], requests=16)
    assert result.aborted is None
    stages = [r.profile.sweep.stage if r.profile.sweep else None for r in result.runs]
    assert stages == ["synchronous", "throughput", "rate", "rate", "rate"]
    sync, peak = (r.summary.requests_per_s for r in result.runs[:2])
    assert sync is not None and peak is not None
    rates = [r.profile.rate for r in result.runs[2:]]
    low, high = sorted((sync, peak))
    assert all(low < rate < high for rate in rates)
    step = (high - low) / 4
    assert rates == pytest.approx([low + step, low + 2 * step, low + 3 * step])
    assert result.runs[1].profile.concurrency == 8


@pytest.mark.slow  # seconds of real serving: scripts/test runs it
def test_duration_limit(registry: Registry, settings: Settings) -> None:
    result = load(
        registry, settings, profile="concurrent", concurrency=[2], duration_s=1.0, warmup={"seconds": 0.3}
    )
    (run,) = result.runs
    window = run.summary.window_s
    assert run.status == "complete" and window is not None
    with Store.open(settings.results_path) as store:
        records = store.load_records(run.run_id)
    measured_starts = [r.start_s for r in records if not r.warmup]
    assert min(measured_starts) >= 0.29 and max(measured_starts) < 1.3 + 0.2
    assert any(r.warmup for r in records)


def test_json_contract(registry: Registry, settings: Settings, tmp_path: Path) -> None:
    result = load(
        registry, settings, profile="concurrent", concurrency=[2], requests=6, slo="ttft_ms=500,tpot_ms=50"
    )
    doc = json.loads(json.dumps(result.to_json()))
    assert doc["schema"] == "llmbench.load/1"
    assert doc["target"]["name"] == "fast-mock" and "api_key" not in doc["target"]
    (run,) = doc["runs"]
    assert run["profile"]["kind"] == "concurrent" and run["run_id"] == result.runs[0].run_id
    summary = run["summary"]
    assert summary["requests"]["completed"] == 6 and summary["requests"]["failed"] == 0
    for key in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        assert set(summary[key]) >= DIST_KEYS, key
    for key in ("output_tokens_per_s", "requests_per_s", "goodput_requests_per_s"):
        assert isinstance(summary[key], float), key
    assert isinstance(summary["client_bound"], bool)
    assert summary["goodput_requests_per_s"] == pytest.approx(summary["requests_per_s"])


@pytest.mark.slow  # about 1.9 s: scripts/test runs it, scripts/check stays under a minute
def test_server_metrics_are_stored(registry: Registry, settings: Settings) -> None:
    result = load(
        registry, settings, profile="constant", rate=[10.0], requests=14, server_metrics_every_s=0.2
    )
    (run,) = result.runs
    assert run.server_samples > 0
    with Store.open(settings.results_path) as store:
        names = {s.name for s in store.load_server_samples(run.run_id)}
    assert "vllm:num_requests_running" in names


def test_anthropic_mock(registry: Registry, settings: Settings) -> None:
    result = load(registry, settings, target="fast-claude", profile="concurrent", concurrency=[2], requests=4)
    (run,) = result.runs
    assert run.summary.completed == 4 and run.summary.output_tokens == 32


def test_wrong_model_fails_before_any_run(registry: Registry, settings: Settings) -> None:
    with pytest.raises(TargetError):
        load(registry, settings, model="no-such-model", requests=3)
    assert not settings.results_path.exists() or not Store.open(settings.results_path).list_runs()


@pytest.mark.slow
def test_server_dying_mid_run_keeps_records_and_marks_partial(registry: Registry, settings: Settings) -> None:
    server = TimingServer(Timing(ttft_ms=5, itl_ms=5)).__enter__()

    def kill_after_some(event: LoadEvent) -> None:
        if isinstance(event, RunProgress) and event.progress.ok >= 10:
            server.stop()

    try:
        result = load(
            registry,
            settings,
            target=server.url,
            profile="concurrent",
            concurrency=[2, 4],
            requests=100_000,
            progress=kill_after_some,
        )
    finally:
        server.stop()
    (run,) = result.runs  # the second value never ran
    assert isinstance(result.aborted, RunAbortedError)
    assert run.status == "partial" and result.aborted.run_id == run.run_id
    assert "stopped answering" in str(result.aborted)
    with Store.open(settings.results_path) as store:
        info = store.get_run(run.run_id)
        assert info.status == "partial" and info.error
        assert len(store.load_records(run.run_id)) == result.aborted.kept >= 10
