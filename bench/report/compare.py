"""`compare_runs`: the library function behind `llmbench compare BASE NEW`.

Each side is one run, or a load run and an accuracy run of the same target given together (`ID,ID`).
Every delta comes with a significance test:

- latency percentiles (TTFT, TPOT, e2e): a bootstrap over requests, each run resampled on its own (1,000
  resamples; runs of more than 200,000 requests are bootstrapped on a random 200,000 of them);
- accuracy: paired on the items both runs scored (Newcombe's paired score CI, exact McNemar p);
- $ per correct answer: a paired bootstrap over items of Σ cost ÷ Σ correct on each side (an item's cost is
  its billed tokens for an API; its tokens at the load run's per-token price for a self-hosted target).

Runs of different suites, item templates or load prompts are refused with the reason: their deltas would
measure the change of workload, not of the system. Two exceptions are what a team compares on purpose:
prompt versions (the runs rendered their items or prompts through different prompt templates: the
versions are named side by side, and the mean input tokens per item show what the longer prompt costs on
every request) and versions of one imported suite (compared on the items both scored).

When the runs hold regression items (complaints users filed; bench.report.regression), the gate
`regression<0pts` is on by default: NEW fails when fixed complaints come back, with McNemar's p.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.cost import api_cost, from_record
from bench.errors import UsageError
from bench.report.gates import Gate, parse_gates
from bench.report.options import Pricing, hardware_of, option_kind, suite_key, target_name
from bench.report.query import StoreReader, resolve_run
from bench.report.regression import DEFAULT_GATE, RegressionCheck, check_regression, regression_area
from bench.report.regression import METRIC as REGRESSION
from bench.stats import mean_ci95, paired_compare
from bench.store import RunInfo, Store

RESAMPLES = 1000
BOOTSTRAP_MAX = 200_000
LATENCIES = {
    f"{m}_{p}": (m, q) for m in ("ttft", "tpot", "e2e") for p, q in (("p50", 50), ("p95", 95), ("p99", 99))
}
GATE_UNITS = {
    **{k: "ms" for k in LATENCIES}, "accuracy": "pts", "cost_per_correct": "%", REGRESSION: "pts",
    "input_tokens": "%",
}  # fmt: skip


@dataclass(frozen=True)
class Side:
    """The runs of one side of the comparison."""

    label: str
    load: RunInfo | None
    accuracy: RunInfo | None


@dataclass
class Delta:
    """NEW against BASE for one metric; `significant` is None when there is no test (or no data)."""

    metric: str
    unit: str  # ms, pts (base and new are % right), usd (per correct answer), tok/s or req/s
    base: float | None
    new: float | None
    change: float | None = None  # NEW − BASE, in `unit`
    change_rel: float | None = None  # NEW ÷ BASE − 1
    ci: tuple[float, float] | None = None  # 95% CI of `change`
    ci_rel: tuple[float, float] | None = None
    p_value: float | None = None
    significant: bool | None = None
    test: str = "none"
    reason: str | None = None  # why it is n/a

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class GateResult:
    gate: Gate
    delta: Delta
    change: float | None  # in the gate's unit
    ci: tuple[float, float] | None
    failed: bool
    verdict: str

    def to_json(self) -> dict[str, Any]:
        ci = None if self.ci is None else list(self.ci)
        return {"gate": str(self.gate), "change": self.change, "ci95": ci, "failed": self.failed,
                "verdict": self.verdict}  # fmt: skip


@dataclass
class Comparison:
    base: Side
    new: Side
    deltas: list[Delta]
    gates: list[GateResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    prompts: tuple[str, str] | None = None  # the prompt versions (BASE, NEW), when either side names one
    regression: RegressionCheck | None = None

    @property
    def failed(self) -> bool:
        return any(g.failed for g in self.gates)

    def to_json(self) -> dict[str, Any]:
        def side(s: Side) -> dict[str, Any]:
            return {
                "label": s.label,
                "load_run": s.load and s.load.id,
                "accuracy_run": s.accuracy and s.accuracy.id,
            }

        return {"schema": "llmbench.compare/1", "base": side(self.base), "new": side(self.new),
                "deltas": [d.to_json() for d in self.deltas], "gates": [g.to_json() for g in self.gates],
                "failed": self.failed, "notes": self.notes, "prompts": self.prompts,
                "regression": _regression_json(self.regression)}  # fmt: skip


def _regression_json(check: RegressionCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {"area": check.area, "n": check.n, "came_back": check.came_back, "fixed": check.fixed,
            "diff_points": check.diff_points, "ci95_points": list(check.ci95_points),
            "mcnemar_p": check.p_value, "failed": check.failed}  # fmt: skip


def _side(store: Store, text: str, flag: str) -> Side:
    runs = [resolve_run(store, part) for part in text.split(",") if part.strip()]
    loads = [r for r in runs if r.kind == "load"]
    accs = [r for r in runs if r.kind == "accuracy"]
    if not runs or len(loads) > 1 or len(accs) > 1:
        raise UsageError(f"{text!r}: give one run, or one load run and one accuracy run as ID,ID", flag=flag)
    if len({target_name(r) for r in runs}) > 1:
        raise UsageError(f"{text!r}: the runs of one side must be of the same target", flag=flag)
    return Side(target_name(runs[0]), loads[0] if loads else None, accs[0] if accs else None)


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
    return f"{path}: {a!r} vs {b!r}"


def check_comparable(base: Side, new: Side) -> list[str]:
    """UsageError when the two sides measured different workloads; notes on lesser differences."""
    notes: list[str] = []
    if (base.load is None) != (new.load is None) or (base.accuracy is None) != (new.accuracy is None):
        raise UsageError("BASE and NEW must hold the same kinds of run (load, accuracy or both)", flag="NEW")
    if base.accuracy is not None and new.accuracy is not None:
        a, b = suite_key(base.accuracy), suite_key(new.accuracy)
        va, vb = base.accuracy.accuracy_profile.suite_version, new.accuracy.accuracy_profile.suite_version
        if a != b and va is not None and vb is not None and a.suite == b.suite:
            notes.append(
                f"suite {a.suite}: version {va} against version {vb}, compared on the items both scored"
            )
        elif a != b:
            raise UsageError(
                f"the accuracy runs scored different suites ({a.label} vs {b.label})", flag="NEW"
            )
        ta, tb = base.accuracy.accuracy_profile.templates, new.accuracy.accuracy_profile.templates
        if ta and tb and ta != tb:
            raise UsageError(
                f"the accuracy runs used different prompt templates ({_first_difference(ta, tb)})", flag="NEW"
            )
    if base.load is not None and new.load is not None:
        # A prompt version (template) is compared on purpose; any other difference in what was sent is not.
        pa = base.load.load_profile.prompts.model_dump(mode="json", exclude={"template"})
        pb = new.load.load_profile.prompts.model_dump(mode="json", exclude={"template"})
        if pa != pb:
            raise UsageError(
                f"the load runs sent different prompts ({_first_difference(pa, pb)})", flag="NEW"
            )
        la, lb = base.load.load_profile.label, new.load.load_profile.label
        if la != lb:
            notes.append(f"the load runs ran different profiles ({la} vs {lb}): latency moves with load")
    return notes


def _percentile(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q))


def _boot_percentile(x: np.ndarray, q: float, rng: np.random.Generator) -> np.ndarray:
    if len(x) > BOOTSTRAP_MAX:
        x = rng.choice(x, BOOTSTRAP_MAX, replace=False)
    return np.array([np.percentile(x[rng.integers(0, len(x), len(x))], q) for _ in range(RESAMPLES)])


def latency_delta(metric: str, base: np.ndarray, new: np.ndarray, seed: int = 0) -> Delta:
    """A latency percentile of NEW against BASE with a bootstrap CI over requests (ms)."""
    q = LATENCIES[metric][1]
    if len(base) < 2 or len(new) < 2:
        return Delta(metric, "ms", None, None, reason="fewer than two requests on a side")
    rng = np.random.default_rng(seed)
    vb, vn = _percentile(base, q), _percentile(new, q)
    bb, bn = _boot_percentile(base, q, rng), _boot_percentile(new, q, rng)
    diffs = bn - bb
    rel = bn / np.where(bb > 0, bb, np.nan) - 1
    ci = (float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5)))
    ci_rel = (float(np.nanpercentile(rel, 2.5)), float(np.nanpercentile(rel, 97.5)))
    return Delta(metric, "ms", vb, vn, vn - vb, vn / vb - 1 if vb else None, ci, ci_rel,
                 significant=not ci[0] <= 0 <= ci[1], test="bootstrap over requests")  # fmt: skip


def _verdict_map(rows: Sequence[tuple[Any, ...]]) -> dict[str, tuple[bool, float]]:
    return {(i if r == 0 else f"{i}#{r}"): (bool(c), cost) for i, r, c, cost in rows}


def _item_costs(
    reader: StoreReader, side: Side, pricing: Pricing
) -> tuple[list[tuple[Any, ...]] | None, str | None]:
    """(item, repeat, correct, cost USD) of a side's scored items, or None and why."""
    run = side.accuracy
    assert run is not None
    rows = reader.item_rows(run.id)
    if option_kind(run) == "api":
        prices = pricing.prices.get(target_name(run))
        if prices is None:
            return None, f"no price for {target_name(run)}"
        out = []
        for item, repeat, correct, inp, outp, cached, written in rows:
            if inp is None or outp is None:
                return None, f"{run.id[:8]} has items without token counts"
            out.append(
                (item, repeat, correct, api_cost(from_record(inp, outp, cached, written), prices).total_usd)
            )
        return out, None
    hw_name = hardware_of(run, pricing) or (side.load and hardware_of(side.load, pricing))
    hw = pricing.hardware.get(hw_name or "")
    if hw is None:
        return (
            None,
            f"no hardware profile for {target_name(run)} (pass --hardware {target_name(run)}=PROFILE)",
        )
    load = None if side.load is None else side.load.load_summary
    tps = None if load is None else load.total_tokens_per_s
    if tps is None or tps <= 0:
        return None, "a self-hosted side needs its load run (ID,ID) for the per-token price"
    per_token = hw.usd_per_hour / (tps * 3600)
    if any(inp is None or outp is None for _, _, _, inp, outp, _, _ in rows):
        return None, f"{run.id[:8]} has items without token counts"
    return [(i, r, c, (inp + outp) * per_token) for i, r, c, inp, outp, _, _ in rows], None


