"""Honest comparisons on the answer page: no recommendation without a correct answer, dominance and ladder
steps only beyond noise, simulated accuracies marked, upper bounds shown, URL targets named whole, flags
named by option, charts in load order with readable labels."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from report_fixtures import (
    AREAS,
    LOCAL,
    add_accuracy_run,
    add_load_run,
    items,
    records,
    target,
    trade_off_store,
)

from bench.records import ItemRecord
from bench.registry import load_registry
from bench.report.build import ReportSpec, build_report
from bench.report.charts import cost_accuracy, latency_throughput
from bench.report.html import render_html
from bench.report.jsonout import pricing_from_registry, report_json
from bench.report.markdown import render_markdown
from bench.report.value import Value, fmt_usd
from bench.store import Store

PRICING = pricing_from_registry(load_registry())
W8A8 = target("tiny-skills:w8a8", "local")
INT8 = target("tiny-skills:int8", "local")
BASE = {"arithmetic": 0.6, "comparison": 0.7, "lookup": 0.95, "string": 0.65}
CONC4 = {"kind": "concurrent", "concurrency": 4}


@pytest.fixture(scope="module")
def trade_off(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("judgement") / "results.sqlite"
    trade_off_store(path)
    return path


def _flip(scored: list[ItemRecord], right: bool) -> list[ItemRecord]:
    """The same items with the first one scored `not right` turned `right` (one item of difference)."""
    k = next(i for i, it in enumerate(scored) if it.correct is not right)
    flipped = dataclasses.replace(scored[k], correct=right, score=float(right))
    return [*scored[:k], flipped, *scored[k + 1 :]]


def test_an_option_with_no_correct_answer_is_never_recommended(tmp_path: Path) -> None:
    # Before: it was the only option with a load and an accuracy run, so it was recommended, and the
    # headline read "n/a: no correct answers per correct answer".
    path = tmp_path / "r.sqlite"
    with Store.open(path) as db:
        add_load_run(db, LOCAL, records(40, ttft_s=0.05, itl_s=0.004, concurrency=4), profile=CONC4,
                     hardware="cpu-2vcpu")  # fmt: skip
        add_accuracy_run(db, LOCAL, items(dict.fromkeys(AREAS, 0.0)))
    report = build_report(ReportSpec(), path, PRICING)
    assert report.headline.recommended is None
    assert report.headline.reasons["tiny-skills@cpu-2vcpu"] == "no correct answer (0 of 400 items right)"
    md = render_markdown(report)
    assert "**Recommendation:** none" in md and "per correct answer" not in md.split("### Leaderboard")[0]
    assert "answered an item right" in report.headline.summary


@pytest.fixture(scope="module")
def near_ties(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base and w8a8 run at 1,362 against 1,365-like speeds (0.25% apart) and differ by one item; int8 is
    one item ahead of base and much slower (dearer)."""
    path = tmp_path_factory.mktemp("ties") / "results.sqlite"
    base_items = items(BASE)
    with Store.open(path) as db:
        for tgt, itl in ((LOCAL, 0.004), (W8A8, 0.00401), (INT8, 0.008)):
            recs = records(60, ttft_s=0.05, itl_s=itl, concurrency=4, seed=1)
            add_load_run(db, tgt, recs, profile=CONC4, hardware="cpu-2vcpu")
        add_accuracy_run(db, LOCAL, base_items)
        add_accuracy_run(db, W8A8, _flip(base_items, right=False))
        add_accuracy_run(db, INT8, _flip(base_items, right=True))
    return path


@pytest.mark.slow  # about 1.6 s: scripts/test runs it, scripts/check stays under a minute
def test_dominance_needs_a_difference_beyond_noise(near_ties: Path) -> None:
    # Before: "tiny-skills:w8a8@cpu-2vcpu is dominated by tiny-skills@cpu-2vcpu (cheaper and at least as
    # accurate)", on costs 0.25% apart and one item.
    report = build_report(ReportSpec(max_drop=5), near_ties, PRICING)
    ladder = report.downgrade
    assert ladder.dominated == {}
    (tie,) = ladder.within_noise
    assert (tie.key, tie.other) == ("tiny-skills:w8a8@cpu-2vcpu", "tiny-skills@cpu-2vcpu")
    assert "under the 10% noise" in tie.why and "not significant" in tie.why
    md = render_markdown(report)
    assert "is dominated by" not in md
    assert "tiny-skills:w8a8@cpu-2vcpu and tiny-skills@cpu-2vcpu are within noise of each other" in md
    assert "within noise of each other" in render_html(report)
    data = report_json(report)["downgrade"]
    assert data["dominated_by"] == {} and data["within_noise"][0]["other"] == "tiny-skills@cpu-2vcpu"


