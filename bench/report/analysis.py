"""The judgements on top of the figures: paired accuracy against the best, the recommendation, the Pareto
frontier of cost against accuracy, the downgrade ladder, and break-even against each API.

An option is within `max_drop` points of the best only when the paired 95% CI of (option − best) has its
lower end at or above −max_drop: "we are confident it loses at most max_drop points", not "its point
estimate is close". The recommendation is the cheapest option ($/1M output tokens, on the report's basis)
that meets the SLO at an operating point, is within `max_drop` of the best, and answered at least one item
right (an option with no correct answer is never recommended, whatever its cost).

Claims of "better" are made only beyond noise; otherwise the page says "within noise":

- accuracy: the paired comparison on the items both scored (exact McNemar) at 5%;
- cost (and the throughput it is read from): each figure is one measurement with no interval, so two costs
  differ only when the dearer is at least NOISE_SHARE (10%) above the cheaper, as a share of the dearer (the
  spread of repeated runs of one configuration seen on the demo's machine was 5–31%). A dearer figure that is
  an upper bound (a search that stopped at its ceiling) establishes no saving.

"X is dominated by Y" is claimed when Y costs no more and is no less accurate by the point estimates, and is
better beyond noise on at least one of the two. A downgrade step says for its saving and for its accuracy
change separately whether each is beyond noise.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.cost import BreakEven, break_even
from bench.records import ItemRecord
from bench.report.figures import Row
from bench.report.value import bound_mark
from bench.stats import paired_compare

DEFAULT_MAX_DROP = 2.0  # accuracy points
ALPHA = 0.05  # accuracy differences are claimed at this significance (paired, exact McNemar)
NOISE_SHARE = 0.10  # cost differences under this share of the dearer figure are within noise

Verdicts = Callable[[str], list[ItemRecord]]  # run id -> its scored items


@dataclass(frozen=True)
class Paired:
    """B minus A on the items both scored: points, 95% CI, McNemar p, in words."""

    a: str
    b: str
    n: int
    diff_points: float
    ci95_points: tuple[float, float]
    p_value: float
    sentence: str

    @property
    def significant(self) -> bool:
        """Whether B and A differ beyond noise (exact McNemar at ALPHA)."""
        return self.p_value < ALPHA

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "n": self.n,
            "diff_points": self.diff_points,
            "ci95_points": list(self.ci95_points),
            "p_value": self.p_value,
            "significant": self.significant,
            "sentence": self.sentence,
        }


class Comparisons:
    """Paired comparisons between rows' accuracy runs, computed once each."""

    def __init__(self, verdicts: Verdicts) -> None:
        self._verdicts = verdicts
        self._items: dict[str, dict[str, bool]] = {}
        self._done: dict[tuple[str, str], Paired | None] = {}

    def _of(self, run_id: str) -> dict[str, bool]:
        """Item (with its repeat) -> right or wrong, for the items scored right/wrong (as diff_items)."""
        if run_id not in self._items:
            self._items[run_id] = {
                i.item_id if i.repeat == 0 else f"{i.item_id}#{i.repeat}": bool(i.correct)
                for i in self._verdicts(run_id)
                if i.status == "ok" and i.correct is not None
            }
        return self._items[run_id]

    def between(self, a: Row, b: Row) -> Paired | None:
        """B − A, or None when either has no accuracy run or they share no scored item."""
        ra, rb = a.option.accuracy_run, b.option.accuracy_run
        if ra is None or rb is None:
            return None
        key = (ra.id, rb.id)
        if key not in self._done:
            try:
                c = paired_compare(self._of(ra.id), self._of(rb.id), resamples=0)
            except ValueError:
                self._done[key] = None
            else:
                self._done[key] = Paired(
                    a.key, b.key, c.n, c.diff_points, c.ci95_points, c.p_value, c.sentence(a.key, b.key)
                )
        return self._done[key]


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Keys not dominated in (lower cost, higher accuracy), cheapest first. Ties are all kept."""
    ordered = sorted(points, key=lambda p: (p[1], -p[2]))
    front: list[tuple[str, float, float]] = []
    for key, cost, acc in ordered:
        if not front or acc > front[-1][2] or (cost == front[-1][1] and acc == front[-1][2]):
            front.append((key, cost, acc))
    return [k for k, _, _ in front]


def _cost(row: Row) -> float | None:
    return row.usd_per_1m_output.value


def cost_noise(dear: Row, cheap: Row) -> str | None:
    """Why `cheap` is not established as cheaper than `dear` ($/1M output), or None when it is."""
    cd, cc = _cost(dear) or 0.0, _cost(cheap) or 0.0
    if bound_mark(dear.usd_per_1m_output.note) == "≤":
        return f"{dear.key}'s cost is an upper bound"
    share = (cd - cc) / cd if cd > 0 else 0.0
    if share < NOISE_SHARE:
        return f"costs {100 * share:.1f}% apart, under the {NOISE_SHARE:.0%} noise of one measurement"
    return None


def accuracy_noise(paired: Paired | None) -> str | None:
    """Why a paired accuracy change is not established, or None when it is significant."""
    if paired is None:
        return "no scored item in common"
    if not paired.significant:
        return (
            f"{paired.b} {paired.diff_points:+.1f} accuracy points against {paired.a}, McNemar p = "
            f"{paired.p_value:.2g} (not significant at {ALPHA:.0%})"
        )
    return None


@dataclass
class Headline:
    """The recommendation, the runner-up, and why every other option was left out."""

    best_accuracy: str | None
    recommended: str | None
    runner_up: str | None
    max_drop: float
    reasons: dict[str, str] = field(default_factory=dict)  # key -> why it was excluded
    versus_best: dict[str, Paired | None] = field(default_factory=dict)
    summary: str = ""
    tied_with_best: list[str] = field(default_factory=list)  # within noise of the best's accuracy

    def to_json(self) -> dict[str, Any]:
        return {
            "best_accuracy": self.best_accuracy,
            "recommended": self.recommended,
            "runner_up": self.runner_up,
            "max_drop_points": self.max_drop,
            "summary": self.summary,
            "excluded": dict(self.reasons),
            "versus_best": {k: None if v is None else v.to_json() for k, v in self.versus_best.items()},
            "within_noise_of_best": list(self.tied_with_best),
        }


def _slo_reason(row: Row) -> str | None:
    op = row.option.op
    if op.meets_slo:
        return None
    if op.status == "slo-unmet":
        return f"too slow: {op.note}"
    return f"not measured: {op.note}"


def headline(rows: Sequence[Row], comparisons: Comparisons, max_drop: float = DEFAULT_MAX_DROP) -> Headline:
    """Pick the cheapest option that meets the SLO and is within `max_drop` points of the best."""
    scored = [r for r in rows if r.accuracy.value is not None]
    best = max(scored, key=lambda r: (r.accuracy.value or 0.0, -(r.n_items or 0)), default=None)
    out = Headline(None if best is None else best.key, None, None, max_drop)
    eligible: list[Row] = []
    for row in rows:
        why: list[str] = []
        if row.accuracy.value is None:
            why.append(f"not measured: {row.accuracy.reason}")
        elif not row.correct:
            why.append(f"no correct answer (0 of {row.n_items} items right)")
        elif best is not None and row is not best:
            paired = comparisons.between(best, row)
            out.versus_best[row.key] = paired
            if paired is not None and not paired.significant:
                out.tied_with_best.append(row.key)
            if paired is None:
                why.append(f"not comparable: no scored item in common with {best.key}")
            elif paired.ci95_points[0] < -max_drop:
                lo, hi = paired.ci95_points
                why.append(
                    f"too inaccurate: {-paired.diff_points:.1f} points below {best.key} "
                    f"(95% CI of the change [{lo:+.1f}, {hi:+.1f}]) exceeds the {max_drop:g}-point drop"
                )
        slo = _slo_reason(row)
        if slo:
            why.append(slo)
        if _cost(row) is None:
            why.append(f"no cost: {row.usd_per_1m_output.reason}")
        if why:
            out.reasons[row.key] = "; ".join(why)
        else:
            eligible.append(row)
    eligible.sort(key=lambda r: (_cost(r) or 0.0, -(r.accuracy.value or 0.0)))
    best_text = out.best_accuracy or "none measured"
    if out.tied_with_best:
        best_text += f"; within noise of it: {', '.join(out.tied_with_best)}"
    if eligible:
        out.recommended = eligible[0].key
        out.runner_up = eligible[1].key if len(eligible) > 1 else None
        out.summary = (
            f"{len(eligible)} of {len(rows)} options meet the SLO and are within {max_drop:g} points of the "
            f"most accurate ({best_text}); {out.recommended} is the cheapest of them."
        )
        if len(eligible) > 1 and cost_noise(eligible[1], eligible[0]):
            out.summary += f" Its cost and {eligible[1].key}'s are within noise of each other."
    else:
        out.summary = (
            f"No option meets the SLO at an operating point, has a cost, answered an item right and is "
            f"within {max_drop:g} points of the most accurate ({best_text})."
        )
    return out


@dataclass(frozen=True)
class Step:
    """One downgrade: from a stronger option to a cheaper one, with what it costs in accuracy."""

    stronger: str
    cheaper: str
    paired: Paired | None
    saving_per_1m: float  # USD per 1M output tokens saved
    saving_share: float  # of the stronger option's cost
    saving_noise: str | None = None  # why the saving is within noise (None: it is not)
    accuracy_noise: str | None = None  # why the accuracy change is within noise (None: it is not)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.stronger,
            "to": self.cheaper,
            "paired": None if self.paired is None else self.paired.to_json(),
            "saving_usd_per_1m_output": self.saving_per_1m,
            "saving_share": self.saving_share,
            "saving_within_noise": self.saving_noise,
            "accuracy_within_noise": self.accuracy_noise,
        }


@dataclass(frozen=True)
class NoiseTie:
    """An option the point estimates say is dominated, when no difference is beyond noise."""

    key: str
    other: str
    why: str

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "other": self.other, "why": self.why}


@dataclass
class Downgrade:
    """The ladder along the Pareto frontier (strongest first) and the options it dominates."""

    frontier: list[str]
    steps: list[Step]
    dominated: dict[str, str]  # key -> the option that is better beyond noise and no worse on the other axis
    within_noise: list[NoiseTie] = field(default_factory=list)  # dominated by the estimates, not beyond noise
    reasons: dict[str, str] = field(default_factory=dict)  # dominated key -> what makes it so

    def to_json(self) -> dict[str, Any]:
        return {
            "frontier": self.frontier,
            "steps": [s.to_json() for s in self.steps],
            "dominated_by": dict(self.dominated),
            "dominated_because": dict(self.reasons),
            "within_noise": [t.to_json() for t in self.within_noise],
        }


def downgrade(rows: Sequence[Row], comparisons: Comparisons) -> Downgrade:
    """Start with the strongest option and step down the frontier, pricing each step in accuracy."""
    priced = [r for r in rows if r.accuracy.value is not None and _cost(r) is not None]
    by_key = {r.key: r for r in priced}
    front = pareto_front([(r.key, _cost(r) or 0.0, r.accuracy.value or 0.0) for r in priced])
    ladder = list(reversed(front))  # strongest (dearest) first
    steps = []
    for a_key, b_key in itertools.pairwise(ladder):
        a, b = by_key[a_key], by_key[b_key]
        ca, cb = _cost(a) or 0.0, _cost(b) or 0.0
        paired = comparisons.between(a, b)
        steps.append(Step(a_key, b_key, paired, ca - cb, (ca - cb) / ca if ca else 0.0,
                          cost_noise(a, b), accuracy_noise(paired)))  # fmt: skip
    out = Downgrade(front, steps, {})
    for r in priced:
        if r.key in front:
            continue
        cost, acc = _cost(r) or 0.0, r.accuracy.value or 0.0
        better = [
            f for f in front if (_cost(by_key[f]) or 0.0) <= cost and (by_key[f].accuracy.value or 0.0) >= acc
        ]
        if not better:
            continue
        ties = []
        for key in better:
            paired = comparisons.between(r, by_key[key])
            by_cost, by_accuracy = cost_noise(r, by_key[key]), accuracy_noise(paired)
            if by_cost is None or (by_accuracy is None and paired is not None and paired.diff_points > 0):
                out.dominated[r.key] = key
                out.reasons[r.key] = _dominance(r, by_key[key], paired, by_cost, by_accuracy)
                break
            ties.append(NoiseTie(r.key, key, f"{by_cost}; {by_accuracy}"))
        else:
            out.within_noise.append(ties[0])
    return out


def _dominance(r: Row, by: Row, paired: Paired | None, by_cost: str | None, by_accuracy: str | None) -> str:
    """Why `by` dominates `r`, in words: what is beyond noise, and what is not."""
    cr, cb = _cost(r) or 0.0, _cost(by) or 0.0
    cost = (
        f"costs {100 * (cr - cb) / cr:.0f}% less"
        if by_cost is None
        else f"costs as much within noise ({by_cost})"
    )
    if paired is None:
        return f"{cost}; accuracy not compared ({by_accuracy})"
    if by_accuracy is None:
        return (
            f"{cost} and is {paired.diff_points:+.1f} points more accurate (McNemar p = {paired.p_value:.2g})"
        )
    return f"{cost}, accuracy within noise ({paired.diff_points:+.1f} points, p = {paired.p_value:.2g})"


@dataclass(frozen=True)
class BreakEvenRow:
    """One self-hosted option against one API, at the self-hosted option's workload mix."""

    selfhosted: str
    api: str
    api_usd_per_1m_output: float
    mix: float
    result: BreakEven

    def to_json(self) -> dict[str, Any]:
        return {
            "selfhosted": self.selfhosted,
            "api": self.api,
            "api_usd_per_1m_output_at_mix": self.api_usd_per_1m_output,
            "input_per_output_token": self.mix,
            **self.result.to_json(),
        }


def break_evens(rows: Sequence[Row]) -> list[BreakEvenRow]:
    """Break-even of every costed self-hosted option against every priced API, on the one workload.

    Volumes are reference output tokens a month (their input riding along at the workload's mix): the box
    serves its out tok/s at the operating point, the API costs its all-in $/1M output tokens of the same
    workload as measured (its bill, cache reads and writes included). The allocation-basis figures are used:
    break-even itself finds the utilization at which the two meet.
    """
    out: list[BreakEvenRow] = []
    apis = [r for r in rows if r.option.kind == "api" and r.usd_per_1m_output_allocation.value is not None]
    for row in rows:
        tps = row.output_tok_s.value
        if row.option.kind != "self-hosted" or row.hardware is None or tps is None or tps <= 0:
            continue
        for api in apis:
            price = api.usd_per_1m_output_allocation.value
            assert price is not None
            mix = api.mix if api.mix is not None else (row.mix or 0.0)
            result = break_even(row.hardware.usd_per_hour, float(tps), price)
            out.append(BreakEvenRow(row.key, api.key, price, mix, result))
    return out
