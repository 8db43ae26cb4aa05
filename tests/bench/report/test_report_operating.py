"""The operating point: goodput run first, else the best run meeting the SLO, never saturation."""

from __future__ import annotations

from typing import Any

from bench.report.operating import attainment, choose_operating_point
from bench.store import RunInfo


def run(
    rid: str,
    *,
    kind: str = "concurrent",
    value: float = 1,
    tps: float = 100.0,
    met: int = 100,
    total: int = 100,
    slo: dict[str, float] | None = None,
    started: str = "2026-12-01T00:00:00Z",
    extra_profile: dict[str, Any] | None = None,
) -> RunInfo:
    slo = {"ttft_ms": 500.0} if slo is None else slo
    summary = {"requests": {"completed": total, "failed": 0}, "slo": slo or None, "slo_met": met,
               "output_tokens_per_s": tps, "ttft_ms": {"p95": 100.0}}  # fmt: skip
    key = "rate" if kind in ("constant", "poisson") else "concurrency"
    profile = {"kind": kind, key: value, **(extra_profile or {})}
    return RunInfo(rid, "load", "complete", "complete", started, None, None, {"name": "t", "kind": "local"},
                   profile, {}, summary, None, None, None, 100, 0)  # fmt: skip


def test_attainment_counts_errors_as_misses_and_needs_an_slo() -> None:
    assert (
        attainment({"requests": {"completed": 90, "failed": 10}, "slo": {"ttft_ms": 1}, "slo_met": 85})
        == 0.85
    )
    assert attainment({"requests": {"completed": 90}, "slo": None, "slo_met": 90}) is None
    assert attainment({"requests": {"completed": 0, "failed": 0}, "slo": {"ttft_ms": 1}}) is None


def test_best_meeting_run_is_used_and_flagged_not_searched() -> None:
    runs = [
        run("a", value=1, tps=100, met=100),
        run("b", value=4, tps=300, met=99),
        run("c", value=16, tps=900, met=80),  # saturation: more throughput, misses the SLO
    ]
    op = choose_operating_point(runs)
    assert op.status == "not-searched" and op.run is not None and op.run.id == "b"
    assert op.meets_slo and op.attainment == 0.99 and op.point == ("concurrency", 4.0)
    assert "operating point not searched" in op.note


def test_a_goodput_run_wins_over_faster_unsearched_runs() -> None:
    point = {"dimension": "rate", "value": 3.5, "target_attainment": 0.99, "attainment": 0.994,
             "attainment_ci": [0.985, 0.998], "probes": ["x"],
             "warnings": ["CI straddles 0.99 at 4 req/s"]}  # fmt: skip
    runs = [
        run("fast", value=64, tps=5000, met=100),
        run("g", kind="goodput", tps=400, extra_profile={"operating_point": point}),
    ]
    op = choose_operating_point(runs)
    assert op.status == "goodput" and op.run is not None and op.run.id == "g"
    assert op.point == ("rate", 3.5) and op.warnings == ["CI straddles 0.99 at 4 req/s"]


def test_no_run_meeting_the_slo_gives_no_operating_point() -> None:
    op = choose_operating_point([run("a", met=93), run("b", value=8, met=50, tps=900)])
    assert op.status == "slo-unmet" and op.run is None and op.display is not None and op.display.id == "a"
    assert "93.0% < 99%" in op.note


def test_without_any_slo_it_says_so_instead_of_using_saturation() -> None:
    op = choose_operating_point([run("a", slo={}, tps=100), run("b", slo={}, tps=5000, value=64)])
    assert op.status == "no-slo" and op.run is None and op.note == "n/a: no SLO"
    assert choose_operating_point([]).status == "no-load-run"
