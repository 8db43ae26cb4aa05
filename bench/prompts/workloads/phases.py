"""Phases: a request rate that changes over time (steps, ramps, bursts; a day compressed into minutes),
with Poisson or bursty gamma arrivals (bench.prompts.workloads.arrivals), replayed open-loop.

    schema: llmbench.workload/1
    kind: phases
    arrival: {kind: gamma, burstiness: 2}
    phases:
      - {duration_s: 60, rate: 2}                 # steady
      - {duration_s: 30, rate: 2, rate_to: 10}    # ramp up
      - {duration_s: 5, rate: 40}                 # burst
    repeat: 3                                     # the whole profile, three times
    input_tokens: uniform:64:512
    output_tokens: 128
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field

from bench.prompts.lengths import Length, LengthDist
from bench.prompts.workloads.arrivals import ArrivalProcess, Phase, arrival_times
from bench.prompts.workloads.base import OpenLoopRequests, WorkloadBase
from bench.prompts.workloads.text import TextSource
from bench.records import GenRequest


class PhasesWorkload(WorkloadBase):
    """Open-loop arrivals under a rate profile; each request a fresh prompt of drawn lengths."""

    kind: Literal["phases"] = "phases"
    phases: list[Phase] = Field(min_length=1, description="the rate profile, in order")
    repeat: int = Field(1, ge=1, description="play the whole profile this many times")
    arrival: ArrivalProcess = ArrivalProcess()
    input_tokens: Length = Field(LengthDist(a=128), description="prompt length (reference tokens)")
    output_tokens: Length = Field(LengthDist(a=128), description="max_tokens per request (tokens)")

    def profile(self) -> list[Phase]:
        """The phases with their repeats, in order."""
        return self.phases * self.repeat

    @property
    def duration_s(self) -> float:
        """Length of the whole profile (s)."""
        return sum(p.duration_s for p in self.profile())

    def build(self) -> OpenLoopRequests:
        """The open-loop schedule; request i has its own seeded lengths and a text of its own."""
        offsets = arrival_times(self.profile(), self.arrival, self.seed)
        texts = TextSource(self.seed)

        def make(i: int) -> GenRequest:
            rng = random.Random(f"{self.seed}:request:{i}")
            text = texts.text(f"request {i}", self.input_tokens.sample(rng))
            max_tokens = self.output_tokens.sample(rng)
            if self.api == "completions":
                return GenRequest(i, prompt=text, max_tokens=max_tokens)
            return GenRequest(i, messages=[{"role": "user", "content": text}], max_tokens=max_tokens)

        return OpenLoopRequests(offsets, make, reuse_share=0.0)
