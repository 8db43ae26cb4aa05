"""`runs export`: one row per run, or the raw request and item rows, as CSV and Parquet."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from report_fixtures import trade_off_store

from bench.registry import load_registry
from bench.report.export import ITEM_COLUMNS, REQUEST_COLUMNS, RUN_COLUMNS, export
from bench.report.jsonout import pricing_from_registry
from bench.store import Store

PRICING = pricing_from_registry(load_registry())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("export") / "results.sqlite"
    return path, trade_off_store(path)


def test_runs_as_csv_and_parquet(store: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, ids = store
    with Store.open(path) as db:
        runs = db.list_runs(limit=None)
    assert export(runs, path, tmp_path / "runs.csv", "csv", "runs", PRICING) == 11
    with (tmp_path / "runs.csv").open() as fh:
        rows = {r["run_id"]: r for r in csv.DictReader(fh)}
    assert list(next(iter(rows.values()))) == list(RUN_COLUMNS)
    local = rows[ids["local-c4"]]
    assert (local["kind"], local["hardware"], local["concurrency"], local["engine"]) == (
        "load",
        "cpu-2vcpu",
        "4",
        "vllm",
    )
    assert float(local["output_tokens_per_s"]) > 0 and local["accuracy"] == ""
    assert float(rows[ids["mini-acc"]]["accuracy"]) == pytest.approx(0.705)
    assert export(runs, path, tmp_path / "runs.parquet", "parquet", "runs", PRICING) == 11
    table = pq.read_table(tmp_path / "runs.parquet")
    assert table.column_names == list(RUN_COLUMNS) and table.num_rows == 11


def test_raw_rows_stream_out(store: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, _ = store
    with Store.open(path) as db:
        runs = db.list_runs(limit=None)
        n_requests = sum(r.n_requests for r in runs)
    assert export(runs, path, tmp_path / "req.parquet", "parquet", "requests", PRICING) == n_requests
    table = pq.read_table(tmp_path / "req.parquet")
    assert table.column_names == list(REQUEST_COLUMNS) and table.num_rows == n_requests
    assert set(table.column("chunks").to_pylist()) == {64}
    assert export(runs, path, tmp_path / "items.csv", "csv", "items", PRICING) == 1600
    with (tmp_path / "items.csv").open() as fh:
        assert next(csv.reader(fh)) == list(ITEM_COLUMNS)
    assert export([], path, tmp_path / "none.parquet", "parquet", "requests", PRICING) == 0
    assert pq.read_table(tmp_path / "none.parquet").num_rows == 0
