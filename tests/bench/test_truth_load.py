"""Every load figure is true or says why not: failed runs fail, cut-off tails are marked, what was sent is
stored, server kinds are detected, and a stored summary is reproduced exactly from the stored records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from bench.errors import RunAbortedError, RunFailedError
from bench.loadgen.recompute import recompute
from bench.loadgen.spec import LoadSpec
from bench.registry import Registry
from bench.runs import LoadResult, run_load
from bench.runs.serverinfo import identify
from bench.settings import Settings
from bench.store import Store
from serve.mock.server import running_mock
from serve.specs import LatencyModel, MockSpec


def mock(**kw: Any) -> Iterator[str]:
    spec = MockSpec(model="m", port=0, **kw)
    with running_mock(spec) as url:
        yield url + "/v1"


@pytest.fixture
def strict_url() -> Iterator[str]:
    yield from mock(latency=LatencyModel(ttft_ms=1, itl_ms=1))


@pytest.fixture
def lenient_url() -> Iterator[str]:
    yield from mock(latency=LatencyModel(ttft_ms=1, itl_ms=1), strict=False)


def load(registry: Registry, settings: Settings, **options: Any) -> LoadResult:
    options.setdefault("output_tokens", "8")
    options.setdefault("input_tokens", "16")
    spec = LoadSpec.from_options(**options)
    return run_load(spec, settings, registry, handle_sigint=False)


def stored(settings: Settings, run_id: str) -> Any:
    with Store.open(settings.results_path) as store:
        return store.get_run(run_id), store.load_records(run_id)


def test_a_run_whose_every_request_failed_is_failed_with_its_reason(
    registry: Registry, settings: Settings, strict_url: str
) -> None:
    # Forcing vLLM's extras onto a strict (OpenAI-like) server: every request is rejected with 400.
    result = load(registry, settings, target=strict_url, server_kind="vllm", requests=10)
    assert isinstance(result.aborted, RunFailedError) and isinstance(result.aborted, RunAbortedError)
    (run,) = result.runs
    assert run.status == "failed" and run.summary.completed == 0 and run.summary.failed == 10
    (detail,) = run.summary.error_details
    assert detail.kind == "http_400" and detail.http_status == 400 and detail.count == 10
    assert "ignore_eos" in detail.first_message
    assert run.summary.flags[0].kind == "failed"
    info, _ = stored(settings, run.run_id)
    assert info.status == "failed" and info.load_summary is not None
    assert info.load_summary.error_details[0].kind == "http_400"


def test_crossing_the_error_cap_fails_the_run(registry: Registry, settings: Settings) -> None:
    for url in mock(latency=LatencyModel(error_rate_500=0.6, seed=3)):
        result = load(registry, settings, target=url, requests=60, max_error_rate=0.2)
        (run,) = result.runs
        assert run.status == "failed" and run.ended == "error_rate"
        assert isinstance(result.aborted, RunAbortedError) and "--max-error-rate" in str(result.aborted)


def test_a_strict_server_gets_no_ignore_eos_and_the_run_says_length_was_not_fixed(
    registry: Registry, settings: Settings, strict_url: str
) -> None:
    result = load(registry, settings, target=strict_url, requests=6)
    (run,) = result.runs
    assert result.aborted is None and run.summary.completed == 6
    assert run.profile.sent is not None and run.profile.sent.to_json() == {
        "length_unit": "reference",
        "output_scale": 1.0,
        "ignore_eos_requested": True,
        "ignore_eos": False,
        "server_kind": "openai",
        "server_kind_from": "/llmbench/info",
    }
    assert run.summary.fixed_length is False
    assert "unfixed_length" in {f.kind for f in run.summary.flags}


def test_a_server_that_takes_extras_gets_fixed_lengths(
    registry: Registry, settings: Settings, lenient_url: str
) -> None:
    result = load(registry, settings, target=lenient_url, requests=6, output_tokens="12")
    (run,) = result.runs
    assert run.profile.sent is not None and run.profile.sent.ignore_eos is True
    assert run.summary.fixed_length is True
    assert run.summary.output_tokens == 6 * 12
    assert "unfixed_length" not in {f.kind for f in run.summary.flags}


async def _version(_request: web.Request) -> web.Response:
    return web.json_response({"version": "0.32.0+cpu"})


async def test_vllm_is_known_by_its_version_page() -> None:
    app = web.Application()
    app.router.add_get("/version", _version)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        got = await asyncio.to_thread(identify, url)
    finally:
        await runner.cleanup()
    assert (got.kind, got.detected_by, got.engine, got.engine_version) == (
        "vllm",
        "/version",
        "vllm",
        "0.32.0+cpu",
    )


def test_a_server_that_says_nothing_is_generic() -> None:
    assert identify("http://127.0.0.1:9/v1", timeout_s=1).kind == "generic"


def test_stragglers_cut_off_at_cool_down_are_counted_and_flagged(
    registry: Registry, settings: Settings
) -> None:
    for url in mock(latency=LatencyModel(ttft_ms=5, itl_ms=20), strict=False):
        result = load(
            registry,
            settings,
            target=url,
            profile="concurrent",
            concurrency=[8],
            duration_s=0.5,
            grace_s=0.05,
            output_tokens="100",  # 2 s per request: every request in flight at the end is cut off
        )
        (run,) = result.runs
        s = run.summary
        assert s.cancelled >= 8
        assert "cut_off" in {f.kind for f in s.flags}
        assert s.to_json()["requests"]["cancelled"] == s.cancelled


def test_by_default_the_cool_down_lets_in_flight_requests_finish(
    registry: Registry, settings: Settings
) -> None:
    for url in mock(latency=LatencyModel(ttft_ms=5, itl_ms=5), strict=False):
        result = load(
            registry,
            settings,
            target=url,
            profile="concurrent",
            concurrency=[4],
            duration_s=0.3,
            output_tokens="40",  # 0.2 s each: always some in flight when the duration ends
        )
        (run,) = result.runs
        assert run.summary.cancelled == 0 and run.summary.completed >= 4
        assert "cut_off" not in {f.kind for f in run.summary.flags}


@pytest.mark.parametrize(
    "options",
    [
        {"profile": "synchronous", "requests": 5},
        {"profile": "concurrent", "concurrency": [1, 3], "requests": 9, "warmup": {"requests": 2}},
        {"profile": "constant", "rate": [50.0], "requests": 10},
        {"profile": "poisson", "rate": [40.0], "requests": 10, "slo": "ttft_ms=50,tpot_ms=20"},
        {"profile": "sweep", "sweep_points": 2, "concurrency": [4], "requests": 8},
        {
            "profile": "concurrent",
            "concurrency": [4],
            "duration_s": 0.3,
            "grace_s": 0.01,
            "output_tokens": "60",
        },
    ],
    ids=["synchronous", "concurrent", "constant", "poisson-slo", "sweep", "cut-off"],
)
def test_recompute_reproduces_every_stored_summary_exactly(
    registry: Registry, settings: Settings, options: dict[str, Any]
) -> None:
    for url in mock(latency=LatencyModel(ttft_ms=2, itl_ms=2, itl_jitter_ms=1), strict=False):
        result = load(registry, settings, target=url, **{"slo": "ttft_ms=100", **options})
        assert result.runs
        for run in result.runs:
            info, records = stored(settings, run.run_id)
            assert info.load_summary is not None and info.load_summary.slo is not None
            again = recompute(records, info.load_profile, info.load_summary)
            assert again == info.load_summary  # every field, SLO and client statistics included
