"""Profiles, limits, schedules and the LoadSpec: pure validation and arithmetic."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import pytest

from bench.errors import UsageError
from bench.loadgen.profiles import (
    DEFAULT_REQUESTS,
    PROFILES,
    ConcurrentProfile,
    ConstantProfile,
    Limits,
    PoissonProfile,
    SweepProfile,
    SynchronousProfile,
    Warmup,
    parse_list,
    sweep_rates,
)
from bench.loadgen.schedule import make_plan, open_schedule
from bench.loadgen.spec import LoadSpec


def test_registry_is_keyed_by_kind() -> None:
    assert set(PROFILES) == {"synchronous", "concurrent", "constant", "poisson", "sweep", "goodput"}
    for kind, cls in PROFILES.items():
        assert cls.model_fields["kind"].default == kind


def test_parse_list() -> None:
    assert parse_list("1,4, 16,64", flag="--concurrency", integer=True) == [1, 4, 16, 64]
    assert parse_list("0.5,2", flag="--rate", integer=False) == [0.5, 2.0]
    for bad in ("0", "-1", "a", "1.5", ",", "inf"):
        with pytest.raises(UsageError) as err:
            parse_list(bad, flag="--concurrency", integer=True)
        assert err.value.flag == "--concurrency"


def test_warmup_parse() -> None:
    assert Warmup.parse("10") == Warmup(requests=10)
    assert Warmup.parse("5s") == Warmup(seconds=5.0)
    assert str(Warmup.parse("2.5s")) == "2.5s"
    for bad in ("x", "-1", "5m", "-2s"):
        with pytest.raises(UsageError) as err:
            Warmup.parse(bad)
        assert err.value.flag == "--warmup"


def test_limits_default_to_a_request_count() -> None:
    assert Limits().requests == DEFAULT_REQUESTS
    assert Limits(duration_s=3).requests is None


def test_sweep_rates_are_even_and_strictly_between() -> None:
    rates = sweep_rates(2.0, 12.0, 4)
    assert rates == pytest.approx([4.0, 6.0, 8.0, 10.0])
    assert sweep_rates(12.0, 2.0, 4) == pytest.approx(rates)  # order of the bounds does not matter


def test_constant_schedule_counts_and_spacing() -> None:
    offsets, warm = open_schedule("constant", 10.0, 0, Limits(requests=20, warmup=Warmup(requests=5)))
    assert warm == 5 and len(offsets) == 25
    assert offsets == pytest.approx([i / 10 for i in range(25)])


def test_schedule_duration_and_warmup_seconds() -> None:
    offsets, warm = open_schedule("constant", 4.0, 0, Limits(duration_s=2.0, warmup=Warmup(seconds=1.0)))
    assert warm == 4  # sends at 0, .25, .5, .75 s
    measured = offsets[warm:]
    assert measured[0] == pytest.approx(1.0)
    assert len(measured) == 8 and measured[-1] < 3.0


def test_poisson_schedule_is_seeded_and_has_the_mean_rate() -> None:
    limits = Limits(requests=4000)
    a, _ = open_schedule("poisson", 50.0, 7, limits)
    b, _ = open_schedule("poisson", 50.0, 7, limits)
    c, _ = open_schedule("poisson", 50.0, 8, limits)
    assert a == b and a != c
    assert len(a) == 4000 and a == tuple(sorted(a))
    gaps = [y - x for x, y in itertools.pairwise(a)]
    assert statistics.fmean(gaps) == pytest.approx(1 / 50, rel=1e-9)  # conditioned on the count: exact
    assert statistics.pstdev(gaps) == pytest.approx(1 / 50, rel=0.1)  # exponential-like: std = mean
    timed, warm = open_schedule("poisson", 50.0, 7, Limits(duration_s=60, warmup=Warmup(seconds=2)))
    assert len(timed) - warm == 3000 and timed[warm] >= 2.0
    assert (len(timed) - warm - 1) / (timed[-1] - timed[warm]) == pytest.approx(50.0, rel=1e-9)


def test_make_plan() -> None:
    limits = Limits(requests=10, warmup=Warmup(requests=2))
    closed = make_plan(ConcurrentProfile(concurrency=4), limits)
    assert closed.concurrency == 4 and not closed.open_loop and closed.planned_requests == 12
    assert make_plan(SynchronousProfile(), limits).concurrency == 1
    opened = make_plan(PoissonProfile(rate=5, seed=1), limits)
    assert opened.open_loop and opened.planned_requests == 12 and opened.warmup_count == 2
    assert make_plan(ConcurrentProfile(concurrency=2), Limits(duration_s=1)).planned_requests is None


def test_spec_expands_one_run_per_value() -> None:
    spec = LoadSpec.from_options(target="x", profile="concurrent", concurrency=[1, 4, 16])
    assert spec.profiles() == [ConcurrentProfile(concurrency=c) for c in (1, 4, 16)]
    spec = LoadSpec.from_options(target="x", profile="constant", rate=[1.0, 2.0])
    assert spec.profiles() == [ConstantProfile(rate=1.0), ConstantProfile(rate=2.0)]
    spec = LoadSpec.from_options(target="x", profile="sweep", sweep_points=3, concurrency=[32])
    assert spec.profiles() == [SweepProfile(points=3, throughput_concurrency=32)]
    assert LoadSpec.from_options(target="x").profiles() == [SynchronousProfile()]


@pytest.mark.parametrize(
    ("options", "flag"),
    [
        ({"profile": "concurrent"}, "--concurrency"),
        ({"profile": "poisson"}, "--rate"),
        ({"profile": "constant", "rate": [-1.0]}, "--rate"),
        ({"profile": "synchronous", "rate": [1.0]}, "--rate"),
        ({"profile": "constant", "rate": [1.0], "concurrency": [2]}, "--concurrency"),
        ({"profile": "sweep", "concurrency": [2, 4]}, "--concurrency"),
        ({"requests": 0}, "--requests"),
        ({"duration_s": -1.0}, "--duration"),
        ({"sweep_points": 0}, "--sweep-points"),
        ({"input_tokens": "uniform:9:3"}, "--input-tokens"),
        ({"output_tokens": "lots"}, "--output-tokens"),
        ({"slo": "ttft=5"}, "--slo"),
        ({"timeout_s": 0.0}, "--timeout"),
        ({"max_error_rate": 2.0}, "--max-error-rate"),
        ({"dataset": "/no/such/file.jsonl"}, "--dataset"),
        ({"dataset": "prefix:2"}, "--dataset"),
        ({"api": "grpc"}, "--api"),
    ],
)
def test_spec_errors_name_the_flag(options: dict[str, object], flag: str) -> None:
    with pytest.raises(UsageError) as err:
        LoadSpec.from_options(target="x", **options)
    assert err.value.flag == flag


def test_spec_prompts(tmp_path: Path) -> None:
    spec = LoadSpec.from_options(target="x", dataset="prefix:4,64,16", api="openai-completions")
    prompts = spec.prompt_spec("openai-completions")
    assert prompts.kind == "shared-prefix" and prompts.num_prefixes == 4 and prompts.prefix_tokens == 64
    assert prompts.input_tokens.a == 16 and prompts.api == "completions"
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "hello"}\n', encoding="utf-8")
    for value in (str(data), f"jsonl:{data}", f"sharegpt:{data}"):
        file_spec = LoadSpec.from_options(target="x", dataset=value).prompt_spec("openai-chat")
        assert file_spec.kind == "file" and file_spec.dataset == data and file_spec.output_tokens is None
    synthetic = LoadSpec.from_options(target="x").prompt_spec("openai-chat")
    assert synthetic.output_tokens is not None and synthetic.output_tokens.a == 128


def test_spec_redacts_header_values() -> None:
    spec = LoadSpec.from_options(target="x", headers={"Authorization": "Bearer sk-secret"})
    assert "sk-secret" not in str(spec.redacted())
