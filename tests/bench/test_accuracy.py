"""Accuracy runs end to end against the real mock server on loopback: oracle scores, failures, the store,
interruption, the CLI and the paired diff."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.accuracy.spec import AccuracySpec
from bench.cli._context import AppContext
from bench.cli.accuracy import accuracy, diff
from bench.errors import ConfigError, RunAbortedError, TargetError, UsageError
from bench.registry import Registry, load_registry
from bench.runs import diff_runs, run_accuracy
from bench.settings import Settings
from bench.store import Store
from bench.suite_files import builtin_suites_dir
from serve.mock.server import running_mock
from serve.specs import AnswerModel, LatencyModel, MockSpec

TINY = builtin_suites_dir() / "tiny-skills.jsonl"
CONTRACT = {"schema", "suite", "target", "score", "ci95", "areas", "tokens", "cost_usd", "failed", "run_id"}


def oracle_spec(accuracy: float, seed: int = 0, **latency: float) -> MockSpec:
    answers = AnswerModel(kind="oracle", oracle_file=TINY, accuracy=accuracy, seed=seed)
    return MockSpec(model="oracle", port=0, answers=answers, latency=LatencyModel(**latency))


@pytest.fixture
def oracle70() -> Iterator[str]:
    with running_mock(oracle_spec(0.7, seed=1)) as url:
        yield url


@pytest.fixture
def models_overlay() -> str:
    return "schema: llmbench.models/1\nmock:\n" + "".join(
        f"  oracle-{pct}:\n    provider: openai\n    model: oracle\n"
        f"    answers: {{kind: oracle, oracle_file: {TINY}, accuracy: {pct / 100}, seed: 5}}\n"
        "    prices: {input_per_1m: 1.0, output_per_1m: 4.0, as_of: 2026-01-01, source: test}\n"
        for pct in (90, 60)
    )


def test_oracle_at_70_percent_is_inside_the_ci(settings: Settings, oracle70: str) -> None:
    spec = AccuracySpec(target=oracle70, suite="builtin:tiny-skills", concurrency=16, max_tokens=16)
    result = run_accuracy(spec, load_registry(), settings)
    s = result.summary
    assert set(s.to_json()) >= CONTRACT  # the llmbench.accuracy/1 keys
    assert s.schema_ == "llmbench.accuracy/1" and s.suite == "tiny-skills"
    assert s.n == 400 and s.failed == 0
    assert s.ci95 is not None
    lo, hi = s.ci95
    assert lo <= 0.70 <= hi, s.ci95
    assert set(s.areas) == {"arithmetic", "comparison", "lookup", "string"}
    assert all(a.n == 100 for a in s.areas.values())
    assert (s.tokens.input or 0) > 0 and (s.tokens.output or 0) > 0
    # A bare URL is self-hosted: no per-token price, and the summary says so.
    assert s.cost_usd is None and "no per-token price" in (s.cost_note or "")
    with Store.open(settings.results_path) as store:
        run = store.get_run(result.run_id)
        items = store.load_items(result.run_id)
    assert run.status == "complete" and run.kind == "accuracy"
    assert run.accuracy_profile.suite_sha256 and set(run.accuracy_profile.templates) == {"item", "judge"}
    assert len(items) == 400 and all(i.latency_ms is not None and i.output_tokens for i in items)
    assert sum(bool(i.correct) for i in items) == round((s.score or 0) * 400)


def test_failed_requests_are_counted_apart(settings: Settings) -> None:
    with running_mock(oracle_spec(1.0, error_rate_500=0.25)) as url:
        spec = AccuracySpec(target=url, suite="builtin:tiny-skills", limit=20, concurrency=8)
        s = run_accuracy(spec, load_registry(), settings).summary
    assert 0 < s.failed < 80
    assert s.n == 80 - s.failed
    assert s.score == 1.0  # the failures are neither right nor wrong
    assert sum(a.failed for a in s.areas.values()) == s.failed


def test_unreachable_endpoint_fails_before_the_run(settings: Settings) -> None:
    spec = AccuracySpec(target="http://127.0.0.1:9/v1", suite="builtin:tiny-skills", model="m")
    with pytest.raises(TargetError, match="cannot reach"):
        run_accuracy(spec, load_registry(), settings)
    assert not settings.results_path.exists()


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """What a terminal's Ctrl-C reaches: Python's default handler. A suite started in the background by a
    shell without job control inherits SIGINT ignored, and then the test's SIGINT would never arrive."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("default_sigint")