@pytest.mark.slow  # about 1.3 s: scripts/test runs it, scripts/check stays under a minute
def test_a_ladder_step_on_one_item_says_within_noise(near_ties: Path) -> None:
    # Before: "int8 is ahead of base" on one item, with no word about noise.
    report = build_report(ReportSpec(max_drop=5), near_ties, PRICING)
    assert report.headline.best_accuracy == "tiny-skills:int8@cpu-2vcpu"
    assert "within noise of it: " in report.headline.summary
    assert "tiny-skills@cpu-2vcpu" in report.headline.tied_with_best
    (step,) = report.downgrade.steps
    assert (step.stronger, step.cheaper) == ("tiny-skills:int8@cpu-2vcpu", "tiny-skills@cpu-2vcpu")
    assert step.accuracy_noise is not None and "p = 1" in step.accuracy_noise
    assert step.saving_noise is None  # int8 is about twice as dear: a real saving
    md = render_markdown(report)
    assert "-0.2 [" in md and "n = 400; within noise)" in md


@pytest.mark.slow  # about 1.3 s: scripts/test runs it, scripts/check stays under a minute
def test_real_differences_are_still_claimed(trade_off: Path) -> None:
    report = build_report(ReportSpec(max_drop=30), trade_off, PRICING)
    ladder = report.downgrade
    assert ladder.dominated == {"mock-mini": "tiny-skills:int8@cpu-2vcpu"}
    assert ladder.reasons["mock-mini"].startswith("costs 83% less, accuracy within noise")
    first = ladder.steps[0]
    assert first.saving_noise is None and first.accuracy_noise is None


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_simulated_accuracies_are_marked_on_every_page(trade_off: Path) -> None:
    # Before: the mocks' configured 95% and 70% read as measurements everywhere.
    report = build_report(ReportSpec(max_drop=2), trade_off, PRICING)
    assert report.headline.recommended == "mock-frontier"
    rows = {r["key"]: r for r in report_json(report)["leaderboard"]}
    assert rows["mock-frontier"]["simulated"] is True and rows["mock-mini"]["simulated"] is True
    assert rows["tiny-skills@cpu-2vcpu"]["simulated"] is False
    assert rows["mock-frontier"]["accuracy"]["simulated_by"] == (
        "a mock oracle configured to answer right 95% of the time"
    )
    md = render_markdown(report)
    head = md.split("\n")[2]
    assert head.startswith("**Recommendation:** **mock-frontier**")
    assert "(simulated: a mock oracle configured to answer right 95% of the time, not a measurement)" in head
    frontier_row = next(line for line in md.splitlines() if line.startswith("| mock-frontier |"))
    assert "] simulated |" in frontier_row
    tiny_row = next(line for line in md.splitlines() if line.startswith("| tiny-skills@cpu-2vcpu |"))
    assert "simulated" not in tiny_row
    html = render_html(report)
    board = html.split('id="leaderboard"')[1].split("</table>")[0]
    assert board.count(" simulated (n = 400)") == 2 and 'id="simulated"' in html
    assert "simulated" in html.split('id="headline"')[1].split("</section>")[0]


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_upper_bound_costs_read_as_such_wherever_they_appear(trade_off: Path) -> None:
    report = build_report(ReportSpec(max_drop=30), trade_off, PRICING)
    row = report.row("tiny-skills:int8@cpu-2vcpu")
    assert row is not None and row.usd_per_1m_output.value is not None
    cost = row.usd_per_1m_output.value
    row.usd_per_1m_output = Value(cost, note="upper bound")  # as a search stopped at its ceiling marks it
    shown = "≤" + fmt_usd(cost)
    md = render_markdown(report)
    assert f"**tiny-skills:int8@cpu-2vcpu**: {shown} per 1M output tokens" in md
    assert f"| {shown} |" in md
    html = render_html(report)
    assert shown in html.split('id="leaderboard"')[1]
    assert shown in html.split('id="headline"')[1].split("</section>")[0]
    data = report_json(report)
    got = next(r for r in data["leaderboard"] if r["key"] == row.key)["cost"]["usd_per_1m_output"]
    assert got == {"value": cost, "note": "upper bound"}


