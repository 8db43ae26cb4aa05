"""A sweep's variant points are paired with their base point into stored llmbench.recovery/1 documents."""

from __future__ import annotations

from pathlib import Path

from documents import accuracy_profile, provenance, target

from bench.records import ItemRecord
from bench.registry import load_registry
from bench.settings import Settings
from bench.store import Store
from bench.sweep.execute import PointOutcome
from bench.sweep.plan import Point
from bench.sweep.recovery import store_recoveries

OVERLAY = """\
schema: llmbench.models/1
local:
  m:
    builtin: tiny-random
    license: apache-2.0
    context: {native: 512, served: 256}
  m-int8:
    builtin: tiny-random
    license: apache-2.0
    context: {native: 512, served: 256}
    derived_from: m
    variant: int8
    quantization: {method: bnb-int8, source: llmbench}
"""


def point(pid: str, serve: str, variant: str, backend: str, suites: bool = True) -> Point:
    return Point(
        point_id=pid,
        label=serve,
        target="m",
        kind="local",
        serve_name=serve,
        variant=variant,
        backend=backend,
        suites=[{"suite": "builtin:s"}] if suites else [],
    )


def items(correct: dict[str, bool]) -> list[ItemRecord]:
    return [
        ItemRecord(item_id=i, status="ok", area=i.split("-")[0], score=float(ok), correct=ok)
        for i, ok in correct.items()
    ]


def test_variant_recovery_per_area_is_stored_with_the_sweep(settings: Settings, tmp_path: Path) -> None:
    overlay = tmp_path / "models.yaml"
    overlay.write_text(OVERLAY, encoding="utf-8")
    registry = load_registry([overlay])
    store_path = tmp_path / "r.sqlite"
    base_items = items({f"a-{k}": True for k in range(20)} | {f"b-{k}": True for k in range(20)})
    var_items = items({f"a-{k}": True for k in range(20)} | {f"b-{k}": k >= 4 for k in range(20)})
    with Store.open(store_path) as store:
        sweep_id = store.start_sweep(
            {}, [point("p0", "m", "base", "vllm"), point("p1", "m:int8", "int8", "hf")]
        )
        runs = []
        for found in (base_items, var_items):
            run = store.start_run(
                "accuracy", target("m"), accuracy_profile("builtin:s", target="m"), provenance()
            )
            store.add_items(run, found)
            store.finish_run(
                run, "complete", {"suite": "s", "target": "m", "score": 1.0, "n": 1, "correct": 1}
            )
            runs.append(run)
    # The base is served again for a second workload (load only): the variant pairs with the base point whose
    # suites ran, not with the last base point of the plan. The variant's point failed (its goodput search
    # found no operating point) but its suite ran: its recovery is still stored.
    sessions = point("p2", "m", "base", "vllm", suites=False).model_copy(
        update={"workload": "chat", "workload_kind": "sessions"}
    )
    points = [point("p0", "m", "base", "vllm"), sessions, point("p1", "m:int8", "int8", "hf")]
    outcomes = {
        "p0": PointOutcome("complete", [runs[0]]),
        "p2": PointOutcome("complete", []),
        "p1": PointOutcome("failed", [runs[1]], "no operating point"),
    }
    ids = store_recoveries(points, outcomes, store_path, sweep_id, registry, settings)
    assert len(ids) == 1
    again = store_recoveries(points, outcomes, store_path, sweep_id, registry, settings)
    assert again == []  # a resumed sweep does not store it twice
    with Store.open(store_path) as store:
        (doc,) = store.list_documents("llmbench.recovery/1", sweep_id=sweep_id)
    suite = doc.body["suites"]["builtin:s"]
    assert doc.subject == "m:int8" and suite["n"] == 40
    assert suite["areas"]["a"]["flagged"] is False and suite["areas"]["b"]["flagged"] is True  # 16/20 = 0.8
    assert suite["recovery"]["value"] == 36 / 40
    assert any("base ran on vllm, the variant on hf" in n for n in doc.body["notes"])