def cost_per_correct_delta(base: dict[str, tuple[bool, float]], new: dict[str, tuple[bool, float]],
                           seed: int = 0) -> Delta:  # fmt: skip
    """Σ cost ÷ Σ correct on the common items, NEW against BASE, with a paired bootstrap CI."""
    common = sorted(set(base) & set(new))
    if not common:
        return Delta("cost_per_correct", "usd", None, None, reason="no scored item in common")
    cb = np.array([base[k][1] for k in common])
    cn = np.array([new[k][1] for k in common])
    kb = np.array([base[k][0] for k in common], dtype=float)
    kn = np.array([new[k][0] for k in common], dtype=float)
    if kb.sum() == 0 or kn.sum() == 0:
        return Delta("cost_per_correct", "usd", None, None, reason="no correct answer on a side")
    vb, vn = cb.sum() / kb.sum(), cn.sum() / kn.sum()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(common), (RESAMPLES, len(common)))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (cn[idx].sum(1) / kn[idx].sum(1)) / (cb[idx].sum(1) / kb[idx].sum(1)) - 1
        diff = cn[idx].sum(1) / kn[idx].sum(1) - cb[idx].sum(1) / kb[idx].sum(1)
    ci_rel = (float(np.nanpercentile(rel, 2.5)), float(np.nanpercentile(rel, 97.5)))
    ci = (float(np.nanpercentile(diff, 2.5)), float(np.nanpercentile(diff, 97.5)))
    return Delta("cost_per_correct", "usd", vb, vn, vn - vb, vn / vb - 1, ci, ci_rel,
                 significant=not ci_rel[0] <= 0 <= ci_rel[1], test="paired bootstrap over items")  # fmt: skip


