"""The report's levers section on a store like the offline demo's: a self-hosted tiny model that stored its
answers' logprobs and ran two prompt versions, and a strong mock API with prompt caching. The cascade on the
tiny model's confidence, the exact cache, the prompt version and the provider's prompt caching are priced;
what the store cannot price says why; the HTML section renders in headless Chromium."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from report_fixtures import (
    FRONTIER,
    LOCAL,
    SUITE,
    SUITE_SHA,
    add_load_run,
    items,
    oracle,
    records,
)

from bench.accuracy.summary import summarize as summarize_items
from bench.prompts.templates import TemplateRef
from bench.records import ItemRecord
from bench.registry import load_registry
from bench.report.build import ReportSpec, build_report
from bench.report.html import render_html
from bench.report.jsonout import pricing_from_registry
from bench.report.markdown import render_markdown
from bench.store import Store
from bench.whatif.levers import levers, prompt_lever
from bench.whatif.route import RouteSpec, analyse_route
from bench.whatif.signals import LogprobSignal
from bench.whatif.source import TokenPrice, load_route_data

LONG = TemplateRef(name="support", version="1", sha256="1" * 64)
SHORT = TemplateRef(name="support", version="2", sha256="2" * 64)
CHROMIUM = os.environ.get("LLMBENCH_CHROMIUM", "/usr/bin/chromium")


def _confident(scored: list[ItemRecord], *, input_bytes: int) -> list[ItemRecord]:
    """The items with a logprob summary (right: p10 −0.05; wrong: −2.0) and the prompt's size."""
    out = []
    for item in scored:
        v = -0.05 if item.correct else -2.0
        lp = {"n": 3, "min": v, "p05": v, "p10": v, "p25": v, "p50": v, "mean": v}
        extra = {**item.extra, "logprobs": lp, "input_bytes": input_bytes}
        out.append(dataclasses.replace(item, extra=extra, input_tokens=input_bytes))
    return out


def _accuracy_run(
    store: Store, tgt: dict[str, object], scored: list[ItemRecord], prompt: TemplateRef | None, **prov: object
) -> str:
    profile = {"target": tgt["name"], "suite": SUITE, "suite_sha256": SUITE_SHA, "templates": {"item": "t"},
               "items": len(scored), "prompt": None if prompt is None else prompt.to_json()}  # fmt: skip
    run_id = store.start_run("accuracy", tgt, profile, {"llmbench": {"version": "0.1.0"}, **prov})
    store.add_items(run_id, scored)
    summary = summarize_items(scored, suite="tiny-skills", target=str(tgt["name"]), run_id=run_id)
    store.finish_run(run_id, "complete", summary)
    return run_id


