"""Session plans: deterministic conversations, turns built from the answers actually returned, conversation
files, and a second turn that reads the first turn's cache on the mock's Anthropic dialect."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.clients import ClientConfig, make_client
from bench.prompts.lengths import LengthDist
from bench.prompts.workloads import ArrivalProcess, PrefixPool, SessionPlan, SessionsWorkload
from bench.records import RequestRecord, reference_tokens
from serve.mock.server import running_mock
from serve.specs import MockSpec


def plan(**kw: object) -> SessionPlan:
    base: dict[str, object] = {"sessions": 3, "arrival_rate": 0.5, "arrival": ArrivalProcess(kind="constant")}
    built = SessionsWorkload(**{**base, **kw}).build()  # type: ignore[arg-type]
    assert isinstance(built, SessionPlan)
    return built


def test_plan_arrivals_turns_and_lengths() -> None:
    built = plan(turns=LengthDist(kind="uniform", a=2, b=4), think_time_s=3.0, user_tokens=LengthDist(a=20),
                 output_tokens=LengthDist(a=50))  # fmt: skip
    assert [s.arrival_s for s in built.sessions] == [0.0, 2.0, 4.0]  # 0.5 sessions/s, evenly
    assert [s.session_id for s in built.sessions] == ["session-0", "session-1", "session-2"]
    for session in built.sessions:
        assert 2 <= len(session.turns) <= 4 and session.system is None
        assert [t.think_s for t in session.turns] == [0.0] + [3.0] * (len(session.turns) - 1)
        assert all(reference_tokens(len(t.user.encode())) == 20 and t.max_tokens == 50 for t in session.turns)
    assert built == plan(turns=LengthDist(kind="uniform", a=2, b=4), think_time_s=3.0,
                         user_tokens=LengthDist(a=20), output_tokens=LengthDist(a=50))  # fmt: skip
    assert built.turns == sum(len(s.turns) for s in built.sessions)
    closed = plan(arrival_rate=None, arrival=ArrivalProcess(), concurrent=2)
    assert closed.concurrent == 2 and all(s.arrival_s is None for s in closed.sessions)


def test_turn_k_sends_the_history_with_the_answers_returned() -> None:
    built = plan(turns=LengthDist(a=3), documents=PrefixPool(count=2, tokens=100))
    session = built.sessions[1]
    assert session.system is not None and reference_tokens(len(session.system.encode())) == 100
    request = built.request(session, 2, ["first answer", "second answer"], request_id=17)
    assert request.messages == [
        {"role": "system", "content": session.system},
        {"role": "user", "content": session.turns[0].user},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": session.turns[1].user},
        {"role": "assistant", "content": "second answer"},
        {"role": "user", "content": session.turns[2].user},
    ]
    assert (request.request_id, request.session_id, request.turn) == (17, "session-1", 2)
    assert request.cache_breakpoints == (0, 5) and request.max_tokens == 128
    with pytest.raises(ValueError, match="needs the 2 answers"):
        built.request(session, 2, ["only one"], request_id=0)
    completions = plan(turns=LengthDist(a=2), api="completions", cache_breakpoints=False)
    prompt = completions.request(completions.sessions[0], 1, ["A1"], 0).prompt
    assert prompt is not None and prompt.endswith(
        "\n\nAssistant: A1\n\nUser: " + completions.sessions[0].turns[1].user + "\n\nAssistant:"
    )


def test_conversation_files(tmp_path: Path) -> None:
    sharegpt = tmp_path / "chats.json"
    sharegpt.write_text(json.dumps([
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello there!!"},
                           {"from": "human", "value": "Bye"}]},
        {"conversations": [{"from": "gpt", "value": "no user here"}]},
    ]), encoding="utf-8")  # fmt: skip
    built = SessionsWorkload(conversations=sharegpt, concurrent=1, output_tokens=None).build()
    (session,) = built.sessions
    assert [t.user for t in session.turns] == ["Hi", "Bye"]
    assert [t.max_tokens for t in session.turns] == [4, 128]  # ⌈13 bytes ÷ 4⌉; no recorded reply: default
    messages = tmp_path / "chats.jsonl"
    messages.write_text(
        json.dumps({"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Q1"},
                                 {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]})
        + "\n",
        encoding="utf-8",
    )  # fmt: skip
    built = SessionsWorkload(
        conversations=messages, sessions=2, arrival_rate=1, output_tokens=LengthDist(a=9)
    ).build()
    assert [s.system for s in built.sessions] == ["Be kind.", "Be kind."]  # cycled to two sessions
    assert [t.user for t in built.sessions[0].turns] == ["Q1", "Q2"]
    messages.write_text('{"messages": [{"role": "user", "content": 5}]}\nnot json\n', encoding="utf-8")
    with pytest.raises(Exception, match=r"chats.jsonl:1: a message's 'content' is not text"):
        SessionsWorkload(conversations=messages, concurrent=1).check()


def test_invalid_settings() -> None:
    with pytest.raises(ValidationError, match="exactly one of arrival_rate"):
        SessionsWorkload(sessions=2)
    with pytest.raises(ValidationError, match="exactly one of arrival_rate"):
        SessionsWorkload(sessions=2, arrival_rate=1, concurrent=2)
    with pytest.raises(ValidationError, match="only with a conversation file"):
        SessionsWorkload(sessions=2, concurrent=2, output_tokens=None)


def test_second_turn_reads_the_first_turns_cache_on_the_mock() -> None:
    """Document 1,100 tokens + question 20 = 1,120 written at turn 0; turn 1 reads those 1,120 and writes
    the answer (3 tokens) and the new question (20 tokens) up to its breakpoint."""
    built = plan(sessions=1, turns=LengthDist(a=2), user_tokens=LengthDist(a=20),
                 output_tokens=LengthDist(a=3), documents=PrefixPool(count=1, tokens=1100))  # fmt: skip
    session = built.sessions[0]

    async def main(url: str) -> list[RequestRecord]:
        config = ClientConfig(url, "m", server_kind="anthropic", keep_text=True)
        async with make_client("anthropic", config) as client:
            first = await client.send(built.request(session, 0, [], 0), 0.0)
            second = await client.send(built.request(session, 1, [first.output_text], 1), 0.0)
            return [first, second]

    with running_mock(MockSpec(model="m", port=0)) as url:
        first, second = asyncio.run(main(url))
    assert reference_tokens(len(first.output_text.encode())) == 3
    assert (first.input_tokens, first.cached_input_tokens, first.cache_write_tokens) == (1120, 0, 1120)
    assert (second.input_tokens, second.cached_input_tokens, second.cache_write_tokens) == (1143, 1120, 23)
