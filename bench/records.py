"""The data that flows between layers: requests to send, what one request measured, one scored item.

Times are `time.perf_counter()` seconds. A client stamps absolute perf_counter values; the load
generator knows the run's origin and the store keeps times relative to it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class Status(StrEnum):
    """Outcome of one request."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    # A turn of a multi-turn session never sent: an earlier turn failed, or the run ended before it. Not a
    # request: counted in the session figures only (bench.metrics.workload), never in latencies or errors.
    NOT_SENT = "not_sent"


TokenSource = Literal["usage", "tokenizer", "none"]
ApiKind = Literal["openai-chat", "openai-completions", "anthropic"]  # the protocol a client speaks
API_KINDS: tuple[ApiKind, ...] = ("openai-chat", "openai-completions", "anthropic")
# What answers at the other end: decides which extras (ignore_eos, min_tokens) may be sent.
ServerKind = Literal["vllm", "llmbench", "openai", "anthropic", "generic"]
SERVER_KINDS: tuple[ServerKind, ...] = ("vllm", "llmbench", "openai", "anthropic", "generic")
DEFAULT_TIMEOUT_S = 600.0  # per request, whole stream included (s): load runs, accuracy runs, the proxy
REFERENCE_BYTES_PER_TOKEN = 4  # reference tokens: one per 4 UTF-8 bytes of text, for every option alike


def reference_tokens(nbytes: int) -> int:
    """Reference tokens of a text of `nbytes` UTF-8 bytes: ⌈bytes ÷ 4⌉.

    Options count tokens with their own tokenizers (a byte-level model counts every byte; an API about one
    token per 4 characters of English), so their own counts compare unlike things. Cost and token figures
    that compare options are given in reference tokens: the same count for the same text, whatever the
    tokenizer.
    """
    return -(-nbytes // REFERENCE_BYTES_PER_TOKEN)


def _text_bytes(content: Any) -> int:
    if isinstance(content, str):
        return len(content.encode())
    if isinstance(content, list):  # content parts: count the text ones
        return sum(len(str(p.get("text", "")).encode()) for p in content if isinstance(p, dict))
    return 0


@dataclass(frozen=True, slots=True)
class GenRequest:
    """One request to send: a prompt (completions) or messages (chat), and its output budget."""

    request_id: int
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    input_tokens: int | None = None  # prompt length by the target's tokenizer, when known (tokens)
    max_tokens: int = 128  # output budget (tokens)
    ignore_eos: bool = False  # ask the server to generate exactly max_tokens (sent only where supported)
    temperature: float | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None  # the conversation or user session this request belongs to
    turn: int | None = None  # 0-based turn of the request within its session
    # Indices into `messages` (system messages included; 0 is the user message made of `prompt`) whose
    # content ends a prefix to cache: the Anthropic client marks them with cache_control breakpoints, as an
    # app does on a shared document or system prompt and on the latest message of a conversation. OpenAI
    # and vLLM cache prefixes without being asked: other clients ignore this.
    cache_breakpoints: tuple[int, ...] = ()
    cache_ttl: Literal["5m", "1h"] = "5m"  # lifetime asked for at each breakpoint (Anthropic)

    def prompt_bytes(self) -> int:
        """UTF-8 bytes of the prompt's text: the completion prompt, or every message's text content."""
        if self.prompt is not None:
            return len(self.prompt.encode())
        return sum(_text_bytes(m.get("content")) for m in self.messages or [])


@dataclass(slots=True)
class RequestRecord:
    """What one request measured. Times are perf_counter seconds (absolute until rebased)."""

    request_id: int
    status: Status
    scheduled_s: float  # when the schedule intended to send it
    start_s: float  # when it was actually sent
    end_s: float  # last byte, error or timeout
    first_byte_s: float | None = None  # first response byte of any kind
    first_token_s: float | None = None  # first chunk carrying generated text (content or reasoning)
    first_content_s: float | None = None  # first chunk carrying visible content
    token_chunk_s: list[float] = field(default_factory=list)  # every chunk that carried generated text
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_input_tokens: int | None = None  # cache reads, part of input_tokens
    tokens_from: TokenSource = "none"  # where output_tokens came from
    http_status: int | None = None
    error_kind: str | None = None  # e.g. http_429, http_500, timeout, connection, protocol, cancelled
    error_text: str | None = None
    output_text: str = ""
    reasoning_text: str = ""
    warmup: bool = False
    # Cache writes, part of input_tokens (Anthropic's cache_creation_input_tokens).
    cache_write_tokens: int | None = None
    input_bytes: int | None = None  # UTF-8 bytes of the prompt's text (reference tokens: bench.records)
    output_bytes: int | None = None  # UTF-8 bytes of the generated text, reasoning included
    token_logprobs: list[float] | None = None  # each generated token's logprob (ClientConfig.logprobs)
    session_id: str | None = None  # the conversation this request belongs to (GenRequest.session_id)
    turn: int | None = None  # its 0-based turn within that session (GenRequest.turn)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One scored accuracy item. `status` 'error' means the request failed: never right or wrong."""

    item_id: str
    status: Literal["ok", "error"]
    area: str | None = None
    repeat: int = 0  # 0-based repeat index when an item is asked several times
    score: float | None = None  # 0..1
    correct: bool | None = None  # None when the scorer gives no right/wrong verdict
    output: str | None = None
    reference: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    judge: dict[str, Any] | None = None  # verdict, judge model, judge tokens and cost
    error_text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def rebase(record: RequestRecord, origin_s: float) -> RequestRecord:
    """A copy of `record` with every time moved to seconds since `origin_s` (what the store keeps)."""

    def opt(t: float | None) -> float | None:
        return None if t is None else t - origin_s

    return dataclasses.replace(
        record,
        scheduled_s=record.scheduled_s - origin_s,
        start_s=record.start_s - origin_s,
        end_s=record.end_s - origin_s,
        first_byte_s=opt(record.first_byte_s),
        first_token_s=opt(record.first_token_s),
        first_content_s=opt(record.first_content_s),
        token_chunk_s=[t - origin_s for t in record.token_chunk_s],
    )
