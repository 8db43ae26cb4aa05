"""`build_report`: the library function behind `llmbench report`. Reads the store, computes, renders nothing.

Runs are selected (ids, the last N, a sweep, or all), grouped into options, given figures (cost through
bench.cost), judged (paired accuracy, recommendation, Pareto frontier, downgrade ladder, break-even), and
handed to a renderer as one `Report`. Per-request data is aggregated in SQL (see `query`).

When the load runs sent several workloads (bench.report.workloads), the leaderboard is the first workload's
and the same judgement is made once per workload (`Report.answers`); with one workload there are none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bench.documents import RepeatStep
from bench.errors import UsageError
from bench.report.analysis import (
    DEFAULT_MAX_DROP,
    BreakEvenRow,
    Comparisons,
    Downgrade,
    Headline,
    break_evens,
    downgrade,
    headline,
)
from bench.report.figures import Row, apply_blended, common_mix, compute_row
from bench.report.flags import Flag
from bench.report.levers import LeversSection, levers_section
from bench.report.operating import DEFAULT_TARGET_ATTAINMENT, attainment
from bench.report.options import Option, Pricing, SuiteKey, group_options, provenance_row
from bench.report.query import StoreReader, select_runs
from bench.report.recovery import SCHEMA as RECOVERY_SCHEMA
from bench.report.recovery import Recovery, read_recovery
from bench.report.workloads import WorkloadAnswer, split_by_workload, sweep_points
from bench.store import RunInfo, Store

SCHEMA = "llmbench.report/1"
HIST_BINS = 40
ITL_SAMPLE_REQUESTS = 400


class ReportSpec(BaseModel):
    """What to report on and how to judge it (the CLI builds it from flags)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_ids: tuple[str, ...] = ()
    last: int | None = Field(None, ge=1, description="the newest N runs")
    sweep: str | None = Field(None, description="every run of one sweep")
    max_drop: float = Field(DEFAULT_MAX_DROP, ge=0, description="accuracy points an option may lose")
    utilization: float | None = Field(None, gt=0, le=1, description="share of time a box is busy")
    target_attainment: float = Field(DEFAULT_TARGET_ATTAINMENT, gt=0, le=1)
    hardware: dict[str, str] = Field(default_factory=dict, description="TARGET -> hardware profile")

    def selection(self) -> str:
        if self.run_ids:
            return f"{len(self.run_ids)} runs given by id"
        if self.sweep:
            return f"the runs of sweep {self.sweep}"
        return f"the newest {self.last} runs" if self.last else "every stored run"


@dataclass(frozen=True)
class LoadPoint:
    """One load run of an option, for the latency-against-throughput chart."""

    run_id: str
    label: str
    output_tok_s: float | None
    requests_per_s: float | None
    ttft_p50: float | None
    ttft_p95: float | None
    tpot_p50: float | None
    tpot_p95: float | None
    attainment: float | None
    is_operating_point: bool


@dataclass(frozen=True)
class Histogram:
    """Counts in equal bins from `lo` to `hi` (ms), for one option's operating-point run."""

    key: str
    metric: str  # 'ttft' or 'itl'
    lo: float
    hi: float
    counts: list[int]
    note: str


@dataclass(frozen=True)
class RepeatRow:
    """One load step of a sweep point run several times: each figure's mean and 95% CI over repeats
    (bench.sweep.repeats: `{"n", "mean", "std", "ci95"}`)."""

    point: str  # the point's label
    run: str  # the load step's run label ('operating point' for a goodput search)
    n: int
    step: RepeatStep

    def to_json(self) -> dict[str, Any]:
        figures = {k: f.to_json() for k, f in self.step.figures().items()}
        return {"point": self.point, "run": self.run, "n": self.n, "figures": figures}


def sweep_repeats(store: Store, sweep: str) -> list[RepeatRow]:
    """The repeat figures the sweep stored for each point (only steps with two or more repetitions)."""
    info = store.get_sweep(sweep)
    labels = {p.point_id: p.label for p in info.plan}
    rows = []
    for point in store.list_points(info.id):
        for rep in point.detail.repeats:
            n = max((f.n for f in rep.figures().values()), default=0)
            if n >= 2:
                rows.append(RepeatRow(labels.get(point.point_id, point.point_id), rep.run, n, rep))
    return rows


