"""LLM-as-judge: a registry endpoint grades an answer against a rubric and returns a structured verdict.

The judge is asked at temperature 0 for one JSON object `{"verdict": "pass"|"fail", "score": 0..1,
"reason": "..."}`. Anything else is a judge error (never a pass). A pairwise judgement asks both orderings
(A vs B, then B vs A) and calls a disagreement a tie. Judge calls are cached by a hash of the judge model and
the prompt (see `JudgeCache`); the judge's own tokens and cost are kept apart from the target's.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from bench.accuracy.judge_cache import CachedCall, JudgeCache
from bench.accuracy.scorers import extract_json
from bench.records import GenRequest, RequestRecord

GRADE_TEMPLATE = """You are a strict grader. Grade the ANSWER to the QUESTION against the RUBRIC.
{reference_block}
QUESTION:
{question}

RUBRIC:
{rubric}

ANSWER:
{answer}

Reply with one JSON object and nothing else:
{{"verdict": "pass" or "fail", "score": a number from 0 to 1, "reason": "one short sentence"}}"""

PAIRWISE_TEMPLATE = """You are a strict grader. Two answers, A and B, were given to the same QUESTION.
Decide which one better satisfies the RUBRIC.

QUESTION:
{question}

RUBRIC:
{rubric}

ANSWER A:
{answer_a}

ANSWER B:
{answer_b}

Reply with one JSON object and nothing else:
{{"winner": "A" or "B" or "tie", "reason": "one short sentence"}}"""

JUDGE_MAX_TOKENS = 256
_T = TypeVar("_T")


def template_hash(*texts: str) -> str:
    """sha256 (hex, first 16 characters) of prompt template texts: stored with each run."""
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


JUDGE_TEMPLATES_SHA = template_hash(GRADE_TEMPLATE, PAIRWISE_TEMPLATE)


class JudgeError(Exception):
    """A judge call failed or its verdict was malformed; the item is an error, never a pass."""


class Sender(Protocol):
    """What the judge needs from a streaming client."""

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord: ...


@dataclass(frozen=True)
class JudgeVerdict:
    """A parsed grade: pass/fail, a score in [0, 1], the judge's reason and what the call cost."""

    passed: bool
    score: float
    reason: str
    usage: JudgeUsage

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": "pass" if self.passed else "fail",
            "score": self.score,
            "reason": self.reason,
            **self.usage.to_json(),
        }


@dataclass(frozen=True)
class PairwiseVerdict:
    """Which answer won over both orderings ('A', 'B' or 'tie'), and each ordering's raw pick."""

    winner: Literal["A", "B", "tie"]
    first: str  # pick with A shown first
    second: str  # pick with B shown first, already mapped back to the original labels
    consistent: bool
    usage: JudgeUsage


@dataclass
class JudgeUsage:
    """The judge's own calls, tokens and cost (kept apart from the target's)."""

    model: str
    calls: int = 0
    cached: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None

    def add(self, call: CachedCall, cost: float | None) -> None:
        self.calls += 1
        if call.cached:
            self.cached += 1
            return  # a cached verdict costs nothing now
        self.input_tokens += call.input_tokens or 0
        self.output_tokens += call.output_tokens or 0
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost

    def to_json(self) -> dict[str, Any]:
        return {
            "judge_model": self.model,
            "calls": self.calls,
            "cached": self.cached,
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
            "cost_usd": self.cost_usd,
        }


CostFn = Callable[[int | None, int | None], float | None]


def _no_cost(_in: int | None, _out: int | None) -> float | None:
    return None


