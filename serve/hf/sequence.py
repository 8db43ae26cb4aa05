"""Per-request state of the hf engine: sampling settings, events, incremental detokenization, stop checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class SamplingParams:
    """How one request samples; temperature 0 means greedy, logprobs are top-k sizes (None = off)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    min_tokens: int = 0
    logprobs: int | None = None
    prompt_logprobs: int | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """Log-probability (natural log) of one token and the top-k alternatives at its position."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class PromptLogprobs:
    """First event of a request that asked for prompt logprobs; the first token's entry is None."""

    entries: tuple[TokenLogprob | None, ...]


@dataclass(frozen=True)
class Delta:
    """New output: text that is safe to show (may be empty) and the tokens that produced it."""

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Finished:
    """Last event of a request; token counts are in tokens."""

    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    """The engine could not finish the request (the batch's forward pass raised)."""

    message: str


Event = PromptLogprobs | Delta | Finished | Failed


@dataclass(frozen=True)
class Outbox:
    """Where the engine thread delivers a request's events: an asyncio queue owned by `loop`."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event]


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text deltas, holding back incomplete multi-byte characters."""

    def __init__(self, decode: Callable[[list[int]], str], prompt_ids: Sequence[int]) -> None:
        self._decode = decode
        # A few prompt tokens give the decoder context (leading-space rules of some tokenizers).
        self._ids: list[int] = list(prompt_ids[-4:])
        self._prefix = 0
        self._read = len(self._ids)

    def add(self, token_id: int) -> str:
        """Append one token; return the text it completes ("" while a character is still incomplete)."""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return new_text[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        """Text still held back at the end of the output (may hold replacement characters)."""
        if self._read >= len(self._ids):
            return ""
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        self._prefix, self._read = self._read, len(self._ids)
        return new_text[len(prefix_text) :]


@dataclass
class SequenceState:
    """One request inside the engine: its prompt, sampling state and the output so far."""

    rid: int
    prompt_ids: list[int]
    params: SamplingParams
    outbox: Outbox
    detok: IncrementalDetokenizer
    eos_ids: frozenset[int]
    generator: torch.Generator | None = None
    output_ids: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    next_token: int = -1
    finish_reason: FinishReason | None = None

    @property
    def blocks_eos(self) -> bool:
        """EOS is masked until min_tokens output tokens exist."""
        return len(self.output_ids) < self.params.min_tokens

    def append(self, token_id: int, logprob: TokenLogprob | None) -> Delta:
        """Record a sampled token; sets finish_reason when the request is done."""
        self.output_ids.append(token_id)
        self.next_token = token_id
        params = self.params
        finish: FinishReason | None = None
        if token_id in self.eos_ids and not params.ignore_eos:
            finish = "stop"
            piece = ""
        else:
            piece = self.detok.add(token_id)
        if finish is None and len(self.output_ids) >= params.max_tokens:
            finish = "length"
        if finish is not None:
            piece += self.detok.flush()
        old_len = len(self.text)
        self.text += piece
        if params.stop and len(self.output_ids) > params.min_tokens:
            longest = max(len(s) for s in params.stop)
            start = max(0, old_len - longest + 1)
            hits = [i for i in (self.text.find(s, start) for s in params.stop) if i >= 0]
            if hits:
                self.text = self.text[: max(min(hits), self.emitted)]
                finish = "stop"
        end = len(self.text) if finish is not None else self._safe_end()
        delta = Delta(self.text[self.emitted : end], (token_id,), (logprob,) if logprob else ())
        self.emitted = end
        self.finish_reason = finish
        return delta

    def _safe_end(self) -> int:
        """End of the text that cannot be the start of a stop string (vLLM holds such text back too)."""
        text, end = self.text, len(self.text)
        for stop in self.params.stop:
            for k in range(min(len(stop) - 1, end - self.emitted), 0, -1):
                if text.endswith(stop[:k]):
                    end = min(end, len(text) - k)
                    break
        return end