@dataclass
class Report:
    """Everything a renderer shows."""

    spec: ReportSpec
    store: str
    generated_at: str
    n_runs: int
    rows: list[Row]
    suite: SuiteKey | None
    other_suites: dict[str, int]
    headline: Headline
    downgrade: Downgrade
    break_evens: list[BreakEvenRow]
    recovery: Recovery
    provenance: list[dict[str, Any]]
    curves: dict[str, list[LoadPoint]] = field(default_factory=dict)
    histograms: list[Histogram] = field(default_factory=list)
    slo: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    repeats: list[RepeatRow] = field(default_factory=list)  # a sweep's figures over repetitions
    mix: float | None = None  # the one input:output mix (reference tokens) blended prices are stated at
    workload: str | None = None  # the one workload every option's load runs sent, when they agree
    answers: list[WorkloadAnswer] = field(default_factory=list)  # one per workload, when there are several
    levers: LeversSection | None = None  # what routing, caching and prompt versions would save (whatif)

    @property
    def flags(self) -> list[Flag]:
        return [f for r in self.rows for f in r.option.flags]

    @property
    def attainment_label(self) -> str:
        """The attainment target the operating points were judged at: each goodput search's own target,
        else the report's (several are listed when the searches differ)."""
        ops = [r.option.op for r in self.rows if r.option.op is not None and r.option.op.run is not None]
        targets = sorted({op.target for op in ops})  # options without an operating point judge nothing
        return " / ".join(f"{t:.0%}" for t in targets) if targets else f"{self.spec.target_attainment:.0%}"

    def row(self, key: str | None) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)


def _curve(runs: Sequence[RunInfo], op: RunInfo | None) -> list[LoadPoint]:
    points = []
    for run in runs:
        s = run.load_summary
        if s is None:
            continue
        points.append(
            LoadPoint(
                run.id,
                run.load_profile.label,
                s.output_tokens_per_s,
                s.requests_per_s,
                s.ttft_ms.p50,
                s.ttft_ms.p95,
                s.tpot_ms.p50,
                s.tpot_ms.p95,
                attainment(s),
                op is not None and run.id == op.id,
            )
        )
    points.sort(key=lambda p: p.output_tok_s or 0.0)
    return points


def _histograms(rows: Sequence[Row], reader: StoreReader) -> list[Histogram]:
    out: list[Histogram] = []
    for row in rows:
        run = row.option.op.run or row.option.op.display
        summary = None if run is None else run.load_summary
        if run is None or summary is None:
            continue
        ttft = summary.ttft_ms
        if ttft.count and ttft.min is not None and ttft.max is not None:
            lo, hi = ttft.min, ttft.max
            counts = reader.ttft_histogram(run.id, lo, hi, HIST_BINS)
            out.append(
                Histogram(row.key, "ttft", lo, hi, counts, f"all {sum(counts):,} requests of {run.id[:8]}")
            )
        gaps, sampled = reader.itl_sample_ms(run.id, ITL_SAMPLE_REQUESTS)
        if len(gaps) >= 2:
            lo, hi = min(gaps), max(gaps)
            width = (hi - lo) / HIST_BINS if hi > lo else 1.0
            counts = [0] * HIST_BINS
            for g in gaps:
                counts[min(HIST_BINS - 1, int((g - lo) / width))] += 1
            note = f"{len(gaps):,} gaps of {sampled:,} requests sampled from {run.id[:8]}"
            out.append(Histogram(row.key, "itl", lo, hi, counts, note))
    return out


def _ranked(rows: Sequence[Row], head: Headline) -> list[Row]:
    """The recommendation, the runner-up, then the rest by $/1M output tokens (n/a last)."""
    first = [k for k in (head.recommended, head.runner_up) if k]

    def key(r: Row) -> tuple[int, int, float]:
        pos = first.index(r.key) if r.key in first else len(first)
        cost = r.usd_per_1m_output.value
        return (pos, cost is None, cost or 0.0)

    return sorted(rows, key=key)


def _common_slo(rows: Sequence[Row]) -> tuple[dict[str, float] | None, list[str]]:
    slos = {str(r.option.op.slo): r.option.op.slo for r in rows if r.option.op.slo}
    if len(slos) > 1:
        return next(iter(slos.values())), [
            f"the runs' SLOs differ ({'; '.join(slos)}): each is judged by its own"
        ]
    return (next(iter(slos.values())) if slos else None), []


