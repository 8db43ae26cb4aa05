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
from bench.loadgen.documents import LoadRunProfile
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


def run_row(info: RunInfo, pricing: Pricing) -> dict[str, Any]:
    """One run flattened to the RUN_COLUMNS (None where a run kind has no such figure)."""
    p = info.provenance
    load, acc = info.load_summary, info.accuracy_summary
    profile = info.profile if isinstance(info.profile, LoadRunProfile) else None
    suite = suite_key(info) if info.kind == "accuracy" else None
    quant = p.quantization
    return {
        "run_id": info.id,
        "kind": info.kind,
        "status": info.status,
        "started_at": info.started_at,
        "ended_at": info.ended_at,
        "target": target_name(info),
        "target_kind": info.target.kind,
        "model": info.target.model,
        "api": info.target.api,
        "option_kind": option_kind(info),
        "hardware": hardware_of(info, pricing),
        "profile": profile.label if profile else None,
        "concurrency": profile.concurrency if profile else None,
        "rate": profile.rate if profile else None,
        "suite": suite.suite if suite else None,
        "suite_sha256": suite.sha256 if suite else None,
        "sweep_id": info.sweep_id,
        "point_id": info.point_id,
        "requests_completed": load.completed if load else None,
        "requests_failed": load.failed if load else (acc.failed if acc else None),
        "requests_cancelled": load.cancelled if load else None,
        "ttft_p50_ms": load.ttft_ms.p50 if load else None,
        "ttft_p95_ms": load.ttft_ms.p95 if load else None,
        "ttft_p99_ms": load.ttft_ms.p99 if load else None,
        "tpot_p50_ms": load.tpot_ms.p50 if load else None,
        "tpot_p95_ms": load.tpot_ms.p95 if load else None,
        "itl_p50_ms": load.itl_ms.p50 if load else None,
        "e2e_p95_ms": load.e2e_ms.p95 if load else None,
        "output_tokens_per_s": load.output_tokens_per_s if load else None,
        "requests_per_s": load.requests_per_s if load else None,
        "goodput_requests_per_s": load.goodput_requests_per_s if load else None,
        "slo": json.dumps(load.slo.to_json()) if load and load.slo else None,
        "slo_met": load.slo_met if load else None,
        "client_bound": load.client_bound if load else None,
        "input_tokens": load.input_tokens if load else (acc.tokens.input if acc else None),
        "output_tokens": load.output_tokens if load else (acc.tokens.output if acc else None),
        "accuracy": acc.score if acc else None,
        "accuracy_ci_lo": acc.ci95[0] if acc and acc.ci95 else None,
        "accuracy_ci_hi": acc.ci95[1] if acc and acc.ci95 else None,
        "items_scored": acc.n if acc else None,
        "items_correct": acc.correct if acc else None,
        "items_failed": acc.failed if acc else None,
        "cost_usd": acc.cost_usd if acc else None,
        "engine": p.engine.name,
        "engine_version": p.engine.version,
        "model_repo": p.model.repo,
        "model_revision": p.model.revision,
        "quantization": None if quant is None else quant.get("method"),
        "llmbench_version": p.llmbench.version,
        "git_sha": p.llmbench.git.sha,
        "flags": ",".join(f.kind for f in load.flags) if load and load.flags else None,
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
