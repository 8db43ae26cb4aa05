"""Token usage as a bill sees it, read from each provider's usage shape.

Providers count the same prompt differently:

- OpenAI (and vLLM, and every OpenAI-compatible server): `prompt_tokens` is the whole prompt, cached
  tokens included (`prompt_tokens_details.cached_tokens`); `completion_tokens` includes reasoning tokens
  (`completion_tokens_details.reasoning_tokens`). OpenAI has no cache-write charge.
- Anthropic: `input_tokens` excludes both cache reads (`cache_read_input_tokens`) and cache writes
  (`cache_creation_input_tokens`); `output_tokens` includes thinking tokens. Writes with a 1-hour lifetime
  are billed dearer than 5-minute ones (2× against 1.25× input); `cache_creation` splits them
  (`ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`).
- A stored request record (bench.records.RequestRecord) is already normalized by our clients to the
  OpenAI shape: `input_tokens` is the whole prompt (Anthropic's three counts added up) and
  `cached_input_tokens` the cache reads. Cache writes are captured separately when the client saw them
  (a stored record does not split them by lifetime: they read as 5-minute writes).

`Usage` holds the four billed quantities apart, so pricing is one multiplication each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Billed token counts of one request or a sum of requests (tokens)."""

    fresh_input: int = 0  # prompt tokens billed at the base input price
    cache_read: int = 0  # prompt tokens served from the provider's cache
    cache_write: int = 0  # prompt tokens written to the cache (Anthropic bills them above base input)
    output: int = 0  # generated tokens, reasoning included (reasoning bills as output)
    reasoning: int = 0  # the part of `output` that was reasoning (informational: already in output)
    cache_write_1h: int = 0  # the part of `cache_write` written with a 1-hour lifetime (Anthropic)

    @property
    def input_total(self) -> int:
        """Every prompt token, however billed."""
        return self.fresh_input + self.cache_read + self.cache_write

    def as_uncached(self) -> Usage:
        """The same tokens billed as if nothing were cached: every prompt token at the base input price."""
        return Usage(fresh_input=self.input_total, output=self.output, reasoning=self.reasoning)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.fresh_input + other.fresh_input,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
            self.output + other.output,
            self.reasoning + other.reasoning,
            self.cache_write_1h + other.cache_write_1h,
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def from_openai(usage: Mapping[str, Any]) -> Usage:
    """An OpenAI `usage` object: cached tokens are inside prompt_tokens, reasoning inside completion."""
    prompt = _int(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    out_details = usage.get("completion_tokens_details")
    reasoning = _int(out_details.get("reasoning_tokens")) if isinstance(out_details, Mapping) else 0
    cached = min(cached, prompt)
    return Usage(
        fresh_input=prompt - cached,
        cache_read=cached,
        output=_int(usage.get("completion_tokens")),
        reasoning=reasoning,
    )


def from_anthropic(usage: Mapping[str, Any]) -> Usage:
    """An Anthropic `usage` object: input_tokens excludes cache reads and cache writes; `cache_creation`
    says how many of the writes have a 1-hour lifetime."""
    write = _int(usage.get("cache_creation_input_tokens"))
    split = usage.get("cache_creation")
    write_1h = _int(split.get("ephemeral_1h_input_tokens")) if isinstance(split, Mapping) else 0
    return Usage(
        fresh_input=_int(usage.get("input_tokens")),
        cache_read=_int(usage.get("cache_read_input_tokens")),
        cache_write=write,
        output=_int(usage.get("output_tokens")),
        cache_write_1h=min(write_1h, write),
    )


def from_record(
    input_tokens: int | None,
    output_tokens: int | None,
    cached_input_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
) -> Usage:
    """Counts as stored (normalized: input is the whole prompt, cached the cache reads)."""
    total = _int(input_tokens)
    read = min(_int(cached_input_tokens), total)
    write = min(_int(cache_write_tokens), total - read)
    return Usage(
        fresh_input=total - read - write,
        cache_read=read,
        cache_write=write,
        output=_int(output_tokens),
        reasoning=_int(reasoning_tokens),
    )


USAGE_SHAPES = {"openai": from_openai, "anthropic": from_anthropic}


def from_provider(provider: str, usage: Mapping[str, Any]) -> Usage:
    """Read `usage` in the shape of `provider` ('openai' for every OpenAI-compatible server)."""
    reader = USAGE_SHAPES.get(provider, from_openai)
    return reader(usage)
