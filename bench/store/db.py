"""The results store: one SQLite file holding every run, its raw records, server samples and items."""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import psutil
from pydantic import ValidationError

from bench.accuracy.documents import AccuracyRunProfile, AccuracySummary
from bench.documents import Provenance, TargetDoc
from bench.errors import StoreError, StoreReadOnlyError, UnknownIdError
from bench.loadgen.documents import LoadRunProfile
from bench.metrics import RunSummary
from bench.records import ItemRecord, RequestRecord, Status, TokenSource
from bench.store.liveness import process_alive
from bench.store.migrations import MIGRATIONS, Migration, NewerSchemaError, applied_migrations, migrate
from bench.store.rows import (
    FINAL_STATUSES,
    RUN_KINDS,
    RunInfo,
    RunKind,
    RunStatus,
    ServerSample,
    from_json,
    pack_times,
    plain,
    read_documents,
    scrub,
    to_json,
    unpack_times,
)
from bench.store.sweeps import SweepRows
from bench.validation import problems

_INSERT_REQUEST = (
    "INSERT INTO requests (run_id, request_id, status, warmup, scheduled_s, start_s, first_byte_s,"
    " first_token_s, first_content_s, end_s, token_chunk_s, input_tokens, output_tokens, reasoning_tokens,"
    " cached_input_tokens, tokens_from, http_status, error_kind, error_text, output_text, reasoning_text,"
    " cache_write_tokens, input_bytes, output_bytes, session_id, turn)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_ITEM = (
    "INSERT INTO items (run_id, item_id, area, repeat, status, score, correct, output, reference,"
    " input_tokens, output_tokens, latency_ms, cost_usd, judge, error_text, extra)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_RUNS = (
    "SELECT runs.*, (SELECT COUNT(*) FROM requests WHERE requests.run_id = runs.id) AS n_requests,"
    " (SELECT COUNT(*) FROM items WHERE items.run_id = runs.id) AS n_items FROM runs"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _opt(t: float | None, origin_s: float) -> float | None:
    return None if t is None else t - origin_s


def _elsewhere(p: Path) -> str:
    """What to do about a store that cannot be written."""
    return (
        "Read commands (runs list/show/export, report, compare) still work on it; to write, point "
        "LLMBENCH_STORE (or --store) at a writable file, e.g. a copy: "
        f"`cp {p} ~/results.sqlite && export LLMBENCH_STORE=~/results.sqlite`"
    )


_READ_ONLY_ERRORS = ("readonly", "read-only", "unable to open database file")


class _ReadOnly(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _not_writable(p: Path) -> str | None:
    """Why the store at `p` cannot be written (read-only media, permissions), or None when it can.

    SQLite writes `-wal` and `-shm` files beside the store, so its folder must be writable too.
    """
    folder = p.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # a store still to be made: its nearest existing folder decides
    for path in ([p] if p.exists() else []) + [folder]:
        if not os.access(path, os.W_OK):
            try:
                read_only_fs = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
            except OSError:
                read_only_fs = False
            return "read-only file system" if read_only_fs else f"no write permission on {path}"
    return None


def _open_writable(p: Path, migrations: Sequence[Migration]) -> tuple[sqlite3.Connection, list[str]]:
    """Connect, set WAL, migrate; _ReadOnly when SQLite finds it cannot write after all."""
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(p, isolation_level=None, timeout=10.0, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open results store {p}: {exc}; check the path and its permissions") from exc
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn, migrate(conn, migrations)
    except NewerSchemaError as exc:
        conn.close()
        raise _newer(p, exc) from exc
    except sqlite3.DatabaseError as exc:
        conn.close()
        if p.is_file() and any(s in str(exc).lower() for s in _READ_ONLY_ERRORS):
            raise _ReadOnly(f"SQLite cannot write it: {exc}") from exc
        raise _not_a_store(p, exc) from exc


def _open_read_only(p: Path, migrations: Sequence[Migration], why: str) -> sqlite3.Connection:
    """Open for reading only; `immutable` when SQLite cannot even make its shared-memory file beside it."""
    uri = "file:" + urllib.parse.quote(str(p.resolve()))
    conn: sqlite3.Connection | None = None
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(uri + query, uri=True, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            applied = applied_migrations(conn)
            break
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
                conn = None
            if query.endswith("immutable=1") or "no such table" in str(exc):
                raise _not_a_store(p, exc) from exc
    assert conn is not None
    known = [m.name for m in migrations]
    unknown = [n for n in applied if n not in known]
    if unknown:
        conn.close()
        raise _newer(p, NewerSchemaError(unknown))
    pending = [n for n in known if n not in applied]
    if pending:
        conn.close()
        raise StoreReadOnlyError(
            f"results store {p} is read-only ({why}) and was written by an older llmbench: it needs "
            f"migrating ({', '.join(pending)}), which writes to it. {_elsewhere(p)}"
        )
    return conn


def _newer(p: Path, exc: NewerSchemaError) -> StoreError:
    return StoreError(
        f"results store {p} was written by a newer llmbench (unknown migrations: {exc}); "
        "upgrade llmbench, or pass another store path"
    )


def _not_a_store(p: Path, exc: BaseException) -> StoreError:
    return StoreError(
        f"cannot use results store {p}: {exc}; if it is not an llmbench store, move it away "
        "or pass another path (--store or LLMBENCH_HOME)"
    )


class Store(SweepRows):
    """An open results store. Use `Store.open(path)`, as a context manager; one thread at a time.

    Writes are durable when the call returns, against a crash or a kill of this process: WAL mode with
    synchronous=NORMAL commits without fsync, so only an OS crash or power loss can drop the last commits.
    `add_request` commits each record by default (6–18k records/s on 2 shared cores); with
    `commit_interval_s` > 0 it commits at most that often and a hard kill can lose the records of the
    last interval (`flush`, `finish_run` and closing commit them). `add_requests` is one transaction.

    A run left 'running' by a process that no longer exists (pid and process start time are stored) is
    reported as 'partial' by `get_run` and `list_runs`; the row itself is not rewritten, so reading never
    writes, and `finish_run` may still close it. (This assumes the store is written from one machine.)
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        applied: list[str],
        commit_interval_s: float,
        read_only: str | None = None,
    ):
        self._conn = conn
        self.path = path
        self.applied = applied  # migrations this open applied
        self._interval = commit_interval_s
        self._pending_since: float | None = None  # perf_counter of the oldest uncommitted write
        self.read_only = read_only  # why the store can only be read (None: it can be written)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        commit_interval_s: float = 0.0,
        migrations: Sequence[Migration] = MIGRATIONS,
        create: bool = True,
    ) -> Store:
        """Open (creating it and its folder if needed) and migrate the store at `path`.

        With `create=False` (read-only commands) a missing file is a StoreError: a mistyped path must not
        leave an empty store behind.
        """
        p = Path(path).expanduser()
        if p.is_dir():
            raise StoreError(f"results store {p} is a directory; pass the path of a .sqlite file")
        if not create and not p.is_file():
            raise StoreError(
                f"no results store at {p}; check the path (--store, LLMBENCH_STORE or LLMBENCH_HOME)"
            )
        why = _not_writable(p)
        if why is None:
            try:
                conn, applied = _open_writable(p, migrations)
            except _ReadOnly as exc:  # the file system said so only when written to
                why = exc.why
        if why is not None:
            if not p.is_file():
                raise StoreReadOnlyError(f"cannot create results store {p}: {why}. {_elsewhere(p)}")
            conn, applied = _open_read_only(p, migrations, why), []
        return cls(conn, p, applied, commit_interval_s, read_only=why)

    def check_writable(self) -> None:
        """StoreReadOnlyError now, before any work, when this store can only be read."""
        if self.read_only is not None:
            raise StoreReadOnlyError(
                f"results store {self.path} is read-only ({self.read_only}); this command writes to it. "
                f"{_elsewhere(self.path)}"
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Commit what is pending and close the file."""
        try:
            self.flush()
        finally:
            self._conn.close()

    # writes ---------------------------------------------------------------------------------------

    def _write(self, sql: str, params: Sequence[Any] | Iterable[Sequence[Any]], many: bool = False) -> None:
        """Run one write, inside the pending transaction when batching; commit when it is due."""
        self.check_writable()
        try:
            # In autocommit mode executemany would commit row by row: group the rows in one transaction.
            if (many or self._interval > 0) and self._pending_since is None:
                self._conn.execute("BEGIN")
                self._pending_since = time.perf_counter()
            if many:
                self._conn.executemany(sql, cast(Iterable[Sequence[Any]], params))
            else:
                self._conn.execute(sql, cast(Sequence[Any], params))
        except sqlite3.Error as exc:
            if self._interval <= 0 and self._pending_since is not None:
                self._conn.execute("ROLLBACK")  # a failed batch leaves nothing half-written
                self._pending_since = None
            raise StoreError(f"cannot write to results store {self.path}: {exc}") from exc
        if self._pending_since is not None and time.perf_counter() - self._pending_since >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Commit every pending write."""
        if self._pending_since is None:
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot commit to results store {self.path}: {exc}") from exc
        self._pending_since = None

    def start_run(
        self,
        kind: RunKind,
        target: TargetDoc | Mapping[str, Any],
        profile: LoadRunProfile | AccuracyRunProfile | Mapping[str, Any],
        provenance: Provenance | Mapping[str, Any],
        *,
        group_id: str | None = None,
        note: str | None = None,
        sweep_id: str | None = None,
        point_id: str | None = None,
    ) -> str:
        """Record a new 'running' run and return its id (uuid4 hex). Secret-named keys are redacted."""
        if kind not in RUN_KINDS:
            raise ValueError(f"run kind must be one of {RUN_KINDS}, not {kind!r}")
        run_id = uuid.uuid4().hex
        me = psutil.Process()
        blobs = [to_json(scrub(from_json(to_json(plain(v))))) for v in (target, profile, provenance)]
        _check_documents(kind, from_json(blobs[0]), from_json(blobs[1]), from_json(blobs[2]), None)
        self._write(
            "INSERT INTO runs (id, kind, status, started_at, pid, pid_started, group_id, target, profile,"
            " provenance, note, sweep_id, point_id) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                kind,
                _now(),
                me.pid,
                float(me.create_time()),
                group_id,
                *blobs,
                note,
                sweep_id,
                point_id,
            ),
        )
        self.flush()
        return run_id

    def add_request(self, run_id: str, record: RequestRecord, origin_s: float) -> None:
        """Append one record, its times stored as seconds since `origin_s` (perf_counter)."""
        self._write(_INSERT_REQUEST, self._request_row(run_id, record, origin_s))

    def add_requests(self, run_id: str, records: Iterable[RequestRecord], origin_s: float) -> None:
        """Append many records in one transaction (times as in `add_request`)."""
        rows = [self._request_row(run_id, r, origin_s) for r in records]
        self._write(_INSERT_REQUEST, rows, many=True)

    @staticmethod
    def _request_row(run_id: str, r: RequestRecord, origin_s: float) -> tuple[Any, ...]:
        return (
            run_id,
            r.request_id,
            r.status.value,
            int(r.warmup),
            r.scheduled_s - origin_s,
            r.start_s - origin_s,
            _opt(r.first_byte_s, origin_s),
            _opt(r.first_token_s, origin_s),
            _opt(r.first_content_s, origin_s),
            r.end_s - origin_s,
            pack_times(r.token_chunk_s, origin_s),
            r.input_tokens,
            r.output_tokens,
            r.reasoning_tokens,
            r.cached_input_tokens,
            r.tokens_from,
            r.http_status,
            r.error_kind,
            r.error_text,
            r.output_text,
            r.reasoning_text,
            r.cache_write_tokens,
            r.input_bytes,
            r.output_bytes,
            r.session_id,
            r.turn,
        )

    def add_server_samples(self, run_id: str, samples: Iterable[ServerSample], origin_s: float = 0.0) -> None:
        """Append Prometheus samples; `t_s` minus `origin_s` is stored (pass 0 when already relative)."""
        rows = [(run_id, s[0] - origin_s, s[1], to_json(dict(s[2])), float(s[3])) for s in samples]
        self._write(
            "INSERT INTO server_metrics (run_id, t_s, name, labels, value) VALUES (?, ?, ?, ?, ?)", rows, True
        )

    def add_item(self, run_id: str, item: ItemRecord) -> None:
        """Append one scored accuracy item."""
        self.add_items(run_id, [item])

    def add_items(self, run_id: str, items: Iterable[ItemRecord]) -> None:
        """Append scored accuracy items in one transaction."""
        rows = [
            (
                run_id,
                i.item_id,
                i.area,
                i.repeat,
                i.status,
                i.score,
                None if i.correct is None else int(i.correct),
                i.output,
                i.reference,
                i.input_tokens,
                i.output_tokens,
                i.latency_ms,
                i.cost_usd,
                None if i.judge is None else to_json(i.judge),
                i.error_text,
                to_json(i.extra),
            )
            for i in items
        ]
        self._write(_INSERT_ITEM, rows, many=True)

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        summary: RunSummary | AccuracySummary | Mapping[str, Any] | None,
        error: str | None = None,
        *,
        note: str | None = None,
    ) -> None:
        """Close a run as 'complete', 'partial' or 'failed', with its summary (JSON) and error text."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"a finished run's status is one of {FINAL_STATUSES}, not {status!r}")
        if summary is not None and not isinstance(summary, (RunSummary, AccuracySummary)):
            row = self._conn.execute("SELECT kind FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None:
                _check_documents(row[0], None, None, None, plain(summary))
        self._write(
            "UPDATE runs SET status = ?, ended_at = ?, summary = ?, error = ?, note = COALESCE(?, note)"
            " WHERE id = ?",
            (status, _now(), None if summary is None else to_json(plain(summary)), error, note, run_id),
        )
        missing = self._conn.execute("SELECT changes()").fetchone()[0] != 1
        self.flush()
        if missing:
            raise StoreError(f"no run {run_id!r} in results store {self.path}")

    def delete_run(self, run_id: str) -> None:
        """Delete a run and everything recorded under it."""
        self._write("DELETE FROM runs WHERE id = ?", (self.get_run(run_id).id,))
        self.flush()

    # reads ----------------------------------------------------------------------------------------

    def _run_info(self, row: sqlite3.Row) -> RunInfo:
        stored = cast(RunStatus, row["status"])
        status = stored
        if stored == "running" and not process_alive(row["pid"], row["pid_started"]):
            status = "partial"
        try:
            target, profile, provenance, summary = read_documents(
                row["kind"],
                from_json(row["target"]),
                from_json(row["profile"]),
                from_json(row["provenance"]),
                from_json(row["summary"]),
            )
        except ValidationError as exc:
            raise StoreError(
                f"run {row['id']} in {self.path} holds a document this llmbench cannot read: "
                f"{problems(exc)[0].line()}"
            ) from exc
        return RunInfo(
            id=row["id"],
            kind=cast(RunKind, row["kind"]),
            status=status,
            stored_status=stored,
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            group_id=row["group_id"],
            target=target,
            profile=profile,
            provenance=provenance,
            summary=summary,
            note=row["note"],
            error=row["error"],
            pid=row["pid"],
            n_requests=row["n_requests"],
            n_items=row["n_items"],
            sweep_id=row["sweep_id"],
            point_id=row["point_id"],
        )

    def list_runs(
        self,
        kind: RunKind | None = None,
        *,
        group_id: str | None = None,
        sweep_id: str | None = None,
        limit: int | None = 50,
    ) -> list[RunInfo]:
        """Runs, newest first, optionally of one kind, one group or one sweep."""
        where: list[str] = []
        params: list[str] = []
        for column, value in (("kind", kind), ("group_id", group_id), ("sweep_id", sweep_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = _SELECT_RUNS + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        rows = self._conn.execute(sql, (*params, -1 if limit is None else limit)).fetchall()
        return [self._run_info(r) for r in rows]

    def count_runs(self, kind: RunKind | None = None) -> int:
        """How many runs are stored, optionally of one kind."""
        if kind is None:
            return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        return int(self._conn.execute("SELECT COUNT(*) FROM runs WHERE kind = ?", (kind,)).fetchone()[0])

    def get_run(self, run_id: str) -> RunInfo:
        """The run with this id or unique id prefix; StoreError when none or several match."""
        key = run_id.strip().lower()
        row = self._conn.execute(_SELECT_RUNS + " WHERE id = ?", (key,)).fetchone()
        if row is not None:
            return self._run_info(row)
        rows = (
            self._conn.execute(
                _SELECT_RUNS + " WHERE substr(id, 1, ?) = ? LIMIT 6", (len(key), key)
            ).fetchall()
            if key
            else []
        )
        if not rows:
            raise UnknownIdError(f"no run matches {run_id!r} in {self.path}; see `llmbench runs list`")
        if len(rows) > 1:
            shown = ", ".join(r["id"][:12] for r in rows[:5])
            raise UnknownIdError(
                f"run id {run_id!r} is ambiguous in {self.path} ({shown}, ...); give more characters"
            )
        return self._run_info(rows[0])

    def load_records(self, run_id: str) -> list[RequestRecord]:
        """Every stored record of a run, in insertion order; times are seconds since the run's origin."""
        rows = self._conn.execute(
            "SELECT * FROM requests WHERE run_id = ? ORDER BY rowid", (self.get_run(run_id).id,)
        ).fetchall()
        return [
            RequestRecord(
                request_id=r["request_id"],
                status=Status(r["status"]),
                scheduled_s=r["scheduled_s"],
                start_s=r["start_s"],
                end_s=r["end_s"],
                first_byte_s=r["first_byte_s"],
                first_token_s=r["first_token_s"],
                first_content_s=r["first_content_s"],
                token_chunk_s=unpack_times(r["token_chunk_s"]),
                input_tokens=r["input_tokens"],
                output_tokens=r["output_tokens"],
                reasoning_tokens=r["reasoning_tokens"],
                cached_input_tokens=r["cached_input_tokens"],
                cache_write_tokens=r["cache_write_tokens"],
                input_bytes=r["input_bytes"],
                output_bytes=r["output_bytes"],
                tokens_from=cast(TokenSource, r["tokens_from"]),
                http_status=r["http_status"],
                error_kind=r["error_kind"],
                error_text=r["error_text"],
                output_text=r["output_text"],
                reasoning_text=r["reasoning_text"],
                warmup=bool(r["warmup"]),
                session_id=r["session_id"],
                turn=r["turn"],
            )
            for r in rows
        ]

    def load_server_samples(self, run_id: str, name: str | None = None) -> list[ServerSample]:
        """A run's server samples (optionally one metric), by time."""
        sql = "SELECT t_s, name, labels, value FROM server_metrics WHERE run_id = ?"
        params: list[Any] = [self.get_run(run_id).id]
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        rows = self._conn.execute(sql + " ORDER BY t_s, rowid", params).fetchall()
        return [ServerSample(r[0], r[1], from_json(r[2]), r[3]) for r in rows]

    def load_items(self, run_id: str) -> list[ItemRecord]:
        """A run's scored items, in insertion order."""
        rows = self._conn.execute(
            "SELECT * FROM items WHERE run_id = ? ORDER BY rowid", (self.get_run(run_id).id,)
        ).fetchall()
        return [
            ItemRecord(
                item_id=r["item_id"],
                status=r["status"],
                area=r["area"],
                repeat=r["repeat"],
                score=r["score"],
                correct=None if r["correct"] is None else bool(r["correct"]),
                output=r["output"],
                reference=r["reference"],
                input_tokens=r["input_tokens"],
                output_tokens=r["output_tokens"],
                latency_ms=r["latency_ms"],
                cost_usd=r["cost_usd"],
                judge=from_json(r["judge"]),
                error_text=r["error_text"],
                extra=from_json(r["extra"]) or {},
            )
            for r in rows
        ]


def _check_documents(kind: str, target: Any, profile: Any, provenance: Any, summary: Any) -> None:
    """Refuse to write a document its typed model would not read back (None: not checked here)."""
    loaders: list[tuple[Any, Any]] = [
        (TargetDoc.from_json, target),
        (LoadRunProfile.from_json if kind == "load" else AccuracyRunProfile.from_json, profile),
        (Provenance.from_json, provenance),
        (RunSummary.from_json if kind == "load" else AccuracySummary.from_json, summary),
    ]
    for load, document in loaders:
        if document is None:
            continue
        try:
            load(document)
        except Exception as exc:
            raise ValueError(f"a {kind} run's document does not match its typed model: {exc}") from exc