@dataclass
class Judge:
    """Grades answers with one endpoint. `key` identifies the judge (model and URL) for the cache."""

    client: Sender
    key: str
    cache: JudgeCache | None = None
    cost: CostFn = _no_cost
    usage: JudgeUsage = field(init=False)

    def __post_init__(self) -> None:
        self.usage = JudgeUsage(self.key)

    async def _call(self, prompt: str, parse: Callable[[str], _T], usage: JudgeUsage) -> _T:
        """One judge call at temperature 0, answered from the cache when this exact prompt was judged.

        Tokens are booked on `usage` (and the judge's total) even when the reply is malformed; only replies
        that parse are cached, so a malformed verdict is asked again next time.
        """
        cache_key = hashlib.sha256(f"{self.key}\0{prompt}".encode()).hexdigest()
        hit = self.cache.get(cache_key) if self.cache is not None else None
        if hit is not None:
            call = hit
        else:
            request = GenRequest(
                0,
                messages=[{"role": "user", "content": prompt}],
                max_tokens=JUDGE_MAX_TOKENS,
                temperature=0.0,
            )
            record = await self.client.send(request, time.perf_counter())
            if not record.ok:
                raise JudgeError(f"judge request failed: {record.error_kind}: {record.error_text}")
            call = CachedCall(record.output_text, record.input_tokens, record.output_tokens, cached=False)
        cost = None if call.cached else self.cost(call.input_tokens, call.output_tokens)
        usage.add(call, cost)
        self.usage.add(call, cost)
        parsed = parse(call.text)
        if self.cache is not None and not call.cached:
            self.cache.put(cache_key, call)
        return parsed

    async def grade(
        self, question: str, answer: str, rubric: str, reference: str | None = None
    ) -> JudgeVerdict:
        """Pass/fail with a score; JudgeError on a failed call or a malformed verdict."""
        block = f"\nREFERENCE ANSWER:\n{reference}\n" if reference else ""
        prompt = GRADE_TEMPLATE.format(reference_block=block, question=question, rubric=rubric, answer=answer)
        usage = JudgeUsage(self.key)
        passed, score, reason = await self._call(prompt, parse_grade, usage)
        return JudgeVerdict(passed, score, reason, usage)

    async def pairwise(self, question: str, rubric: str, answer_a: str, answer_b: str) -> PairwiseVerdict:
        """Which answer is better, asked in both orderings; disagreement between them is a tie."""
        usage = JudgeUsage(self.key)
        picks: list[Literal["A", "B", "tie"]] = []
        for first, second, flip in ((answer_a, answer_b, False), (answer_b, answer_a, True)):
            prompt = PAIRWISE_TEMPLATE.format(
                question=question, rubric=rubric, answer_a=first, answer_b=second
            )
            pick = await self._call(prompt, parse_pairwise, usage)
            if flip and pick != "tie":
                pick = "B" if pick == "A" else "A"
            picks.append(pick)
        consistent = picks[0] == picks[1]
        winner = picks[0] if consistent else "tie"
        return PairwiseVerdict(winner, picks[0], picks[1], consistent, usage)


_VERDICTS = {"pass": True, "fail": False}


def _parse_object(text: str) -> dict[str, Any]:
    try:
        value = extract_json(text)
    except ValueError as exc:
        raise JudgeError(f"malformed verdict: no JSON object in {text[:200]!r}") from exc
    if not isinstance(value, dict):
        raise JudgeError(f"malformed verdict: expected a JSON object, got {json.dumps(value)[:200]}")
    return value


def parse_grade(text: str) -> tuple[bool, float, str]:
    """(passed, score, reason) from a judge reply; JudgeError unless it is a well-formed verdict."""
    obj = _parse_object(text)
    verdict = obj.get("verdict")
    if not isinstance(verdict, str) or verdict.strip().lower() not in _VERDICTS:
        raise JudgeError(f'malformed verdict: \'verdict\' must be "pass" or "fail", got {verdict!r}')
    score = obj.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0.0 <= float(score) <= 1.0:
        raise JudgeError(f"malformed verdict: 'score' must be a number from 0 to 1, got {score!r}")
    reason = obj.get("reason", "")
    return _VERDICTS[verdict.strip().lower()], float(score), str(reason)


def parse_pairwise(text: str) -> Literal["A", "B", "tie"]:
    """'A', 'B' or 'tie' from a pairwise reply; JudgeError otherwise."""
    winner = _parse_object(text).get("winner")
    norm = re.sub(r"[^a-z]", "", str(winner).lower()) if isinstance(winner, str) else ""
    if norm in ("a", "answera"):
        return "A"
    if norm in ("b", "answerb"):
        return "B"
    if norm == "tie":
        return "tie"
    raise JudgeError(f'malformed verdict: \'winner\' must be "A", "B" or "tie", got {winner!r}')
