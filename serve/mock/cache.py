"""The mock's prompt cache, as the providers behave (per API key and model, deterministic, thread-safe).

- **Automatic (OpenAI)**: a prompt of at least `auto_min_tokens` tokens is cached in runs of
  `auto_step_tokens`. A later prompt reads the longest cached prefix, in whole runs, and the hit is
  reported only when it reaches `auto_min_tokens` (OpenAI: 1,024 tokens, steps of 128). Entries live
  `auto_ttl_s` from their last use.
- **Explicit (Anthropic)**: only prefixes that end at a content block marked
  `cache_control: {"type": "ephemeral"}` (or `"ttl": "1h"`) are written, when at least
  `explicit_min_tokens` long. A request reads the longest cached prefix that ends at a block boundary
  at most `lookback_blocks` blocks before one of its breakpoints (so a breakpoint that moves to the latest
  message of a conversation still finds the previous turn's). Tokens from the read to the last breakpoint
  are written. An entry lives 5 minutes (1 hour) from its last use.

Prefixes are identified by chained SHA-256 digests of (namespace, role, text) per block, so equal digests
mean equal prefixes. Time comes from an injectable clock (s), so expiry is testable without sleeping.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from serve.specs import PromptCacheModel

Ttl = Literal["5m", "1h"]
TTL_S: dict[str, float] = {"5m": 300.0, "1h": 3600.0}
_SWEEP_EVERY = 4096  # writes between sweeps of expired entries


class Counter(Protocol):
    """What the cache needs from the mock's token counter (serve.mock.answers.TokenCounter)."""

    def block_keys(self, text: str, step: int) -> list[bytes]: ...

    def prefix_counts(self, text: str, ends: list[int]) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class CacheBlock:
    """One content block of an Anthropic prompt in order (system blocks, then messages' blocks)."""

    role: str
    text: str
    ttl: Ttl | None = None  # set when the block carries cache_control (a breakpoint)


@dataclass(frozen=True, slots=True)
class CacheUse:
    """What one request did with the cache (prompt tokens)."""

    read: int = 0  # served from the cache
    write_5m: int = 0  # written with a 5-minute lifetime
    write_1h: int = 0  # written with a 1-hour lifetime

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


NO_USE = CacheUse()


class PromptCache:
    """Prefix entries by digest, each with its expiry time and lifetime."""

    def __init__(
        self, model: PromptCacheModel, counter: Counter, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.model = model
        self.counter = counter
        self.clock = clock
        self._entries: dict[bytes, tuple[float, float]] = {}  # digest -> (expires at, lifetime) in s
        self._lock = threading.Lock()
        self._writes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def automatic(self, namespace: str, text: str, prompt_tokens: int) -> CacheUse:
        """OpenAI's automatic cache for a prompt of `prompt_tokens` tokens whose text is `text`."""
        m = self.model
        if not m.enabled or prompt_tokens < m.auto_min_tokens:
            return NO_USE
        h = hashlib.sha256(b"auto\x00" + namespace.encode())
        digests = []
        for key in self.counter.block_keys(text, m.auto_step_tokens):
            h.update(key)
            digests.append(h.digest())
        with self._lock:
            now = self.clock()
            matched = 0
            for digest in digests:
                if not self._live(digest, now):
                    break
                matched += 1
            for digest in digests:
                self._put(digest, now, m.auto_ttl_s)
        read = matched * m.auto_step_tokens
        return CacheUse(read=read if read >= m.auto_min_tokens else 0)

    def explicit(self, namespace: str, blocks: Sequence[CacheBlock]) -> CacheUse:
        """Anthropic's cache for a prompt made of `blocks`, some of them breakpoints."""
        m = self.model
        breakpoints = [i for i, b in enumerate(blocks) if b.ttl is not None]
        if not m.enabled or not breakpoints:
            return NO_USE
        ends: list[int] = []
        at = 0
        for block in blocks:
            at += len(block.text)
            ends.append(at)
        tokens = self.counter.prefix_counts("".join(b.text for b in blocks), ends)
        h = hashlib.sha256(b"explicit\x00" + namespace.encode())
        digests = []
        for block in blocks:
            h.update(block.role.encode() + b"\x00" + block.text.encode() + b"\x01")
            digests.append(h.digest())
        candidates = sorted(
            {i for bp in breakpoints for i in range(max(0, bp - m.lookback_blocks + 1), bp + 1)}, reverse=True
        )
        writes = [bp for bp in breakpoints if tokens[bp] >= m.explicit_min_tokens]
        with self._lock:
            now = self.clock()
            read = 0
            for i in candidates:
                if tokens[i] >= m.explicit_min_tokens and self._live(digests[i], now):
                    read = tokens[i]
                    self._refresh(digests[i], now)
                    break
            done = read
            by_ttl = {"5m": 0, "1h": 0}
            for bp in writes:
                ttl = blocks[bp].ttl
                assert ttl is not None
                self._put(digests[bp], now, TTL_S[ttl])
                if tokens[bp] > done:
                    by_ttl[ttl] += tokens[bp] - done
                    done = tokens[bp]
        return CacheUse(read=read, write_5m=by_ttl["5m"], write_1h=by_ttl["1h"])

    def _live(self, digest: bytes, now: float) -> bool:
        entry = self._entries.get(digest)
        return entry is not None and entry[0] > now

    def _refresh(self, digest: bytes, now: float) -> None:
        expires, lifetime = self._entries[digest]
        self._entries[digest] = (max(expires, now + lifetime), lifetime)

    def _put(self, digest: bytes, now: float, lifetime: float) -> None:
        old = self._entries.get(digest)
        if old is not None and old[0] > now:
            lifetime = max(lifetime, old[1])
        self._entries[digest] = (now + lifetime, lifetime)
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._entries = {d: e for d, e in self._entries.items() if e[0] > now}