def _accuracy_deltas(reader: StoreReader, base: RunInfo, new: RunInfo) -> list[Delta]:
    def verdicts(run: RunInfo) -> dict[str, tuple[str, bool]]:
        return {(i.item_id if i.repeat == 0 else f"{i.item_id}#{i.repeat}"): (i.area or "-", bool(i.correct))
                for i in reader.verdicts(run.id) if i.status == "ok" and i.correct is not None}  # fmt: skip

    va, vb = verdicts(base), verdicts(new)
    out = []
    areas = sorted({v[0] for v in va.values()})
    for name, keep in [("accuracy", None), *[(f"accuracy_{a}", a) for a in areas]]:
        a = {k: v[1] for k, v in va.items() if keep is None or v[0] == keep}
        b = {k: v[1] for k, v in vb.items() if k in a}
        try:
            c = paired_compare(a, b)
        except ValueError:
            out.append(Delta(name, "pts", None, None, reason="no scored item in common"))
            continue
        out.append(Delta(name, "pts", 100 * c.a_score, 100 * c.b_score, c.diff_points,
                         c.b_score / c.a_score - 1 if c.a_score else None, c.ci95_points, None, c.p_value,
                         c.p_value < 0.05, "Newcombe paired CI + McNemar"))  # fmt: skip
    return out


