"""The answer per workload, and prompt caching priced on both sides, on hand-computed cases.

A real small run against the mock (OpenAI-style automatic cache), then a stored sweep of two workloads:

- `synthetic`: tiny-skills on a CPU box, mock-frontier (Anthropic-shaped: reports 0 cached) and mock-mini
  (its server did not report cached tokens: priced as uncached, and marked "cache not reported").
- `docs`: 40 requests of 1,300 prompt tokens and 16 output tokens each (reference tokens).
  mock-frontier: request 0 writes a 1,200-token document, the 39 others read it:
      fresh 52,000 − 46,800 − 1,200 = 4,000; bill 4,000 × 3.00 + 46,800 × 0.30 + 1,200 × 3.75 + 640 × 15.00
      = 12,000 + 14,040 + 4,500 + 9,600 = 40,140 per 1M → $0.04014 → ÷ 640 output tokens = $62.71875 per 1M;
      uncached 52,000 × 3.00 + 9,600 = 165,600 → $258.75 per 1M; cache hit 46,800 / 52,000 = 90%.
  mock-mini: request 0 reports 0 cached, the 39 others 1,280 (10 steps of 128):
      fresh 52,000 − 49,920 = 2,080; 2,080 × 0.15 + 49,920 × 0.075 + 640 × 0.60 = 312 + 3,744 + 384 = 4,440
      → $6.9375 per 1M output; uncached 7,800 + 384 = 8,184 → $12.7875; cache hit 49,920 / 52,000 = 96%.
  tiny-skills: slow (0.8 s to the first token, 50 ms a token, one at a time): dearer than mock-mini there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import (
    FRONTIER,
    LOCAL,
    MINI,
    add_accuracy_run,
    add_load_run,
    items,
    oracle,
    records,
)

from bench.cost import break_even
from bench.documents import SweepPoint
from bench.loadgen.spec import LoadSpec
from bench.registry import Registry, load_registry
from bench.report.build import Report, ReportSpec, build_report
from bench.report.html import render_html
from bench.report.jsonout import pricing_from_registry, report_json
from bench.report.markdown import render_markdown
from bench.report.value import show
from bench.runs import run_load
from bench.settings import Settings
from bench.store import Store

CONCURRENT_8 = {"kind": "concurrent", "concurrency": 8}
ONE = {"kind": "concurrent", "concurrency": 1}
BASE = {"arithmetic": 0.6, "comparison": 0.7, "lookup": 0.95, "string": 0.65}
OVERLAY = """\
schema: llmbench.models/1
mock:
  cached-mini:
    provider: openai
    model: cm
    latency: {ttft_ms: 5, itl_ms: 1}
    prices: {input_per_1m: 0.15, output_per_1m: 0.60, cached_input_per_1m: 0.075, as_of: 2026-11-23,
             source: test}
