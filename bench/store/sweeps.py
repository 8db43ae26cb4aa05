"""The store's sweep and document tables: a sweep's points with their status, and JSON documents.

A sweep row holds the validated sweep file and its expanded plan; each point has a stable id (a hash of its
definition), a status, the runs it made and, when it failed, the engine's reason. Documents are versioned
JSON results that are not runs (e.g. `llmbench.recovery/1`), kept so reports read only the store.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import psutil

from bench.documents import PointDetail, SweepPoint
from bench.errors import StoreError, UnknownIdError
from bench.store.liveness import process_alive
from bench.store.rows import from_json, plain, scrub, to_json

SweepStatus = Literal["running", "complete", "partial", "failed"]
PointStatus = Literal["pending", "running", "complete", "partial", "failed", "skipped"]


def now_iso() -> str:
    """Wall clock as stored: ISO 8601 UTC with milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SweepInfo:
    """One stored sweep. `status` reads 'partial' for a 'running' sweep whose process is gone."""

    id: str
    name: str | None
    status: SweepStatus
    started_at: str
    ended_at: str | None
    spec: dict[str, Any]  # the sweep file as validated (bench.sweep.spec.SweepFile reads it)
    plan: list[SweepPoint]
    note: str | None


@dataclass(frozen=True, slots=True)
class PointInfo:
    """One point of a sweep."""

    sweep_id: str
    point_id: str
    status: PointStatus
    started_at: str | None
    ended_at: str | None
    run_ids: list[str]
    error: str | None
    detail: PointDetail


@dataclass(frozen=True, slots=True)
class Document:
    """A stored JSON document (its `schema` names the contract, e.g. llmbench.recovery/1)."""

    id: str
    schema: str
    created_at: str
    subject: str | None
    sweep_id: str | None
    body: dict[str, Any]


