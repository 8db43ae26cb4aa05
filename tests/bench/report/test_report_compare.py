"""`compare_runs`: deltas with their tests, gates that fail only with significance, refusals with reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from documents import load_profile, provenance
from report_fixtures import (
    FRONTIER,
    LOCAL,
    MINI,
    add_accuracy_run,
    add_load_run,
    items,
    records,
)

from bench.errors import UsageError
from bench.prompts import PromptSpec
from bench.registry import load_registry
from bench.report.compare import compare_runs, latency_delta
from bench.report.gates import parse_gates
from bench.report.jsonout import pricing_from_registry
from bench.store import Store

PRICING = pricing_from_registry(load_registry())
CONC = {"kind": "concurrent", "concurrency": 4}


def test_gate_syntax() -> None:
    units = {"ttft_p95": "ms", "accuracy": "pts", "cost_per_correct": "%"}
    gates = parse_gates("ttft_p95>+10%, accuracy<-2pts,cost_per_correct>+5%,ttft_p95>50ms", units)
    assert [str(g) for g in gates] == [
        "ttft_p95>+10%",
        "accuracy<-2pts",
        "cost_per_correct>+5%",
        "ttft_p95>+50ms",
    ]
    assert gates[1].crossed(-3.0) and not gates[1].crossed(-1.0)
    bad_gates = (
        ("ttft_p95 10%", "is not METRIC"),
        ("speed>+1%", "unknown metric"),
        ("ttft_p95>1pts", "not an accuracy"),
        ("accuracy<-2ms", "not a latency"),
        (" , ", "no gate"),
    )
    for bad, why in bad_gates:
        with pytest.raises(UsageError, match=why):
            parse_gates(bad, units)


def test_latency_delta_is_significant_only_for_a_real_shift() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(100, 10, 500)
    shifted = latency_delta("ttft_p95", base, rng.normal(130, 10, 500))
    assert (
        shifted.significant
        and shifted.ci
        and shifted.ci[0] > 0
        and shifted.change_rel
        and shifted.change_rel > 0.2
    )
    same = latency_delta("ttft_p95", base, rng.normal(100, 10, 500))
    assert not same.significant and same.ci and same.ci[0] < 0 < same.ci[1]
    assert latency_delta("ttft_p95", base[:1], base).reason == "fewer than two requests on a side"


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    return tmp_path / "results.sqlite"


@pytest.mark.slow  # seconds of real serving: scripts/test runs it
def test_a_slower_new_run_fails_the_latency_gate(store: Path) -> None:
    with Store.open(store) as db:
        base = add_load_run(db, LOCAL, records(200, ttft_s=0.10, itl_s=0.01, seed=1), profile=CONC)
        slow = add_load_run(db, LOCAL, records(200, ttft_s=0.15, itl_s=0.01, seed=2), profile=CONC)
        same = add_load_run(db, LOCAL, records(200, ttft_s=0.10, itl_s=0.01, seed=3), profile=CONC)
    worse = compare_runs(store, base, slow, PRICING, "ttft_p95>+10%")
    assert worse.failed and worse.gates[0].change and worse.gates[0].change > 40
    ok = compare_runs(store, base, same, PRICING, "ttft_p95>+10%,tpot_p50>+10%")
    assert not ok.failed and [g.verdict for g in ok.gates] == ["pass", "pass"]
    metrics = {d.metric for d in ok.deltas}
    assert {"ttft_p50", "ttft_p95", "ttft_p99", "tpot_p50", "e2e_p95", "output_tok_s"} <= metrics


def test_a_crossing_within_noise_passes_and_says_so(store: Path) -> None:
    with Store.open(store) as db:
        # The same server twice: the median moves by +6% between the two samples of 30, within the noise.
        base = add_load_run(db, LOCAL, records(30, ttft_s=0.10, itl_s=0.01, seed=1), profile=CONC)
        new = add_load_run(db, LOCAL, records(30, ttft_s=0.10, itl_s=0.01, seed=3), profile=CONC)
    result = compare_runs(store, base, new, PRICING, "ttft_p50>+1%")
    gate = result.gates[0]
    assert gate.change is not None and gate.change > 1 and not gate.failed
    assert "not significant" in gate.verdict


def test_accuracy_and_cost_per_correct_gates(store: Path) -> None:
    with Store.open(store) as db:
        strong = add_accuracy_run(
            db, FRONTIER, items({"arithmetic": 0.95, "lookup": 0.95, "string": 0.9, "comparison": 0.9})
        )
        weak = add_accuracy_run(
            db, MINI, items({"arithmetic": 0.6, "lookup": 0.9, "string": 0.6, "comparison": 0.7})
        )
    result = compare_runs(store, strong, weak, PRICING, "accuracy<-2pts,cost_per_correct>+5%")
    acc, cost = result.gates
    assert acc.failed and acc.change is not None and acc.change < -10
    assert (
        not cost.failed and cost.change is not None and cost.change < -90
    )  # mini is far cheaper per correct
    assert any(d.metric == "accuracy_lookup" for d in result.deltas)


def test_different_suites_or_prompts_are_refused_with_the_reason(store: Path) -> None:
    with Store.open(store) as db:
        a = add_accuracy_run(db, MINI, items({"arithmetic": 0.6}))
        b = add_accuracy_run(db, MINI, items({"arithmetic": 0.6}), suite="builtin:general")
        la = add_load_run(db, LOCAL, records(20, ttft_s=0.1, itl_s=0.01), profile=CONC)
        lb_profile = {**CONC, "label": "concurrent 4"}
        on_file = PromptSpec(kind="file", dataset=Path("x.jsonl"), output_tokens=None)
        lb = db.start_run("load", LOCAL, load_profile(prompts=on_file, **lb_profile), provenance())
        db.finish_run(lb, "complete", None)
    with pytest.raises(UsageError, match="different suites"):
        compare_runs(store, a, b, PRICING)
    with pytest.raises(UsageError, match=r"different prompts \("):
        compare_runs(store, la, lb, PRICING)
    with pytest.raises(UsageError, match="same kinds of run"):
        compare_runs(store, la, a, PRICING)