def test_a_url_target_is_named_by_its_url_not_split_at_a_colon(tmp_path: Path) -> None:
    # Before: model "http", variant "//10.0.0.5:8000/v1" in the JSON and the HTML.
    path = tmp_path / "r.sqlite"
    url = "http://10.0.0.5:8000/v1"
    with Store.open(path) as db:
        add_load_run(db, target(url, "url"), records(20, ttft_s=0.1, itl_s=0.01), profile=CONC4)
    report = build_report(ReportSpec(), path, PRICING)
    (row,) = report_json(report)["leaderboard"]
    assert (row["model"], row["variant"]) == (url, None)
    board = render_html(report).split('id="leaderboard"')[1].split("</table>")[0]
    assert "//10.0.0.5" not in board.replace(url, "")
    assert f'<td class="">{url}</td><td class="">{url}</td><td class="">-</td>' in board


def test_the_flags_list_names_options(tmp_path: Path) -> None:
    # Before: "- `1a2b3c4d` **cut_off**: …" (a run id, no option).
    path = tmp_path / "r.sqlite"
    with Store.open(path) as db:
        run = add_load_run(db, W8A8, records(40, ttft_s=0.1, itl_s=0.01, cancelled=5), profile=CONC4,
                           hardware="cpu-2vcpu")  # fmt: skip
    report = build_report(ReportSpec(), path, PRICING)
    md = render_markdown(report)
    assert "- **tiny-skills:w8a8@cpu-2vcpu** — cut_off: 5 requests" in md and f"(run `{run[:8]}`)" in md
    flags = render_html(report).split('id="flags"')[1].split("</ul>")[0]
    assert "<b>tiny-skills:w8a8@cpu-2vcpu</b> —" in flags and f"run {run[:8]}" in flags


@pytest.mark.slow  # about 1.6 s: scripts/test runs it, scripts/check stays under a minute
def test_latency_lines_are_drawn_in_load_order(trade_off: Path) -> None:
    # tiny-skills at concurrency 1, 4, 16: c16 saturates below c4's throughput. Before: drawn by throughput
    # (c1, c16, c4), so the line doubled back on itself.
    report = build_report(ReportSpec(), trade_off, PRICING)
    row = report.row("tiny-skills@cpu-2vcpu")
    assert row is not None
    by_load = sorted(row.option.load_runs, key=lambda r: r.load_profile.concurrency or 0)
    expected = [r.load_summary.output_tokens_per_s if r.load_summary else None for r in by_load]
    assert expected != sorted(expected)  # the case that zig-zagged
    fig = latency_throughput(report)
    assert fig is not None
    trace = next(t for t in fig.data if t.name == "tiny-skills@cpu-2vcpu")
    assert list(trace.x) == expected


@pytest.mark.slow  # about 1.2 s: scripts/test runs it, scripts/check stays under a minute
def test_cost_accuracy_labels_are_in_the_legend_not_over_the_points(trade_off: Path) -> None:
    # Before: two traces ("self-hosted", "api") with each key written "top center" of its marker: the base
    # and its int8 variant sit a few pixels apart and their labels overlapped.
    report = build_report(ReportSpec(), trade_off, PRICING)
    fig = cost_accuracy(report)
    assert fig is not None
    points = [t for t in fig.data if t.name != "Pareto frontier"]
    assert sorted(t.name for t in points) == sorted(
        [r.key for r in report.rows if "mock" not in r.key]
        + ["mock-frontier (simulated accuracy)", "mock-mini (simulated accuracy)"]
    )
    assert all("text" not in t.mode for t in points) and all(len(t.x) == 1 for t in points)
    json.dumps(fig.to_plotly_json(), default=str)


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_pages_print_figures_as_stored(trade_off: Path) -> None:
    # Before: 359.65 tok/s printed "36" and 500 req/s "5" in the Markdown and the HTML (the JSON was right).
    report = build_report(ReportSpec(max_drop=30), trade_off, PRICING)
    row = report.row("tiny-skills@cpu-2vcpu")
    assert row is not None
    row.output_tok_s, row.goodput_rps = Value(359.65), Value(500.0)
    row.output_tok_s_ci95 = None
    line = next(x for x in render_markdown(report).splitlines() if x.startswith("| tiny-skills@cpu-2vcpu |"))
    assert "| 360 | 500 |" in line
    board = render_html(report).split('id="leaderboard"')[1].split("</table>")[0]
    assert '<td class="num">360</td><td class="num">500</td>' in board
