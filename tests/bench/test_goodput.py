"""The goodput operating point: doubling then bisection on SLO attainment, and the stored run."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_truth_load import load, mock, registry, settings  # noqa: F401  (fixtures)

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
    registry: Registry,  # noqa: F811
    settings: Settings,  # noqa: F811
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
        assert final.profile["kind"] == "goodput"
        point = final.profile["operating_point"]
        assert point["dimension"] == "concurrency" and 2 <= point["value"] <= 8
        assert point["probes"] == [r.run_id for r in result.runs[:-1]]
        assert final.profile["pacing"] == {"kind": "concurrent", "concurrency": int(point["value"])}
        assert final.summary.slo_attainment is not None and final.summary.slo_attainment["target"] == 0.99
        with Store.open(settings.results_path) as store:
            for run in result.runs:
                info = store.get_run(run.run_id)
                again = recompute(store.load_records(info.id), info.profile, info.summary)
                assert again.to_json() == info.summary
