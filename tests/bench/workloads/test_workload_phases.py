"""Phases: arrival times under steps and ramps, exact for even arrivals, and gamma burstiness."""

from __future__ import annotations

import itertools
import statistics

import pytest
from pydantic import ValidationError

from bench.prompts.lengths import LengthDist
from bench.prompts.workloads import ArrivalProcess, Phase, PhasesWorkload, arrival_times
from bench.records import reference_tokens

STEP = [Phase(duration_s=5, rate=2), Phase(duration_s=5, rate=10)]


def halves(times: list[float]) -> tuple[int, int]:
    return sum(t < 5 for t in times), sum(5 <= t < 10 for t in times)


def test_step_with_even_arrivals_is_exact() -> None:
    """2/s for 5 s then 10/s for 5 s: arrivals at operational times 0, 1, …, 59 → 10 then 50."""
    times = arrival_times(STEP, ArrivalProcess(kind="constant"), seed=0)
    assert halves(times) == (10, 50)
    assert times[:3] == [0.0, 0.5, 1.0] and times[10] == 5.0 and times[11] == pytest.approx(5.1)


def test_step_with_poisson_arrivals_is_near_and_deterministic() -> None:
    times = arrival_times(STEP, ArrivalProcess(), seed=7)
    first, second = halves(times)
    assert 4 <= first <= 16 and 36 <= second <= 64  # ±3σ around 10 and 50
    assert times == arrival_times(STEP, ArrivalProcess(), seed=7)
    assert times != arrival_times(STEP, ArrivalProcess(), seed=8)


def test_ramp_by_hand() -> None:
    """0 → 10/s over 10 s: Λ(t) = t²/2, so arrival s (s = 0, 1, …, 49) is at t = √(2s); 13 before 5 s
    (s < 12.5) and 37 after."""
    times = arrival_times([Phase(duration_s=10, rate=0, rate_to=10)], ArrivalProcess(kind="constant"), 0)
    assert len(times) == 50 and halves(times) == (13, 37)
    assert times[8] == pytest.approx(4.0) and times[49] == pytest.approx(98**0.5)


def test_gamma_burstiness_is_the_gaps_coefficient_of_variation() -> None:
    times = arrival_times([Phase(duration_s=400, rate=50)], ArrivalProcess(kind="gamma", burstiness=2), 1)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.fmean(gaps) == pytest.approx(1 / 50, rel=0.1)
    assert statistics.pstdev(gaps) / statistics.fmean(gaps) == pytest.approx(2.0, rel=0.1)
    with pytest.raises(ValidationError, match="burstiness applies to gamma"):
        ArrivalProcess(kind="poisson", burstiness=2)


def test_workload_builds_an_open_loop_schedule() -> None:
    workload = PhasesWorkload(
        phases=STEP, repeat=2, arrival=ArrivalProcess(kind="constant"), input_tokens=LengthDist(a=40),
        output_tokens=LengthDist(a=9),
    )  # fmt: skip
    built = workload.build()
    assert workload.duration_s == 20 and len(built) == 120
    assert built.offsets_s[60] == 10.0  # the second round starts at 10 s
    offset, request = built[5]
    assert offset == built.offsets_s[5] == 2.5
    assert request.request_id == 5 and request.max_tokens == 9 and request.messages is not None
    assert reference_tokens(len(str(request.messages[0]["content"]).encode())) == 40