THROUGHPUTS = (
    ("output_tokens_per_s", "output_tok_s", "tok/s"),
    ("goodput_requests_per_s", "goodput_rps", "req/s"),
)


def _throughput(base: RunInfo, new: RunInfo) -> list[Delta]:
    out = []
    for key, metric, unit in THROUGHPUTS:
        sb, sn = base.load_summary, new.load_summary
        vb = None if sb is None else getattr(sb, key)
        vn = None if sn is None else getattr(sn, key)
        if vb is not None and vn is not None:
            out.append(Delta(metric, unit, vb, vn, vn - vb, vn / vb - 1 if vb else None,
                             reason=None, test="none (one measurement per run)"))  # fmt: skip
        else:
            out.append(Delta(metric, unit, vb, vn, reason="not measured on a side"))
    return out


def evaluate(gates: Sequence[Gate], deltas: Sequence[Delta]) -> list[GateResult]:
    """Each gate against its delta: failed = crossed and significant."""
    by_metric = {d.metric: d for d in deltas}
    out = []
    for gate in gates:
        d = by_metric.get(gate.metric)
        if d is None or d.change is None:
            why = "not measured by these runs" if d is None else d.reason
            out.append(GateResult(gate, d or Delta(gate.metric, gate.unit, None, None), None, None, False,
                                  f"n/a: {why} (cannot fail)"))  # fmt: skip
            continue
        if gate.unit == "%":
            change = None if d.change_rel is None else 100 * d.change_rel
            ci = None if d.ci_rel is None else (100 * d.ci_rel[0], 100 * d.ci_rel[1])
        else:
            change, ci = d.change, d.ci
        crossed = change is not None and gate.crossed(change)
        failed = bool(crossed and d.significant)
        if failed:
            verdict = "FAIL: crossed and significant"
        elif crossed:
            verdict = "pass: crossed, but not significant at 5% (noise could explain it)"
        else:
            verdict = "pass"
        out.append(GateResult(gate, d, change, ci, failed, verdict))
    return out


def prompt_label(run: RunInfo) -> str:
    """The prompt version a run asked through: 'name@version (sha256 prefix)', or 'none'."""
    if run.kind == "accuracy":
        ref = run.accuracy_profile.prompt
    else:
        template = run.load_profile.prompts.template
        ref = None if template is None else template.ref()
    return "none" if ref is None else ref.label


def _prompts(base: Side, new: Side) -> tuple[str, str] | None:
    """The prompt versions of the two sides, when either names one (accuracy runs first)."""
    a, b = base.accuracy or base.load, new.accuracy or new.load
    if a is None or b is None:
        return None
    pa, pb = prompt_label(a), prompt_label(b)
    return None if pa == pb == "none" else (pa, pb)


