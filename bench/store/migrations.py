"""Append-only, named schema migrations for the results store.

Every open applies, in order, each migration not yet recorded in `_migrations`, inside one transaction
per migration. Never edit or reorder a shipped migration: add a new one at the end (a test pins the text
of the shipped ones). A store that records a migration this list does not know was written by a newer
llmbench and is refused rather than guessed at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: a unique name and the SQL statements that make it."""

    name: str
    statements: tuple[str, ...]


M001_INITIAL = Migration(
    "m001_initial",
    (
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,                -- uuid4 hex
            kind TEXT NOT NULL CHECK (kind IN ('load', 'accuracy')),
            status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed')),
            started_at TEXT NOT NULL,           -- wall clock, ISO 8601 UTC
            ended_at TEXT,
            pid INTEGER,                        -- the process that runs it, to spot killed runs
            pid_started REAL,                   -- that process's start time (epoch s), against pid reuse
            group_id TEXT,                      -- runs made by one invocation (--concurrency 1,4,16)
            target TEXT NOT NULL,               -- JSON: name, url, model, api, provider; never a key
            profile TEXT NOT NULL,              -- JSON
            provenance TEXT NOT NULL,           -- JSON
            summary TEXT,                       -- JSON
            note TEXT,
            error TEXT
        )""",
        "CREATE INDEX runs_by_start ON runs (started_at)",
        "CREATE INDEX runs_by_group ON runs (group_id)",
        """CREATE TABLE requests (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            request_id INTEGER NOT NULL,
            status TEXT NOT NULL,               -- ok | error | timeout | cancelled
            warmup INTEGER NOT NULL,            -- 0 | 1
            scheduled_s REAL NOT NULL,          -- seconds since the run's origin
            start_s REAL NOT NULL,
            first_byte_s REAL,
            first_token_s REAL,
            first_content_s REAL,
            end_s REAL NOT NULL,
            token_chunk_s BLOB NOT NULL,        -- float64 little-endian array, seconds since origin
            input_tokens INTEGER,
            output_tokens INTEGER,
            reasoning_tokens INTEGER,
            cached_input_tokens INTEGER,
            tokens_from TEXT NOT NULL,          -- usage | tokenizer | none
            http_status INTEGER,
            error_kind TEXT,
            error_text TEXT,
            output_text TEXT NOT NULL,
            reasoning_text TEXT NOT NULL
        )""",
        "CREATE INDEX requests_by_run ON requests (run_id, request_id)",
        """CREATE TABLE server_metrics (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            t_s REAL NOT NULL,                  -- seconds since the run's origin
            name TEXT NOT NULL,
            labels TEXT NOT NULL,               -- JSON object
            value REAL NOT NULL
        )""",
        "CREATE INDEX server_metrics_by_run ON server_metrics (run_id, name, t_s)",
        """CREATE TABLE items (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            item_id TEXT NOT NULL,
            area TEXT,
            repeat INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
            score REAL,
            correct INTEGER,                    -- 0 | 1 | NULL (not scored right/wrong)
            output TEXT,
            reference TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            latency_ms REAL,
            cost_usd REAL,
            judge TEXT,                         -- JSON verdict, cost and model of the judge
            error_text TEXT,
            extra TEXT                          -- JSON
        )""",
        "CREATE INDEX items_by_run ON items (run_id, area, item_id)",
    ),
)

M002_SWEEPS_DOCUMENTS = Migration(
    "m002_sweeps_documents",
    (
        "ALTER TABLE runs ADD COLUMN sweep_id TEXT",  # the sweep that made the run, if any
        "ALTER TABLE runs ADD COLUMN point_id TEXT",  # its point in that sweep
        "CREATE INDEX runs_by_sweep ON runs (sweep_id, point_id)",
        """CREATE TABLE sweeps (
            id TEXT PRIMARY KEY,                -- uuid4 hex
            name TEXT,
            status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed')),
            started_at TEXT NOT NULL,
            ended_at TEXT,
            pid INTEGER,
            pid_started REAL,
            spec TEXT NOT NULL,                 -- JSON: the validated sweep file
            plan TEXT NOT NULL,                 -- JSON: the expanded points, in order
            note TEXT
        )""",
        """CREATE TABLE sweep_points (
            sweep_id TEXT NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
            point_id TEXT NOT NULL,             -- stable across resumes: a hash of the point's definition
            status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'complete', 'partial', 'failed',
                                                   'skipped')),
            started_at TEXT,
            ended_at TEXT,
            run_ids TEXT NOT NULL DEFAULT '[]', -- JSON list of the runs it made
            error TEXT,                         -- why it failed (the engine's reason)
            detail TEXT,                        -- JSON
            PRIMARY KEY (sweep_id, point_id)
        )""",
        """CREATE TABLE documents (
            id TEXT PRIMARY KEY,                -- uuid4 hex
            schema TEXT NOT NULL,               -- e.g. llmbench.recovery/1
            created_at TEXT NOT NULL,
            subject TEXT,                       -- what it is about, e.g. the variant NAME:VARIANT
            sweep_id TEXT,
            body TEXT NOT NULL                  -- JSON
        )""",
        "CREATE INDEX documents_by_schema ON documents (schema, subject, created_at)",
    ),
)

M003_CACHE_WRITES = Migration(
    "m003_cache_writes",
    (
        # Prompt tokens written to the provider's cache (Anthropic's cache_creation_input_tokens): billed
        # above base input, so cost needs them per request.
        "ALTER TABLE requests ADD COLUMN cache_write_tokens INTEGER",
    ),
)

M004_TEXT_BYTES = Migration(
    "m004_text_bytes",
    (
        # UTF-8 bytes of each request's prompt text and generated text: reference tokens (⌈bytes ÷ 4⌉,
        # bench.records.reference_tokens) count the same text alike for every option, whatever its tokenizer.
        "ALTER TABLE requests ADD COLUMN input_bytes INTEGER",
        "ALTER TABLE requests ADD COLUMN output_bytes INTEGER",
    ),
)

M005_SESSION_TURNS = Migration(
    "m005_session_turns",
    (
        # The conversation and 0-based turn of each request of a multi-turn session workload: per-turn
        # TTFT and the per-session figures are computed from them (bench.metrics.workload).
        "ALTER TABLE requests ADD COLUMN session_id TEXT",
        "ALTER TABLE requests ADD COLUMN turn INTEGER",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (
    M001_INITIAL,
    M002_SWEEPS_DOCUMENTS,
    M003_CACHE_WRITES,
    M004_TEXT_BYTES,
    M005_SESSION_TURNS,
)

_BOOTSTRAP = "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"


class NewerSchemaError(Exception):
    """The store records migrations this code does not know."""

    def __init__(self, unknown: list[str]) -> None:
        super().__init__(", ".join(unknown))
        self.unknown = unknown


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names recorded in `_migrations`, in the order they were applied."""
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction; return the names applied.

    `conn` must be in autocommit mode (isolation_level=None). Raises NewerSchemaError when the store
    holds a migration that `migrations` does not list.
    """
    names = [m.name for m in migrations]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate migration names in {names}")
    conn.execute(_BOOTSTRAP)
    known = set(names)
    unknown = [n for n in applied_migrations(conn) if n not in known]
    if unknown:
        raise NewerSchemaError(unknown)
    applied: list[str] = []
    for migration in migrations:
        # IMMEDIATE takes the write lock first, so two processes opening a new store at once
        # cannot both apply the same migration: the second one re-checks and skips it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (migration.name,)).fetchone()
            if done is None:
                for statement in migration.statements:
                    conn.execute(statement)
                stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
                conn.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (migration.name, stamp)
                )
                applied.append(migration.name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied
