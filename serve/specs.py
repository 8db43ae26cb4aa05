"""Typed inputs of the serve package (pydantic, extra keys forbidden)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatencyModel(_Spec):
    """How the mock server times its answers (all times in milliseconds)."""

    ttft_ms: float = Field(0.0, ge=0, description="base time to first token, ms")
    ttft_per_prompt_token_ms: float = Field(
        0.0, ge=0, description="added to TTFT per uncached prompt token (cache reads are free), ms"
    )
    itl_ms: float = Field(0.0, ge=0, description="mean gap between token chunks, ms")
    itl_jitter_ms: float = Field(0.0, ge=0, description="std of a normal jitter added to each gap, ms")
    capacity: int | None = Field(None, ge=1, description="requests generated at once; more wait in a queue")
    error_rate_429: float = Field(0.0, ge=0, le=1, description="share of requests answered 429")
    error_rate_500: float = Field(0.0, ge=0, le=1, description="share of requests answered 500")
    tokens_per_chunk: int = Field(1, ge=1, description="tokens carried by each streamed chunk")
    seed: int = 0

    @model_validator(mode="after")
    def _rates(self) -> LatencyModel:
        if self.error_rate_429 + self.error_rate_500 > 1:
            raise ValueError("error_rate_429 + error_rate_500 must be at most 1")
        return self


class PromptCacheModel(_Spec):
    """How the mock caches prompts as the providers do (lengths in the mock's prompt tokens).

    OpenAI dialect (/v1/chat/completions, /v1/completions): automatic, for prompts of at least
    `auto_min_tokens`; a hit is the longest cached prefix in whole steps of `auto_step_tokens`, reported
    only when it reaches `auto_min_tokens`. Anthropic dialect (/v1/messages): only up to explicit
    `cache_control` breakpoints of at least `explicit_min_tokens`, living 5 minutes (or 1 hour with
    `"ttl": "1h"`) from their last use. Cached prompt tokens do not count in TTFT's per-token term.
    """

    enabled: bool = Field(True, description="cache prompts at all")
    auto_min_tokens: int = Field(1024, ge=1, description="OpenAI dialect: shortest prompt cached (tokens)")
    auto_step_tokens: int = Field(128, ge=1, description="OpenAI dialect: hits come in these steps (tokens)")
    auto_ttl_s: float = Field(300.0, gt=0, description="OpenAI dialect: an unused entry lives this long (s)")
    explicit_min_tokens: int = Field(
        1024, ge=1, description="Anthropic dialect: shortest prefix a breakpoint caches (tokens)"
    )
    lookback_blocks: int = Field(
        20, ge=1, description="Anthropic dialect: block boundaries before each breakpoint checked for a hit"
    )
    max_breakpoints: int = Field(4, ge=1, description="Anthropic dialect: cache_control blocks allowed")


class ReasoningModel(_Spec):
    """A reasoning mode: hidden reasoning streamed before the answer, billed as output."""

    tokens: int = Field(
        0,
        ge=0,
        description="reasoning tokens before each chat answer (0: off); Anthropic only when the request "
        "enables thinking, at most its budget_tokens; always within the request's output budget",
    )
    openai_field: Literal["reasoning_content", "reasoning"] = Field(
        "reasoning_content", description="OpenAI dialect: the delta field vLLM streams reasoning in"
    )


class AnswerModel(_Spec):
    """What the mock server answers: filler text, or an oracle over a JSONL question file."""

    kind: Literal["filler", "oracle"] = "filler"
    default_output_tokens: int = Field(128, ge=1, description="length when the request sets no max_tokens")
    oracle_file: Path | None = Field(None, description="JSONL with prompt or messages and reference(s)")
    accuracy: float = Field(1.0, ge=0, le=1, description="probability that the oracle answers correctly")
    area_accuracy: dict[str, float] = Field(
        default_factory=dict, description="per-area probability (by the file's `area` field), else accuracy"
    )
    unknown: Literal["dont-know", "filler"] = Field(
        "dont-know", description="an unknown question gets 'I don't know.' or filler of the full budget"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _oracle_needs_file(self) -> AnswerModel:
        if self.kind == "oracle" and self.oracle_file is None:
            raise ValueError("an oracle answer model needs oracle_file")
        for area, share in self.area_accuracy.items():
            if not 0 <= share <= 1:
                raise ValueError(f"area_accuracy[{area!r}] = {share} is not a probability in [0, 1]")
        return self


class MockSpec(_Spec):
    """Everything the mock server needs to start."""

    model: str = Field(description="model id the server answers to (others get 404)")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    latency: LatencyModel = LatencyModel()
    answers: AnswerModel = AnswerModel()
    cache: PromptCacheModel = PromptCacheModel()
    reasoning: ReasoningModel = ReasoningModel()
    tokenizer: Path | None = Field(
        None, description="tokenizer.json or model folder used to count prompt tokens; else ceil(chars / 4)"
    )
    strict: bool = Field(
        True, description="reject fields the real provider rejects (vLLM-only fields such as ignore_eos)"
    )
    api_key: SecretStr | None = Field(
        None, description="when set, requests without this key get the provider's 401 (never logged)"
    )
    info: dict[str, Any] = Field(default_factory=dict, description="static part of GET /llmbench/info")
    workers: int = Field(
        1, ge=1, le=256, description="processes answering on one port (SO_REUSEPORT), counters summed"
    )
