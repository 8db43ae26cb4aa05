"""Figures over repetitions carry a Student-t 95% interval; one repetition has none (n/a, not zero)."""

from __future__ import annotations

from pathlib import Path

import pytest
from documents import point

from bench.metrics import RunSummary
from bench.sweep.repeats import mean_ci, repeat_figures


def summary(tok_s: float, ttft_p50: float, rps: float | None = None) -> RunSummary:
    return RunSummary.from_json(
        {"output_tokens_per_s": tok_s, "requests_per_s": rps, "ttft_ms": {"count": 1, "p50": ttft_p50}}
    )


def test_mean_and_t_interval_match_hand_computation() -> None:
    got = mean_ci([1.0, 2.0, 3.0])
    # mean 2, s = 1, t(0.975, df=2) = 4.303, half = 4.303 / sqrt(3) = 2.4843
    assert got.mean == 2.0 and got.std == pytest.approx(1.0)
    assert got.ci95 == pytest.approx((2.0 - 2.4843, 2.0 + 2.4843), abs=1e-4)
    assert mean_ci([5.0]).ci95 is None and "one repetition" in (mean_ci([5.0]).na or "")
    assert mean_ci([]).mean is None


def test_repeat_figures_over_load_summaries() -> None:
    got = repeat_figures([summary(100.0, 50.0, 2.0), summary(110.0, 54.0, 2.2)])
    assert got["output_tokens_per_s"].mean == 105.0 and got["output_tokens_per_s"].n == 2
    assert got["requests_per_s"].mean == pytest.approx(2.1)
    assert got["ttft_p50_ms"].mean == 52.0
    assert got["goodput_requests_per_s"].n == 0  # no SLO: no goodput, and no made-up figure


def test_the_sweeps_report_shows_the_figures_over_repetitions(tmp_path: Path) -> None:
    from bench.report.build import ReportSpec, build_report
    from bench.report.options import Pricing
    from bench.report.render import RENDERERS
    from bench.store import Store

    twice = {k: f.to_json() for k, f in repeat_figures([summary(100.0, 50.0), summary(110.0, 54.0)]).items()}
    once = {k: f.to_json() for k, f in repeat_figures([summary(90.0, 40.0)]).items()}
    path = tmp_path / "r.sqlite"
    with Store.open(path) as store:
        sweep_id = store.start_sweep(
            {"schema": "llmbench.sweep/1"},
            [point("a").model_copy(update={"label": "tiny-skills:w8a8"}), point("b", "mock-mini")],
        )
        store.set_point(sweep_id, "a", "complete", detail={"repeats": [{"load": 0, "run": "c=4", **twice}]})
        store.set_point(sweep_id, "b", "complete", detail={"repeats": [{"load": 0, "run": "c=4", **once}]})
    report = build_report(ReportSpec(sweep=sweep_id), path, Pricing())
    assert [(r.point, r.run, r.n) for r in report.repeats] == [("tiny-skills:w8a8", "c=4", 2)]  # n=1: no CI
    md = RENDERERS["md"](report)
    # mean 105, s = 7.071, t(df=1) = 12.706: half = 12.706 * 7.071 / sqrt(2) = 63.53 → [41.5, 169] (3 figures)
    assert "| tiny-skills:w8a8 | c=4 | 2 | 105 [41.5, 169] | 52.0 [26.6, 77.4] | n/a |" in md
    assert 'id="repeats"' in RENDERERS["html"](report) and "105 [41.5, 169]" in RENDERERS["html"](report)
    assert RENDERERS["json"](report).count('"ttft_p50_ms"') == 1
