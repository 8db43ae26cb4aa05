"""OpenAI's dialect for the mock: /v1/chat/completions and /v1/completions, chunks shaped like OpenAI's."""

from __future__ import annotations

import json
from typing import Any

from serve.mock.answers import Answer, Generation, content_text, last_user_text
from serve.mock.protocols import (
    ApiError,
    Rendered,
    check_fields,
    get_bool,
    get_int,
    get_number,
    get_stops,
    type_error,
)

_COMMON = frozenset(
    {
        "model",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_tokens",
        "n",
        "presence_penalty",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "user",
    }
)
CHAT_FIELDS = _COMMON | {
    "messages",
    "max_completion_tokens",
    "top_logprobs",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "service_tier",
    "store",
    "metadata",
    "reasoning_effort",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
    "safety_identifier",
}
COMPLETION_FIELDS = _COMMON | {"prompt", "best_of", "echo", "suffix"}
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length"}


def _common(body: Any, strict: bool, known: frozenset[str]) -> Generation:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    check_fields(body, known, strict, "Unrecognized request argument supplied: {name}")
    model = body.get("model")
    if model is None:
        raise ApiError(
            400, "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    if not isinstance(model, str):
        raise type_error("model", "a string", model)
    gen = Generation(api="", model=model, prompt_text="", match_text="")
    max_tokens = get_int(body, "max_tokens", 1)
    completion = get_int(body, "max_completion_tokens", 1)
    gen.max_tokens = completion if completion is not None else max_tokens
    get_number(body, "temperature", 0.0, 2.0)
    get_number(body, "top_p", 0.0, 1.0)
    gen.seed = get_int(body, "seed", -(2**63))
    gen.stop = get_stops(body, "stop", 4 if strict else None)
    n = get_int(body, "n", 1)
    if n is not None and n != 1:
        raise ApiError(
            400, "Invalid 'n': the mock server supports n=1 only.", param="n", code="invalid_value"
        )
    gen.stream = get_bool(body, "stream")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise type_error("stream_options", "an object", options)
        if not gen.stream:
            raise ApiError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        gen.include_usage = get_bool(options, "include_usage")
    gen.ignore_eos = get_bool(body, "ignore_eos")
    gen.min_tokens = get_int(body, "min_tokens", 0) or 0
    return gen


def _usage(gen: Generation, prompt: int, answers: list[Answer]) -> dict[str, Any]:
    """OpenAI's usage object: cached tokens inside prompt_tokens, reasoning inside completion_tokens."""
    completion = sum(a.output_tokens for a in answers)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached = gen.cache_use.read
    if gen.api == "chat":
        usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": sum(a.reasoning_tokens for a in answers),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    elif cached:  # vLLM's completions usage carries the details only when it has something to say
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class _OpenAIBase:
    object_name = ""
    id_prefix = ""

    def error(self, err: ApiError) -> bytes:
        """OpenAI's error body."""
        return _dumps(
            {"error": {"message": err.message, "type": err.kind, "param": err.param, "code": err.code}}
        )

    def not_found(self, model: str) -> ApiError:
        """OpenAI's 404 for an unknown model."""
        return ApiError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )

    def _envelope(self, gen: Generation, rid: int, created: int, suffix: str = "") -> bytes:
        ident = json.dumps(f"{self.id_prefix}{rid:024x}")
        return b'{"id":%b,"object":"%b","created":%d,"model":%b,"choices":[' % (
            ident.encode(),
            (self.object_name + suffix).encode(),
            created,
            json.dumps(gen.model).encode(),
        )

    def _tail(
        self, gen: Generation, answer: Answer, prompt_tokens: int, env: bytes, last_choice: bytes
    ) -> bytes:
        usage_null = b',"usage":null' if gen.include_usage else b""
        out = b"data: " + env + last_choice + b"]" + usage_null + b"}\n\n"
        if gen.include_usage:
            out += b"data: " + env + b'],"usage":' + _dumps(_usage(gen, prompt_tokens, [answer])) + b"}\n\n"
        return out + b"data: [DONE]\n\n"


