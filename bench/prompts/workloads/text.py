"""Deterministic prompt text of exact reference-token lengths, one text per key.

A text of n reference tokens is exactly 4n ASCII bytes (bench.records.reference_tokens), so lengths are
exact for every target alike. Each text starts with its key in brackets, so texts of different keys differ
from their first bytes and never share a cached prefix by accident, and equal keys give equal texts: a
trace's equal block ids share text exactly. The words come from one seeded pool, sliced at an offset fixed
by the key, so a text costs a string slice, not a random draw per word (trace replay builds requests while
it sends them).
"""

from __future__ import annotations

import hashlib
import random

from bench.prompts.synthetic import WordSource

POOL_CHARS = 1 << 20  # 1 MiB of words: a 256k-token prompt without wrapping around
BYTES_PER_TOKEN = 4


class TextSource:
    """Texts of exact reference-token lengths, deterministic from (seed, key)."""

    def __init__(self, seed: int, pool_chars: int = POOL_CHARS) -> None:
        self.seed = seed
        words = WordSource(random.Random(f"{seed}:workload-text"))
        parts: list[str] = []
        size = 0
        while size < pool_chars:
            part = words.take(4096, after="x")
            parts.append(part)
            size += len(part)
        self._pool = "".join(parts)

    def text(self, key: str, tokens: int) -> str:
        """`[key] ` then words: exactly 4 × `tokens` ASCII characters (the last word may be cut)."""
        n = BYTES_PER_TOKEN * tokens
        head = f"[{key}] "
        if n <= len(head):
            return head[:n]
        pool = self._pool
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        start = pool.find(" ", int.from_bytes(digest[:8], "big") % len(pool)) + 1  # at a word's start
        need = n - len(head)
        body = pool[start : start + need]
        while len(body) < need:  # longer than what is left of the pool: wrap around
            body += pool[: need - len(body)]
        return head + body
