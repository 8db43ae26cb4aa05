"""OpenAI chat and completions clients, for OpenAI itself and every OpenAI-compatible server (vLLM, ours).

Token-bearing chunks: chat `delta.content`, `delta.reasoning_content` / `delta.reasoning` (vLLM's names for
reasoning text) or `delta.tool_calls`; completions `choices[0].text`. A role-only first chunk and the
usage-only last chunk (`choices: []`, asked for with `stream_options.include_usage`) are not token chunks.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from bench.clients.base import (
    SHOWN_TEXT_CHARS,
    BaseClient,
    Reply,
    StreamError,
    path_of,
    stamp_text_run,
    stamp_token_chunk,
    text_bytes,
)
from bench.clients.sse import SSEParser, TextRun, parse_region
from bench.errors import TargetError
from bench.records import GenRequest, RequestRecord

_DONE = b"[DONE]"
# Why a fast path: json.loads is most of the client's per-chunk cost. A chunk whose shape is certain (a
# delta with only a content string free of escapes, finish_reason null) is read with one regex search;
# every other chunk, and every chunk of an unusually formatted server, goes through json.loads. A quote
# inside any JSON string is escaped, so the pattern cannot match inside a string value.
_CHAT_FAST = re.compile(
    rb'"delta": ?\{"content": ?"([^"\\]*)"\}, ?(?:"logprobs": ?null, ?)?"finish_reason": ?null'
)
_TEXT_FAST = re.compile(rb'"text": ?"([^"\\]*)", ?(?:"logprobs": ?null, ?)?"finish_reason": ?null')
_NEVER = re.compile(rb"(?!)")  # asked for logprobs: every chunk is parsed, so none is missed
LEARN_READS = 4  # reads in which a stream looks for its text events' shape (bench.clients.sse.TextRun)


def apply_usage(record: RequestRecord, usage: dict[str, Any]) -> None:
    """Copy an OpenAI usage object onto the record (tokens)."""
    prompt = usage.get("prompt_tokens")
    if isinstance(prompt, int):
        record.input_tokens = prompt
    completion = usage.get("completion_tokens")
    if isinstance(completion, int):
        record.output_tokens = completion
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        record.cached_input_tokens = details["cached_tokens"]
    details = usage.get("completion_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
        record.reasoning_tokens = details["reasoning_tokens"]


class OpenAIStream:
    """Consumes a chat or completions event stream into a record."""

    __slots__ = (
        "_chat",
        "_content",
        "_done",
        "_finished",
        "_keep",
        "_logprobs",
        "_parser",
        "_reasoning",
        "_rec",
        "_run",
        "_tries",
    )

    def __init__(
        self,
        record: RequestRecord,
        *,
        chat: bool,
        keep_text: bool,
        logprobs: bool = False,
        text_runs: bool = True,
    ) -> None:
        """`text_runs`: count runs of plain text events a read at a time (bench.clients.sse.TextRun);
        False parses every event on its own (the same record, more CPU)."""
        self._rec = record
        self._chat = chat
        self._keep = keep_text
        self._logprobs = logprobs
        self._parser = SSEParser()
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._done = False
        self._finished = False
        self._run: TextRun | None = None
        self._tries = LEARN_READS if text_runs and not logprobs else 0

    def feed(self, data: bytes, now: float) -> None:
        """Parse the bytes of one read; `now` is when they were read (perf_counter s)."""
        region = self._parser.region(data)
        if not region:
            return
        run = self._run
        if run is None and self._tries:
            self._tries -= 1
            pattern, check = (_CHAT_FAST, _plain_chat) if self._chat else (_TEXT_FAST, _plain_text)
            run = self._run = TextRun.learn(region, pattern, check)
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
        fast = _NEVER.search if self._logprobs else _CHAT_FAST.search if self._chat else _TEXT_FAST.search
        for _event, payload in parse_region(region):
            match = fast(payload)
            if match is not None:
                raw = match.group(1)
                if raw:  # an empty content string is not a token chunk
                    rec.output_bytes = (rec.output_bytes or 0) + len(raw)  # no escapes: the text's bytes
                    rec.token_chunk_s.append(now)
                    if rec.first_content_s is None:
                        rec.first_content_s = now
                        if rec.first_token_s is None:
                            rec.first_token_s = now
                    if self._keep:
                        self._content.append(raw.decode())
                continue
            if payload == _DONE:
                self._done = True
                continue
            obj = loads(payload)
            choices = obj.get("choices")
            if choices:
                choice = choices[0]
                if self._chat:
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                    visible = bool(content) or bool(delta.get("tool_calls"))
                else:
                    content = choice.get("text")
                    reasoning = None
                    visible = bool(content)
                if visible or reasoning:
                    stamp_token_chunk(rec, now, visible=visible)
                    rec.output_bytes = (rec.output_bytes or 0) + text_bytes(content, reasoning)
                    if self._keep:
                        if content:
                            self._content.append(content)
                        if reasoning:
                            self._reasoning.append(reasoning)
                if self._logprobs and choice.get("logprobs"):
                    add_logprobs(rec, choice["logprobs"], chat=self._chat)
                if choice.get("finish_reason"):
                    self._finished = True
            usage = obj.get("usage")
            if usage:
                apply_usage(rec, usage)
            elif "error" in obj:
                raise StreamError("stream_error", _stream_error_text(obj["error"]))

    def keep_text(self) -> None:
        """Put the text received so far on the record (after a complete or a broken stream)."""
        if self._keep:
            self._rec.output_text = "".join(self._content)
            self._rec.reasoning_text = "".join(self._reasoning)

    def close(self) -> None:
        """End of body: a stream without [DONE] or a finish_reason was cut short."""
        if not (self._done or self._finished):
            pending = self._parser.pending[:80]
            raise StreamError(
                "protocol", f"stream ended before [DONE] or a finish_reason (unparsed bytes: {pending!r})"
            )


def _plain_chat(obj: Any, text: str) -> bool:
    """A chat chunk whose only effect is the content `text` (what the chat fast path assumes)."""
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if not choices or not isinstance(choices[0], dict) or obj.get("usage") or "error" in obj:
        return False
    choice = choices[0]
    return (
        choice.get("delta") == {"content": text}
        and not choice.get("finish_reason")
        and not (choice.get("logprobs"))
    )


def _plain_text(obj: Any, text: str) -> bool:
    """A completions chunk whose only effect is the text `text`."""
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if not choices or not isinstance(choices[0], dict) or obj.get("usage") or "error" in obj:
        return False
    choice = choices[0]
    return choice.get("text") == text and not choice.get("finish_reason") and not choice.get("logprobs")


def add_logprobs(record: RequestRecord, logprobs: dict[str, Any], *, chat: bool) -> None:
    """Append a chunk's token logprobs: chat `logprobs.content[].logprob`, completions `token_logprobs`."""
    if chat:
        values = [t.get("logprob") for t in logprobs.get("content") or [] if isinstance(t, dict)]
    else:
        values = list(logprobs.get("token_logprobs") or [])
    found = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if record.token_logprobs is None:
        record.token_logprobs = []
    record.token_logprobs.extend(found)


