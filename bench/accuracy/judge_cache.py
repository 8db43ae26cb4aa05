"""A small SQLite cache of judge replies, keyed by a hash of the judge and the exact prompt.

Only judge calls are cached: the endpoint under test is always asked afresh, so a repeated run measures the
model again. The cache lives in its own file under llmbench's home (judge-cache.sqlite).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from bench.errors import StoreError

_SCHEMA = """CREATE TABLE IF NOT EXISTS judge_cache (
    key TEXT PRIMARY KEY,            -- sha256 of judge key + prompt
    text TEXT NOT NULL,              -- the judge's raw reply
    input_tokens INTEGER,
    output_tokens INTEGER,
    created_at TEXT NOT NULL
)"""


@dataclass(frozen=True)
class CachedCall:
    """A judge reply and the tokens it cost when it was made; `cached` is True when read from the cache."""

    text: str
    input_tokens: int | None
    output_tokens: int | None
    cached: bool


class JudgeCache:
    """Open with `JudgeCache(path)`; use as a context manager. One thread at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open judge cache {path}: {exc}; check the path and its permissions"
            ) from exc

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def get(self, key: str) -> CachedCall | None:
        """The cached reply for `key`, or None."""
        row = self._conn.execute(
            "SELECT text, input_tokens, output_tokens FROM judge_cache WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else CachedCall(row[0], row[1], row[2], cached=True)

    def put(self, key: str, call: CachedCall) -> None:
        """Remember a reply (the last one wins)."""
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self._conn.execute(
            "INSERT OR REPLACE INTO judge_cache (key, text, input_tokens, output_tokens, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, call.text, call.input_tokens, call.output_tokens, stamp),
        )

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0])
