"""The LLM judge against a fake judge server on loopback that returns scripted verdicts.

Our mock server cannot script verdicts, so a tiny aiohttp server stands in: it streams OpenAI chat chunks
with usage, answering target prompts and judge prompts from scripts, and counts what it was asked.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from bench.accuracy.judge import Judge, JudgeError, parse_grade, parse_pairwise
from bench.accuracy.judge_cache import JudgeCache
from bench.accuracy.runner import SuiteRunner
from bench.accuracy.spec import AccuracySpec
from bench.accuracy.suite import Suite, SuiteItem
from bench.accuracy.summary import summarize
from bench.clients import ClientConfig, make_client
from bench.errors import UsageError
from bench.registry import Prices, load_registry
from bench.runs import run_accuracy
from bench.runs.pricing import token_cost
from bench.settings import Settings
from bench.store import ItemRecord

PASS = '{"verdict": "pass", "score": 1.0, "reason": "correct"}'
FAIL = '{"verdict": "fail", "score": 0.0, "reason": "wrong"}'


@dataclass
class FakeJudge:
    """Answers by the last user message: judge prompts by the graded answer, other prompts by script."""

    answers: dict[str, str] = field(default_factory=dict)  # prompt -> target answer
    verdicts: dict[str, str] = field(default_factory=dict)  # graded answer -> judge reply
    pairwise: list[str] = field(default_factory=list)  # replies to pairwise prompts, in order
    prompts: list[str] = field(default_factory=list)
    url: str = ""

    def reply(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if "ANSWER A:" in prompt:
            return self.pairwise.pop(0)
        graded = re.search(r"ANSWER:\n(.*?)\n\nReply with", prompt, flags=re.DOTALL)
        if graded:
            return self.verdicts[graded.group(1)]
        return self.answers[prompt]

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        text = self.reply(body["messages"][-1]["content"])
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunks = [
            {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}},
        ]
        for chunk in chunks:
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "judge", "object": "model"}]})


@pytest.fixture
async def fake() -> AsyncIterator[FakeJudge]:
    state = FakeJudge()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", state.chat)
    app.router.add_get("/v1/models", state.models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    yield state
    await runner.cleanup()


PRICES = Prices(input_per_1m=10.0, output_per_1m=30.0, as_of="2026-01-01", source="test")


def judge_item(n: int) -> SuiteItem:
    return SuiteItem(
        id=f"j{n}", area="open", prompt=f"question {n}", scorer="judge", rubric="Must be polite."
    )


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("Looks good to me!", "no JSON object"),
        ('["pass"]', "expected a JSON object"),
        ('{"verdict": "maybe", "score": 0.5}', "'verdict' must be"),
        ('{"verdict": "pass"}', "'score' must be"),
        ('{"verdict": "pass", "score": 1.5}', "'score' must be"),
        ('{"verdict": "pass", "score": true}', "'score' must be"),
    ],
)
def test_malformed_verdicts_are_errors(reply: str, problem: str) -> None:
    with pytest.raises(JudgeError, match=problem):
        parse_grade(reply)


def test_well_formed_verdicts_parse() -> None:
    assert parse_grade('Sure. ```json\n{"verdict": "PASS", "score": 0.9, "reason": "ok"}\n```') == (
        True,
        0.9,
        "ok",
    )
    assert parse_grade(FAIL) == (False, 0.0, "wrong")
    assert parse_pairwise('{"winner": "Answer B"}') == "B"
    assert parse_pairwise('{"winner": "tie"}') == "tie"
    with pytest.raises(JudgeError, match="'winner' must be"):
        parse_pairwise('{"winner": "both"}')


async def test_suite_with_scripted_verdicts(fake: FakeJudge, tmp_path: Path) -> None:
    items = [judge_item(n) for n in range(4)]
    fake.answers = {f"question {n}": f"answer {n}" for n in range(4)}
    fake.verdicts = {
        "answer 0": PASS,
        "answer 1": FAIL,
        "answer 2": "I think it passes.",  # malformed: no JSON
        "answer 3": '{"verdict": "pass", "score": 7}',  # malformed: score out of range
    }
    seen: list[ItemRecord] = []
    config = ClientConfig(fake.url, "judge")
    async with make_client("openai-chat", config) as target, make_client("openai-chat", config) as jclient:
        with JudgeCache(tmp_path / "cache.sqlite") as cache:
            judge = Judge(jclient, "fake|judge", cache, lambda i, o: token_cost(PRICES, i, o))
            runner = SuiteRunner(target, concurrency=2, judge=judge)
            got = await runner.run(Suite("s", tmp_path / "s.jsonl", "0" * 64, items), seen.append)
    by_id = {i.item_id: i for i in got}
    assert len(seen) == 4
    assert by_id["j0"].status == "ok" and by_id["j0"].correct is True and by_id["j0"].score == 1.0
    assert by_id["j1"].status == "ok" and by_id["j1"].correct is False
    for bad in ("j2", "j3"):  # a malformed verdict is a judge error, never a pass
        assert by_id[bad].status == "error" and by_id[bad].correct is None
        assert "malformed verdict" in (by_id[bad].error_text or "")
    # The judge's tokens and cost are kept apart from the target's (no prices: target cost is None).
    assert by_id["j0"].input_tokens == 100 and by_id["j0"].cost_usd is None
    assert by_id["j0"].judge is not None and by_id["j0"].judge["tokens"] == {"input": 100, "output": 10}
    assert by_id["j0"].judge["cost_usd"] == pytest.approx((100 * 10 + 10 * 30) / 1e6)
    assert judge.usage.calls == 4 and judge.usage.input_tokens == 400
    summary = summarize(got, suite="s", target="t", run_id=None, judge=judge.usage.to_json())
    assert summary.score == 0.5 and summary.n == 2 and summary.failed == 2
    assert summary.judge is not None
    assert summary.judge.cost_usd == pytest.approx(4 * (100 * 10 + 10 * 30) / 1e6)


async def test_judge_calls_are_cached_but_malformed_ones_are_not(fake: FakeJudge, tmp_path: Path) -> None:
    fake.verdicts = {"good": PASS, "bad": "nope"}
    async with make_client("openai-chat", ClientConfig(fake.url, "judge")) as client:
        with JudgeCache(tmp_path / "cache.sqlite") as cache:
            judge = Judge(client, "fake|judge", cache)
            first = await judge.grade("q", "good", "rubric")
            again = await judge.grade("q", "good", "rubric")
            assert first.passed and again.passed
            assert again.usage.cached == 1 and again.usage.input_tokens == 0
            for _ in range(2):
                with pytest.raises(JudgeError):
                    await judge.grade("q", "bad", "rubric")
            assert len(cache) == 1
            other = Judge(client, "another|model", cache)  # the cache is keyed by the judge too
            await other.grade("q", "good", "rubric")
    judged = [p for p in fake.prompts if "RUBRIC" in p]
    assert len(judged) == 4  # good once, bad twice (never cached), good again for the other judge
    assert judge.usage.calls == 4 and judge.usage.cached == 1


async def test_pairwise_runs_both_orderings(fake: FakeJudge) -> None:
    async with make_client("openai-chat", ClientConfig(fake.url, "judge")) as client:
        judge = Judge(client, "fake|judge")
        # Consistent: A wins when shown first, and B (the same answer) wins when shown second.
        fake.pairwise = ['{"winner": "A"}', '{"winner": "B"}']
        v = await judge.pairwise("q", "r", "long answer", "short answer")
        assert v.winner == "A" and v.consistent and v.usage.calls == 2
        # Position bias: "A" both times means each answer won once: a tie.
        fake.pairwise = ['{"winner": "A"}', '{"winner": "A"}']
        v = await judge.pairwise("q", "r", "long answer", "short answer")
        assert v.winner == "tie" and not v.consistent and (v.first, v.second) == ("A", "B")
    shown = [p for p in fake.prompts if "ANSWER A:" in p]
    assert "ANSWER A:\nlong answer" in shown[0] and "ANSWER A:\nshort answer" in shown[1]


async def test_judge_items_without_a_judge_fail_before_any_request(fake: FakeJudge, tmp_path: Path) -> None:
    async with make_client("openai-chat", ClientConfig(fake.url, "judge")) as client:
        runner = SuiteRunner(client)
        with pytest.raises(UsageError, match="pass --judge"):
            await runner.run(Suite("s", tmp_path, "0", [judge_item(0)]), lambda _: None)
    assert fake.prompts == []


@pytest.fixture
def threaded_fake() -> Iterator[FakeJudge]:
    """The fake on its own thread and loop, for code that runs its own event loop (run_accuracy)."""
    state = FakeJudge()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", state.chat)
        app.router.add_get("/v1/models", state.models)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        holder.append(runner)
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    assert ready.wait(10)
    yield state
    asyncio.run_coroutine_threadsafe(holder[0].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_run_accuracy_with_a_judge_caches_across_runs(
    settings: Settings, threaded_fake: FakeJudge, tmp_path: Path
) -> None:
    suite = tmp_path / "judged.jsonl"
    suite.write_text(
        "".join(
            json.dumps(
                {"id": f"j{n}", "area": "open", "prompt": f"question {n}", "scorer": "judge", "rubric": "r"}
            )
            + "\n"
            for n in range(3)
        )
    )
    threaded_fake.answers = {f"question {n}": f"answer {n}" for n in range(3)}
    threaded_fake.verdicts = {"answer 0": PASS, "answer 1": FAIL, "answer 2": "garbage"}
    spec = AccuracySpec(target=threaded_fake.url, suite=str(suite), judge=threaded_fake.url, concurrency=1)
    first = run_accuracy(spec, load_registry(), settings).summary
    assert (first.score, first.n, first.failed) == (0.5, 2, 1)
    assert first.judge is not None and first.judge.calls == 3 and first.judge.cached == 0
    assert first.judge.tokens.to_json() == {"input": 300, "output": 30}
    assert first.tokens.to_json() == {"input": 300, "output": 30}  # the target's own, counted apart
    second = run_accuracy(spec, load_registry(), settings).summary
    assert second.judge is not None and second.judge.cached == 2  # the malformed verdict is asked again
    assert second.score == first.score
    target_prompts = [p for p in threaded_fake.prompts if p.startswith("question")]
    assert len(target_prompts) == 6  # the endpoint under test is never answered from a cache
    assert (settings.home / "judge-cache.sqlite").is_file()