def build_report(spec: ReportSpec, store_path: Path, pricing: Pricing) -> Report:
    """Read the store at `store_path` and compute the report (nothing is written)."""
    for name, profile in spec.hardware.items():
        if profile not in pricing.hardware:
            known = ", ".join(sorted(pricing.hardware))
            raise UsageError(
                f"{name}={profile}: unknown hardware profile (known: {known})", flag="--hardware"
            )
    pricing = Pricing(
        pricing.prices, pricing.providers, pricing.hardware, {**pricing.overrides, **spec.hardware}
    )
    with Store.open(store_path) as store:
        runs = select_runs(store, spec.run_ids, last=spec.last, sweep=spec.sweep)
        docs = store.list_documents(RECOVERY_SCHEMA)
        repeats = sweep_repeats(store, spec.sweep) if spec.sweep else []
        points = sweep_points(store, runs)
    with StoreReader(store_path) as reader:
        by_workload = split_by_workload(runs, points, reader)
        several = len(by_workload) > 1
        comparisons = Comparisons(reader.verdicts)
        groups = by_workload.items() if several else []
        judged = [(key, _judge(group, spec, pricing, reader, comparisons)) for key, group in groups]
        first = judged[0][1] if judged else _judge(runs, spec, pricing, reader, comparisons)
        options, suite, other, rows, mix, head = first
        ladder = downgrade(rows, comparisons)
        histograms = _histograms(rows, reader)
    answers = [
        WorkloadAnswer(key, sum(r.kind == "load" for r in by_workload[key]), j[3], j[5], break_evens(j[3]))
        for key, j in judged
    ]
    levers = levers_section(store_path, rows, head, pricing, suite, spec.max_drop) if rows else None
    slo, notes = _common_slo(rows)
    notes.extend(workload_notes(rows))
    if other:
        notes.append(
            "accuracy runs on other suites are not compared: "
            + ", ".join(f"{k} ({v} runs)" for k, v in sorted(other.items()))
        )
    if not runs:
        notes.append("the store holds no runs for this selection")
    return Report(
        spec=spec,
        store=str(store_path),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        n_runs=len(runs),
        rows=rows,
        suite=suite,
        other_suites=other,
        headline=head,
        downgrade=ladder,
        break_evens=break_evens(rows),
        recovery=read_recovery(docs),
        provenance=[provenance_row(r, pricing) for r in runs],
        curves={o.key: _curve(o.load_runs, o.op.run) for o in options if o.load_runs},
        histograms=histograms,
        slo=slo,
        notes=notes,
        repeats=repeats,
        mix=mix,
        workload=common_workload(rows),
        answers=answers,
        levers=levers,
    )


Judged = tuple[list[Option], SuiteKey | None, dict[str, int], list[Row], float | None, Headline]


def _judge(
    runs: Sequence[RunInfo], spec: ReportSpec, pricing: Pricing, reader: StoreReader, comparisons: Comparisons
) -> Judged:
    """Options of `runs` with their figures, ranked, and the recommendation among them."""
    options, suite, other = group_options(runs, pricing, spec.target_attainment)
    rows = [compute_row(o, pricing, reader, utilization=spec.utilization) for o in options]
    mix = common_mix(rows)
    apply_blended(rows, mix)
    head = headline(rows, comparisons, spec.max_drop)
    return options, suite, other, _ranked(rows, head), mix, head


def common_workload(rows: Sequence[Row]) -> str | None:
    """The label of the one workload every option with a load run sent; None when they differ or none."""
    labels = {_workload_label(dict(r.workload)) for r in rows if r.workload is not None}
    return labels.pop() if len(labels) == 1 else None


def workload_notes(rows: Sequence[Row]) -> list[str]:
    """What the cost columns compare: one workload for every option, or say which options differ."""
    shapes: dict[str, list[str]] = {}
    model_units: list[str] = []
    for row in rows:
        if row.workload is None:
            continue
        w = dict(row.workload)
        if w.get("unit") == "model":
            model_units.append(row.key)
        shapes.setdefault(_workload_label(w), []).append(row.key)
    notes = []
    if len(shapes) > 1:
        parts = "; ".join(f"{label}: {', '.join(keys)}" for label, keys in shapes.items())
        notes.append(
            f"the options' load runs sent different workloads, so their costs compare unlike things ({parts})"
        )
    if model_units:
        notes.append(
            "lengths in each model's own tokens (--length-unit model) for "
            + ", ".join(model_units)
            + ": options with other tokenizers got other texts"
        )
    return notes


def _workload_label(w: dict[str, Any]) -> str:
    def dist(d: Any) -> str:
        if not isinstance(d, dict):
            return str(d)
        return (
            str(d.get("a"))
            if d.get("kind", "fixed") == "fixed"
            else f"{d.get('kind')}:{d.get('a')}:{d.get('b')}"
        )

    parts = [
        str(w.get("kind") or "synthetic"),
        f"in {dist(w.get('input_tokens'))}",
        f"out {dist(w.get('output_tokens'))}",
    ]
    if w.get("kind") == "shared-prefix":
        parts.append(f"{w.get('num_prefixes')}×{w.get('prefix_tokens')} prefix")
    if w.get("dataset"):
        parts.append(str(w["dataset"]))
    return " ".join(parts) + f" ({w.get('unit')} tokens)"
