"""FastAPI app of the hf backend: OpenAI routes, /health, /metrics, OpenAI-shaped errors and auth."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve.hf.engine import HfEngine
from serve.hf.render import (
    TokenStr,
    chat_logprobs,
    collect,
    completion_logprobs,
    events,
    metrics_text,
    sse,
    tagged_events,
    usage,
)
from serve.hf.schema import ChatCompletionRequest, CompletionRequest, _GenerationRequest, error_body
from serve.hf.sequence import Delta, Failed, Finished, PromptLogprobs, SamplingParams
from serve.info import INFO_PATH, info_json


class ApiError(Exception):
    """An error answered with OpenAI's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code


@dataclass(frozen=True)
class AppConfig:
    """What the routes need besides the engine."""

    served_model_name: str
    max_model_len: int
    api_key: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # GET /llmbench/info, as served


def _validation_response(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return JSONResponse(
            error_body(f"The request body is not valid JSON: {detail}".strip()), status_code=400
        )
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    message = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg', 'invalid')}"
        for e in errors
    )
    return JSONResponse(error_body(message, param=param), status_code=400)


def _http_response(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = "not_found" if exc.status_code == 404 else None
    return JSONResponse(error_body(str(exc.detail), code=code), status_code=exc.status_code)


def _api_error_response(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    body = error_body(exc.message, type_=exc.type, param=exc.param, code=exc.code)
    return JSONResponse(body, status_code=exc.status)


def build_app(engine: HfEngine, config: AppConfig) -> FastAPI:
    """The ASGI app serving `engine` under config.served_model_name."""
    app = FastAPI(title="llmbench hf backend", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(RequestValidationError, _validation_response)
    app.add_exception_handler(StarletteHTTPException, _http_response)
    app.add_exception_handler(ApiError, _api_error_response)
    tokenizer = engine.tokenizer
    created = int(time.time())

    @lru_cache(maxsize=65536)
    def token_text(token_id: int) -> str:
        return str(tokenizer.decode([token_id], skip_special_tokens=False))

    def token_id_str(token_id: int) -> str:
        return f"token_id:{token_id}"

    def token_namer(req: _GenerationRequest) -> TokenStr:
        return token_id_str if req.return_tokens_as_token_ids else token_text

    async def check_key(request: Request) -> None:
        if config.api_key is None:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), config.api_key.encode()):
            raise ApiError(401, "Incorrect or missing API key.", code="invalid_api_key")

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_key)])

    def response_head(id_prefix: str, obj: str) -> dict[str, Any]:
        """Fields every response and chunk starts with."""
        created = int(time.time())
        return {
            "id": f"{id_prefix}-{uuid.uuid4().hex}",
            "object": obj,
            "created": created,
            "model": config.served_model_name,
        }

    def check_model(name: str) -> None:
        if name != config.served_model_name:
            raise ApiError(404, f"The model `{name}` does not exist.", param="model", code="model_not_found")

    def params_for(
        req: _GenerationRequest, prompt_len: int, prompt_param: str = "prompt", **extra: Any
    ) -> SamplingParams:
        limit = config.max_model_len
        if prompt_len == 0:
            raise ApiError(400, "The prompt is empty.", param=prompt_param)
        requested = req.requested_max_tokens
        if prompt_len > limit or (prompt_len == limit and requested != 0):
            raise ApiError(
                400,
                f"This model's maximum context length is {limit} tokens. However, your prompt has "
                f"{prompt_len} tokens. Please reduce the length of the prompt.",
                param=prompt_param,
                code="context_length_exceeded",
            )
        max_tokens = requested if requested is not None else limit - prompt_len
        if prompt_len + max_tokens > limit:
            raise ApiError(
                400,
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{prompt_len + max_tokens} tokens ({prompt_len} in the prompt, {max_tokens} in the "
                "completion). Please reduce the length of the prompt or completion.",
                param="max_tokens",
                code="context_length_exceeded",
            )
        if req.min_tokens > max_tokens:
            raise ApiError(400, "min_tokens must not exceed max_tokens.", param="min_tokens")
        temperature = 1.0 if req.temperature is None else req.temperature
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            seed=req.seed,
            stop=req.stop_strings,
            ignore_eos=req.ignore_eos,
            min_tokens=req.min_tokens,
            **extra,
        )

    def encode(prompt: str | list[int]) -> tuple[list[int], str]:
        if isinstance(prompt, str):
            return list(tokenizer(prompt, add_special_tokens=True)["input_ids"]), prompt
        if any(t < 0 or t >= len(tokenizer) for t in prompt):
            raise ApiError(400, "The prompt holds token ids outside the vocabulary.", param="prompt")
        return prompt, str(tokenizer.decode(prompt, skip_special_tokens=False))

    @app.get(INFO_PATH)
    async def info() -> Response:
        return Response(info_json(config.info), media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        if not engine.alive:
            return JSONResponse(error_body("the engine is not running", type_="server_error"), 503)
        return Response(status_code=200)

    @app.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(
            metrics_text(engine.stats, config.served_model_name), media_type="text/plain; version=0.0.4"
        )

    @v1.get("/models")
    async def models() -> dict[str, Any]:
        card = {
            "id": config.served_model_name,
            "object": "model",
            "created": created,
            "owned_by": "llmbench",
            "max_model_len": config.max_model_len,
        }
        return {"object": "list", "data": [card]}

    @v1.post("/completions", response_model=None)
    async def completions(req: CompletionRequest) -> Response | dict[str, Any]:
        check_model(req.model)
        token_str = token_namer(req)
        encoded = [encode(p) for p in req.prompts()]
        k = req.logprobs
        params = [
            params_for(req, len(ids), logprobs=k, prompt_logprobs=k if req.echo and k is not None else None)
            for ids, _ in encoded
        ]
        if req.echo and req.stream and k is not None:
            raise ApiError(400, "echo with logprobs is not supported when streaming.", param="echo")
        head = response_head("cmpl", "text_completion")
        prompt_ids = [ids for ids, _ in encoded]
        if req.stream:
            gen = _stream_completions(engine, req, head, encoded, params, token_str)
            return StreamingResponse(gen, media_type="text/event-stream")
        results = await asyncio.gather(
            *(collect(engine, ids, p) for ids, p in zip(prompt_ids, params, strict=True))
        )
        choices, p_total, c_total = [], 0, 0
        for i, ((ids, text), result) in enumerate(zip(encoded, results, strict=True)):
            if result.error is not None or result.finish is None:
                raise ApiError(500, result.error or "generation failed", type_="server_error")
            logprobs = None
            if k is not None:
                entries = list(result.prompt_logprobs) if req.echo else []
                all_ids = (ids if req.echo else []) + result.token_ids
                logprobs = completion_logprobs([*entries, *result.logprobs], all_ids, token_str)
            out_text = (text if req.echo else "") + result.text
            choices.append(
                {"index": i, "text": out_text, "logprobs": logprobs, "finish_reason": result.finish.reason}
            )
            p_total += result.finish.prompt_tokens
            c_total += result.finish.completion_tokens
        return {**head, "choices": choices, "usage": usage(p_total, c_total)}

    @v1.post("/chat/completions", response_model=None)
    async def chat_completions(req: ChatCompletionRequest) -> Response | dict[str, Any]:
        check_model(req.model)
        token_str = token_namer(req)
        if getattr(tokenizer, "chat_template", None) is None:
            raise ApiError(400, "This model has no chat template; use /v1/completions.", param="messages")
        messages = [{"role": m.role, "content": m.text()} for m in req.messages]
        try:
            text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except Exception as exc:  # jinja raises for messages the template rejects
            raise ApiError(400, f"The chat template rejected the messages: {exc}", param="messages") from exc
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        k = (req.top_logprobs or 0) if req.logprobs else None
        params = params_for(req, len(ids), "messages", logprobs=k)
        head = response_head("chatcmpl", "chat.completion")
        if req.stream:
            gen = _stream_chat(engine, req, head, ids, params, token_str)
            return StreamingResponse(gen, media_type="text/event-stream")
        result = await collect(engine, ids, params)
        if result.error is not None or result.finish is None:
            raise ApiError(500, result.error or "generation failed", type_="server_error")
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": result.text},
            "logprobs": chat_logprobs(result.logprobs, token_str) if k is not None else None,
            "finish_reason": result.finish.reason,
        }
        fin = result.finish
        return {**head, "choices": [choice], "usage": usage(fin.prompt_tokens, fin.completion_tokens)}

    app.include_router(v1)
    return app


