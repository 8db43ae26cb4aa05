"""The store's sweep, point and document tables (migration m002)."""

from __future__ import annotations

from pathlib import Path

import pytest
from documents import load_profile, point, provenance, target

from bench.documents import SweepPoint
from bench.errors import StoreError
from bench.store import Store


def test_a_sweep_records_its_points_and_their_runs(tmp_path: Path) -> None:
    plan = [
        SweepPoint(point_id=p, label=t, target=t, kind="mock", serve_name=t, variant="base", backend="mock")
        for p, t in (("p1", "a"), ("p2", "b"))
    ]
    with Store.open(tmp_path / "r.sqlite") as store:
        sweep_id = store.start_sweep({"name": "s", "api_key": "secret"}, plan, name="s")
        assert [p.status for p in store.list_points(sweep_id)] == ["pending", "pending"]
        run_id = store.start_run(
            "load", target("a"), load_profile(), provenance(), sweep_id=sweep_id, point_id="p1"
        )
        store.set_point(sweep_id, "p1", "running")
        store.set_point(sweep_id, "p1", "complete", run_ids=[run_id], detail={"spend_usd": 0.5})
        store.set_point(sweep_id, "p2", "failed", error="engine exited with code 1")
        store.finish_sweep(sweep_id, "partial")
        points = {p.point_id: p for p in store.list_points(sweep_id)}
        info = store.get_sweep(sweep_id[:8])
        runs = store.list_runs(sweep_id=sweep_id)
    assert points["p1"].run_ids == [run_id] and points["p1"].started_at and points["p1"].ended_at
    assert points["p2"].status == "failed" and points["p2"].error == "engine exited with code 1"
    assert info.status == "partial" and info.plan == plan
    assert info.spec["api_key"] == "***"  # secret-named keys never reach the store
    assert [(r.id, r.sweep_id, r.point_id) for r in runs] == [(run_id, sweep_id, "p1")]


def test_a_sweep_whose_process_died_reads_partial(tmp_path: Path) -> None:
    with Store.open(tmp_path / "r.sqlite") as store:
        sweep_id = store.start_sweep({}, [point("p")])
        store._conn.execute("UPDATE sweeps SET pid = 999999999 WHERE id = ?", (sweep_id,))
        assert store.get_sweep(sweep_id).status == "partial"
        assert store.resume_sweep(sweep_id).status == "running"


def test_unknown_sweep_and_point_are_errors(tmp_path: Path) -> None:
    with Store.open(tmp_path / "r.sqlite") as store:
        with pytest.raises(StoreError, match="no sweep matches"):
            store.get_sweep("nope")
        sweep_id = store.start_sweep({}, [point("p")])
        with pytest.raises(StoreError, match="no point"):
            store.set_point(sweep_id, "other", "complete")


def test_documents_round_trip_newest_first(tmp_path: Path) -> None:
    with Store.open(tmp_path / "r.sqlite") as store:
        first = store.add_document("llmbench.recovery/1", {"a": 1}, subject="m:v")
        second = store.add_document("llmbench.recovery/1", {"a": 2, "token": "x"}, subject="m:v")
        store.add_document("other/1", {"b": 1})
        docs = store.list_documents("llmbench.recovery/1", subject="m:v")
    assert [d.id for d in docs] == [second, first]
    assert docs[0].body == {"a": 2, "token": "***"}