def levers_store(path: Path) -> dict[str, str]:
    """tiny-skills (self-hosted, cpu-2vcpu): load runs, an accuracy run through the long prompt (v1, 160
    prompt bytes = 40 reference tokens) and a newer one through the short prompt (v2, 80 bytes = 20), both
    with logprobs; mock-frontier (the strong API): a load run with 32 cached prompt tokens per request."""
    ids: dict[str, str] = {}
    base = {"arithmetic": 0.6, "comparison": 0.7, "lookup": 0.95, "string": 0.65}
    with Store.open(path) as store:
        for c, ttft, itl in ((1, 0.05, 0.004), (4, 0.12, 0.008)):
            recs = records(60, ttft_s=ttft, itl_s=itl, concurrency=c, seed=c, bytes_per_token=1)
            profile = {"kind": "concurrent", "concurrency": c}
            ids[f"local-c{c}"] = add_load_run(store, LOCAL, recs, profile=profile, hardware="cpu-2vcpu")
        ids["frontier-load"] = add_load_run(
            store, FRONTIER, records(40, ttft_s=0.6, itl_s=0.025, concurrency=8, cached=32, seed=3),
            profile={"kind": "concurrent", "concurrency": 8},
        )  # fmt: skip
        long = _confident(items({**base, "arithmetic": 0.8}), input_bytes=160)
        ids["long"] = _accuracy_run(store, LOCAL, long, LONG)
        ids["short"] = _accuracy_run(store, LOCAL, _confident(items(base), input_bytes=80), SHORT)
        strong = items({"arithmetic": 0.97, "comparison": 0.95, "lookup": 0.98, "string": 0.9}, seed=1)
        ids["frontier-acc"] = _accuracy_run(store, FRONTIER, strong, None, mock_answers=oracle(0.95))
    return ids


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("levers") / "results.sqlite"
    return path, levers_store(path)


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_the_levers_section_prices_each_lever(built: tuple[Path, dict[str, str]]) -> None:
    path, ids = built
    pricing = pricing_from_registry(load_registry())
    report = build_report(ReportSpec(max_drop=30), path, pricing)
    section = report.levers
    assert section is not None and report.headline.recommended == "tiny-skills@cpu-2vcpu"
    assert section.subject == "tiny-skills@cpu-2vcpu (recommended) with mock-frontier"
    names = [lv.name for lv in section.levers]
    cascade = next(lv for lv in section.levers if lv.name.startswith("cascade:logprob(p10)"))
    # The section's cascade is whatif's own, on the same runs and prices (the report adds no formula).
    row = report.row("tiny-skills@cpu-2vcpu")
    assert row is not None and row.usd_per_1m_total is not None
    prices = {ids["short"]: TokenPrice(row.usd_per_1m_total, row.usd_per_1m_total, unit="reference"),
              ids["frontier-acc"]: TokenPrice(3.0, 15.0)}  # fmt: skip
    data = load_route_data(path, [ids["short"], ids["frontier-acc"]], prices=prices)
    direct = analyse_route(data, RouteSpec(signals=(LogprobSignal(),), max_drop_points=30))
    (want,) = levers(route=direct)
    assert (cascade.saved_share, cascade.accuracy_points, cascade.items) == (
        want.saved_share,
        want.accuracy_points,
        want.items,
    )
    assert cascade.saved_share is not None and cascade.saved_share > 0.5  # the strong model on few items
    assert section.favoured == cascade
    # The long prompt against the report's short one: per item (40 + 3) against (20 + 3) reference tokens
    # at one price: saves 1 − 43/23 = −20/23 (it costs 87% more); accuracy is the paired change.
    long = next(lv for lv in section.levers if lv.kind == "prompt")
    assert long.name == f"prompt {LONG.label} instead of {SHORT.label} (tiny-skills@cpu-2vcpu)"
    assert long.saved_share == pytest.approx(-20 / 23)
    opts = {o.run_id: o for o in load_route_data(path, [ids["short"], ids["long"]]).options}
    paired = prompt_lever(opts[ids["short"]], opts[ids["long"]])  # unpriced: the same paired change
    assert paired is not None and paired.saved_share is None
    assert (long.accuracy_points, long.accuracy_ci95_points, long.mcnemar_p, long.items) == (
        paired.accuracy_points,
        paired.accuracy_ci95_points,
        paired.mcnemar_p,
        400,
    )
    versions = [(v.version, v.base, v.input_tokens) for v in section.prompt_versions]
    assert versions == [(SHORT.label, True, 80.0), (LONG.label, False, 160.0)]
    # The provider's caching on mock-frontier: 32 of 128 prompt tokens read from the cache, 64 output.
    # Billed 96·3 + 32·0.30 + 64·15 = 1257.6 per 1M against 128·3 + 64·15 = 1344: saves 1 − 1257.6/1344.
    provider = next(lv for lv in section.levers if lv.kind == "provider-cache")
    assert provider.saved_share == pytest.approx(1 - 1257.6 / 1344)
    assert provider.accuracy_ci95_points is None and "mock-frontier" in provider.name
    assert any(n.startswith("exact cache (tiny-skills@cpu-2vcpu") for n in names)
    missing = {n.lever.split(" (")[0]: n.why for n in section.not_measured}
    assert (
        "embedding model" in missing["semantic cache"]
        and "llmbench whatif cache --run" in missing["semantic cache"]
    )
    assert "paid by the hour" in missing["provider prompt caching"]
    md = render_markdown(report)
    assert "### Levers (what each would save, and cost in accuracy)" in md
    assert f"**The measurements favour {cascade.name}" in md and "Not measured:" in md


def test_a_store_without_what_levers_need_says_why(tmp_path: Path) -> None:
    """One option, one prompt version, no load run: nothing to route to, nothing to replay."""
    path = tmp_path / "results.sqlite"
    with Store.open(path) as store:
        _accuracy_run(store, FRONTIER, items({"arithmetic": 0.9}), None)
    report = build_report(ReportSpec(), path, pricing_from_registry(load_registry()))
    assert report.levers is not None and report.levers.levers == [] and report.levers.favoured is None
    why = {n.lever: n.why for n in report.levers.not_measured}
    assert why["routing / cascade"] == "no other option has an accuracy run on the same suite"
    assert why["exact cache (mock-frontier)"].startswith("no load run to replay")
    assert "each option ran one prompt version" in why["prompt versions"]
    assert "No lever measured here saves within the max drop" in render_markdown(report)


def _chromium() -> str:
    if Path(CHROMIUM).exists() and shutil.which(CHROMIUM):
        return CHROMIUM
    if os.environ.get("LLMBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"LLMBENCH_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: run scripts/setup-browser")
    pytest.skip("needs chromium (scripts/setup-browser)")


@pytest.mark.slow
def test_the_levers_section_in_headless_chromium(built: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    path, _ = built
    report = build_report(ReportSpec(max_drop=30), path, pricing_from_registry(load_registry()))
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(report), encoding="utf-8")
    errors: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=executable, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri())
            section = page.locator("#levers")
            section.scroll_into_view_if_needed()
            assert page.locator("#levers-table tbody tr").count() == len(report.levers.levers)  # type: ignore[union-attr]
            assert (
                page.locator("#levers-table tr.favoured td").nth(1).inner_text().startswith("cascade:logprob")
            )
            assert page.locator("#prompt-versions tbody tr").count() == 2
            assert (
                "The measurements favour cascade:logprob(p10)"
                in page.locator("#levers-favoured").inner_text()
            )
            not_measured = page.locator("#levers-not-measured").inner_text()
            assert "semantic cache" in not_measured and "not measured:" in not_measured
            shot = tmp_path / "levers.png"
            section.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
        finally:
            context.close()
    assert errors == []
