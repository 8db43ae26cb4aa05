"""Runs of plain text events counted a read at a time (bench.clients.sse.TextRun): the same records as
parsing every event on its own, at every split of the stream, with hand-computed cases."""

from __future__ import annotations

import json
from typing import Any

import pytest

import bench.clients.anthropic as anthropic_module
import bench.clients.openai as openai_module
from bench.clients.anthropic import AnthropicStream
from bench.clients.base import StreamError
from bench.clients.openai import _CHAT_FAST, OpenAIStream, _plain_chat
from bench.clients.sse import SSEParser, TextRun, parse_region
from bench.records import RequestRecord, Status


def chat(delta: dict[str, Any], finish: str | None = None, created: int = 1) -> str:
    body = {
        "id": "c",
        "created": created,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return "data: " + json.dumps(body, separators=(",", ":"), ensure_ascii=False) + "\n\n"


def text(value: str, finish: str | None = None) -> str:
    body = {"id": "c", "choices": [{"index": 0, "text": value, "logprobs": None, "finish_reason": finish}]}
    return "data: " + json.dumps(body, separators=(",", ":"), ensure_ascii=False) + "\n\n"


def usage(prompt: int, completion: int) -> str:
    body = {"id": "c", "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}}
    return "data: " + json.dumps(body, separators=(",", ":")) + "\n\n"


DONE = "data: [DONE]\n\n"


def anthropic(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def delta(kind: str, field: str, value: str) -> str:
    return anthropic(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": kind, field: value}},
    )


# The mock's (and vLLM's) usual stream: a role chunk, a run of plain content chunks, the finish chunk, a
# usage-only last chunk.
PLAIN = (
    chat({"role": "assistant"})
    + "".join(chat({"content": f"w{i} "}) for i in range(10))
    + chat({}, finish="length")
    + usage(7, 10)
    + DONE
).encode()

# Everything that is not a plain run, inside one: reasoning before and among the content, an empty
# content, escapes, non-ASCII text, a keep-alive comment, content in the finish chunk.
MIXED = (
    chat({"role": "assistant", "content": ""})
    + chat({"reasoning_content": "think"})
    + chat({"reasoning": " more"})
    + "".join(chat({"content": w}) for w in ["a", "b", "", "c"])
    + chat({"reasoning_content": "again"})
    + "".join(chat({"content": w}) for w in ["d", 'q"uote', "e", "back\\slash", "f", "é☃", "g"])
    + ": keep-alive\n\n"
    + "".join(chat({"content": w}) for w in ["h", "i", "j"])
    + chat({"content": "!"}, finish="stop")
    + usage(12, 18)
    + DONE
).encode()

# A server whose chunks differ outside the text (a new `created` each): no run to learn.
SHIFTING = (
    "".join(chat({"content": f"t{i}"}, created=i) for i in range(6)) + chat({}, "stop") + usage(1, 6) + DONE
).encode()

COMPLETIONS = (
    "".join(text(w) for w in ["x", "y", "", "z", "w"]) + text("", "length") + usage(3, 4) + DONE
).encode()

ANTHROPIC = (
    anthropic("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 9}}})
    + anthropic("content_block_start", {"type": "content_block_start", "index": 0})
    + delta("thinking_delta", "thinking", "hm")
    + "".join(delta("text_delta", "text", w) for w in ["A", "B", "C"])
    + anthropic("ping", {"type": "ping"})
    + "".join(delta("text_delta", "text", w) for w in ["D", "", "E", "\u00fc", "F"])
    + delta("thinking_delta", "thinking", "late")
    + "".join(delta("text_delta", "text", w) for w in ["G", "H"])
    + anthropic("message_delta", {"type": "message_delta", "usage": {"output_tokens": 11}})
    + anthropic("message_stop", {"type": "message_stop"})
).encode()

OPENAI_STREAMS = {"plain": PLAIN, "mixed": MIXED, "shifting": SHIFTING, "completions": COMPLETIONS}


def record() -> RequestRecord:
    return RequestRecord(0, Status.OK, 0.0, 0.0, 0.0)


def feed(stream: Any, parts: list[bytes]) -> None:
    for i, part in enumerate(parts):
        stream.feed(part, float(i + 1))  # read i arrives at time i + 1
    stream.keep_text()
    stream.close()


def openai_record(name: str, parts: list[bytes], *, runs: bool, keep: bool = True) -> RequestRecord:
    rec = record()
    feed(OpenAIStream(rec, chat=name != "completions", keep_text=keep, text_runs=runs), parts)
    return rec


def anthropic_record(parts: list[bytes], *, runs: bool, keep: bool = True) -> RequestRecord:
    rec = record()
    feed(AnthropicStream(rec, keep_text=keep, text_runs=runs), parts)
    return rec


# --- the split, by hand --------------------------------------------------------------------------------


def test_a_read_splits_into_the_blocks_before_the_texts_of_the_run_and_the_blocks_after() -> None:
    role = chat({"role": "assistant"})[:-2]
    events = [role] + [chat({"content": w})[:-2] for w in "abc"] + [chat({}, "stop")[:-2], DONE[:-2]]
    region = "\n\n".join(events).encode()
    run = TextRun.learn(region, _CHAT_FAST, _plain_chat)
    assert run is not None
    assert run.prefix == b'data: {"id":"c","created":1,"choices":[{"index":0,"delta":{"content":"'
    assert run.suffix == b'"},"logprobs":null,"finish_reason":null}]}'
    # The role chunk ends with the same bytes as a content chunk's suffix, so the run starts at "a"; the
    # last text of a run stays with the blocks after it (its end is not followed by a separator).
    assert run.split(region) == [role.encode(), [b"a", b"b"], "\n\n".join(events[3:]).encode()]


def test_events_that_are_not_plain_split_the_run_and_are_parsed_with_their_neighbours_ends() -> None:
    region = SSEParser().region(MIXED)
    run = TextRun.learn(region, _CHAT_FAST, _plain_chat)
    assert run is not None
    parts = run.split(region)
    assert parts is not None
    runs = [p for p in parts if isinstance(p, list)]
    assert runs == [[b"a", b"b", b""], [b"d"], [b"e"], [b"f", "é☃".encode()], [b"i", b"j"]]
    blocks = [parse_region(p) for p in parts if isinstance(p, bytes)]
    # Around each run: the blocks that are not plain, and the last plain event before each of them.
    assert [len(b) for b in blocks] == [3, 2, 1, 1, 2, 3]  # the keep-alive comment is no event
    assert json.loads(blocks[1][1][1])["choices"][0]["delta"] == {"reasoning_content": "again"}
    assert json.loads(blocks[2][0][1])["choices"][0]["delta"] == {"content": 'q"uote'}
    around_comment = [json.loads(e[1])["choices"][0]["delta"] for e in blocks[4]]
    assert around_comment == [{"content": "g"}, {"content": "h"}]
    plain = SSEParser().region(PLAIN)
    assert run.split(plain) is not None  # the same shape in another read is a run


def test_no_shape_is_learned_from_an_event_that_is_not_plain() -> None:
    assert TextRun.learn(chat({"content": "a"}, finish="stop").encode(), _CHAT_FAST, _plain_chat) is None
    with_usage = chat({"content": "a"})[:-3] + ',"usage":{"completion_tokens":1}}\n\n'
    assert TextRun.learn(with_usage.encode(), _CHAT_FAST, _plain_chat) is None
    assert TextRun.learn(chat({"reasoning_content": "a"}).encode(), _CHAT_FAST, _plain_chat) is None


# --- the records, by hand ---------------------------------------------------------------------------------


def test_one_read_of_a_plain_stream_stamps_every_content_chunk_and_takes_usage() -> None:
    rec = openai_record("plain", [PLAIN], runs=True)
    assert rec.token_chunk_s == [1.0] * 10  # 10 content chunks; role, finish and usage carry no token
    assert rec.first_token_s == rec.first_content_s == 1.0
    assert rec.output_text == "".join(f"w{i} " for i in range(10))
    assert rec.output_bytes == 30  # "w0 " … "w9 ": 3 bytes each
    assert (rec.input_tokens, rec.output_tokens) == (7, 10)


def test_a_read_that_ends_inside_the_run_stamps_each_event_when_its_read_completed_it() -> None:
    cut = PLAIN.index(b'"w7 "')  # inside the 8th content chunk: 7 complete in the first read
    rec = openai_record("plain", [PLAIN[:cut], PLAIN[cut:]], runs=True)
    assert rec.token_chunk_s == [1.0] * 7 + [2.0] * 3
    assert rec.first_token_s == rec.first_content_s == 1.0
    assert rec.output_tokens == 10


def test_the_run_path_parses_only_the_blocks_around_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []

    def counting(region: bytes) -> list[tuple[bytes | None, bytes]]:
        events = parse_region(region)
        parsed.append(len(events))
        return events

    monkeypatch.setattr(openai_module, "parse_region", counting)
    rec = openai_record("plain", [PLAIN], runs=True)
    assert len(rec.token_chunk_s) == 10
    # Before the run: the role chunk; after it: the last content chunk, finish, usage and [DONE].
    assert parsed == [1, 4]


def test_mixed_stream_by_hand() -> None:
    rec = openai_record("mixed", [MIXED], runs=True)
    words = ["a", "b", "c", "d", 'q"uote', "e", "back\\slash", "f", "é☃", "g", "h", "i", "j", "!"]
    assert rec.output_text == "".join(words)
    assert rec.reasoning_text == "think moreagain"
    assert len(rec.token_chunk_s) == 17  # 14 content + 3 reasoning; the empty content and role are not
    assert rec.output_bytes == len("".join(words).encode()) + len(b"think moreagain")
    assert (rec.input_tokens, rec.output_tokens) == (12, 18)


def test_anthropic_run_by_hand() -> None:
    rec = anthropic_record([ANTHROPIC], runs=True)
    assert (rec.output_text, rec.reasoning_text) == ("ABCDE\u00fcFGH", "hmlate")
    assert rec.token_chunk_s == [1.0] * 11  # 9 non-empty text deltas, 2 thinking deltas
    assert rec.output_bytes == 9 + 1 + 6  # eight 1-byte letters and ü (2 bytes); "hmlate"
    assert (rec.input_tokens, rec.output_tokens) == (9, 11)


# --- the same record as event by event, at every split -------------------------------------------------


@pytest.mark.slow  # about 2.1 s: scripts/test runs it, scripts/check stays under a minute
@pytest.mark.parametrize("name", list(OPENAI_STREAMS))
@pytest.mark.parametrize("keep", [True, False], ids=["keep", "no-text"])
def test_openai_runs_give_the_same_record_at_every_split(name: str, keep: bool) -> None:
    data = OPENAI_STREAMS[name]
    for newline in (b"\n", b"\r\n"):
        stream = data.replace(b"\n", newline)
        assert openai_record(name, [stream], runs=True, keep=keep) == openai_record(
            name, [stream], runs=False, keep=keep
        )
        for i in range(len(stream) + 1):
            parts = [stream[:i], stream[i:]]
            fast = openai_record(name, parts, runs=True, keep=keep)
            assert fast == openai_record(name, parts, runs=False, keep=keep), f"split at byte {i}"
    thirds = [data[i : i + len(data) // 3 + 1] for i in range(0, len(data), len(data) // 3 + 1)]
    assert openai_record(name, thirds, runs=True) == openai_record(name, thirds, runs=False)


@pytest.mark.parametrize("keep", [True, False], ids=["keep", "no-text"])
def test_anthropic_runs_give_the_same_record_at_every_split(keep: bool) -> None:
    for i in range(len(ANTHROPIC) + 1):
        parts = [ANTHROPIC[:i], ANTHROPIC[i:]]
        fast = anthropic_record(parts, runs=True, keep=keep)
        assert fast == anthropic_record(parts, runs=False, keep=keep), f"split at byte {i}"


def test_a_run_cut_short_still_keeps_its_text_and_is_a_protocol_error() -> None:
    cut = PLAIN[: PLAIN.index(b'"finish_reason":"length"')]
    rec = record()
    stream = OpenAIStream(rec, chat=True, keep_text=True)
    stream.feed(cut, 1.0)
    stream.keep_text()
    with pytest.raises(StreamError) as info:
        stream.close()
    assert info.value.kind == "protocol"
    assert rec.output_text == "".join(f"w{i} " for i in range(10))
    assert rec.token_chunk_s == [1.0] * 10


def test_an_error_event_after_a_run_is_raised_after_the_run_is_counted() -> None:
    error = b'data: {"error":{"message":"engine died"}}\n\n'
    data = PLAIN[: PLAIN.rindex(b"data: {", 0, PLAIN.index(b'"w9 "'))] + error  # in place of w9
    rec = record()
    stream = OpenAIStream(rec, chat=True, keep_text=False)
    with pytest.raises(StreamError, match="engine died"):
        stream.feed(data, 1.0)
    assert rec.token_chunk_s == [1.0] * 9  # w0 … w8 came before the error


def test_anthropic_learns_its_text_delta_shape() -> None:
    region = SSEParser().region(ANTHROPIC)
    run = TextRun.learn(region, anthropic_module._TEXT_FAST, anthropic_module._plain_text)
    assert run is not None
    assert run.prefix == (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"'
    )
    assert run.suffix == b'"}}'
