"""SSE parsing and the per-protocol stream handlers, fed recorded byte streams split at every boundary."""

from __future__ import annotations

import json

import pytest

from bench.clients.anthropic import AnthropicStream
from bench.clients.base import StreamError
from bench.clients.openai import OpenAIStream
from bench.clients.sse import SSEParser
from bench.records import RequestRecord, Status


def _chunk(delta: dict[str, object], finish: str | None = None) -> str:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return "data: " + json.dumps(body, separators=(",", ":")) + "\n\n"


# What vLLM streams for a chat request with include_usage: a role-only first chunk (empty content), a
# reasoning chunk, content chunks (one carrying two tokens), a keep-alive comment, a usage-only last chunk.
OPENAI_CHAT = (
    _chunk({"role": "assistant", "content": ""})
    + _chunk({"reasoning_content": "hmm"})
    + _chunk({"content": "Hello"})
    + ": keep-alive\n\n"
    + _chunk({"content": " big world"})
    + _chunk({"content": "!"}, finish="length")
    + 'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,'
    '"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":4},'
    '"completion_tokens_details":{"reasoning_tokens":1}}}\n\n'
    "data: [DONE]\n\n"
).encode()

# Anthropic's documented stream: message_start usage, a thinking block with a signature, a ping, text, and
# the cumulative output count in message_delta. Python's json.dumps spacing on purpose (`": "`).
_ANTHROPIC_EVENTS: list[tuple[str, dict[str, object]]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude",
                "usage": {"input_tokens": 25, "cache_read_input_tokens": 10, "output_tokens": 1},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Let me"},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "c2ln"},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " there"}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "message_delta",
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 15}},
    ),
    ("message_stop", {"type": "message_stop"}),
]
ANTHROPIC = "".join(
    f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in _ANTHROPIC_EVENTS
).encode()


def _record() -> RequestRecord:
    return RequestRecord(0, Status.OK, 0.0, 0.0, 0.0)


def _first_token_end(stream: bytes, marker: bytes) -> int:
    """Offset just past the event that carries `marker` (the first token event)."""
    return stream.index(b"\n\n", stream.index(marker)) + 2