def test_interrupted_run_keeps_its_items(settings: Settings, oracle70: str) -> None:
    def interrupt(done: int, _total: int) -> None:
        if done == 10:  # Ctrl-C, delivered as a real SIGINT to this process
            os.kill(os.getpid(), signal.SIGINT)

    spec = AccuracySpec(target=oracle70, suite="builtin:tiny-skills", concurrency=2)
    with pytest.raises(RunAbortedError) as err:
        run_accuracy(spec, load_registry(), settings, interrupt)
    with Store.open(settings.results_path) as store:
        run = store.get_run(err.value.run_id)
        kept = store.load_items(run.id)
    assert run.status == "partial" and run.error == "interrupted"
    assert len(kept) == err.value.kept >= 10
    assert run.accuracy_summary is not None and run.accuracy_summary.items == len(kept)


@pytest.mark.slow  # seconds of real serving: scripts/test runs it
def test_cli_accuracy_with_prices_then_diff(settings: Settings, registry: Registry, tmp_path: Path) -> None:
    app = AppContext(settings)
    app.__dict__["registry"] = registry  # the overlay's mock entries (cached_property slot)
    runner = CliRunner()
    outs = []
    for name in ("oracle-90", "oracle-60"):
        out = tmp_path / f"{name}.json"
        args = [
            "--target",
            name,
            "--suite",
            "builtin:tiny-skills",
            "--limit",
            "50",
            "--out",
            str(out),
            "--quiet",
        ]
        res = runner.invoke(accuracy, args, obj=app, catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert "arithmetic" in res.output and "95% CI" in res.output
        outs.append(json.loads(out.read_text()))
    a, b = outs
    assert set(a) >= CONTRACT
    assert a["cost_usd"] == pytest.approx((a["tokens"]["input"] * 1.0 + a["tokens"]["output"] * 4.0) / 1e6)
    assert a["score"] > b["score"]
    res = runner.invoke(diff, [a["run_id"][:8], b["run_id"][:8], "--json"], obj=app, catch_exceptions=False)
    got = json.loads(res.output)
    assert got["n"] == 200
    assert got["diff_points"] == pytest.approx(100 * (b["score"] - a["score"]))
    assert got["sentence"].startswith(f"B is {abs(got['diff_points']):.1f} points below A")
    lo, hi = got["ci95_points"]
    assert lo <= got["diff_points"] <= hi < 0
    res = runner.invoke(diff, [a["run_id"], b["run_id"]], obj=app, catch_exceptions=False)
    assert "points below" in res.output and "McNemar" in res.output
    direct = diff_runs(settings.results_path, a["run_id"], b["run_id"])
    assert direct.overall.diff_points == pytest.approx(got["diff_points"])


def test_cli_reports_a_malformed_suite_line(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "area": "x", "prompt": "p", "reference": "1"}\n{"id": "b"\n')
    res = CliRunner().invoke(
        accuracy,
        ["--target", "http://127.0.0.1:9/v1", "--suite", str(bad)],
        obj=AppContext(settings),
    )
    assert isinstance(res.exception, ConfigError)
    assert f"{bad}:2:" in str(res.exception)


def test_cli_names_the_flag_of_an_invalid_value(settings: Settings) -> None:
    res = CliRunner().invoke(
        accuracy,
        ["--target", "x", "--suite", "builtin:tiny-skills", "--concurrency", "0"],
        obj=AppContext(settings),
    )
    assert isinstance(res.exception, UsageError) and res.exception.flag == "--concurrency"


def test_a_mock_targets_configured_answers_are_stored_with_the_run(
    settings: Settings, registry: Registry
) -> None:
    spec = AccuracySpec(target="oracle-90", suite="builtin:tiny-skills", limit=4, concurrency=4, max_tokens=8)
    result = run_accuracy(spec, registry, settings)
    with Store.open(settings.results_path) as store:
        run = store.get_run(result.run_id)
    answers = run.provenance.mock_answers
    assert answers is not None and answers["kind"] == "oracle" and answers["accuracy"] == 0.9
    assert run.target.kind == "mock"
