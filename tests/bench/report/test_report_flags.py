"""Flags, lower bounds, the utilization basis and recovery documents, as the report reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import LOCAL, add_load_run, records

from bench.registry import load_registry
from bench.report.build import ReportSpec, build_report
from bench.report.jsonout import pricing_from_registry
from bench.report.markdown import render_markdown
from bench.report.recovery import read_recovery
from bench.store import Document, Store

PRICING = pricing_from_registry(load_registry())


def test_cut_off_and_client_bound_runs_are_flagged(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    recs = records(40, ttft_s=0.1, itl_s=0.01, cancelled=5, failed=0)
    with Store.open(path) as db:
        run = add_load_run(
            db, LOCAL, recs, profile={"kind": "concurrent", "concurrency": 4}, hardware="cpu-2vcpu",
            extra_summary={"client_bound": True, "client_bound_reasons": ["client CPU 0.95 cores"],
                           "flags": [{"kind": "cut_off", "detail": "5 requests were cut off"},
                                     {"kind": "unfixed_length", "detail": "ignore_eos was not honoured"},
                                     {"kind": "client_bound", "detail": "client CPU 0.95 cores"}]},
        )  # fmt: skip
    report = build_report(ReportSpec(), path, PRICING)
    row = report.rows[0]
    kinds = {f.kind for f in row.option.flags}
    assert {"cut_off", "client_bound", "unfixed_length"} <= kinds
    assert all(f.run_id == run for f in row.option.flags)
    assert row.ttft_p95.note == "lower bound" and row.ttft_p50.note is None  # the tail is a lower bound
    md = render_markdown(report)
    assert "**cut_off**" in md and "**client_bound**" in md and "≥" in md


def test_flags_are_read_as_stored_never_derived_again(tmp_path: Path) -> None:
    # A summary's flags are computed once, by the summarizer; the report does not re-derive client_bound
    # from another field (only the run's status and an accuracy run's failed items are added).
    path = tmp_path / "r.sqlite"
    with Store.open(path) as db:
        add_load_run(
            db, LOCAL, records(40, ttft_s=0.1, itl_s=0.01), profile={"kind": "synchronous"},
            hardware="cpu-2vcpu", extra_summary={"client_bound": True, "flags": []}, status="partial",
        )  # fmt: skip
    kinds = [f.kind for f in build_report(ReportSpec(), path, PRICING).rows[0].option.flags]
    assert "client_bound" not in kinds and "partial" in kinds


def test_utilization_basis_divides_the_allocation_cost(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with Store.open(path) as db:
        add_load_run(db, LOCAL, records(40, ttft_s=0.1, itl_s=0.01), profile={"kind": "synchronous"},
                     hardware="cpu-2vcpu")  # fmt: skip
    full = build_report(ReportSpec(), path, PRICING).rows[0]
    quarter = build_report(ReportSpec(utilization=0.25), path, PRICING).rows[0]
    assert quarter.basis == "utilization" and quarter.utilization == 0.25
    assert quarter.usd_per_1m_output.value == pytest.approx(4 * (full.usd_per_1m_output.value or 0))
    assert quarter.usd_per_1m_output_allocation.value == pytest.approx(full.usd_per_1m_output.value)


def _doc(body: dict[str, object], subject: str = "m:v") -> Document:
    return Document("d" * 32, "llmbench.recovery/1", "2026-12-01T00:00:00Z", subject, None, body)


def test_recovery_documents_are_read_through_their_model_and_unreadable_ones_say_why() -> None:
    from bench.records import ItemRecord
    from bench.recovery.report import ModelFacts, SpeedRuns, SuiteRuns, recovery_document

    def scored(area: str, verdicts: list[bool]) -> list[ItemRecord]:
        return [
            ItemRecord(item_id=f"{area}{i}", status="ok", area=area, correct=c, score=float(c))
            for i, c in enumerate(verdicts)
        ]

    # Area a: the variant gets 48 of the base's 50 (0.96 < 0.97: flagged); b: both score 0 (no recovery).
    base = scored("a", [True] * 50) + scored("b", [False] * 4)
    var = scored("a", [True] * 48 + [False] * 2) + scored("b", [False] * 4)
    written = recovery_document(
        ModelFacts("m", "m", "hf"), ModelFacts("m:int8", "m-int8", "hf", "bnb-int8"),
        {"s": SuiteRuns("A", base, "B", var)}, SpeedRuns(skipped="--no-speed"), threshold=0.97,
    ).to_json()  # fmt: skip
    rec = read_recovery([_doc(written), _doc({"variant": "m:nf4", "suites": {"s": {"score": 1}}})])
    ((variant, area, value, ci, flagged),) = [
        (a.variant, a.area, a.recovery, a.ci95, a.flagged) for a in rec.areas
    ]
    assert (variant, area, value, flagged) == ("m:int8", "a", 0.96, True) and ci is not None
    assert ci[0] < 0.96 <= ci[1]
    assert rec.documents[0].doc.threshold == 0.97 and rec.documents[0].doc.size_ratio.value is None
    assert rec.to_json()["documents"][0]["threshold"] == 0.97
    assert rec.unreadable and "not an llmbench.recovery/1 document" in rec.unreadable[0]
    assert rec.empty_reason is None
    none = read_recovery([_doc({"variant": "x"})])
    assert none.empty_reason is not None and none.empty_reason.startswith(
        "recovery reports stored but not readable"
    )
    assert read_recovery([]).empty_reason == "no recovery report stored"