async def _stream_chat(
    engine: HfEngine,
    req: ChatCompletionRequest,
    head: dict[str, Any],
    ids: list[int],
    params: SamplingParams,
    token_str: TokenStr,
) -> AsyncGenerator[str, None]:
    head = {**head, "object": "chat.completion.chunk"}
    if req.include_usage:
        head["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return sse({**head, "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    want_logprobs = params.logprobs is not None
    async with aclosing(events(engine, ids, params)) as stream:
        async for batch in stream:
            parts = []
            for event in batch:
                if isinstance(event, Delta) and (event.text or (want_logprobs and event.logprobs)):
                    lp = chat_logprobs(event.logprobs, token_str) if want_logprobs else None
                    parts.append(chunk({"content": event.text}, logprobs=lp))
                elif isinstance(event, Finished):
                    parts.append(chunk({}, finish=event.reason))
                    if req.include_usage:
                        u = usage(event.prompt_tokens, event.completion_tokens)
                        parts.append(sse({**head, "choices": [], "usage": u}))
                elif isinstance(event, Failed):
                    parts.append(sse(error_body(event.message, type_="server_error")))
            yield "".join(parts)
    yield "data: [DONE]\n\n"


async def _stream_completions(
    engine: HfEngine,
    req: CompletionRequest,
    head: dict[str, Any],
    encoded: Sequence[tuple[list[int], str]],
    params: Sequence[SamplingParams],
    token_str: TokenStr,
) -> AsyncGenerator[str, None]:
    if req.include_usage:
        head = {**head, "usage": None}
    want_logprobs = req.logprobs is not None

    def chunk(i: int, text: str, finish: str | None = None, logprobs: Any = None) -> str:
        choice = {"index": i, "text": text, "logprobs": logprobs, "finish_reason": finish}
        return sse({**head, "choices": [choice]})

    if req.echo:
        yield "".join(chunk(i, text) for i, (_, text) in enumerate(encoded))
    offsets = [len(text) if req.echo else 0 for _, text in encoded]
    p_total = c_total = 0
    async with aclosing(tagged_events(engine, [ids for ids, _ in encoded], params)) as stream:
        async for batch in stream:
            parts = []
            for i, event in batch:
                if isinstance(event, Delta) and (event.text or (want_logprobs and event.logprobs)):
                    lp = None
                    if want_logprobs:
                        lp = completion_logprobs(event.logprobs, event.token_ids, token_str, offsets[i])
                    offsets[i] += len(event.text)
                    parts.append(chunk(i, event.text, logprobs=lp))
                elif isinstance(event, Finished):
                    parts.append(chunk(i, "", finish=event.reason))
                    p_total += event.prompt_tokens
                    c_total += event.completion_tokens
                elif isinstance(event, Failed):
                    parts.append(sse(error_body(event.message, type_="server_error")))
                elif isinstance(event, PromptLogprobs):
                    pass
            if parts:
                yield "".join(parts)
    if req.include_usage:
        yield sse({**head, "choices": [], "usage": usage(p_total, c_total)})
    yield "data: [DONE]\n\n"
