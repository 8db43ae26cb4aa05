"""The judge in the what-if analyses, through bench.accuracy.judge: verdicts on the cheap model's answers
(the cascade's judge signal, each call priced) and on answers a cache served (false hits without a
reference). A failed or malformed verdict is no verdict: the cascade falls back to the strong model, and
the cache's hit is counted unjudged.

The judge is asked afresh (no judge cache): a what-if prices every call the policy would make.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from bench.accuracy.judge import Judge, JudgeError
from bench.whatif.cache import HitKey, JudgeAsk
from bench.whatif.model import JudgedAnswer

if TYPE_CHECKING:
    from bench.registry import Registry
    from bench.settings import Settings

T = TypeVar("T")
CONCURRENCY = 8


async def _gather(calls: Sequence[Callable[[], Awaitable[T]]], concurrency: int) -> list[T]:
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def judge_answers(
    judge: Judge, asks: Sequence[tuple[str, str, str]], rubric: str, concurrency: int = CONCURRENCY
) -> dict[str, JudgedAnswer]:
    """Grade each (item id, question, answer) without a reference; items whose call failed are left out."""

    async def grade(item_id: str, question: str, answer: str) -> tuple[str, JudgedAnswer | None]:
        start = time.perf_counter()
        try:
            got = await judge.grade(question, answer, rubric)
        except JudgeError:
            return item_id, None
        ms = (time.perf_counter() - start) * 1000
        return item_id, JudgedAnswer(got.passed, got.score, got.usage.cost_usd, ms)

    calls = [lambda a=ask: grade(*a) for ask in asks]
    return {i: v for i, v in await _gather(calls, concurrency) if v is not None}


async def judge_served(
    judge: Judge, asks: Sequence[JudgeAsk], concurrency: int = CONCURRENCY
) -> dict[HitKey, bool]:
    """Was each served answer right for the request it was served to? Failed calls are left out."""

    async def grade(ask: JudgeAsk) -> tuple[HitKey, bool | None]:
        try:
            got = await judge.grade(ask.question, ask.answer, ask.rubric, ask.reference)
        except JudgeError:
            return ask.key, None
        return ask.key, got.passed

    calls = [lambda a=ask: grade(a) for ask in asks]
    return {k: v for k, v in await _gather(calls, concurrency) if v is not None}


def with_judge(name: str, registry: Registry, settings: Settings, work: Callable[[Judge], Awaitable[T]]) -> T:
    """Resolve and serve the judge named in the registry, check it, and run `work` with it."""
    from bench.clients import make_client
    from bench.runs.accuracy import target_prices
    from bench.runs.opening import client_config
    from bench.runs.pricing import token_cost
    from bench.runs.targets import identify_target, resolve_target, serving

    target = resolve_target(name, registry, settings)
    with serving(target, settings) as served:
        judge_target = identify_target(served)
        prices = target_prices(judge_target, registry)

        async def go() -> T:
            async with make_client(judge_target.api, client_config(judge_target)) as client:
                await client.check()

                def cost(tokens_in: int | None, tokens_out: int | None) -> float | None:
                    return token_cost(prices, tokens_in, tokens_out)

                judge = Judge(client, f"{judge_target.url}|{judge_target.model}", None, cost)
                return await work(judge)

        return asyncio.run(go())
