"""Anthropic's dialect for the mock: POST /v1/messages with the real event sequence and error shape."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from serve.mock.answers import Answer, Generation, content_text, last_user_text
from serve.mock.cache import CacheBlock, Ttl
from serve.mock.protocols import ApiError, Rendered, check_fields, get_bool, get_int, get_number, get_stops

MESSAGES_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "metadata",
        "stop_sequences",
        "stream",
        "system",
        "temperature",
        "thinking",
        "tool_choice",
        "tools",
        "top_k",
        "top_p",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
    }
)
_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


_TEXT_BLOCK = {"type": "text", "text": ""}


def _block_start(index: int, block: dict[str, str]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _event(name: str, data: Any) -> bytes:
    return b"event: %b\ndata: %b\n\n" % (name.encode(), _dumps(data))


def _usage(gen: Generation, prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    """Anthropic's usage: input_tokens excludes both the cache reads and the cache writes."""
    use = gen.cache_use
    return {
        "input_tokens": prompt_tokens - use.read - use.write,
        "cache_creation_input_tokens": use.write,
        "cache_read_input_tokens": use.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": use.write_5m,
            "ephemeral_1h_input_tokens": use.write_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _final_usage(gen: Generation, answer: Answer) -> dict[str, Any]:
    usage: dict[str, Any] = {"output_tokens": answer.output_tokens}
    if gen.thinking:
        usage["output_tokens_details"] = {"thinking_tokens": answer.reasoning_tokens}
    return usage


def _signature(answer: Answer) -> str:
    """An opaque, deterministic signature for a thinking block."""
    digest = hashlib.sha256("".join(answer.reasoning).encode()).digest()
    return base64.b64encode(digest).decode()


def _required(name: str) -> ApiError:
    return ApiError(400, f"{name}: Field required", param=name)


def _cache_ttl(value: Any, where: str) -> Ttl | None:
    """The lifetime a `cache_control` value asks for; None when the block has none."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        raise ApiError(400, f"{where}.cache_control.type: Input should be 'ephemeral'", param=where)
    ttl = value.get("ttl", "5m")
    if ttl not in ("5m", "1h"):
        raise ApiError(400, f"{where}.cache_control.ttl: Input should be '5m' or '1h'", param=where)
    return "1h" if ttl == "1h" else "5m"


def _blocks(content: Any, role: str, where: str) -> list[CacheBlock]:
    """A system prompt's or a message's content as cache blocks (non-text blocks count no text)."""
    if isinstance(content, str):
        return [CacheBlock(role, content)]
    out = []
    for i, block in enumerate(content if isinstance(content, list) else []):
        if not isinstance(block, dict):
            raise ApiError(400, f"{where}.{i}: Input should be an object", param=where)
        text = block.get("text")
        ttl = _cache_ttl(block.get("cache_control"), f"{where}.{i}")
        out.append(CacheBlock(role, text if isinstance(text, str) else "", ttl))
    return out


def _thinking(body: dict[str, Any], gen: Generation) -> None:
    """Extended thinking: `{"type": "enabled", "budget_tokens": N}` (N ≥ 1,024, below max_tokens)."""
    value = body.get("thinking")
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "disabled":
        return
    if kind == "adaptive":
        gen.thinking, gen.reasoning_cap = True, None
        return
    if kind != "enabled":
        raise ApiError(400, "thinking: Input tag does not match any of 'enabled', 'disabled', 'adaptive'")
    budget = value.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise ApiError(400, "thinking.enabled.budget_tokens: Field required", param="thinking")
    if budget < 1024:
        raise ApiError(
            400,
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            param="thinking",
        )
    if gen.max_tokens is not None and budget >= gen.max_tokens:
        raise ApiError(
            400,
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
            param="max_tokens",
        )
    gen.thinking, gen.reasoning_cap = True, budget


class AnthropicMessages:
    """POST /v1/messages."""

    def __init__(self, max_breakpoints: int = 4) -> None:
        self.max_breakpoints = max_breakpoints

    def parse(self, body: Any, strict: bool) -> Generation:
        """Check a messages request (max_tokens is required, as in the real API)."""
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        check_fields(body, MESSAGES_FIELDS, strict, "{name}: Extra inputs are not permitted")
        model = body.get("model")
        if model is None:
            raise _required("model")
        if not isinstance(model, str):
            raise ApiError(400, "model: Input should be a valid string", param="model")
        if body.get("max_tokens") is None:
            raise _required("max_tokens")
        gen = Generation(api="messages", model=model, prompt_text="", match_text="")
        gen.max_tokens = get_int(body, "max_tokens", 1)
        messages = body.get("messages")
        if messages is None:
            raise _required("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages: Input should be a non-empty list", param="messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise ApiError(
                    400, f"messages.{i}.role: Input should be 'user' or 'assistant'", param="messages"
                )
            if not isinstance(message.get("content"), str | list):
                raise ApiError(
                    400, f"messages.{i}.content: Input should be a string or a list", param="messages"
                )
        system = body.get("system")
        if system is not None and not isinstance(system, str | list):
            raise ApiError(400, "system: Input should be a string or a list of text blocks", param="system")
        get_number(body, "temperature", 0.0, 1.0)
        get_number(body, "top_p", 0.0, 1.0)
        gen.stop = get_stops(body, "stop_sequences", None)
        gen.stream = get_bool(body, "stream")
        gen.ignore_eos = get_bool(body, "ignore_eos")
        gen.min_tokens = get_int(body, "min_tokens", 0) or 0
        gen.prompt_text = content_text(system) + "".join(content_text(m["content"]) for m in messages)
        gen.match_text = last_user_text(messages)
        gen.cache = "explicit"
        blocks = [] if system is None else _blocks(system, "system", "system")
        for i, message in enumerate(messages):
            blocks += _blocks(message["content"], message["role"], f"messages.{i}.content")
        marked = sum(b.ttl is not None for b in blocks)
        if marked > self.max_breakpoints:
            raise ApiError(
                400,
                f"A maximum of {self.max_breakpoints} blocks with cache_control may be provided. "
                f"Found {marked}.",
            )
        gen.cache_blocks = blocks
        _thinking(body, gen)
        return gen

    def body(
        self, gen: Generation, answers: list[Answer], prompt_tokens: int, rid: int, created: int
    ) -> bytes:
        """A message object."""
        answer = answers[0]
        content: list[dict[str, Any]] = []
        if gen.thinking and answer.reasoning:
            thinking = "".join(answer.reasoning)
            content.append({"type": "thinking", "thinking": thinking, "signature": _signature(answer)})
        content.append({"type": "text", "text": "".join(answer.pieces)})
        usage = _usage(gen, prompt_tokens, answer.output_tokens)
        if gen.thinking:
            usage["output_tokens_details"] = {"thinking_tokens": answer.reasoning_tokens}
        return _dumps(
            {
                "id": f"msg_{rid:024x}",
                "type": "message",
                "role": "assistant",
                "model": gen.model,
                "content": content,
                "stop_reason": _STOP_REASON[answer.finish],
                "stop_sequence": answer.stop_sequence,
                "usage": usage,
            }
        )

    def stream(self, gen: Generation, answer: Answer, prompt_tokens: int, rid: int, created: int) -> Rendered:
        """message_start, content_block_start, ping, content_block_delta…, message_delta, message_stop."""
        message: dict[str, Any] = {
            "id": f"msg_{rid:024x}",
            "type": "message",
            "role": "assistant",
            "model": gen.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(gen, prompt_tokens, 1),
        }
        thinks = gen.thinking and bool(answer.reasoning)
        text = 1 if thinks else 0  # the text block's index
        first_block = {"type": "thinking", "thinking": "", "signature": ""} if thinks else _TEXT_BLOCK
        head = (
            _event("message_start", {"type": "message_start", "message": message})
            + _event("content_block_start", _block_start(0, first_block))
            + _event("ping", {"type": "ping"})
        )
        switch = b""
        if thinks:
            signature = {"type": "signature_delta", "signature": _signature(answer)}
            switch = (
                _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": signature})
                + _event("content_block_stop", {"type": "content_block_stop", "index": 0})
                + _event("content_block_start", _block_start(1, _TEXT_BLOCK))
            )
        delta = {"stop_reason": _STOP_REASON[answer.finish], "stop_sequence": answer.stop_sequence}
        tail = (
            _event("content_block_stop", {"type": "content_block_stop", "index": text})
            + _event(
                "message_delta", {"type": "message_delta", "delta": delta, "usage": _final_usage(gen, answer)}
            )
            + _event("message_stop", {"type": "message_stop"})
        )
        return Rendered(
            head=head,
            first=b"",
            prefix=b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
            b'"delta":{"type":"text_delta","text":"' % text,
            suffix=b'"}}\n\n',
            tail=tail,
            reasoning_prefix=b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"thinking_delta","thinking":"',
            switch=switch,
        )

    def error(self, err: ApiError) -> bytes:
        """Anthropic's error body."""
        kind = _ERROR_TYPES.get(err.status, "api_error")
        return _dumps({"type": "error", "error": {"type": kind, "message": err.message}})

    def not_found(self, model: str) -> ApiError:
        """Anthropic's 404 for an unknown model."""
        return ApiError(404, f"model: {model}", param="model", kind="not_found_error")
