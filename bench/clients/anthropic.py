"""Anthropic messages client (POST {base}/messages, streamed).

Token-bearing events: `content_block_delta` with a `text_delta` (visible), `thinking_delta` (reasoning) or
`input_json_delta` (a tool call being written; visible, no text kept). Usage: `message_start` carries the
input tokens, `message_delta` the cumulative output tokens. The record's `input_tokens` is the whole prompt
(input + cache read + cache creation, as OpenAI's prompt_tokens counts it), `cached_input_tokens` the
cache reads and `cache_write_tokens` the cache creation, so cost can price the three apart; thinking
tokens (`output_tokens_details.thinking_tokens`, part of output_tokens) become `reasoning_tokens`.

Prompt caching: a request's `cache_breakpoints` (message indices) get `cache_control: {"type":
"ephemeral"}` (with `"ttl": "1h"` when asked) on their last content block, as an app marks a shared prefix.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bench.clients.base import (
    SHOWN_TEXT_CHARS,
    BaseClient,
    StreamError,
    path_of,
    stamp_text_run,
    stamp_token_chunk,
    text_bytes,
)
from bench.clients.sse import SSEParser, TextRun, parse_region
from bench.errors import TargetError
from bench.records import GenRequest, RequestRecord

ANTHROPIC_VERSION = "2023-06-01"
# A text delta read with one regex search instead of json.loads (see openai.py for why it is safe).
_TEXT_FAST = re.compile(rb'"delta": ?\{"type": ?"text_delta", ?"text": ?"([^"\\]*)"\}')
LEARN_READS = 4  # reads in which a stream looks for its text events' shape (bench.clients.sse.TextRun)


def _plain_text(obj: Any, text: str) -> bool:
    """A content_block_delta whose only effect is the visible text `text` (what the fast path assumes)."""
    return (
        isinstance(obj, dict)
        and obj.get("type") == "content_block_delta"
        and obj.get("delta") == {"type": "text_delta", "text": text}
    )


class AnthropicStream:
    """Consumes a messages event stream into a record."""

    __slots__ = (
        "_cache_create",
        "_cache_read",
        "_content",
        "_done",
        "_input",
        "_keep",
        "_parser",
        "_reasoning",
        "_rec",
        "_run",
        "_tries",
    )

    def __init__(self, record: RequestRecord, *, keep_text: bool, text_runs: bool = True) -> None:
        """`text_runs`: count runs of plain text deltas a read at a time (bench.clients.sse.TextRun);
        False parses every event on its own (the same record, more CPU)."""
        self._rec = record
        self._keep = keep_text
        self._parser = SSEParser()
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._done = False
        self._input = self._cache_read = self._cache_create = 0
        self._run: TextRun | None = None
        self._tries = LEARN_READS if text_runs else 0

    def feed(self, data: bytes, now: float) -> None:
        """Parse the bytes of one read; `now` is when they were read (perf_counter s)."""
        region = self._parser.region(data)
        if not region:
            return
        run = self._run
        if run is None and self._tries:
            self._tries -= 1
            run = self._run = TextRun.learn(region, _TEXT_FAST, _plain_text)
        if run is not None:
            parts = run.split(region)
            if parts is not None:  # runs of plain text events, each counted in one go, in stream order
                for part in parts:
                    if isinstance(part, bytes):
                        self._events(part, now)
                        continue
                    joined = b"".join(part)
                    stamp_text_run(self._rec, part, joined, now)
                    if self._keep and joined:
                        self._content.append(joined.decode())
                return
        self._events(region, now)

    def _events(self, region: bytes, now: float) -> None:
        """The events of complete blocks, one by one."""
        rec = self._rec
        loads = json.loads
        fast = _TEXT_FAST.search
        for _event, payload in parse_region(region):
            match = fast(payload)
            if match is not None:
                raw = match.group(1)
                if raw:
                    rec.output_bytes = (rec.output_bytes or 0) + len(raw)  # no escapes: the text's bytes
                    rec.token_chunk_s.append(now)
                    if rec.first_content_s is None:
                        rec.first_content_s = now
                        if rec.first_token_s is None:
                            rec.first_token_s = now
                    if self._keep:
                        self._content.append(raw.decode())
                continue
            obj = loads(payload)
            kind = obj.get("type")
            if kind == "content_block_delta":
                delta = obj["delta"]
                delta_kind = delta.get("type")
                text: str | None = None
                reasoning: str | None = None
                if delta_kind == "text_delta":
                    text = delta.get("text")
                    visible = bool(text)
                elif delta_kind == "thinking_delta":
                    reasoning = delta.get("thinking")
                    visible = False
                else:
                    visible = delta_kind == "input_json_delta" and bool(delta.get("partial_json"))
                if visible or reasoning:
                    stamp_token_chunk(rec, now, visible=visible)
                    rec.output_bytes = (rec.output_bytes or 0) + text_bytes(text, reasoning)
                    if self._keep:
                        if text:
                            self._content.append(text)
                        if reasoning:
                            self._reasoning.append(reasoning)
            elif kind == "message_start":
                self._usage(obj["message"].get("usage"), final=False)
            elif kind == "message_delta":
                self._usage(obj.get("usage"), final=True)
            elif kind == "message_stop":
                self._done = True
            elif kind == "error":
                error = obj.get("error") or {}
                message = error.get("message") if isinstance(error, dict) else str(error)
                error_type = error.get("type", "error") if isinstance(error, dict) else "error"
                raise StreamError("stream_error", f"{error_type}: {message}")
            # ping, content_block_start/stop: nothing to measure

    def _usage(self, usage: Any, *, final: bool) -> None:
        if not isinstance(usage, dict):
            return
        rec = self._rec
        for key, attr in (
            ("input_tokens", "_input"),
            ("cache_read_input_tokens", "_cache_read"),
            ("cache_creation_input_tokens", "_cache_create"),
        ):
            value = usage.get(key)
            if isinstance(value, int):
                setattr(self, attr, value)
        if "input_tokens" in usage or "cache_read_input_tokens" in usage:
            rec.input_tokens = self._input + self._cache_read + self._cache_create
            rec.cached_input_tokens = self._cache_read
            rec.cache_write_tokens = self._cache_create
        output = usage.get("output_tokens")
        # message_start's output_tokens is a placeholder (often 1); message_delta's is the cumulative count.
        if final and isinstance(output, int):
            rec.output_tokens = output
        details = usage.get("output_tokens_details")
        if final and isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
            rec.reasoning_tokens = details["thinking_tokens"]  # part of output_tokens

    def keep_text(self) -> None:
        """Put the text received so far on the record (after a complete or a broken stream)."""
        if self._keep:
            self._rec.output_text = "".join(self._content)
            self._rec.reasoning_text = "".join(self._reasoning)

    def close(self) -> None:
        """End of body: a stream without message_stop was cut short."""
        if not self._done:
            raise StreamError(
                "protocol",
                f"stream ended before message_stop (unparsed bytes: {self._parser.pending[:80]!r})",
            )


def _text_blocks(content: Any) -> list[dict[str, Any]]:
    """Message content as a list of content blocks (a string becomes one text block)."""
    if isinstance(content, list):
        return [dict(b) if isinstance(b, dict) else {"type": "text", "text": str(b)} for b in content]
    return [{"type": "text", "text": str(content or "")}]


def _with_cache_control(message: dict[str, Any], control: dict[str, str]) -> dict[str, Any]:
    """A copy of `message` whose last content block carries `cache_control` (a prompt-cache breakpoint)."""
    blocks = _text_blocks(message.get("content"))
    if not blocks:
        return message
    blocks[-1]["cache_control"] = dict(control)
    return {**message, "content": blocks}


class AnthropicClient(BaseClient):
    """Anthropic messages API (and servers that speak it, such as llmbench's mock)."""

    api = "anthropic"
    endpoint = "/messages"

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self.config.api_key:
            headers["x-api-key"] = self.config.api_key
        return headers

    def stream(self, record: RequestRecord) -> AnthropicStream:
        return AnthropicStream(record, keep_text=self.keeps_text)

    def body(self, request: GenRequest) -> dict[str, Any]:
        messages = request.messages
        if messages is None:
            messages = [{"role": "user", "content": request.prompt or ""}]
        marked = set(request.cache_breakpoints)
        if marked:
            control = (
                {"type": "ephemeral"} if request.cache_ttl == "5m" else {"type": "ephemeral", "ttl": "1h"}
            )
            messages = [_with_cache_control(m, control) if i in marked else m for i, m in enumerate(messages)]
        # Anthropic takes the system prompt as a top-level field, not as a message.
        system = [m.get("content") or "" for m in messages if m.get("role") == "system"]
        body: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": request.max_tokens,
            "messages": [m for m in messages if m.get("role") != "system"],
            "stream": True,
        }
        if system and all(isinstance(s, str) for s in system):
            body["system"] = "\n\n".join(system)
        elif system:  # a breakpoint on a system prompt: the system prompt as text blocks
            body["system"] = [b for s in system for b in _text_blocks(s)]
        return self.sampling_fields(request, body)

    async def check(self) -> None:
        """A non-streamed 1-token request: the messages API has no model list that holds every alias."""
        probe = self.body(GenRequest(0, prompt="Hi", max_tokens=1))
        probe["stream"] = False
        probe.pop("ignore_eos", None)
        probe.pop("min_tokens", None)
        reply = await self.post_json(self.url, probe)
        status, raw = reply.status, reply.raw
        if status in (401, 403):
            raise self.auth_error(self.url, status, raw)
        if not reply.is_api_answer:
            raise self.not_an_llm_server((f"POST {path_of(self.url)}", reply))
        if status == 200:
            return
        message = self.error_message(raw, SHOWN_TEXT_CHARS)
        if status == 404:
            raise TargetError(
                f"{self.url} does not serve model {self.config.model!r} ({message}); "
                "check --model or the registry entry's model id",
                url=self.url,
                model=self.config.model,
            )
        raise TargetError(
            f"{self.url} answered HTTP {status} to a 1-token test request: {message}",
            url=self.url,
            model=self.config.model,
        )