def input_tokens_delta(base: Mapping[str, int], new: Mapping[str, int]) -> Delta:
    """Mean input tokens per item (item id → its prompt's tokens; the items both sides answered), NEW
    against BASE, with the t-interval of the per-item differences: what a prompt version adds to every
    request."""
    common = sorted(set(base) & set(new))
    if not common:
        return Delta("input_tokens", "tok", None, None, reason="no item with a token count on both sides")
    mb, mn = sum(base[i] for i in common) / len(common), sum(new[i] for i in common) / len(common)
    ci = mean_ci95([new[i] - base[i] for i in common])
    significant = None if ci is None else not ci[0] <= 0 <= ci[1]
    return Delta("input_tokens", "tok", mb, mn, mn - mb, mn / mb - 1 if mb else None, ci,
                 None if ci is None or not mb else (ci[0] / mb, ci[1] / mb), None, significant,
                 "t-interval of per-item differences")  # fmt: skip


def _input_tokens(reader: StoreReader, run: RunInfo) -> dict[str, int]:
    return {item: int(tokens) for item, repeat, _, tokens, *_ in reader.item_rows(run.id)
            if repeat == 0 and tokens is not None}  # fmt: skip


def _regression(
    reader: StoreReader, base: RunInfo, new: RunInfo, gates: list[Gate]
) -> tuple[RegressionCheck | None, list[Delta], list[Gate]]:
    """The regression check, its delta, and the default gate when the user named none on it."""
    area = regression_area(base, new)
    check = (
        None if area is None else check_regression(area, reader.verdicts(base.id), reader.verdicts(new.id))
    )
    if check is None:
        return None, [], []
    delta = Delta(REGRESSION, "pts", 100 * check.base_score, 100 * check.new_score, check.diff_points,
                  check.new_score / check.base_score - 1 if check.base_score else None, check.ci95_points,
                  None, check.p_value, check.significant, "McNemar exact on regression items")  # fmt: skip
    named = any(g.metric == REGRESSION for g in gates)
    return check, [delta], [] if named else parse_gates(DEFAULT_GATE, GATE_UNITS)


def compare_runs(
    store_path: Path, base: str, new: str, pricing: Pricing, fail_on: str | None = None
) -> Comparison:
    """Compare NEW against BASE (run ids, or ID,ID pairs); gates from `fail_on` (and the regression gate
    when the runs hold regression items)."""
    gates = parse_gates(fail_on, GATE_UNITS) if fail_on else []
    with Store.open(store_path) as store:
        a, b = _side(store, base, "BASE"), _side(store, new, "NEW")
    notes = check_comparable(a, b)
    deltas: list[Delta] = []
    check: RegressionCheck | None = None
    with StoreReader(store_path) as reader:
        if a.load is not None and b.load is not None:
            for metric, (kind, _) in LATENCIES.items():
                xa = np.frombuffer(reader.latencies_ms(a.load.id, kind), dtype=float)
                xb = np.frombuffer(reader.latencies_ms(b.load.id, kind), dtype=float)
                deltas.append(latency_delta(metric, xa, xb))
            deltas += _throughput(a.load, b.load)
        if a.accuracy is not None and b.accuracy is not None:
            deltas += _accuracy_deltas(reader, a.accuracy, b.accuracy)
            check, found, extra = _regression(reader, a.accuracy, b.accuracy, gates)
            if check is not None:  # its area's row is the regression row
                deltas = [d for d in deltas if d.metric != f"accuracy_{check.area}"]
            deltas += found
            gates = [*gates, *extra]
            ca, why_a = _item_costs(reader, a, pricing)
            cb, why_b = _item_costs(reader, b, pricing)
            if ca is None or cb is None:
                deltas.append(Delta("cost_per_correct", "usd", None, None, reason=why_a or why_b))
            else:
                deltas.append(cost_per_correct_delta(_verdict_map(ca), _verdict_map(cb)))
            deltas.append(
                input_tokens_delta(_input_tokens(reader, a.accuracy), _input_tokens(reader, b.accuracy))
            )
    results = evaluate(gates, deltas)
    if check is not None:
        for g in results:
            if g.gate.metric == REGRESSION and g.change is not None:
                g.verdict = f"{'FAIL' if g.failed else 'pass'}: {check.sentence()}"
    return Comparison(a, b, deltas, results, notes, _prompts(a, b), check)