def _stream_error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


class _OpenAIBase(BaseClient):
    chat: ClassVar[bool]

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}

    def stream(self, record: RequestRecord) -> OpenAIStream:
        logprobs = self.config.logprobs is not None
        return OpenAIStream(record, chat=self.chat, keep_text=self.keeps_text, logprobs=logprobs)

    async def check(self) -> None:
        """GET {base}/models and look for the model; a 1-token request where /models is absent."""
        url = self.base_url + "/models"
        models = await self.get_json(url)
        if models.status in (401, 403):
            raise self.auth_error(url, models.status, models.raw)
        if (
            models.status == 200
            and isinstance(models.parsed, dict)
            and isinstance(models.parsed.get("data"), list)
        ):
            ids = [m.get("id") for m in models.parsed["data"] if isinstance(m, dict)]
            if self.config.model in ids:
                return
            raise TargetError(
                f"{self.base_url} does not serve model {self.config.model!r}; it serves: "
                f"{', '.join(str(i) for i in ids) or '(none)'}. Pass --model with one of these.",
                url=self.base_url,
                model=self.config.model,
            )
        await self._probe(models)

    async def _probe(self, models: Reply) -> None:
        probe = self.body(GenRequest(0, prompt="Hi", max_tokens=1))
        probe["stream"] = False
        probe.pop("stream_options", None)
        reply = await self.post_json(self.url, probe)
        if reply.status in (401, 403):
            raise self.auth_error(self.url, reply.status, reply.raw)
        if not reply.is_api_answer and not models.is_api_answer:
            raise self.not_an_llm_server(
                (f"GET {path_of(self.base_url)}/models", models), (f"POST {path_of(self.url)}", reply)
            )
        if reply.status == 200:
            return
        hint = (
            " (is the model id right? GET /models is not served here)" if reply.status in (400, 404) else ""
        )
        raise TargetError(
            f"{self.url} answered HTTP {reply.status} to a 1-token test request: "
            f"{self.error_message(reply.raw, SHOWN_TEXT_CHARS)}{hint}",
            url=self.url,
            model=self.config.model,
        )


class OpenAIChatClient(_OpenAIBase):
    """POST {base}/chat/completions, streamed, with usage in the last chunk."""

    api = "openai-chat"
    endpoint = "/chat/completions"
    chat = True

    def body(self, request: GenRequest) -> dict[str, Any]:
        messages = request.messages
        if messages is None:
            messages = [{"role": "user", "content": request.prompt or ""}]
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        # Real OpenAI deprecates max_tokens (reasoning models reject it); others know only max_tokens.
        budget = "max_completion_tokens" if self.config.server_kind == "openai" else "max_tokens"
        body[budget] = request.max_tokens
        if self.config.logprobs is not None:
            body["logprobs"] = True
            if self.config.logprobs > 0:
                body["top_logprobs"] = self.config.logprobs
        return self.sampling_fields(request, body)


class OpenAICompletionsClient(_OpenAIBase):
    """POST {base}/completions, streamed, with usage in the last chunk."""

    api = "openai-completions"
    endpoint = "/completions"
    chat = False

    def body(self, request: GenRequest) -> dict[str, Any]:
        prompt = request.prompt
        if prompt is None:
            # Messages sent to a completions endpoint: their contents, one per line (no chat template).
            prompt = "\n".join(str(m.get("content") or "") for m in request.messages or [])
        body: dict[str, Any] = {
            "model": self.config.model,
            "prompt": prompt,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens,
        }
        if self.config.logprobs is not None:
            body["logprobs"] = self.config.logprobs
        return self.sampling_fields(request, body)
