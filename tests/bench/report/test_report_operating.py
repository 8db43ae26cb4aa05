"""The operating point: goodput run first, else the best run meeting the SLO, never saturation."""

from __future__ import annotations

from typing import Any

from documents import load_profile, provenance, target

from bench.metrics import RunSummary
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
    flags: list[dict[str, str]] | None = None,
    target_kind: str = "local",
) -> RunInfo:
    slo = {"ttft_ms": 500.0} if slo is None else slo
    share = {"value": met / total, "met": met, "n": total} if slo else None
    summary = {"requests": {"completed": total, "failed": 0}, "slo": slo or None, "slo_met": met,
               "slo_attainment": share, "output_tokens_per_s": tps, "ttft_ms": {"count": 1, "p95": 100.0},
               "flags": flags or []}  # fmt: skip
    key = "rate" if kind in ("constant", "poisson") else "concurrency"
    extra = dict(extra_profile or {})
    if kind == "goodput":
        extra.setdefault("pacing", {"kind": "concurrent", "concurrency": max(1, round(value))})
    profile = load_profile(kind if kind != "goodput" else "goodput", label=kind, **{key: value}, **extra)
    summ = RunSummary.from_json(summary)
    return RunInfo(rid, "load", "complete", "complete", started, None, None, target("t", target_kind),
                   profile, provenance(), summ, None, None, None, 100, 0)  # fmt: skip


def test_attainment_is_the_one_stored_figure() -> None:
    # The report never recomputes attainment with another denominator: it reads what the run stored
    # (met ÷ every measured request, errors and cut-off requests as misses; bench.metrics.summary).
    stored = {"requests": {"completed": 90, "failed": 5, "cancelled": 5}, "slo": {"ttft_ms": 1},
              "slo_met": 85, "slo_attainment": {"value": 0.85, "met": 85, "n": 100}}  # fmt: skip
    assert attainment(RunSummary.from_json(stored)) == 0.85  # not 85 / (90 + 5) = 0.8947
    none = {"requests": {"completed": 90}, "slo": None, "slo_attainment": None}
    assert attainment(RunSummary.from_json(none)) is None
    empty = {"slo": {"ttft_ms": 1}, "slo_attainment": {"value": None, "n": 0}}
    assert attainment(RunSummary.from_json(empty)) is None


def test_an_invalid_run_is_never_the_operating_point() -> None:
    bound = [{"kind": "client_bound", "detail": "p99 scheduling lag 482.0 ms > 10.0 ms"}]
    runs = [run("a", value=4, tps=300), run("b", value=8, tps=900, flags=bound)]
    op = choose_operating_point(runs)
    assert op.run is not None and op.run.id == "a"
    only = choose_operating_point([run("b", value=8, tps=900, flags=bound)])
    assert only.status == "no-valid-run" and only.run is None and "client_bound" in only.note


def test_a_capped_goodput_search_is_an_upper_bound_on_cost() -> None:
    point = {"dimension": "concurrency", "value": 64, "target_attainment": 0.9, "attainment": 1.0,
             "capped": "every probe up to the ceiling 64 met the SLO: the operating point is at least 64",
             "warnings": []}  # fmt: skip
    op = choose_operating_point(
        [run("g", kind="goodput", value=64, extra_profile={"operating_point": point})]
    )
    assert op.status == "goodput" and op.capped is not None and "ceiling 64" in op.capped
    assert "upper bound" in op.note and op.to_json()["capped"] == op.capped
    # An API is billed per token: a capped search bounds the load it holds, not what it costs.
    api = choose_operating_point(
        [run("g", kind="goodput", value=64, extra_profile={"operating_point": point}, target_kind="mock")]
    )
    assert api.capped is not None and "upper bound" not in api.note
    assert api.note.endswith("— capped: the load it holds is at least this")


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


def test_the_search_trace_names_the_invalid_runs_a_probe_replaced_in_load_order() -> None:
    from bench.report.cells import search_trace
    from bench.report.options import Option

    probes = [
        {"load": 8, "stage": "double", "run_id": "p8" * 8, "attainment": 0.5, "passed": False,
         "measured_load": 7.9, "verdict": "miss"},
        {"load": 4, "stage": "double", "run_id": "p4" * 8, "attainment": 1.0, "ci95": [0.9, 1.0],
         "passed": True, "measured_load": 3.99, "verdict": "pass", "retried": ["aaaaaaaa11", "bbbbbbbb22"]},
    ]  # fmt: skip
    point = {"dimension": "concurrency", "value": 4, "target_attainment": 0.9, "attainment": 1.0,
             "search": probes, "warnings": []}  # fmt: skip
    op = choose_operating_point([run("g", kind="goodput", value=4, extra_profile={"operating_point": point})])
    assert op.run is not None
    option = Option("k", "t", "self-hosted", None, [op.run], [], op)
    first, second = search_trace(option)
    assert (first["load"], first["measured"], second["load"]) == (
        "concurrency 4.00",
        "3.99 in flight",
        "concurrency 8.00",
    )
    assert first["verdict"] == "pass (after 2 invalid runs: aaaaaaaa, bbbbbbbb)"
    assert first["attainment"] == "100.0% [90.0, 100.0]" and second["verdict"] == "miss"
