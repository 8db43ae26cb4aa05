"""The HTML report in a real headless Chromium (Debian's chromium, driven by playwright): the table and every
chart are in the DOM, a screenshot is taken, no console error occurs and nothing is fetched but the file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from report_fixtures import trade_off_store

from bench.records import ItemRecord
from bench.recovery.report import ModelFacts, SpeedRuns, SuiteRuns, recovery_document
from bench.registry import load_registry
from bench.report.build import ReportSpec, build_report
from bench.report.html import render_html
from bench.report.jsonout import pricing_from_registry
from bench.store import Store

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("LLMBENCH_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("LLMBENCH_REQUIRE_BROWSER") == "1"  # read at import: the tests clear LLMBENCH_*
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


def recovery_body() -> dict[str, object]:
    """A recovery document as `bench recovery` writes it: int8 keeps 46 of 50 arithmetic items, all lookup."""

    def scored(area: str, right: int, n: int = 50) -> list[ItemRecord]:
        return [
            ItemRecord(
                item_id=f"{area}{i}", status="ok", area=area, correct=i < right, score=float(i < right)
            )
            for i in range(n)
        ]

    base = scored("arithmetic", 50) + scored("lookup", 50)
    var = scored("arithmetic", 46) + scored("lookup", 50)
    return recovery_document(
        ModelFacts("tiny-skills", "tiny-skills", "vllm", weights_bytes=1000),
        ModelFacts("tiny-skills:int8", "tiny-skills-int8", "hf", "bnb-int8", weights_bytes=300),
        {"tiny-skills": SuiteRuns("A", base, "B", var)},
        SpeedRuns(skipped="--no-speed"),
        threshold=0.95,
    ).to_json()


def _chromium() -> str:
    if Path(CHROMIUM).exists() and shutil.which(CHROMIUM):
        return CHROMIUM
    if REQUIRED:
        pytest.fail(f"LLMBENCH_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: run scripts/setup-browser")
    pytest.skip("needs chromium (scripts/setup-browser)")


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    store = folder / "results.sqlite"
    trade_off_store(store)
    with Store.open(store) as db:
        db.add_document("llmbench.recovery/1", recovery_body(), subject="tiny-skills:int8")
    report = build_report(ReportSpec(max_drop=30), store, pricing_from_registry(load_registry()))
    path = folder / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def test_html_report_in_headless_chromium(page_file: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright
    from plotly.offline import get_plotlyjs

    executable = _chromium()
    html = page_file.read_text(encoding="utf-8")
    bundle = get_plotlyjs()
    assert bundle in html  # plotly.js is inlined ...
    page_alone = html.replace(bundle, "")
    assert (
        "<script src=" not in page_alone and "http" not in page_alone.split("<body>")[0]
    )  # ... nothing linked
    errors: list[str] = []
    fetched: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=executable, headless=True, args=ARGS,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: fetched.append(r.url))
            page.goto(page_file.as_uri())
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 6", timeout=60_000
            )
            rows = page.locator("#leaderboard tbody tr")
            assert rows.count() == 4
            assert page.locator("tr.recommended td").first.inner_text() == "tiny-skills:int8@cpu-2vcpu"
            charts = page.eval_on_selector_all(".js-plotly-plot", "els => els.map(e => e.id)")
            expected = ("latency", "distributions", "cost-accuracy", "areas", "break-even", "recovery")
            assert set(charts) == {f"chart-{c}" for c in expected}
            # every chart drew its traces (plotly's SVG groups), not an empty frame
            traces = page.eval_on_selector_all(".js-plotly-plot", "els => els.map(e => e.data.length)")
            assert all(n >= 1 for n in traces)
            assert "Recommendation:" in page.locator("#headline").inner_text()
            assert page.locator("#provenance tbody tr").count() == 11
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
        finally:
            context.close()
    assert errors == []
    assert fetched == [page_file.as_uri()]


def test_missing_recovery_shows_why(tmp_path: Path) -> None:
    store = tmp_path / "results.sqlite"
    trade_off_store(store)
    report = build_report(ReportSpec(), store, pricing_from_registry(load_registry()))
    html = render_html(report)
    assert 'id="chart-recovery">n/a: no recovery report stored' in html
