"""Sweep gates: every accuracy run of a sweep compared against a baseline run (`llmbench sweep --baseline
RUN --fail-on GATES`), as `llmbench compare BASELINE RUN --fail-on GATES` would compare it.

A run of the baseline's suite (or another version of it) is compared; the regression gate is on whenever
they hold regression items (bench.report.regression: a fixed complaint that comes back, significantly,
fails). Runs of other suites are listed as not compared, with why. The sweep fails when any gate fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.errors import LlmbenchError, UsageError
from bench.report.compare import GATE_UNITS, Comparison, compare_runs
from bench.report.gates import parse_gates
from bench.report.options import Pricing, target_name
from bench.report.query import resolve_run
from bench.store import Store


@dataclass(frozen=True)
class RunGate:
    """One run of the sweep against the baseline: its comparison, or why it was not compared."""

    run_id: str
    label: str  # target, suite and prompt version
    comparison: Comparison | None
    skipped: str | None = None

    @property
    def failed(self) -> bool:
        return self.comparison is not None and self.comparison.failed


def check_baseline(store_path: Path, baseline: str, fail_on: str | None) -> str:
    """The baseline's full run id; UsageError before the sweep starts when it is not a stored accuracy run
    or a gate does not parse."""
    if fail_on is not None:
        parse_gates(fail_on, GATE_UNITS)
    with Store.open(store_path) as store:
        base = resolve_run(store, baseline)
    if base.kind != "accuracy":
        raise UsageError(
            f"run {base.id[:12]} is a {base.kind} run; gates compare accuracy runs", flag="--baseline"
        )
    return base.id


def gate_sweep(
    store_path: Path, sweep_id: str, baseline: str, pricing: Pricing, fail_on: str | None = None
) -> list[RunGate]:
    """Every accuracy run of the sweep against `baseline` (a run id or prefix of an accuracy run)."""
    base_id = check_baseline(store_path, baseline, fail_on)
    with Store.open(store_path) as store:
        runs = [r for r in store.list_runs(sweep_id=store.get_sweep(sweep_id).id, limit=None)
                if r.kind == "accuracy" and r.id != base_id and r.status != "failed"]  # fmt: skip
    gates: list[RunGate] = []
    for run in runs:
        profile = run.accuracy_profile
        prompt = f" [{profile.prompt.label}]" if profile.prompt is not None else ""
        label = f"{target_name(run)} on {profile.suite}{prompt}"
        try:
            comparison = compare_runs(store_path, base_id, run.id, pricing, fail_on)
        except UsageError as exc:
            if exc.flag == "--fail-on":
                raise
            gates.append(RunGate(run.id, label, None, str(exc)))
            continue
        except LlmbenchError as exc:
            gates.append(RunGate(run.id, label, None, str(exc)))
            continue
        gates.append(RunGate(run.id, label, comparison))
    return gates
