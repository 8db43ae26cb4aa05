"""Anthropic's dialect for the mock: POST /v1/messages with the real event sequence and error shape."""

from __future__ import annotations

import json
from typing import Any

from serve.mock.answers import Answer, Generation, content_text, last_user_text
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


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _event(name: str, data: Any) -> bytes:
    return b"event: %b\ndata: %b\n\n" % (name.encode(), _dumps(data))


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def _required(name: str) -> ApiError:
    return ApiError(400, f"{name}: Field required", param=name)


class AnthropicMessages:
    """POST /v1/messages."""

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
        return gen

    def body(
        self, gen: Generation, answers: list[Answer], prompt_tokens: int, rid: int, created: int
    ) -> bytes:
        """A message object."""
        answer = answers[0]
        return _dumps(
            {
                "id": f"msg_{rid:024x}",
                "type": "message",
                "role": "assistant",
                "model": gen.model,
                "content": [{"type": "text", "text": "".join(answer.pieces)}],
                "stop_reason": _STOP_REASON[answer.finish],
                "stop_sequence": answer.stop_sequence,
                "usage": _usage(prompt_tokens, answer.tokens),
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
            "usage": _usage(prompt_tokens, 1),
        }
        head = (
            _event("message_start", {"type": "message_start", "message": message})
            + _event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
            + _event("ping", {"type": "ping"})
        )
        delta = {"stop_reason": _STOP_REASON[answer.finish], "stop_sequence": answer.stop_sequence}
        tail = (
            _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + _event(
                "message_delta",
                {"type": "message_delta", "delta": delta, "usage": {"output_tokens": answer.tokens}},
            )
            + _event("message_stop", {"type": "message_stop"})
        )
        return Rendered(
            head=head,
            first=b"",
            prefix=b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"',
            suffix=b'"}}\n\n',
            tail=tail,
        )

    def error(self, err: ApiError) -> bytes:
        """Anthropic's error body."""
        kind = _ERROR_TYPES.get(err.status, "api_error")
        return _dumps({"type": "error", "error": {"type": kind, "message": err.message}})

    def not_found(self, model: str) -> ApiError:
        """Anthropic's 404 for an unknown model."""
        return ApiError(404, f"model: {model}", param="model", kind="not_found_error")