def _parse_all(parts: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    parser = SSEParser()
    events = []
    for part in parts:
        events.extend(parser.feed(part))
    assert parser.pending == b""
    return events


@pytest.mark.parametrize("stream", [OPENAI_CHAT, ANTHROPIC], ids=["openai", "anthropic"])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_parser_gives_the_same_events_at_every_split(stream: bytes, newline: str) -> None:
    data = stream.replace(b"\n", newline.encode())
    whole = _parse_all([data])
    assert len(whole) == stream.count(b"data: ")
    for i in range(len(data) + 1):
        assert _parse_all([data[:i], data[i:]]) == whole, f"split at byte {i}"
    assert _parse_all([data[i : i + 1] for i in range(len(data))]) == whole
    if stream is ANTHROPIC:
        assert [name for name, _ in whole] == [name.encode() for name, _ in _ANTHROPIC_EVENTS]
        assert [json.loads(payload) for _, payload in whole] == [data for _, data in _ANTHROPIC_EVENTS]


def test_parser_fields_comments_and_multiline_data() -> None:
    stream = (
        b": comment\n\nevent: delta\nid: 7\nretry: 10\ndata:first\ndata: second\nunknown: x\n\n\n\ndata\n\n"
    )
    assert _parse_all([stream]) == [(b"delta", b"first\nsecond"), (None, b"")]


def test_parser_ignores_blocks_without_data_and_keeps_a_partial_event() -> None:
    parser = SSEParser()
    assert parser.feed(b'event: ping\n\n: keep-alive\n\ndata: {"a"') == []
    assert parser.pending == b'data: {"a"'
    assert parser.feed(b": 1}\n\ndata: [DONE]\n\n") == [(None, b'{"a": 1}'), (None, b"[DONE]")]


def _feed_split(stream_cls: type, data: bytes, i: int, **kw: object) -> RequestRecord:
    record = _record()
    stream = stream_cls(record, keep_text=True, **kw)
    stream.feed(data[:i], 1.0)
    stream.feed(data[i:], 2.0)
    stream.keep_text()
    stream.close()
    return record


def test_openai_chat_stream_at_every_split() -> None:
    reasoning_end = _first_token_end(OPENAI_CHAT, b'"reasoning_content"')
    content_end = _first_token_end(OPENAI_CHAT, b'"Hello"')
    for i in range(len(OPENAI_CHAT) + 1):
        rec = _feed_split(OpenAIStream, OPENAI_CHAT, i, chat=True)
        # Role-only first chunk and usage-only last chunk carry no tokens: 4 token chunks, not 6.
        assert len(rec.token_chunk_s) == 4
        assert rec.first_token_s == (1.0 if i >= reasoning_end else 2.0)
        assert rec.first_content_s == (1.0 if i >= content_end else 2.0)
        assert rec.output_text == "Hello big world!"
        assert rec.reasoning_text == "hmm"
        assert (rec.input_tokens, rec.output_tokens) == (12, 5)
        assert (rec.cached_input_tokens, rec.reasoning_tokens) == (4, 1)


def test_openai_chat_stream_reasoning_field_of_newer_vllm() -> None:
    rec = _record()
    stream = OpenAIStream(rec, chat=True, keep_text=True)
    stream.feed((_chunk({"reasoning": "think"}) + _chunk({"content": "ok"}, "stop")).encode(), 3.0)
    stream.keep_text()
    stream.close()
    assert (rec.reasoning_text, rec.output_text, rec.token_chunk_s) == ("think", "ok", [3.0, 3.0])
    assert rec.output_tokens is None  # no usage: never a count of chunks


def test_openai_completions_stream() -> None:
    events = [
        {"choices": [{"index": 0, "text": "", "finish_reason": None}]},
        {"choices": [{"index": 0, "text": "a b", "finish_reason": None}]},
        {"choices": [{"index": 0, "text": "c", "finish_reason": "length"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}},
    ]
    data = ("".join(f"data: {json.dumps(e)}\r\n\r\n" for e in events) + "data: [DONE]\r\n\r\n").encode()
    # A CR already ends a line, so the event is complete at its third terminator byte.
    first_end = data.index(b"\r\n\r\n", data.index(b'"a b"')) + 3
    for i in range(len(data) + 1):
        rec = _feed_split(OpenAIStream, data, i, chat=False)
        assert rec.output_text == "a bc"
        assert len(rec.token_chunk_s) == 2
        assert rec.first_token_s == (1.0 if i >= first_end else 2.0)
        assert rec.output_tokens == 3


def test_openai_stream_cut_short_is_a_protocol_error() -> None:
    rec = _record()
    stream = OpenAIStream(rec, chat=True, keep_text=True)
    stream.feed(_chunk({"content": "Hel"}).encode() + b'data: {"choi', 1.0)
    stream.keep_text()
    with pytest.raises(StreamError) as info:
        stream.close()
    assert info.value.kind == "protocol"
    assert rec.output_text == "Hel"


def test_openai_error_event_in_stream() -> None:
    stream = OpenAIStream(_record(), chat=True, keep_text=True)
    with pytest.raises(StreamError) as info:
        stream.feed(b'data: {"error": {"message": "engine died", "code": 500}}\n\n', 1.0)
    assert (info.value.kind, info.value.text) == ("stream_error", "engine died")


def test_anthropic_stream_at_every_split() -> None:
    thinking_end = _first_token_end(ANTHROPIC, b'"thinking_delta"')
    text_end = _first_token_end(ANTHROPIC, b'"Hi"')
    for i in range(len(ANTHROPIC) + 1):
        rec = _feed_split(AnthropicStream, ANTHROPIC, i)
        # thinking + 2 text deltas; ping, signature, block starts/stops and usage carry no tokens.
        assert len(rec.token_chunk_s) == 3
        assert rec.first_token_s == (1.0 if i >= thinking_end else 2.0)
        assert rec.first_content_s == (1.0 if i >= text_end else 2.0)
        assert (rec.output_text, rec.reasoning_text) == ("Hi there", "Let me")
        # input = uncached + cache reads; output from message_delta (never message_start's placeholder 1).
        assert (rec.input_tokens, rec.cached_input_tokens, rec.output_tokens) == (35, 10, 15)


def test_anthropic_stream_without_message_stop_and_error_event() -> None:
    cut = ANTHROPIC[: ANTHROPIC.index(b"event: message_delta")]
    with pytest.raises(StreamError) as info:
        _feed_split(AnthropicStream, cut, len(cut) // 2)
    assert info.value.kind == "protocol"
    stream = AnthropicStream(_record(), keep_text=False)
    error = (
        b'event: error\ndata: {"type": "error", "error": '
        + b'{"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    with pytest.raises(StreamError) as info:
        stream.feed(error, 1.0)
    assert (info.value.kind, info.value.text) == ("stream_error", "overloaded_error: Overloaded")


@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completions"])
@pytest.mark.parametrize(
    "style",
    [
        {"separators": (",", ":"), "ensure_ascii": False},  # vLLM / mock: the fast path, raw UTF-8
        {"separators": (", ", ": "), "ensure_ascii": True},  # Python's default: the fast path, \u escapes
        {"separators": (" ,", " : "), "indent": 1},  # unusual spacing: always json.loads
    ],
    ids=["compact", "spaced", "odd"],
)
def test_fast_path_and_json_path_agree_on_every_formatting(chat: bool, style: dict[str, object]) -> None:
    texts = ["plain", "", 'quote " in', "back\\slash", "é ☃", "line\nbreak", '{"content":"x"}', "end"]
    rec = _record()
    stream = OpenAIStream(rec, chat=chat, keep_text=True)
    for i, text in enumerate(texts):
        choice: dict[str, object] = {"index": 0}
        choice |= {"delta": {"content": text}} if chat else {"text": text}
        choice |= {"logprobs": None, "finish_reason": "stop" if text == "end" else None}
        body = json.dumps({"id": "x", "choices": [choice]}, **style)  # type: ignore[arg-type]
        # A pretty-printed body goes out as several `data:` lines, which the parser joins with newlines.
        stream.feed("".join(f"data: {line}\n" for line in body.split("\n")).encode() + b"\n", float(i))
    stream.keep_text()
    stream.close()
    assert rec.output_text == "".join(texts)
    assert rec.token_chunk_s == [float(i) for i, text in enumerate(texts) if text]
    assert rec.first_token_s == rec.first_content_s == 0.0