class SweepRows:
    """Mixed into Store: needs `_conn`, `path`, `_write(sql, params, many)` and `flush()`."""

    _conn: sqlite3.Connection
    path: Path

    def _write(self, sql: str, params: Sequence[Any] | Iterable[Sequence[Any]], many: bool = False) -> None:
        raise NotImplementedError  # provided by Store

    def flush(self) -> None:
        raise NotImplementedError  # provided by Store

    # sweeps ---------------------------------------------------------------------------------------

    def start_sweep(
        self,
        spec: Mapping[str, Any],
        plan: Sequence[SweepPoint | Mapping[str, Any]],
        *,
        name: str | None = None,
    ) -> str:
        """Record a new 'running' sweep with every point 'pending'; returns its id."""
        sweep_id = uuid.uuid4().hex
        points = [p if isinstance(p, SweepPoint) else SweepPoint.from_json(p) for p in plan]
        me = psutil.Process()
        self._write(
            "INSERT INTO sweeps (id, name, status, started_at, pid, pid_started, spec, plan)"
            " VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
            (sweep_id, name, now_iso(), me.pid, float(me.create_time()),
             to_json(scrub(dict(spec))), to_json([p.to_json() for p in points])),
        )  # fmt: skip
        rows = [(sweep_id, p.point_id, "pending") for p in points]
        self._write("INSERT INTO sweep_points (sweep_id, point_id, status) VALUES (?, ?, ?)", rows, many=True)
        self.flush()
        return sweep_id

    def resume_sweep(self, sweep_id: str) -> SweepInfo:
        """Mark a stored sweep 'running' again under this process; returns it."""
        info = self.get_sweep(sweep_id)
        me = psutil.Process()
        self._write(
            "UPDATE sweeps SET status = 'running', ended_at = NULL, pid = ?, pid_started = ? WHERE id = ?",
            (me.pid, float(me.create_time()), info.id),
        )
        self.flush()
        return self.get_sweep(info.id)

    def finish_sweep(self, sweep_id: str, status: SweepStatus, note: str | None = None) -> None:
        """Close a sweep as 'complete', 'partial' or 'failed'."""
        self._write(
            "UPDATE sweeps SET status = ?, ended_at = ?, note = COALESCE(?, note) WHERE id = ?",
            (status, now_iso(), note, sweep_id),
        )
        self.flush()

    def set_point(
        self,
        sweep_id: str,
        point_id: str,
        status: PointStatus,
        *,
        run_ids: Sequence[str] | None = None,
        error: str | None = None,
        detail: PointDetail | Mapping[str, Any] | None = None,
    ) -> None:
        """Update one point: 'running' stamps its start, a final status its end (runs, error, detail)."""
        stamp = now_iso()
        started = stamp if status == "running" else None
        ended = stamp if status not in ("pending", "running") else None
        self._write(
            "UPDATE sweep_points SET status = ?, started_at = COALESCE(?, started_at), ended_at = ?,"
            " run_ids = COALESCE(?, run_ids), error = ?, detail = COALESCE(?, detail)"
            " WHERE sweep_id = ? AND point_id = ?",
            (status, started, ended, None if run_ids is None else to_json(list(run_ids)), error,
             None if detail is None else to_json(scrub(plain(detail))), sweep_id, point_id),
        )  # fmt: skip
        missing = self._conn.execute("SELECT changes()").fetchone()[0] != 1
        self.flush()
        if missing:
            raise StoreError(f"no point {point_id!r} in sweep {sweep_id!r} of {self.path}")

    def get_sweep(self, sweep_id: str) -> SweepInfo:
        """The sweep with this id or unique prefix; StoreError when none or several match."""
        key = sweep_id.strip().lower()
        rows = self._conn.execute(
            "SELECT * FROM sweeps WHERE id = ? OR substr(id, 1, ?) = ? LIMIT 6", (key, len(key), key)
        ).fetchall()
        exact = [r for r in rows if r["id"] == key]
        if not key or not rows:
            raise UnknownIdError(
                f"no sweep matches {sweep_id!r} in {self.path}; "
                "`llmbench runs sweeps` lists the stored sweeps"
            )
        if len(rows) > 1 and not exact:
            raise UnknownIdError(f"sweep id {sweep_id!r} is ambiguous in {self.path}; give more characters")
        return self._sweep_info((exact or rows)[0])

    def list_sweeps(self, limit: int = 20) -> list[SweepInfo]:
        """Sweeps, newest first."""
        rows = self._conn.execute(
            "SELECT * FROM sweeps ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,)
        ).fetchall()
        return [self._sweep_info(r) for r in rows]

    def list_points(self, sweep_id: str) -> list[PointInfo]:
        """A sweep's points in plan order."""
        rows = self._conn.execute(
            "SELECT * FROM sweep_points WHERE sweep_id = ? ORDER BY rowid", (sweep_id,)
        ).fetchall()
        return [
            PointInfo(
                sweep_id=r["sweep_id"],
                point_id=r["point_id"],
                status=cast(PointStatus, r["status"]),
                started_at=r["started_at"],
                ended_at=r["ended_at"],
                run_ids=from_json(r["run_ids"]) or [],
                error=r["error"],
                detail=PointDetail.from_json(from_json(r["detail"]) or {}),
            )
            for r in rows
        ]

    def _sweep_info(self, row: sqlite3.Row) -> SweepInfo:
        status = cast(SweepStatus, row["status"])
        if status == "running" and not process_alive(row["pid"], row["pid_started"]):
            status = "partial"
        return SweepInfo(
            id=row["id"],
            name=row["name"],
            status=status,
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            spec=from_json(row["spec"]),
            plan=[SweepPoint.from_json(p) for p in from_json(row["plan"]) or []],
            note=row["note"],
        )

    # documents ------------------------------------------------------------------------------------

    def add_document(
        self,
        schema: str,
        body: Mapping[str, Any],
        *,
        subject: str | None = None,
        sweep_id: str | None = None,
    ) -> str:
        """Store a JSON document (secret-named keys redacted); returns its id."""
        doc_id = uuid.uuid4().hex
        self._write(
            "INSERT INTO documents (id, schema, created_at, subject, sweep_id, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (doc_id, schema, now_iso(), subject, sweep_id, to_json(scrub(dict(body)))),
        )
        self.flush()
        return doc_id

    def list_documents(
        self, schema: str | None = None, *, subject: str | None = None, sweep_id: str | None = None
    ) -> list[Document]:
        """Documents, newest first, filtered by schema, subject and sweep."""
        where, params = [], []
        for column, value in (("schema", schema), ("subject", subject), ("sweep_id", sweep_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM documents" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._conn.execute(sql + " ORDER BY created_at DESC, rowid DESC", params).fetchall()
        return [
            Document(r["id"], r["schema"], r["created_at"], r["subject"], r["sweep_id"], from_json(r["body"]))
            for r in rows
        ]
