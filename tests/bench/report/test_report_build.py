"""`build_report` over stores of constructed runs: figures against hand computation, n/a reasons, headline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_fixtures import (
    FRONTIER,
    LOCAL,
    add_accuracy_run,
    add_load_run,
    items,
    records,
    target,
    trade_off_store,
)

from bench.errors import UnknownNameError, UsageError
from bench.registry import load_registry
from bench.report.build import ReportSpec, build_report
from bench.report.jsonout import pricing_from_registry, report_json
from bench.report.markdown import render_markdown
from bench.store import Store

PRICING = pricing_from_registry(load_registry())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("report") / "results.sqlite"
    return path, trade_off_store(path)


def test_costs_match_hand_computation(store: tuple[Path, dict[str, str]]) -> None:
    path, ids = store
    report = build_report(ReportSpec(), path, PRICING)
    local = report.row("tiny-skills@cpu-2vcpu")
    assert local is not None and local.option.op.run is not None
    # c16 misses the 1,000 ms TTFT bound, so the operating point is c4, not the saturating c16.
    assert local.option.op.run.id == ids["local-c4"] and local.option.op.status == "not-searched"
    s = local.option.op.run.load_summary
    assert s is not None and s.load is not None and s.load.steady is not None
    steady = s.load.steady
    # The tiny model counts every byte: its 64 output tokens are 16 reference tokens (64 bytes ÷ 4), so its
    # reference throughput is a quarter of its own, in the steady window.
    assert steady.output_tokens_per_s is not None
    ref_tps = steady.output_tokens_per_s * 16 / 64
    assert local.output_tok_s.value == pytest.approx(ref_tps)
    assert local.output_tok_s_model.value == pytest.approx(steady.output_tokens_per_s)
    per_1m = 0.0832 / (ref_tps * 3600) * 1e6  # cpu-2vcpu at $0.0832/h
    assert local.usd_per_1m_output.value == pytest.approx(per_1m)
    assert local.usd_per_1k_requests.value == pytest.approx(0.0832 / (steady.requests_per_s * 3600) * 1000)
    # Mix 128:64 bytes = 32:16 reference tokens = 2:1; in + out = 3 reference tokens per output token.
    assert local.mix == pytest.approx(2.0)
    per_total = 0.0832 / (ref_tps * 3 * 3600) * 1e6
    assert local.usd_per_1m_blended.value == pytest.approx(per_total)
    assert report.mix == pytest.approx(2.0)  # every option ran the same 2:1 workload
    # $/correct: the accuracy run's 400 items × (80 + 12 bytes = 20 + 3 reference tokens) at the box's
    # per-reference-token price, over its correct items.
    assert local.correct and local.usd_per_correct.value == pytest.approx(
        400 * 23 * per_total / 1e6 / local.correct
    )

    frontier = report.row("mock-frontier")
    assert frontier is not None
    # 128 prompt tokens (32 of them cache reads) and 64 output tokens per request, at $3 / $0.30 / $15 per 1M;
    # 4 bytes per token: its own tokens are reference tokens.
    assert frontier.usd_per_1m_output.value == pytest.approx((96 * 3 + 32 * 0.3 + 64 * 15) / 64)
    assert frontier.list_usd_per_1m_output.value == 15.0
    assert frontier.usd_per_1k_requests.value == pytest.approx((96 * 3 + 32 * 0.3 + 64 * 15) / 1e6 * 1000)
    # One stated mix for every row: 2:1 → (2 × $3 + $15) ÷ 3.
    assert frontier.usd_per_1m_blended.value == pytest.approx((2 * 3 + 15) / 3)
    assert frontier.usd_per_1m_blended.note == "list prices at 2:1"
    assert frontier.correct and frontier.usd_per_correct.value == pytest.approx(
        400 * (20 * 3 + 3 * 15) / 1e6 / frontier.correct
    )
    assert frontier.usd_per_hour.value is None and frontier.usd_per_hour.reason
    assert not [n for n in report.notes if "different workloads" in n]


@pytest.mark.slow  # about 2.5 s: scripts/test runs it, scripts/check stays under a minute
def test_headline_follows_the_paired_ci(store: tuple[Path, dict[str, str]]) -> None:
    path, _ = store
    strict = build_report(ReportSpec(max_drop=2), path, PRICING)
    assert strict.headline.best_accuracy == "mock-frontier"
    assert strict.headline.recommended == "mock-frontier" and strict.headline.runner_up is None
    assert "too inaccurate" in strict.headline.reasons["mock-mini"]
    loose = build_report(ReportSpec(max_drop=30), path, PRICING)
    assert loose.headline.recommended == "tiny-skills:int8@cpu-2vcpu"
    assert loose.headline.runner_up == "tiny-skills@cpu-2vcpu"
    # int8 is 1.2 points below the base with a CI reaching below -2: judged by the CI, it is not within 2
    # points of the base, even though its point estimate is.
    versus = loose.headline.versus_best["tiny-skills:int8@cpu-2vcpu"]
    assert versus is not None and versus.n == 400
    ladder = loose.downgrade
    assert ladder.frontier[0] == "tiny-skills:int8@cpu-2vcpu" and ladder.frontier[-1] == "mock-frontier"
    assert ladder.dominated == {"mock-mini": "tiny-skills:int8@cpu-2vcpu"}
    step = ladder.steps[-1]
    assert (step.stronger, step.cheaper) == ("tiny-skills@cpu-2vcpu", "tiny-skills:int8@cpu-2vcpu")
    assert step.paired is not None and step.paired.ci95_points[0] < -2 < step.paired.diff_points < 0


def test_break_even_against_each_api(store: tuple[Path, dict[str, str]]) -> None:
    path, _ = store
    report = build_report(ReportSpec(), path, PRICING)
    pairs = {(b.selfhosted, b.api): b for b in report.break_evens}
    b = pairs[("tiny-skills@cpu-2vcpu", "mock-mini")]
    # mock-mini's bill for the workload: 128 in at $0.15 and 64 out at $0.60 per 1M, per 64 output tokens
    # = $0.90 per 1M output tokens all-in; one replica = $0.0832 × 730 = $60.74 a month.
    assert b.api_usd_per_1m_output == pytest.approx(0.9)
    assert b.result.volume == pytest.approx(0.0832 * 730 / 0.9e-6)
    assert len(pairs) == 4


def test_missing_figures_say_why_never_zero(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    bare = target("http://10.0.0.5:8000/v1", "url")
    unpriced = target("my-gateway", "api")
    with Store.open(path) as db:
        add_load_run(
            db, bare, records(20, ttft_s=0.1, itl_s=0.01), profile={"kind": "concurrent", "concurrency": 2}
        )
        add_load_run(db, unpriced, records(20, ttft_s=0.1, itl_s=0.01), profile={"kind": "synchronous"})
        add_load_run(db, LOCAL, records(20, ttft_s=0.1, itl_s=0.01), profile={"kind": "synchronous"},
                     slo=None, hardware="cpu-2vcpu")  # fmt: skip
        add_accuracy_run(db, FRONTIER, items({"arithmetic": 0.9}))
    report = build_report(ReportSpec(), path, PRICING)
    data = report_json(report)
    rows = {r["key"]: r for r in data["leaderboard"]}
    url_row = rows["http://10.0.0.5:8000/v1"]
    assert url_row["cost"]["usd_per_1m_output"]["na"].startswith("no hardware profile")
    assert url_row["accuracy"]["na"] == "no accuracy run for this variant"
    assert rows["my-gateway"]["cost"]["usd_per_1m_output"]["na"] == "no price for this target"
    local = rows["tiny-skills@cpu-2vcpu"]
    assert local["cost"]["usd_per_1m_output"]["na"] == "n/a: no SLO"
    assert local["output_tokens_per_s"]["na"] == "n/a: no SLO"
    assert local["latency_ms"]["ttft_p50"]["value"] > 0  # latency is still shown, from the latest run
    assert (
        rows["mock-frontier"]["cost"]["usd_per_1m_output"]["value"] is not None
    )  # at the accuracy run's mix
    assert rows["mock-frontier"]["output_tokens_per_s"]["na"] == "no load run"
    for row in rows.values():  # nothing missing is ever reported as a number
        for value in (row["cost"]["usd_per_1m_output"], row["cost"]["usd_per_correct"], row["accuracy"]):
            assert (value["value"] is None) == ("na" in value)
    assert report.headline.recommended is None
    assert "not measured: no load run" in report.headline.reasons["mock-frontier"]
    md = render_markdown(report)
    assert "n/a [" in md and "no price for this target" in md and "| 0 |" not in md
    json.dumps(data)


def test_hardware_override_and_unknown_profiles(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    bare = target("http://10.0.0.5:8000/v1", "url")
    with Store.open(path) as db:
        add_load_run(
            db,
            bare,
            records(20, ttft_s=0.1, itl_s=0.01, concurrency=2),
            profile={"kind": "concurrent", "concurrency": 2},
        )
    report = build_report(ReportSpec(hardware={"http://10.0.0.5:8000/v1": "l4-24gb-x1"}), path, PRICING)
    row = report.rows[0]
    assert row.hardware is not None and row.hardware.usd_per_hour == 0.44 and row.usd_per_1m_output.known
    with pytest.raises(UsageError, match="unknown hardware profile"):
        build_report(ReportSpec(hardware={"x": "no-such-box"}), path, PRICING)


def test_selection_by_id_and_unknown_ids(store: tuple[Path, dict[str, str]]) -> None:
    path, ids = store
    report = build_report(ReportSpec(run_ids=(ids["mini-load"][:10], ids["mini-acc"])), path, PRICING)
    assert [r.key for r in report.rows] == ["mock-mini"] and report.n_runs == 2
    assert build_report(ReportSpec(last=1), path, PRICING).n_runs == 1
    typo = ids["mini-load"][:7] + "x"
    with pytest.raises(UnknownNameError) as info:
        build_report(ReportSpec(run_ids=(typo,)), path, PRICING)
    assert ids["mini-load"][:12] in info.value.fix
