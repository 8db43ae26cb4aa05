"""The store adapter: stored accuracy runs as RouteData, stored runs as request logs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bench.accuracy.documents import AccuracySummary
from bench.errors import UnknownIdError, UsageError
from bench.prompts import PromptSpec
from bench.records import ItemRecord, RequestRecord, Status
from bench.store import Store
from bench.whatif.source import TokenPrice, load_route_data, load_run_log
from tests.documents import accuracy_profile, load_profile, provenance, target

NO_NUMBER = "no number in the answer"
SUITE_LINES = [
    {"id": "a1", "area": "math", "prompt": "What is 2 + 2?", "reference": "4"},
    {"id": "a2", "area": "math", "prompt": "What is 3 + 3?", "reference": "6", "scorer": "numeric"},
    {"id": "b1", "area": "geo", "prompt": "Capital of Peru?", "reference": "Lima"},
]


def write_suite(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in SUITE_LINES))
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def item(i: str, area: str, ok: bool, **kw: object) -> ItemRecord:
    base: dict[str, object] = dict(
        item_id=i, area=area, status="ok", correct=ok, output="x", input_tokens=10, output_tokens=2,
        latency_ms=100.0, cost_usd=0.001,
    )  # fmt: skip
    return ItemRecord(**(base | kw))  # type: ignore[arg-type]


def accuracy_run(store: Store, name: str, suite: tuple[str, str], items: list[ItemRecord]) -> str:
    profile = accuracy_profile(suite[0], target=name, suite_sha256=suite[1], max_tokens=64)
    run_id = store.start_run("accuracy", target(name, model=f"{name}-model"), profile, provenance())
    store.add_items(run_id, items)
    right = sum(1 for i in items if i.correct)
    summary = AccuracySummary(
        suite=suite[0], target=name, score=right / len(items), n=len(items), correct=right
    )
    store.finish_run(run_id, "complete", summary)
    return run_id


def test_accuracy_runs_become_route_data(tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    db = tmp_path / "r.sqlite"
    with Store.open(db) as store:
        lp = {"n": 3, "min": -2.0, "p05": -1.8, "p10": -1.6, "p25": -1.0, "p50": -0.2, "mean": -0.8}
        tiny = accuracy_run(store, "tiny", suite, [
            item("a1", "math", True, cost_usd=None, extra={"logprobs": lp}),
            item("a1", "math", False, cost_usd=None, repeat=1, output="5"),
            item("a2", "math", False, cost_usd=None, extra={"scorer": "numeric", "detail": NO_NUMBER}),
            item("b1", "geo", None, status="error", cost_usd=None),
        ])  # fmt: skip
        api = accuracy_run(
            store,
            "api",
            suite,
            [item(i, a, True) for i, a in (("a1", "math"), ("a2", "math"), ("b1", "geo"))],
        )
        load = store.start_run("load", target("x"), load_profile(), provenance())
    data = load_route_data(db, [tiny[:6], api], prices={tiny[:4]: TokenPrice(1.0, 10.0)})
    small, big = data.options
    assert (small.name, big.name) == ("tiny", "api") and data.shared_ids() == ["a1", "a2"]
    assert small.items["a1"].cost_usd == pytest.approx((10 * 1.0 + 2 * 10.0) / 1e6)  # priced by --price
    assert small.items["a1"].logprobs is not None and small.items["a1"].logprobs.p10 == -1.6
    assert small.items["a1"].repeat_outputs == ("x", "5")
    assert (small.items["a1"].format_valid, small.items["a2"].format_valid) == (None, False)
    assert big.items["a1"].cost_usd == 0.001
    assert data.prompts["b1"] == "Capital of Peru?"
    assert data.notes == ("tiny: 1 items without a right/wrong verdict (failed) left out",)
    with pytest.raises(UsageError, match="load run; routing reads accuracy runs"):
        load_route_data(db, [tiny, load])
    with pytest.raises(UnknownIdError):
        load_route_data(db, [tiny, "ffff"])


def test_a_changed_suite_is_not_used_for_prompts(tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    db = tmp_path / "r.sqlite"
    with Store.open(db) as store:
        a = accuracy_run(store, "m", suite, [item("a1", "math", True)])
        b = accuracy_run(store, "m", suite, [item("a1", "math", False)])
    Path(suite[0]).write_text(json.dumps(SUITE_LINES[0]) + "\n")
    data = load_route_data(db, [a, b])
    assert data.prompts == {} and "changed since run" in data.notes[0]
    assert [o.name for o in data.options] == [f"m@{a[:6]}", f"m@{b[:6]}"]  # one target twice


def test_an_accuracy_run_as_an_untimed_log_with_its_references(tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    db = tmp_path / "r.sqlite"
    with Store.open(db) as store:
        run = accuracy_run(
            store, "m", suite, [item("a1", "math", True, output="4"), item("b1", "geo", False)]
        )
    log = load_run_log(db, run)
    assert [r.body["messages"] for r in log.requests] == [
        [{"role": "user", "content": "What is 2 + 2?"}],
        [{"role": "user", "content": "Capital of Peru?"}],
    ]
    first = log.requests[0]
    assert first.body["model"] == "m-model" and first.body["max_tokens"] == 64 and first.arrival_s is None
    assert first.check is not None and first.check.reference == "4" and first.answer == "4"
    assert log.provider is None


def test_a_load_run_rebuilds_its_requests_from_the_prompt_spec(tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "one"}\n{"prompt": "two"}\n')
    spec = PromptSpec(kind="file", dataset=prompts, shuffle=False, output_tokens="8")
    db = tmp_path / "r.sqlite"
    with Store.open(db) as store:
        run = store.start_run("load", target("api", model="m"), load_profile(prompts=spec), provenance())
        recs = [
            RequestRecord(i, Status.OK, i * 1.0, i * 1.0, i * 1.0 + 0.5, input_tokens=100, output_tokens=10,
                          cached_input_tokens=40 if i else 0, output_text=f"ans{i % 2}")
            for i in range(4)
        ]  # fmt: skip
        store.add_requests(run, [RequestRecord(9, Status.OK, 0, 0, 0.1, warmup=True), *recs], origin_s=0.0)
    from bench.registry import Prices

    prices = Prices(input_per_1m=1.0, output_per_1m=2.0, as_of="2026-01-01", source="t")  # type: ignore[arg-type]
    log = load_run_log(db, run, prices_for=lambda name: prices if name == "api" else None)
    texts = [r.body["messages"][0]["content"] for r in log.requests]
    assert texts == ["one", "two", "one", "two"]  # the file is cycled: requests 2 and 3 repeat 0 and 1
    assert (log.requests[1].arrival_s, log.requests[1].completion_s, log.requests[1].latency_ms) == (
        1.0,
        1.5,
        500.0,
    )
    assert log.requests[0].cost_usd == pytest.approx((100 * 1.0 + 10 * 2.0) / 1e6)
    assert log.provider is not None and (log.provider.input_tokens, log.provider.cached_input_tokens) == (
        400,
        120,
    )
    assert log.provider.share == pytest.approx(0.3)


def test_a_token_price_in_model_or_reference_tokens_by_hand() -> None:
    """An item of 50 prompt and 10 answer tokens (its own), 160 and 12 bytes of text: at $2 in and $6 out per
    1M, model tokens cost (50·2 + 10·6)/1e6 = $0.00016; reference tokens ⌈160/4⌉ = 40 and ⌈12/4⌉ = 3 cost
    (40·2 + 3·6)/1e6 = $0.000098. Without the counts it needs, the cost is unknown."""
    item = ItemRecord("i", "ok", "a", input_tokens=50, output_tokens=10,
                      extra={"input_bytes": 160, "output_bytes": 12})  # fmt: skip
    assert TokenPrice(2.0, 6.0).cost(item) == pytest.approx(0.00016)
    assert TokenPrice(2.0, 6.0, unit="reference").cost(item) == pytest.approx(0.000098)
    assert TokenPrice(2.0, 6.0, unit="reference").cost(ItemRecord("j", "ok", "a", input_tokens=5)) is None
    assert TokenPrice(2.0, 6.0).cost(ItemRecord("j", "ok", "a", input_tokens=5)) is None
