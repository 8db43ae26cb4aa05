"""The recovery report: per-area flags under a passing average, n/a with reasons, the paired ratio CI,
and the driver end to end against two mock servers (an exact oracle as the base, a worse one as the variant).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from bench.documents import RecoveryDoc, RecoveryFigure
from bench.records import ItemRecord
from bench.recovery import RecoverySpec, Served, run_recovery, saturation_level
from bench.recovery.report import ModelFacts, SpeedPoint, SpeedRuns, SuiteRuns, recovery_document
from bench.registry import load_registry
from bench.settings import Settings
from bench.stats import _quantile, paired_compare, paired_interval
from bench.store import Store
from bench.suite_files import builtin_suites_dir
from serve.mock.server import running_mock
from serve.specs import AnswerModel, LatencyModel, MockSpec


def items(correct: dict[str, list[bool]]) -> list[ItemRecord]:
    return [
        ItemRecord(
            item_id=f"{area}-{i}", status="ok", area=area, correct=c, score=float(c), output="", reference=""
        )
        for area, verdicts in correct.items()
        for i, c in enumerate(verdicts)
    ]


def doc(base: list[ItemRecord], var: list[ItemRecord], speed: SpeedRuns | None = None) -> RecoveryDoc:
    return recovery_document(
        ModelFacts("m", "m", "hf", weights_bytes=1000, disk_bytes=1100, dtype="float32"),
        ModelFacts("m:q", "m-q", "hf", "bnb-int8", weights_bytes=300, disk_bytes=320),
        {"s": SuiteRuns("A", base, "B", var)},
        speed or SpeedRuns(skipped="--no-speed"),
        threshold=0.95,
    )


def test_an_area_under_the_threshold_is_flagged_even_when_the_average_passes() -> None:
    base = items({a: [True] * 50 for a in ("w", "x", "y", "z")})
    var = items({"w": [True] * 44 + [False] * 6, "x": [True] * 50, "y": [True] * 50, "z": [True] * 50})
    d = doc(base, var)
    suite = d.suites["s"]
    assert suite.recovery.value == 194 / 200 and not suite.flagged  # 0.97: the average passes
    assert suite.areas["w"].recovery.value == 44 / 50 and suite.areas["w"].flagged
    assert d.flagged == ["s/w"] and d.passed is False
    assert suite.areas["w"].recovery.ci95 is not None
    lo, hi = suite.areas["w"].recovery.ci95
    assert hi is not None and lo < 44 / 50 <= hi <= 1.0
    assert d.size_ratio == RecoveryFigure(value=0.3, basis="weight bytes (safetensors headers)")
    assert d.speed.ratio.concurrency_1 == RecoveryFigure(value=None, reason="speed not measured: --no-speed")
    assert RecoveryDoc.from_json(d.to_json()) == d and d.to_json()["schema"] == "llmbench.recovery/1"


def test_missing_figures_are_na_with_a_reason_never_zero() -> None:
    base = items({"a": [False] * 10, "b": [True] * 10})
    var = items({"a": [False] * 10, "b": [True] * 10})
    d = doc(
        base, var, SpeedRuns(base=[SpeedPoint(1, None, None, None, 0, 8, "r1")], variant=[], saturation=None)
    )
    area = d.suites["s"].areas["a"]
    assert area.recovery.value is None and "base scores 0" in (area.recovery.reason or "")
    ratio = d.speed.ratio
    assert ratio.concurrency_1.value is None and "8 failed requests" in (ratio.concurrency_1.reason or "")
    assert ratio.saturation.value is None and "saturation point" in (ratio.saturation.reason or "")
    nothing = items({"a": []})
    failed = [ItemRecord(item_id="a-0", status="error", area="a", error_text="http_400: too long")]
    d = doc(nothing + failed, failed)
    assert d.suites["s"].recovery.value is None
    assert "http_400: too long" in (d.suites["s"].recovery.reason or "") and d.flagged == ["s"]


def test_saturation_is_the_lowest_level_near_the_best_throughput() -> None:
    points = [SpeedPoint(c, t, None, None, 10, 0, None) for c, t in ((1, 100.0), (4, 370.0), (16, 400.0))]
    assert saturation_level(points, 0.9) == 4
    assert saturation_level(points, 0.95) == 16
    assert saturation_level([], 0.9) is None


def test_the_ratio_ci_is_a_paired_bootstrap_and_the_difference_ci_is_newcombes() -> None:
    rng = random.Random(3)
    a = {str(i): rng.random() < 0.8 for i in range(300)}
    b = {k: v if rng.random() < 0.9 else not v for k, v in a.items()}
    got = paired_compare(a, b)
    # The ratio CI: resample the item pairs (seed 0, 5,000 resamples) and take ΣB ÷ ΣA.
    keys = sorted(a)
    pairs = [(int(a[k]), int(b[k])) for k in keys]
    r2 = random.Random(0)
    ratios = []
    for _ in range(5000):
        drawn = r2.choices(pairs, k=len(pairs))
        ratios.append(sum(y for _, y in drawn) / sum(x for x, _ in drawn))
    ratios.sort()
    assert got.ratio_ci95 == (_quantile(ratios, 0.025), _quantile(ratios, 0.975))
    both = sum(1 for x, y in pairs if x and y)
    lo, hi = paired_interval(both, got.a_only, got.b_only, len(pairs) - both - got.a_only - got.b_only)
    assert got.ci95_points == (100 * lo, 100 * hi)
    assert got.ratio == sum(b.values()) / sum(a.values())
    assert got.ratio_ci95 is not None and got.ratio_ci95[0] < got.ratio < got.ratio_ci95[1]
    zero = paired_compare({"1": False, "2": False}, {"1": True, "2": False})
    assert zero.ratio is None and zero.ratio_ci95 is None
    assert math.isfinite(paired_compare({"1": True, "2": False}, {"1": True, "2": True}).ratio or math.inf)


OVERLAY = {
    "schema": "llmbench.models/1",
    "local": {
        "rbase": {"builtin": "tiny-skills", "license": "x", "context": {"native": 256, "served": 256}},
        "rbase-int8": {
            "builtin": "tiny-skills", "license": "x", "context": {"native": 256, "served": 256},
            "derived_from": "rbase", "variant": "int8",
            "quantization": {"method": "bnb-int8", "source": "llmbench"},
        },
    },
}  # fmt: skip


@pytest.mark.slow  # about 1.2 s: scripts/test runs it, scripts/check stays under a minute
def test_run_recovery_serves_both_scores_loads_and_stores_the_document(tmp_path: Path) -> None:
    overlay = tmp_path / "models.yaml"
    overlay.write_text(yaml.safe_dump(OVERLAY), encoding="utf-8")
    registry, settings = load_registry([overlay]), Settings.from_env(models_files=[overlay])
    oracle = builtin_suites_dir() / "tiny-skills.jsonl"
    accuracy = {"rbase": 1.0, "rbase-int8": 0.75}
    served: list[tuple[str, str]] = []

    @contextmanager
    def serve(name: str, backend: str) -> Iterator[Served]:
        served.append((name, backend))
        spec = MockSpec(
            model=name, port=0, strict=False,
            latency=LatencyModel(itl_ms=2.0, capacity=2),
            answers=AnswerModel(kind="oracle", oracle_file=oracle, accuracy=accuracy[name], seed=1),
        )  # fmt: skip
        with running_mock(spec) as url:
            yield Served(url=url.removesuffix("/v1"), backend=backend)

    spec = RecoverySpec(
        base="rbase", variant="rbase:int8", suites=["builtin:tiny-skills"], limit=20, backend="hf",
        speed_levels=[1, 2, 4], speed_requests=8, output_tokens=8, input_tokens=16,
    )  # fmt: skip
    result = run_recovery(spec, registry, settings, serve)
    assert served == [("rbase", "hf"), ("rbase-int8", "hf")]
    d = result.document
    suite = d.suites["builtin:tiny-skills"]
    assert suite.n == 80 and suite.base_score == 1.0 and 0.5 < (suite.variant_score or 0) < 0.95
    assert set(suite.areas) == {"arithmetic", "comparison", "lookup", "string"}
    assert suite.flagged and "builtin:tiny-skills" in d.flagged
    assert d.size_ratio.value is None and "not in the local model cache" in (d.size_ratio.reason or "")
    speed = d.speed
    assert [p.concurrency for p in speed.base] == [1, 2, 4]
    sat = speed.saturation_concurrency
    best = max(p.output_tokens_per_s or 0 for p in speed.base)
    assert sat == min(p.concurrency for p in speed.base if (p.output_tokens_per_s or 0) >= 0.9 * best)
    assert [p.concurrency for p in speed.variant] == sorted({1, sat})
    assert (speed.ratio.concurrency_1.value or 0) > 0 and speed.ratio.saturation.concurrency == sat
    with Store.open(settings.results_path) as store:
        docs = store.list_documents("llmbench.recovery/1", subject="rbase:int8")
        assert [x.id for x in docs] == [result.document_id] and RecoveryDoc.from_json(docs[0].body) == d
        assert store.get_run(suite.base_run).kind == "accuracy"
        assert store.get_run(speed.base[0].run_id or "").kind == "load"
    # The answer page reads exactly this document: every area, with its recovery and CI.
    from bench.report.recovery import read_recovery

    read = read_recovery(docs)
    assert read.empty_reason is None and not read.unreadable
    by_area = {a.area: a for a in read.areas}
    for area, figure in d.suites["builtin:tiny-skills"].areas.items():
        if figure.recovery.value is not None:
            assert by_area[area].recovery == figure.recovery.value
            assert by_area[area].flagged == figure.flagged
    assert {a.variant for a in read.areas} == {d.variant.name}


def test_the_document_names_the_dtype_the_engine_served_not_only_the_stored_one(tmp_path: Path) -> None:
    # The tiny model's folder says float32; vLLM served it in bfloat16 (its engine arguments say so).
    from documents import accuracy_profile, provenance, target

    from bench.recovery.driver import served_dtype
    from bench.recovery.report import ModelFacts
    from bench.store import Store

    with Store.open(tmp_path / "r.sqlite") as store:
        tgt, profile = target("tiny-skills", "local"), accuracy_profile()
        run = store.start_run("accuracy", tgt, profile, provenance(engine_args={"dtype": "bfloat16"}))
        auto = store.start_run("accuracy", tgt, profile, provenance(engine_args={"dtype": "auto"}))
        assert served_dtype(store, [auto, run]) == "bfloat16"
        assert served_dtype(store, [auto]) is None
    facts = ModelFacts("tiny-skills", "tiny-skills", "vllm", dtype="float32", served_dtype="bfloat16").side()
    assert (facts.dtype, facts.dtype_from, facts.stored_dtype) == ("bfloat16", "engine", "float32")
    stored = ModelFacts("x", "x", "hf", dtype="float32").side()
    assert (stored.dtype, stored.dtype_from) == ("float32", "config.json")


def test_a_document_stored_by_the_previous_writer_reads_as_the_typed_document() -> None:
    # tests/data/recovery-doc-aeb6c25.json was written by bench/recovery/report.py as of commit aeb6c25
    # (a dict built by hand, before RecoveryDoc): a suite with a 0-score area, a suite with no shared item,
    # measured speed with a ratio missing. It reads back field for field, and writes the same JSON again.
    import json

    from bench.report.recovery import read_recovery
    from bench.store import Document

    stored = json.loads((Path(__file__).parents[1] / "data" / "recovery-doc-aeb6c25.json").read_text())
    d = RecoveryDoc.from_json(stored)
    assert d.suites["s"].areas["a"].recovery.value == 18 / 20 and d.suites["s"].areas["a"].flagged
    assert d.suites["s"].areas["b"].recovery.value is None and d.suites["t"].n == 0
    assert d.speed.ratio.concurrency_1 == RecoveryFigure(value=1.1, concurrency=1)
    assert d.variant.size_reason == "no checkpoint of its own" and d.base.dtype == "bfloat16"
    again = d.to_json()  # the same figures, in the same shape ({value, ci95} | {value: null, reason} ...)
    assert RecoveryDoc.from_json(again) == d
    assert (again["size_ratio"], again["speed"]["ratio"]) == (stored["size_ratio"], stored["speed"]["ratio"])
    for name, suite in stored["suites"].items():
        assert again["suites"][name]["recovery"] == suite["recovery"]
        for area, figure in suite["areas"].items():
            assert again["suites"][name]["areas"][area]["recovery"] == figure["recovery"]
    read = read_recovery([Document("d" * 32, "llmbench.recovery/1", "", "m:int8", None, stored)])
    assert [(a.suite, a.area, a.recovery) for a in read.areas] == [("s", "a", 0.9)] and not read.unreadable