class OpenAIChat(_OpenAIBase):
    """POST /v1/chat/completions."""

    object_name = "chat.completion"
    id_prefix = "chatcmpl-"

    def __init__(self, reasoning_field: str = "reasoning_content") -> None:
        self.reasoning_field = reasoning_field  # vLLM streams reasoning as reasoning_content or reasoning

    def parse(self, body: Any, strict: bool) -> Generation:
        """Check a chat request."""
        gen = _common(body, strict, CHAT_FIELDS)
        messages = body.get("messages")
        if messages is None:
            raise ApiError(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if not isinstance(messages, list):
            raise type_error("messages", "an array", messages)
        if not messages:
            raise ApiError(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
                "array instead.",
                param="messages",
                code="empty_array",
            )
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise type_error(f"messages[{i}]", "an object", message)
            role = message.get("role")
            if role not in _ROLES:
                raise ApiError(
                    400,
                    f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                    "'function', 'tool', and 'developer'.",
                    param=f"messages[{i}].role",
                    code="invalid_value",
                )
            content = message.get("content")
            if not (isinstance(content, str | list) or (content is None and role == "assistant")):
                raise type_error(f"messages[{i}].content", "one of a string or array of objects", content)
        gen.api = "chat"
        gen.reasoning_cap = None  # a reasoning model reasons on every chat request
        gen.prompt_text = "".join(content_text(m.get("content")) for m in messages)
        gen.match_text = last_user_text(messages)
        return gen

    def body(
        self, gen: Generation, answers: list[Answer], prompt_tokens: int, rid: int, created: int
    ) -> bytes:
        """A chat.completion object."""
        answer = answers[0]
        message: dict[str, Any] = {"role": "assistant", "content": "".join(answer.pieces), "refusal": None}
        if answer.reasoning:
            message[self.reasoning_field] = "".join(answer.reasoning)
        return _dumps(
            {
                "id": f"{self.id_prefix}{rid:024x}",
                "object": self.object_name,
                "created": created,
                "model": gen.model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": _FINISH[answer.finish],
                    }
                ],
                "usage": _usage(gen, prompt_tokens, answers),
            }
        )

    def stream(self, gen: Generation, answer: Answer, prompt_tokens: int, rid: int, created: int) -> Rendered:
        """chat.completion.chunk events: role, reasoning…, content…, finish, usage, [DONE]."""
        env = self._envelope(gen, rid, created, ".chunk")
        usage_null = b',"usage":null' if gen.include_usage else b""
        end = b"]" + usage_null + b"}\n\n"
        first = (
            b"data: " + env + b'{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}'
        )
        last = (
            b'{"index":0,"delta":{},"logprobs":null,"finish_reason":"%b"}' % _FINISH[answer.finish].encode()
        )
        return Rendered(
            head=b"",
            first=first + end,
            prefix=b"data: " + env + b'{"index":0,"delta":{"content":"',
            suffix=b'"},"logprobs":null,"finish_reason":null}' + end,
            tail=self._tail(gen, answer, prompt_tokens, env, last),
            reasoning_prefix=b"data: " + env + b'{"index":0,"delta":{"%b":"' % self.reasoning_field.encode(),
        )


class OpenAICompletions(_OpenAIBase):
    """POST /v1/completions (a prompt string, token ids, or a batch of either when not streamed)."""

    object_name = "text_completion"
    id_prefix = "cmpl-"

    def parse(self, body: Any, strict: bool) -> Generation:
        """Check a completions request."""
        gen = _common(body, strict, COMPLETION_FIELDS)
        prompt = body.get("prompt")
        if prompt is None:
            raise ApiError(
                400,
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        prompts: list[Any] = (
            prompt if isinstance(prompt, list) and prompt and not _is_ids(prompt) else [prompt]
        )
        texts: list[str] = []
        ids = 0
        for p in prompts:
            if isinstance(p, str):
                texts.append(p)
            elif isinstance(p, list) and _is_ids(p):
                texts.append("")
                ids += len(p)
            else:
                raise type_error("prompt", "a string, an array of strings or an array of token ids", prompt)
        if len(texts) > 1 and gen.stream:
            raise ApiError(
                400, "The mock server streams one prompt at a time.", param="prompt", code="invalid_value"
            )
        gen.api = "completions"
        gen.prompt_text = "".join(texts)
        gen.match_text = texts[0]
        gen.batch = texts if len(texts) > 1 else []
        if ids:
            gen.prompt_tokens = ids
        return gen

    def body(
        self, gen: Generation, answers: list[Answer], prompt_tokens: int, rid: int, created: int
    ) -> bytes:
        """A text_completion object with one choice per prompt."""
        choices = [
            {"text": "".join(a.pieces), "index": i, "logprobs": None, "finish_reason": _FINISH[a.finish]}
            for i, a in enumerate(answers)
        ]
        usage = _usage(gen, prompt_tokens, answers)
        return _dumps(
            {
                "id": f"{self.id_prefix}{rid:024x}",
                "object": self.object_name,
                "created": created,
                "model": gen.model,
                "choices": choices,
                "usage": usage,
            }
        )

    def stream(self, gen: Generation, answer: Answer, prompt_tokens: int, rid: int, created: int) -> Rendered:
        """text_completion events: text…, finish, usage, [DONE]."""
        env = self._envelope(gen, rid, created)
        usage_null = b',"usage":null' if gen.include_usage else b""
        last = b'{"index":0,"text":"","logprobs":null,"finish_reason":"%b"}' % _FINISH[answer.finish].encode()
        return Rendered(
            head=b"",
            first=b"",
            prefix=b"data: " + env + b'{"index":0,"text":"',
            suffix=b'","logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n",
            tail=self._tail(gen, answer, prompt_tokens, env, last),
        )


def _is_ids(value: list[Any]) -> bool:
    return bool(value) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
