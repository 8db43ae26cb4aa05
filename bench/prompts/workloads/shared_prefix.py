"""Shared-prefix workloads (RAG, agents): a pool of documents or system prompts, each request one of them
plus its own question.

Prefix k of the pool is chosen with probability p_k: uniform (1/N) or Zipf (∝ 1/(k+1)^s). The prefix is
the system message (chat) or the start of the prompt (completions), so every provider's cache can reuse
it; Anthropic gets a cache breakpoint on it when `cache_breakpoints` is on.

**Designed reuse share**: the expected share of prompt tokens that repeat an earlier request's prefix over
the first n requests. Request i repeats an earlier prefix with probability Σ_k p_k (1 − (1 − p_k)^i); summed
over i < n that is n − D, where D = Σ_k (1 − (1 − p_k)^n) is the expected number of distinct prefixes drawn.
With P prefix tokens and questions of mean q tokens:

    designed reuse share = P (n − D) / (n (P + q))

(exact when question lengths are fixed or uniform; for a normal distribution q is its mean before
clamping). As n grows it tends to P / (P + q).
"""

from __future__ import annotations

import itertools
import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bench.prompts.lengths import Length, LengthDist
from bench.prompts.workloads.base import Api, RequestSequence, WorkloadBase
from bench.prompts.workloads.text import TextSource
from bench.records import GenRequest


class PrefixPool(BaseModel):
    """A pool of shared prefixes (documents, system prompts) and how often each is chosen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1, description="distinct prefixes in the pool")
    tokens: int = Field(ge=1, description="length of each prefix (reference tokens)")
    popularity: Literal["uniform", "zipf"] = Field("uniform", description="how a prefix is chosen")
    zipf_s: float = Field(1.0, gt=0, description="Zipf exponent s: prefix k is chosen ∝ 1/(k+1)^s")

    def probabilities(self) -> list[float]:
        """p_k, the chance that a request uses prefix k (k = 0 is the most popular)."""
        if self.popularity == "uniform":
            return [1.0 / self.count] * self.count
        weights = [1.0 / (k + 1) ** self.zipf_s for k in range(self.count)]
        total = sum(weights)
        return [w / total for w in weights]

    def expected_distinct(self, n: int) -> float:
        """D: the expected number of distinct prefixes among `n` independent draws."""
        return sum(1.0 - (1.0 - p) ** n for p in self.probabilities())

    def chooser(self) -> PrefixChooser:
        """Draws prefix indices by popularity."""
        return PrefixChooser(self.probabilities())

    def text(self, texts: TextSource, k: int) -> str:
        """The text of prefix k: exactly `tokens` reference tokens."""
        return texts.text(f"prefix {k}", self.tokens)


class PrefixChooser:
    """Draws prefix indices by their probabilities."""

    def __init__(self, probabilities: list[float]) -> None:
        self._indices = list(range(len(probabilities)))
        self._cum = list(itertools.accumulate(probabilities))

    def draw(self, rng: random.Random) -> int:
        """One prefix index, drawn with `rng`."""
        return rng.choices(self._indices, cum_weights=self._cum)[0]


def designed_reuse_share(pool: PrefixPool, question: LengthDist, n: int) -> float:
    """Expected share of the prompt tokens of the first `n` requests that repeat an earlier prefix."""
    if n <= 0:
        return 0.0
    repeats = n - pool.expected_distinct(n)
    return pool.tokens * repeats / (n * (pool.tokens + question.mean))


def prefixed_request(
    request_id: int, prefix: str, question: str, max_tokens: int, api: Api, *, mark: bool
) -> GenRequest:
    """A request of `prefix` then `question`: the system message and the user's (chat), or one prompt."""
    if api == "completions":
        return GenRequest(request_id, prompt=prefix + question, max_tokens=max_tokens)
    messages = [{"role": "system", "content": prefix}, {"role": "user", "content": question}]
    return GenRequest(
        request_id, messages=messages, max_tokens=max_tokens, cache_breakpoints=(0,) if mark else ()
    )


class SharedPrefixWorkload(WorkloadBase):
    """Requests that each carry one prefix of a shared pool plus their own question."""

    kind: Literal["shared_prefix"] = "shared_prefix"
    prefixes: PrefixPool
    question_tokens: Length = Field(LengthDist(a=32), description="each request's own question (tokens)")
    output_tokens: Length = Field(LengthDist(a=128), description="max_tokens per request (tokens)")
    requests: int | None = Field(
        None, ge=1, description="how many distinct requests before the sequence repeats; unset: endless"
    )
    cache_breakpoints: bool = Field(
        True, description="mark the prefix as a cache breakpoint (sent only by the Anthropic client)"
    )

    def designed_reuse_share(self, n: int) -> float:
        """The designed reuse share over the first `n` requests (see the module docstring)."""
        return designed_reuse_share(self.prefixes, self.question_tokens, n)

    def build(self) -> RequestSequence:
        """The request sequence, deterministic from the seed (request i never depends on the others)."""
        texts = TextSource(self.seed)
        pool = self.prefixes
        chooser = pool.chooser()
        prefixes: dict[int, str] = {}

        def make(i: int) -> GenRequest:
            # Each request draws from its own generator, so request i never depends on the ones before it.
            rng = random.Random(f"{self.seed}:request:{i}")
            k = chooser.draw(rng)
            if k not in prefixes:
                prefixes[k] = pool.text(texts, k)
            question = texts.text(f"question {i}", self.question_tokens.sample(rng))
            return prefixed_request(
                i,
                prefixes[k],
                question,
                self.output_tokens.sample(rng),
                self.api,
                mark=self.cache_breakpoints,
            )

        share = self.designed_reuse_share(self.requests) if self.requests else None
        return RequestSequence(make, self.requests, reuse_share=share)
