"""Export stored runs as CSV or Parquet: one row per run (flattened key figures), or the raw request or item
rows. Raw rows stream from SQLite in batches, so a million requests never sit in memory as Python objects.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.report.options import Pricing, hardware_of, option_kind, suite_key, target_name
from bench.store import RunInfo

BATCH = 100_000
RUN_COLUMNS = (
    "run_id", "kind", "status", "started_at", "ended_at", "target", "target_kind", "model", "api",
    "option_kind", "hardware", "profile", "concurrency", "rate", "suite", "suite_sha256", "sweep_id",
    "point_id", "requests_completed", "requests_failed", "requests_cancelled", "ttft_p50_ms", "ttft_p95_ms",
    "ttft_p99_ms", "tpot_p50_ms", "tpot_p95_ms", "itl_p50_ms", "e2e_p95_ms", "output_tokens_per_s",
    "requests_per_s", "goodput_requests_per_s", "slo", "slo_met", "client_bound", "input_tokens",
    "output_tokens", "accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "items_scored", "items_correct",
    "items_failed", "cost_usd", "engine", "engine_version", "model_repo", "model_revision", "quantization",
    "llmbench_version", "git_sha", "flags",
)  # fmt: skip
REQUEST_COLUMNS = (
    "run_id", "request_id", "status", "warmup", "scheduled_s", "start_s", "first_byte_s", "first_token_s",
    "first_content_s", "end_s", "input_tokens", "output_tokens", "reasoning_tokens", "cached_input_tokens",
    "tokens_from", "http_status", "error_kind", "error_text", "chunks",
)  # fmt: skip
ITEM_COLUMNS = (
    "run_id", "item_id", "area", "repeat", "status", "score", "correct", "output", "reference",
    "input_tokens", "output_tokens", "latency_ms", "cost_usd", "error_text",
)  # fmt: skip


def _dist(summary: dict[str, Any], metric: str, pct: str) -> Any:
    return (summary.get(metric) or {}).get(pct)


def run_row(info: RunInfo, pricing: Pricing) -> dict[str, Any]:
    """One run flattened to the RUN_COLUMNS (None where a run kind has no such figure)."""
    s: dict[str, Any] = info.summary or {}
    p = info.provenance
    req = s.get("requests") or {}
    tokens = s.get("tokens") or {}
    engine = p.get("engine") or {}
    model = p.get("model") or {}
    git = (p.get("llmbench") or {}).get("git") or {}
    quant = p.get("quantization")
    is_load = info.kind == "load"
    ci = s.get("ci95") if not is_load else None
    suite = suite_key(info) if not is_load else None
    return {
        "run_id": info.id,
        "kind": info.kind,
        "status": info.status,
        "started_at": info.started_at,
        "ended_at": info.ended_at,
        "target": target_name(info),
        "target_kind": info.target.get("kind"),
        "model": info.target.get("model"),
        "api": info.target.get("api"),
        "option_kind": option_kind(info),
        "hardware": hardware_of(info, pricing),
        "profile": info.profile.get("label") or info.profile.get("kind"),
        "concurrency": info.profile.get("concurrency"),
        "rate": info.profile.get("rate"),
        "suite": suite.suite if suite else None,
        "suite_sha256": suite.sha256 if suite else None,
        "sweep_id": info.sweep_id,
        "point_id": info.point_id,
        "requests_completed": req.get("completed"),
        "requests_failed": req.get("failed") if is_load else s.get("failed"),
        "requests_cancelled": req.get("cancelled"),
        "ttft_p50_ms": _dist(s, "ttft_ms", "p50"),
        "ttft_p95_ms": _dist(s, "ttft_ms", "p95"),
        "ttft_p99_ms": _dist(s, "ttft_ms", "p99"),
        "tpot_p50_ms": _dist(s, "tpot_ms", "p50"),
        "tpot_p95_ms": _dist(s, "tpot_ms", "p95"),
        "itl_p50_ms": _dist(s, "itl_ms", "p50"),
        "e2e_p95_ms": _dist(s, "e2e_ms", "p95"),
        "output_tokens_per_s": s.get("output_tokens_per_s"),
        "requests_per_s": s.get("requests_per_s"),
        "goodput_requests_per_s": s.get("goodput_requests_per_s"),
        "slo": json.dumps(s["slo"]) if s.get("slo") else None,
        "slo_met": s.get("slo_met"),
        "client_bound": s.get("client_bound"),
        "input_tokens": tokens.get("input"),
        "output_tokens": tokens.get("output"),
        "accuracy": None if is_load else s.get("score"),
        "accuracy_ci_lo": ci[0] if ci else None,
        "accuracy_ci_hi": ci[1] if ci else None,
        "items_scored": None if is_load else s.get("n"),
        "items_correct": None if is_load else s.get("correct"),
        "items_failed": None if is_load else s.get("failed"),
        "cost_usd": None if is_load else s.get("cost_usd"),
        "engine": engine.get("name"),
        "engine_version": engine.get("version"),
        "model_repo": model.get("repo"),
        "model_revision": model.get("revision"),
        "quantization": (quant.get("method") if isinstance(quant, dict) else quant),
        "llmbench_version": (p.get("llmbench") or {}).get("version"),
        "git_sha": git.get("sha"),
        "flags": ",".join(str(f.get("kind")) for f in s.get("flags") or [] if isinstance(f, dict)) or None,
    }


def _raw_batches(store: Path, table: str, run_ids: Sequence[str]) -> Iterator[list[tuple[Any, ...]]]:
    if table == "requests":
        cols = ", ".join(c for c in REQUEST_COLUMNS if c != "chunks") + ", length(token_chunk_s) / 8"
    else:
        cols = ", ".join(ITEM_COLUMNS)
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        for run_id in run_ids:
            cur = conn.execute(f"SELECT {cols} FROM {table} WHERE run_id = ? ORDER BY rowid", (run_id,))
            while rows := cur.fetchmany(BATCH):
                yield rows
    finally:
        conn.close()


def _write_csv(path: Path, columns: Sequence[str], batches: Iterator[list[tuple[Any, ...]]]) -> int:
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for rows in batches:
            writer.writerows(rows)
            n += len(rows)
    return n


# Arrow types of the raw columns (the rest are strings); a run whose first rows are all null must not fix
# a column's type.
_INTS = {"request_id", "warmup", "input_tokens", "output_tokens", "reasoning_tokens", "cached_input_tokens",
         "http_status", "chunks", "repeat", "correct", "concurrency", "requests_completed", "requests_failed",
         "requests_cancelled", "slo_met", "items_scored", "items_correct", "items_failed"}  # fmt: skip
_FLOATS = {"scheduled_s", "start_s", "first_byte_s", "first_token_s", "first_content_s", "end_s", "score",
           "latency_ms", "cost_usd", "rate", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms", "tpot_p50_ms",
           "tpot_p95_ms", "itl_p50_ms", "e2e_p95_ms", "output_tokens_per_s", "requests_per_s",
           "goodput_requests_per_s", "accuracy", "accuracy_ci_lo", "accuracy_ci_hi"}  # fmt: skip


def _schema(columns: Sequence[str]) -> Any:
    import pyarrow as pa

    def kind(c: str) -> Any:
        if c in _INTS:
            return pa.int64()
        if c in _FLOATS:
            return pa.float64()
        return pa.bool_() if c == "client_bound" else pa.string()

    return pa.schema([pa.field(c, kind(c)) for c in columns])


def _write_parquet(path: Path, columns: Sequence[str], batches: Iterator[list[tuple[Any, ...]]]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema(columns)
    n = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for rows in batches:
            data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
            writer.write_table(pa.Table.from_pydict(data, schema=schema))
            n += len(rows)
    return n


def export(runs: Sequence[RunInfo], store: Path, out: Path, fmt: str, what: str, pricing: Pricing) -> int:
    """Write `what` ('runs', 'requests' or 'items') of `runs` to `out` as 'csv' or 'parquet'; rows written."""
    if fmt not in ("csv", "parquet"):
        raise UsageError(f"format {fmt!r}: use --csv or --parquet", flag="--csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    if what == "runs":
        columns: Sequence[str] = RUN_COLUMNS
        rows = [tuple(run_row(r, pricing)[c] for c in RUN_COLUMNS) for r in runs]
        batches: Iterator[list[tuple[Any, ...]]] = iter([rows] if rows else [])
    elif what in ("requests", "items"):
        kind = "load" if what == "requests" else "accuracy"
        columns = REQUEST_COLUMNS if what == "requests" else ITEM_COLUMNS
        batches = _raw_batches(store, what, [r.id for r in runs if r.kind == kind])
    else:
        raise UsageError(f"{what!r}: export runs, requests or items", flag="--what")
    writer = _write_csv if fmt == "csv" else _write_parquet
    return writer(out, columns, batches)
