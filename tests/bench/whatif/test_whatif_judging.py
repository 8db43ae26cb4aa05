"""The judge in the what-ifs, through bench.accuracy.judge with a fake client: each verdict priced, a
malformed verdict left out (the cascade then falls back to the strong model)."""

from __future__ import annotations

import asyncio
import re

import pytest

from bench.accuracy.judge import Judge
from bench.records import GenRequest, RequestRecord, Status
from bench.whatif.cache import JudgeAsk
from bench.whatif.judging import judge_answers, judge_served

REPLIES = {
    "4": '{"verdict": "pass", "score": 1.0, "reason": "right"}',
    "5": '{"verdict": "fail", "score": 0.0, "reason": "wrong"}',
    "?": "I cannot say",
}


class FakeJudgeClient:
    """Answers a grading prompt by the graded answer; every call uses 100 input and 10 output tokens."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        prompt = (request.messages or [{}])[0]["content"]
        self.prompts.append(prompt)
        answer = re.search(r"(?<!REFERENCE )ANSWER:\n(.*?)\n\nReply with", prompt, flags=re.DOTALL)
        assert answer is not None
        text = REPLIES[answer.group(1)]
        return RequestRecord(
            0, Status.OK, scheduled_s, 0.0, 0.1, input_tokens=100, output_tokens=10, output_text=text
        )


def judge(client: FakeJudgeClient) -> Judge:
    return Judge(client, "fake", None, lambda i, o: ((i or 0) * 1.0 + (o or 0) * 4.0) / 1e6)


def test_the_cheap_answers_are_graded_and_priced_without_a_reference() -> None:
    """Each call: 100 × $1/1M + 10 × $4/1M = $0.00014."""
    client = FakeJudgeClient()
    asks = [("a", "2+2?", "4"), ("b", "2+3?", "5"), ("c", "1+1?", "?")]
    got = asyncio.run(judge_answers(judge(client), asks, "Is it right?"))
    assert set(got) == {"a", "b"}  # c's verdict was malformed: no verdict, so the cascade escalates it
    assert (got["a"].passed, got["a"].score, got["b"].passed) == (True, 1.0, False)
    assert got["a"].cost_usd == pytest.approx(0.00014)
    assert all("REFERENCE ANSWER" not in p for p in client.prompts) and len(client.prompts) == 3


def test_served_answers_are_graded_for_the_request_they_were_served_to() -> None:
    client = FakeJudgeClient()
    asks = [
        JudgeAsk((3, 1), "How do I disable 2FA?", "5", "rubric", None),
        JudgeAsk((4, 1), "q", "4", "r", "ref"),
    ]
    assert asyncio.run(judge_served(judge(client), asks)) == {(3, 1): False, (4, 1): True}
    assert "How do I disable 2FA?" in client.prompts[0] and "REFERENCE ANSWER:\nref" in client.prompts[1]
