"""The SQLite results store: runs with provenance, raw request records, server samples, scored items."""

from bench.records import ItemRecord
from bench.store.db import Store
from bench.store.migrations import MIGRATIONS, Migration
from bench.store.rows import RunInfo, RunKind, RunStatus, ServerSample, rebase

__all__ = [
    "MIGRATIONS",
    "ItemRecord",
    "Migration",
    "RunInfo",
    "RunKind",
    "RunStatus",
    "ServerSample",
    "Store",
    "rebase",
]