"""


@pytest.fixture
def models_overlay() -> str:
    return OVERLAY


def test_a_real_mock_run_priced_with_cache_reads_differs_from_uncached_by_hand(
    tmp_path: Path, registry: Registry, settings: Settings
) -> None:
    """Four requests of one shared 1,100-token prefix plus 4 tokens of their own (1,104 tokens), 3 output
    tokens each, against the mock's OpenAI-style cache: the first is written, the three others hit 1,024
    (8 whole steps of 128): 3,072 cached of 4,416 (16/23). Bill: 1,344 × 0.15 + 3,072 × 0.075 + 12 × 0.60
    = 201.6 + 230.4 + 7.2 = 439.2 per 1M ($36.6 per 1M output tokens); uncached 4,416 × 0.15 + 7.2 = 669.6
    ($55.8): caching saved 3,072 × (0.15 − 0.075) = 230.4 per 1M, $19.2 per 1M output tokens."""
    store = tmp_path / "results.sqlite"
    spec = LoadSpec.from_options(
        target="cached-mini", dataset="prefix:1,1100,4", output_tokens="3", requests=4,
        profile="concurrent", concurrency=[1], store=store,
    )  # fmt: skip
    run_load(spec, settings, registry, handle_sigint=False)
    report = build_report(ReportSpec(), store, pricing_from_registry(registry))
    (row,) = report.rows
    assert row.cache is not None
    assert (row.cache.requests, row.cache.reported, row.cache.prompt_tokens, row.cache.cached_tokens) == (
        4, 4, 4416, 3072)  # fmt: skip
    assert row.cache.usage_hit_rate == pytest.approx(16 / 23)
    assert row.usd_per_1m_output.value == pytest.approx(36.6)
    assert row.usd_per_1m_output_uncached.value == pytest.approx(55.8)
    assert row.usd_per_1m_output_uncached.value - row.usd_per_1m_output.value == pytest.approx(19.2)
    assert row.cache_not_reported is None and report.answers == []


def _point(pid: str, target: dict[str, Any], workload: str) -> SweepPoint:
    kind = target["kind"]
    return SweepPoint(
        point_id=pid, label=f"{target['name']} on {workload}", target=target["name"], kind=kind,
        serve_name=target["name"], variant="base", backend="vllm" if kind == "local" else kind,
        hardware="cpu-2vcpu" if kind == "local" else None, workload=workload,
        workload_kind="synthetic" if workload == "synthetic" else "sessions",
        workload_sha256=None if workload == "synthetic" else "5e" * 32,
    )  # fmt: skip


def _docs(n: int, *, cached: int, first_writes: bool, ttft_s: float, itl_s: float, seed: int) -> list[Any]:
    recs = records(n, ttft_s=ttft_s, itl_s=itl_s, in_tokens=1300, out_tokens=16, concurrency=8, seed=seed)
    out = [dataclasses.replace(r, cached_input_tokens=cached) for r in recs]
    out[0] = dataclasses.replace(
        out[0], cached_input_tokens=0, cache_write_tokens=1200 if first_writes else None
    )
    return out


def two_workload_store(path: Path, *, local_docs: bool = True) -> str:
    """A sweep of two workloads (see the module docstring), tiny-skills on docs unless `local_docs` is
    False; returns its id."""
    with Store.open(path) as store:
        points = [_point(f"p{i}", t, w) for i, (t, w) in enumerate(
            (t, w) for w in ("synthetic", "docs") for t in (LOCAL, FRONTIER, MINI))]  # fmt: skip
        sweep = store.start_sweep({"name": "two"}, points, name="two")
        ids = {p.label: p.point_id for p in points}

        def load(
            tgt: dict[str, Any], recs: list[Any], workload: str, profile: dict[str, Any], **kw: Any
        ) -> None:
            pid = ids[f"{tgt['name']} on {workload}"]
            add_load_run(store, tgt, recs, profile=profile, sweep_id=sweep, point_id=pid, **kw)

        for c, ttft, itl in ((1, 0.05, 0.004), (4, 0.12, 0.008)):
            recs = records(60, ttft_s=ttft, itl_s=itl, concurrency=c, seed=c, bytes_per_token=1)
            load(LOCAL, recs, "synthetic", {"kind": "concurrent", "concurrency": c}, hardware="cpu-2vcpu")
        reported = records(40, ttft_s=0.6, itl_s=0.025, concurrency=8, seed=3)
        zero = [dataclasses.replace(r, cached_input_tokens=0) for r in reported]  # reported: nothing cached
        load(FRONTIER, zero, "synthetic", CONCURRENT_8)
        load(MINI, records(40, ttft_s=0.15, itl_s=0.008, concurrency=8, seed=4), "synthetic", CONCURRENT_8)
        slow = records(40, ttft_s=0.8, itl_s=0.05, in_tokens=1300, out_tokens=16, seed=5, bytes_per_token=1)
        if local_docs:
            load(LOCAL, slow, "docs", ONE, hardware="cpu-2vcpu")
        load(
            FRONTIER,
            _docs(40, cached=1200, first_writes=True, ttft_s=0.6, itl_s=0.025, seed=6),
            "docs",
            CONCURRENT_8,
        )
        load(
            MINI,
            _docs(40, cached=1280, first_writes=False, ttft_s=0.15, itl_s=0.008, seed=7),
            "docs",
            CONCURRENT_8,
        )
        first = {t["name"]: ids[f"{t['name']} on synthetic"] for t in (LOCAL, FRONTIER, MINI)}
        add_accuracy_run(store, LOCAL, items(BASE), sweep_id=sweep, point_id=first["tiny-skills"])
        frontier = {"arithmetic": 0.97, "comparison": 0.95, "lookup": 0.98, "string": 0.9}
        add_accuracy_run(store, FRONTIER, items(frontier), mock_answers=oracle(0.95), sweep_id=sweep,
                         point_id=first["mock-frontier"])  # fmt: skip
        mini = {"arithmetic": 0.55, "comparison": 0.75, "lookup": 0.9, "string": 0.6}
        add_accuracy_run(store, MINI, items(mini), mock_answers=oracle(0.70), sweep_id=sweep,
                         point_id=first["mock-mini"])  # fmt: skip
    return sweep


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Report:
    path = tmp_path_factory.mktemp("two") / "results.sqlite"
    sweep = two_workload_store(path)
    return build_report(ReportSpec(sweep=sweep, max_drop=40), path, pricing_from_registry(load_registry()))


@pytest.mark.slow  # about 1.5 s: scripts/test runs it, scripts/check stays under a minute
def test_each_workload_gets_its_own_answer_with_cache_hit_rates_on_both_sides(two: Report) -> None:
    synthetic, docs = two.answers
    assert (synthetic.workload.name, docs.workload.name) == ("synthetic", "docs")
    assert (docs.workload.kind, docs.workload.sha256) == ("sessions", "5e" * 32)
    assert (synthetic.load_runs, docs.load_runs) == (4, 3)
    assert synthetic.headline.recommended == "tiny-skills@cpu-2vcpu"
    assert docs.headline.recommended == "mock-mini"
    # The leaderboard is the first workload's.
    assert [r.key for r in two.rows] == [r.key for r in synthetic.rows]
    assert two.headline.recommended == "tiny-skills@cpu-2vcpu"

    frontier, mini, local = (docs.row(k) for k in ("mock-frontier", "mock-mini", "tiny-skills@cpu-2vcpu"))
    assert frontier is not None and mini is not None and local is not None
    assert frontier.usd_per_1m_output.value == pytest.approx(62.71875)
    assert frontier.usd_per_1m_output_uncached.value == pytest.approx(258.75)
    assert mini.usd_per_1m_output.value == pytest.approx(6.9375)
    assert mini.usd_per_1m_output_uncached.value == pytest.approx(12.7875)
    assert frontier.cache is not None and mini.cache is not None and local.cache is not None
    assert (frontier.cache.prompt_tokens, frontier.cache.cached_tokens, frontier.cache.written_tokens) == (
        52_000, 46_800, 1_200)  # fmt: skip
    assert frontier.cache.usage_hit_rate == pytest.approx(0.9)
    assert mini.cache.usage_hit_rate == pytest.approx(0.96)
    assert (local.cache.requests, local.cache.reported, local.cache.usage_hit_rate) == (40, 0, None)
    assert local.cache_not_reported is None  # a box is priced per hour: its cost does not depend on it
    # Break-even per workload: the box against each API at that workload's measured price.
    tps = local.output_tok_s.value
    assert tps is not None
    evens = {b.api: b for b in docs.break_evens}
    assert set(evens) == {"mock-frontier", "mock-mini"}
    by_hand = break_even(0.0832, tps, 6.9375)
    assert evens["mock-mini"].result.utilization == pytest.approx(by_hand.utilization)
    assert evens["mock-mini"].result.volume is None and by_hand.utilization > 1  # the box is dearer there
    assert evens["mock-frontier"].api_usd_per_1m_output == pytest.approx(62.71875)


def test_one_line_says_where_the_answer_changes_and_why(two: Report) -> None:
    docs = two.answers[1]
    mini, local = docs.row("mock-mini"), docs.row("tiny-skills@cpu-2vcpu")
    assert mini is not None and local is not None
    box = show(local.usd_per_1m_output, "usd")
    expected = (
        "On docs the answer changes from tiny-skills@cpu-2vcpu to mock-mini because mock-mini costs $6.94 "
        f"per 1M output tokens there against tiny-skills@cpu-2vcpu's {box}, with 96.0% of its prompt tokens "
        "billed at the cache-read price."
    )
    data = report_json(two)
    assert data["answer_change"] == expected
    assert [a["headline"]["recommended"] for a in data["by_workload"]] == [
        "tiny-skills@cpu-2vcpu",
        "mock-mini",
    ]
    assert data["by_workload"][1]["leaderboard"][0]["cache"]["usage_hit_rate"] == pytest.approx(0.96)
    md = render_markdown(two)
    assert f"**Across workloads:** {expected}" in md
    assert (
        "### The answer per workload" in md and "#### docs (sessions, sha256 5e5e5e5e5e5e; 3 load runs)" in md
    )
    pick = "Recommendation: mock-mini, $6.94 per 1M output tokens at its operating point"
    assert f"{pick} (prompt-cache hit 96.0%)" in md
    assert "| mock-frontier | $62.7 | $259 | " in md
    assert "90.0% (46,800 of 52,000 prompt tokens), 1,200 written" in md


@pytest.mark.slow  # about 1.3 s: scripts/test runs it, scripts/check stays under a minute
def test_an_option_not_measured_on_a_workload_changes_the_answer_there(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    sweep = two_workload_store(path, local_docs=False)
    report = build_report(ReportSpec(sweep=sweep, max_drop=40), path, pricing_from_registry(load_registry()))
    docs = report.answers[1]
    assert docs.measured == ["mock-mini", "mock-frontier"]
    assert docs.headline.recommended == "mock-mini"
    assert report_json(report)["answer_change"] == (
        "On docs the answer changes from tiny-skills@cpu-2vcpu to mock-mini because tiny-skills@cpu-2vcpu "
        "was not measured on docs (only mock-mini, mock-frontier were)."
    )
    local = docs.row("tiny-skills")  # its accuracy run alone (that run names no hardware here)
    assert local is not None and local.cache is None and not local.option.load_runs
    md = render_markdown(report)
    assert "| tiny-skills | n/a: " in md and "| not measured on docs |" in md
    # The same workloads and one answer: the line says it holds.
    same = dataclasses.replace(docs, workload=dataclasses.replace(docs.workload, name="docs-again"))
    from bench.report.workloads import answer_change

    assert answer_change([docs, same]) == (
        "The answer holds across the workloads: mock-mini on each of docs, docs-again."
    )


def test_a_run_whose_server_did_not_report_caching_says_so_wherever_its_cost_is_shown(two: Report) -> None:
    mini = two.row("mock-mini")
    assert mini is not None and mini.cache is not None
    assert (mini.cache.requests, mini.cache.reported, mini.cache.not_reported) == (40, 0, 40)
    assert mini.cache_not_reported == "cache not reported"
    # Priced as if nothing were cached: 40 × (128 × 0.15 + 64 × 0.60) = 2,304 per 1M → ÷ 2,560 = $0.90.
    assert mini.usd_per_1m_output.value == pytest.approx(0.9)
    assert mini.usd_per_1m_output.note == "cache not reported"
    assert [f.kind for f in mini.option.flags] == ["cache_not_reported"]
    md = render_markdown(two)
    board = md.split("### Leaderboard")[1].split("Cost columns:")[0]
    line = next(ln for ln in board.splitlines() if ln.startswith("| mock-mini |"))
    assert line.count("(cache not reported)") == 2  # $/1M out and $/1k req
    assert "**Runner-up:** **mock-mini**: $0.900 per 1M output tokens (cache not reported), " in md
    assert "| mock-mini | $0.900 (cache not reported) | $0.900 | " in md  # the synthetic workload's table
    assert "against mock-mini ($0.900 per 1M out, cache not reported): " in md  # its break-even
    assert "| tiny-skills@cpu-2vcpu | mock-mini | $0.900 (cache not reported) | " in md
    assert "- **mock-mini** — cache_not_reported: cache not reported: those requests are billed" in md
    html = render_html(two)
    assert "$0.900 (cache not reported)" in html


def test_the_report_names_each_price_source_and_date(two: Report) -> None:
    md = render_markdown(two)
    prices = md.split("### Prices (source, as of)")[1].split("###")[0]
    assert (
        "- **mock-mini**: input $0.150, cache read $0.0750, output $0.600 per 1M tokens — simulated: the "
        "gpt-4o-mini price sheet, for offline cost reports, as of 2026-11-23"
    ) in prices
    assert (
        "- **mock-frontier**: input $3.00, cache read $0.300, cache write $3.75, 1-hour cache write $6.00, "
        "output $15.0 per 1M tokens"
    ) in prices
    assert "- **cpu-2vcpu**: AWS t3.large (Intel Xeon) (2 vCPU): $0.0832 per hour" in prices
    assert "as of 2026-12-01" in prices


@pytest.mark.slow  # about 1.7 s: scripts/test runs it, scripts/check stays under a minute
def test_a_report_of_one_workload_reads_as_before(tmp_path: Path) -> None:
    from report_fixtures import trade_off_store

    store = tmp_path / "results.sqlite"
    trade_off_store(store)
    report = build_report(ReportSpec(max_drop=30), store, pricing_from_registry(load_registry()))
    assert report.answers == []
    md = render_markdown(report)
    assert md.startswith("## llmbench report\n\n**Recommendation:** ")
    assert "per workload" not in md and "Across workloads" not in md
    html = render_html(report)
    assert "workload-answer" not in html and 'id="answer-change"' not in html
    assert json.loads(json.dumps(report_json(report), default=str))["by_workload"] == []


CHROMIUM = os.environ.get("LLMBENCH_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("LLMBENCH_REQUIRE_BROWSER") == "1"


@pytest.mark.slow
def test_the_answer_per_workload_in_headless_chromium(two: Report, tmp_path: Path) -> None:
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMIUM)):
        if REQUIRED:
            pytest.fail(f"LLMBENCH_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: run scripts/setup-browser")
        pytest.skip("needs chromium (scripts/setup-browser)")
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(two), encoding="utf-8")
    errors: list[str] = []
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=args,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=60_000)
            sections = page.locator("section.workload-answer")
            assert sections.count() == 2
            assert sections.nth(1).get_attribute("data-workload") == "docs"
            docs_rows = sections.nth(1).locator("table.by-workload tbody tr")
            assert docs_rows.count() == 3
            assert docs_rows.first.locator("td").first.inner_text() == "mock-mini"
            assert docs_rows.first.locator("td").last.inner_text() == "recommended"
            change = page.locator("#answer-change").inner_text()
            assert change.startswith(
                "Across workloads: On docs the answer changes from tiny-skills@cpu-2vcpu"
            )
            assert "Recommendation (workload synthetic):" in page.locator("#headline").inner_text()
            assert page.locator("#prices tbody tr").count() == 3
            mini = page.locator('#leaderboard tr[data-key="mock-mini"]').inner_text()
            assert "(cache not reported)" in mini
            shot = tmp_path / "workloads.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
        finally:
            context.close()
    assert errors == []


def test_the_adapter_reads_the_load_layers_cache_figures_and_workload() -> None:
    """bench.report.cache.run_cache is the one reader of RunSummary.cache (CacheMeasure) and
    LoadRunProfile.workload (WorkloadDoc); a run stored without them is counted from its stored requests."""
    from types import SimpleNamespace

    from bench.loadgen.documents import WorkloadDoc
    from bench.metrics.workload import CacheMeasure
    from bench.report.cache import RunWorkload, run_cache

    class Counts:  # the stored requests: 10, 8 reporting 1,000 prompt tokens of which 600 cached
        def cache_counts(self, run_id: str) -> tuple[int, int, int, int, int]:
            return 10, 8, 1000, 600, 50

    plain = SimpleNamespace(id="r", load_summary=None, load_profile=SimpleNamespace(workload=None))
    before = run_cache(plain, Counts())  # type: ignore[arg-type]
    assert (before.not_reported, before.usage_hit_rate, before.written_tokens) == (2, 0.6, 50)
    assert before.not_reported_text == "cache not reported for 2 of 10 requests"
    assert before.vllm_hit_rate is None and before.workload is None
    cache = CacheMeasure(requests=12, reported=12, not_reported=0, prompt_tokens=2000, read_tokens=1500,
                         write_tokens=0, hit_rate=0.75, server_queries=1000.0, server_hits=700.0,
                         server_hit_rate=0.7, designed_reuse=0.75)  # fmt: skip
    doc = WorkloadDoc(name="rag", kind="shared_prefix", file="/w.yaml", sha256="ab" * 32, seed=0,
                      paced_by="profile", designed_reuse=0.75)  # fmt: skip
    after = SimpleNamespace(
        id="r", load_summary=SimpleNamespace(cache=cache), load_profile=SimpleNamespace(workload=doc)
    )
    figures = run_cache(after, Counts())  # type: ignore[arg-type]
    assert (figures.usage_hit_rate, figures.vllm_hit_rate, figures.designed_reuse) == (0.75, 0.7, 0.75)
    assert figures.not_reported == 0 and figures.not_reported_text is None
    assert figures.workload == RunWorkload("rag", "shared_prefix", "ab" * 32, 0.75)
    unscraped = dataclasses.replace(cache, server_hit_rate=None, unknown={"server_hit_rate": "not vLLM"})
    after.load_summary = SimpleNamespace(cache=unscraped)
    assert run_cache(after, Counts()).vllm_reason == "not vLLM"  # type: ignore[arg-type]
