"""The SQLite results store: runs with provenance, raw request records, server samples, scored items."""

from bench.records import ItemRecord
from bench.store.db import Store
from bench.store.migrations import MIGRATIONS, Migration
from bench.store.rows import RunInfo, RunKind, RunStatus, ServerSample, rebase
from bench.store.sweeps import Document, PointInfo, PointStatus, SweepInfo, SweepStatus

__all__ = [
    "MIGRATIONS",
    "Document",
    "ItemRecord",
    "Migration",
    "PointInfo",
    "PointStatus",
    "RunInfo",
    "RunKind",
    "RunStatus",
    "ServerSample",
    "Store",
    "SweepInfo",
    "SweepStatus",
    "rebase",
]
