"""Figures over repetitions carry a Student-t 95% interval; one repetition has none (n/a, not zero)."""

from __future__ import annotations

import pytest

from bench.sweep.repeats import mean_ci, repeat_figures


def test_mean_and_t_interval_match_hand_computation() -> None:
    got = mean_ci([1.0, 2.0, 3.0])
    # mean 2, s = 1, t(0.975, df=2) = 4.303, half = 4.303 / sqrt(3) = 2.4843
    assert got["mean"] == 2.0 and got["std"] == pytest.approx(1.0)
    assert got["ci95"] == pytest.approx([2.0 - 2.4843, 2.0 + 2.4843], abs=1e-4)
    assert mean_ci([5.0])["ci95"] is None and "one repetition" in mean_ci([5.0])["na"]
    assert mean_ci([])["mean"] is None


def test_repeat_figures_over_load_summaries() -> None:
    summaries = [
        {"output_tokens_per_s": 100.0, "requests_per_s": 2.0, "goodput_requests_per_s": None,
         "ttft_ms": {"p50": 50.0}},
        {"output_tokens_per_s": 110.0, "requests_per_s": 2.2, "goodput_requests_per_s": None,
         "ttft_ms": {"p50": 54.0}},
    ]  # fmt: skip
    got = repeat_figures(summaries)
    assert got["output_tokens_per_s"]["mean"] == 105.0 and got["output_tokens_per_s"]["n"] == 2
    assert got["ttft_p50_ms"]["mean"] == 52.0
    assert got["goodput_requests_per_s"]["n"] == 0  # no SLO: no goodput, and no made-up figure
