"""The goodput operating point: doubling then bisection on SLO attainment, and the stored run."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_truth_load import load, mock

from bench.errors import UsageError
from bench.loadgen.goodput import GoodputSearch
from bench.loadgen.recompute import recompute
from bench.loadgen.spec import LoadSpec
from bench.registry import Registry
from bench.settings import Settings
from bench.store import Store
from serve.specs import LatencyModel


def run_search(search: GoodputSearch, capacity: float) -> list[float]:
    """Drive the search against a server that meets the SLO up to `capacity`."""
    loads = []
    while (step := search.next_load()) is not None:
        load_, stage = step
        loads.append(load_)
        ok = load_ <= capacity
        search.record(load_, stage, f"run{len(loads)}", 1.0 if ok else 0.5, (0.97, 1.0) if ok else (0.4, 0.6))
    return loads


def test_doubling_then_bisection_finds_the_highest_passing_concurrency() -> None:
    search = GoodputSearch("concurrency", 1, 1024, 0.99, steps=3)
    assert run_search(search, capacity=12) == [1, 2, 4, 8, 16, 12, 14, 13]
    assert search.best is not None and search.best.load == 12
    assert any("straddles" in w for w in search.warnings())  # 1.0 [0.97, 1.0] straddles 0.99


def test_bisection_stops_at_adjacent_whole_numbers_and_rates_are_not_rounded() -> None:
    conc = GoodputSearch("concurrency", 1, 1024, 0.99, steps=10)
    run_search(conc, capacity=2)
    assert [p.load for p in conc.probes] == [1, 2, 4, 3]
    rate = GoodputSearch("rate", 1.0, 64.0, 0.99, steps=2)
    assert run_search(rate, capacity=5.0) == [1.0, 2.0, 4.0, 8.0, 6.0, 5.0]


def test_no_operating_point_when_the_first_probe_misses_and_a_ceiling_is_reported() -> None:
    low = GoodputSearch("concurrency", 4, 1024, 0.99, steps=3)
    assert run_search(low, capacity=1) == [4] and low.best is None
    high = GoodputSearch("concurrency", 1, 8, 0.99, steps=3)
    assert run_search(high, capacity=100) == [1, 2, 4, 8]
    assert any("ceiling 8" in w for w in high.warnings())


def test_an_invalid_probe_cannot_pass_and_ends_the_search_capped() -> None:
    # 1, 2, 4 pass; the probe at 8 met the SLO but was client-bound: it does not count, nothing above it can
    # be measured, and the operating point (4) is only a lower bound.
    search = GoodputSearch("concurrency", 1, 64, 0.9, steps=3)
    loads = []
    while (step := search.next_load()) is not None:
        load_, stage = step
        loads.append(load_)
        invalid = ("client_bound: p99 scheduling lag 482.0 ms > 10.0 ms",) if load_ >= 8 else ()
        search.record(load_, stage, f"run{len(loads)}", 1.0, (0.9, 1.0), measured_load=load_, invalid=invalid)
    assert loads == [1, 2, 4, 8]
    assert search.best is not None and search.best.load == 4
    assert [p.verdict for p in search.probes] == ["pass", "pass", "pass", "invalid"]
    assert search.capped is not None and "probe at 8 was invalid (client_bound" in search.capped
    assert "at least 4" in search.capped
    assert any("probe at 8 was invalid" in w for w in search.warnings())
    assert search.probes[-1].to_json()["valid"] is False


def test_an_invalid_probe_between_a_pass_and_a_miss_caps_the_point_too() -> None:
    search = GoodputSearch("concurrency", 4, 64, 0.9, steps=3)
    search.record(4, "double", "a", 1.0, (0.9, 1.0))
    search.record(8, "double", "b", 0.5, (0.3, 0.7))
    assert search.next_load() == (6, "bisect")
    search.record(6, "bisect", "c", 1.0, (0.9, 1.0), invalid=("load_not_reached: at most 3 in flight",))
    assert search.next_load() is None
    assert search.best is not None and search.best.load == 4
    assert search.capped is not None and "could not measure above 4" in search.capped


def test_a_search_that_ends_on_a_miss_is_not_capped() -> None:
    search = GoodputSearch("concurrency", 1, 1024, 0.99, steps=3)
    run_search(search, capacity=12)
    assert search.capped is None


def test_probes_are_lengthened_until_they_can_hold_their_load() -> None:
    from bench.loadgen.profiles import GoodputProfile, Limits

    conc = GoodputProfile(start=4, max_load=64)
    assert conc.probe_limits(64, Limits(requests=40)).requests == 256  # 4 per slot
    assert conc.probe_limits(4, Limits(requests=40)).requests == 40  # already 10 per slot
    assert conc.probe_limits(64, Limits(duration_s=10)).duration_s == 10  # a duration is kept
    rate = GoodputProfile(dimension="rate", start=2)
    assert rate.probe_limits(8, Limits(requests=10)).requests == 40  # 5 s at 8/s


def test_a_concurrent_run_with_fewer_requests_than_slots_is_refused() -> None:
    with pytest.raises(UsageError) as err:
        LoadSpec.from_options(target="x", profile="concurrent", concurrency=[4, 64], requests=40)
    assert err.value.flag == "--requests"
    assert "40 requests can never keep 64 in flight" in str(err.value) and "256" in str(err.value)
    LoadSpec.from_options(
        target="x", profile="concurrent", concurrency=[64], duration_s=5
    )  # a duration is fine


def test_the_goodput_profile_needs_an_slo_and_one_start_value() -> None:
    with pytest.raises(UsageError) as err:
        LoadSpec.from_options(target="x", profile="goodput")
    assert err.value.flag == "--slo"
    with pytest.raises(UsageError) as err:
        LoadSpec.from_options(target="x", profile="goodput", slo="ttft_ms=100", concurrency=[1, 2])
    assert err.value.flag == "--concurrency"
    spec = LoadSpec.from_options(target="x", profile="goodput", slo="ttft_ms=100", rate=[2.0])
    (profile,) = spec.profiles()
    assert profile.kind == "goodput" and profile.dimension == "rate" and profile.start == 2.0  # type: ignore[union-attr]


@pytest.mark.slow
def test_goodput_search_against_a_server_with_a_capacity(
    registry: Registry,
    settings: Settings,
    tmp_path: Path,
) -> None:
    # Capacity 4: beyond it requests queue for whole requests' time, and TTFT blows through 150 ms.
    for url in mock(latency=LatencyModel(ttft_ms=10, itl_ms=4, capacity=4), strict=False):
        result = load(
            registry, settings, target=url, profile="goodput", slo="ttft_ms=150", requests=24,
            output_tokens="40", max_load=32, search_steps=2,
        )  # fmt: skip
        assert result.aborted is None
        final = result.runs[-1]
        assert final.profile.kind == "goodput"
        point = final.profile.operating_point
        assert point is not None and point.dimension == "concurrency" and 2 <= point.value <= 8
        assert point.probes == [r.run_id for r in result.runs[:-1]]
        assert final.profile.pacing is not None
        assert final.profile.pacing.model_dump() == {"kind": "concurrent", "concurrency": int(point.value)}
        assert final.summary.slo_attainment is not None and final.summary.slo_attainment.target == 0.99
        with Store.open(settings.results_path) as store:
            for run in result.runs:
                info = store.get_run(run.run_id)
                again = recompute(store.load_records(info.id), info.load_profile, info.load_summary)
                assert again == info.summary
