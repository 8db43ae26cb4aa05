"""`whatif route`: single options, the oracle, routers and cascades over stored accuracy runs of the same
items, each threshold chosen on training folds and reported on the held-out fold.

For each signal and each of k stratified folds, the threshold is chosen on the other folds' items (the
cheapest whose accuracy is within `max_drop_points` of the strong model's there) and applied to the fold's
items, so every item is scored by a threshold that never saw it. The threshold grid (shares of strong
calls 0, 1/grid, …, 1, each turned into a threshold on the training scores) gives the held-out sensitivity
curve and RouteLLM's APGR and CPT. The policy recommended is the one cheapest on the training folds that
met the accuracy target there; its exported threshold is refit on every item.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from bench.errors import UsageError
from bench.stats import PairedComparison, paired_compare
from bench.whatif import thresholds
from bench.whatif.curve import CurvePoint, apgr, cpt
from bench.whatif.export import Fit, HeldOut, ModelRef, RoutePolicy
from bench.whatif.folds import split, stratified_folds
from bench.whatif.model import JudgedAnswer, Option, RouteData
from bench.whatif.policy import Figures, ItemResult, by_area, cascaded, figures, oracle, routed, single
from bench.whatif.signals import DEFAULT_SIGNALS, SIGNALS, Fitted, SignalInputs, SignalSpec, label


class RouteSpec(BaseModel):
    """What `whatif route` evaluates and how thresholds are chosen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_shared: int = Field(20, ge=1, description="refuse options that share fewer items")
    folds: int = Field(5, ge=2, description="k of the stratified k-fold")
    seed: int = Field(0, description="seed of the fold assignment")
    cheap: str | None = Field(None, description="the cheap option (name or run id); default: the cheapest")
    strong: str | None = Field(None, description="the strong option; default: the most accurate")
    max_drop_points: float = Field(1.0, ge=0, description="accuracy a policy may lose against strong (pts)")
    grid: int = Field(10, ge=1, description="points of the threshold grid: shares 0, 1/grid, …, 1")
    signals: tuple[SignalSpec, ...] = DEFAULT_SIGNALS


@dataclass(frozen=True)
class OptionResult:
    """A single option or the oracle on every shared item."""

    name: str
    figures: Figures
    vs_strong: PairedComparison | None  # None for the strong option itself
    areas: dict[str, Figures]


@dataclass(frozen=True)
class SweepPoint:
    """The policy on held-out folds at one point of the threshold grid."""

    target_share: float  # the share of strong calls the training threshold aimed at
    figures: Figures


@dataclass(frozen=True)
class PolicyResult:
    """One router or cascade, held out."""

    name: str  # e.g. cascade:logprob(p10)
    signal: SignalSpec
    figures: Figures  # at each fold's chosen threshold
    vs_strong: PairedComparison
    areas: dict[str, Figures]
    fold_thresholds: list[float]
    sweep: list[SweepPoint]
    apgr: float | None
    cpt50: float | None
    cpt80: float | None
    train_drop_points: float  # mean over folds of training accuracy − strong's (points)
    train_cost: float  # mean over folds of training $ per item, or share of strong calls (`by_cost` False)
    train_strong_cost: float  # the strong model's, in the same unit
    by_cost: bool  # thresholds chosen by $ (every cost known), else by the share of strong calls
    fallback_items: int  # held-out items whose signal was unavailable (sent to the strong model)
    export: RoutePolicy
    results: list[ItemResult]  # each item under its held-out fold's threshold, in item id order


@dataclass(frozen=True)
class RouteReport:
    """Everything `whatif route` shows; `chosen` is None when no policy beat the strong model on training."""

    cheap: str
    strong: str
    items: int
    spec: RouteSpec
    options: list[OptionResult]
    oracle: OptionResult
    policies: list[PolicyResult]
    skipped: dict[str, str]  # signal → why it could not run on these runs
    chosen: PolicyResult | None
    notes: list[str] = field(default_factory=list)
    costs_known: bool = True


def check_shared(data: RouteData, min_shared: int) -> list[str]:
    """The shared item ids; UsageError naming the counts when fewer than `min_shared`."""
    ids = data.shared_ids()
    if len(data.options) < 2:
        raise UsageError("routing needs at least two runs", flag="RUN_ID")
    if len(ids) < min_shared:
        each = ", ".join(f"{o.name} ({o.run_id[:8]}): {len(o.items)}" for o in data.options)
        raise UsageError(
            f"the runs share {len(ids)} scored items, fewer than the minimum {min_shared} (items per run: "
            f"{each}); run them on the same suite, or lower --min-shared",
            flag="--min-shared",
        )
    return ids


def _accuracy(option: Option, ids: Sequence[str]) -> float:
    return sum(option.items[i].correct for i in ids) / len(ids)


def _mean_cost(option: Option, ids: Sequence[str]) -> float:
    costs = [option.items[i].cost_usd for i in ids]
    return math.inf if any(c is None for c in costs) else sum(c for c in costs if c is not None) / len(ids)


def pick_pair(data: RouteData, ids: Sequence[str], spec: RouteSpec) -> tuple[Option, Option]:
    """(cheap, strong): as named, else the most accurate (cheaper on ties) and the cheapest of the rest."""
    try:
        strong = data.option(spec.strong) if spec.strong else None
        cheap = data.option(spec.cheap) if spec.cheap else None
    except KeyError as exc:
        raise UsageError(str(exc.args[0]), flag="--strong" if spec.strong else "--cheap") from None
    if strong is None:
        rest = [o for o in data.options if o is not cheap]
        strong = max(rest, key=lambda o: (_accuracy(o, ids), -_mean_cost(o, ids)))
    if cheap is None:
        rest = [o for o in data.options if o is not strong]
        cheap = min(rest, key=lambda o: (_mean_cost(o, ids), _accuracy(o, ids)))
    if cheap is strong:
        raise UsageError("the cheap and the strong option are the same run", flag="--cheap")
    return cheap, strong


def _correct(results: Mapping[str, ItemResult]) -> dict[str, bool]:
    return {i: r.correct for i, r in results.items()}


def _cost_key(fig: Figures, by_cost: bool) -> float:
    """What a training fold minimizes: $ per item when every cost is known, else the share of strong calls."""
    if by_cost and fig.cost_usd is not None:
        return fig.cost_usd / fig.n
    return fig.strong_share


@dataclass
class _Evaluator:
    inputs: SignalInputs
    spec: RouteSpec
    ids: list[str]
    splits: list[tuple[list[str], list[str]]]

    def outcome(
        self, signal: SignalSpec, score: Callable[[str], float | None], t: float, i: str
    ) -> ItemResult:
        kind = SIGNALS[signal.kind]
        s = score(i)
        to_strong = s is None or s >= t
        make = routed if kind.stage == "router" else cascaded
        cheap, strong = self.inputs.cheap.items[i], self.inputs.strong.items[i]
        return make(cheap, strong, to_strong, kind.cost(signal, self.inputs, i))

    def by_cost(self, signal: SignalSpec) -> bool:
        """True when the pair's and the signal's costs are known on every item."""
        kind = SIGNALS[signal.kind]
        pair = (self.inputs.cheap, self.inputs.strong)
        known = all(o.items[i].cost_usd is not None for o in pair for i in self.ids)
        return known and all(kind.cost(signal, self.inputs, i).usd is not None for i in self.ids)

    def training_scores(
        self, signal: SignalSpec, fitted: Fitted, train: Sequence[str]
    ) -> dict[str, float | None]:
        """Scores of the training items to choose a threshold on. A trained signal's own training items
        score too well (it has seen their labels), so they are cross-fitted: each inner fold of `train` is
        scored by the signal fitted on the other inner folds."""
        kind = SIGNALS[signal.kind]
        if not kind.trained:
            return {i: fitted.score(i) for i in train}
        k = min(self.spec.folds, len(train))
        inner = stratified_folds({i: self.inputs.data.area(i) for i in train}, k, self.spec.seed + 1)
        scores: dict[str, float | None] = {}
        for rest, part in split(inner, k, list(train)):
            refit = kind.fit(signal, self.inputs, rest)
            scores.update({i: refit.score(i) for i in part})
        return scores

    def choose(
        self, signal: SignalSpec, scores: Mapping[str, float | None], train: Sequence[str]
    ) -> tuple[float, Figures]:
        """The training fold's threshold: the cheapest within max_drop of strong, else the most accurate."""
        score = scores.__getitem__
        floor = _accuracy(self.inputs.strong, train) - self.spec.max_drop_points / 100 - 1e-12
        by_cost = self.by_cost(signal)
        best: tuple[tuple[bool, float, float, float], float, Figures] | None = None
        for t in thresholds.candidates(scores[i] for i in train):
            fig = figures(self.outcome(signal, score, t, i) for i in train)
            acc = fig.accuracy.score or 0.0
            key = (acc < floor, _cost_key(fig, by_cost) if acc >= floor else -acc, -acc, -t)
            if best is None or key < best[0]:
                best = (key, t, fig)
        assert best is not None
        return best[1], best[2]

    def evaluate(self, signal: SignalSpec) -> PolicyResult:
        kind = SIGNALS[signal.kind]
        shares = [g / self.spec.grid for g in range(self.spec.grid + 1)]
        held: dict[str, ItemResult] = {}
        swept: list[dict[str, ItemResult]] = [{} for _ in shares]
        chosen: list[float] = []
        drops: list[float] = []
        costs: list[float] = []
        fallback = 0
        by_cost = self.by_cost(signal)
        strong_costs: list[float] = []
        for train, test in self.splits:
            fitted = kind.fit(signal, self.inputs, train)
            train_scores = self.training_scores(signal, fitted, train)
            t, fig = self.choose(signal, train_scores, train)
            chosen.append(t)
            drops.append(100 * ((fig.accuracy.score or 0.0) - _accuracy(self.inputs.strong, train)))
            costs.append(_cost_key(fig, by_cost))
            strong_costs.append(
                _cost_key(
                    figures(single(self.inputs.strong.items[i], strong_call=True) for i in train), by_cost
                )
            )
            for i in test:
                held[i] = self.outcome(signal, fitted.score, t, i)
                fallback += fitted.score(i) is None
            for g, share in enumerate(shares):
                tq = thresholds.for_share(train_scores.values(), share)
                for i in test:
                    swept[g][i] = self.outcome(signal, fitted.score, tq, i)
        results = {i: held[i] for i in self.ids}
        strong_correct = {i: self.inputs.strong.items[i].correct for i in self.ids}
        vs = paired_compare(strong_correct, _correct(results), resamples=0)
        sweep = [SweepPoint(s, figures(swept[g][i] for i in self.ids)) for g, s in enumerate(shares)]
        weak, strong = _accuracy(self.inputs.cheap, self.ids), _accuracy(self.inputs.strong, self.ids)
        points = [CurvePoint(p.figures.strong_share, p.figures.accuracy.score or 0.0) for p in sweep]
        fig = figures(results.values())
        final = kind.fit(signal, self.inputs, self.ids)
        final_t, _ = self.choose(signal, self.training_scores(signal, final, self.ids), self.ids)
        export = RoutePolicy(
            kind=kind.stage,
            signal=signal,
            params=final.params,
            threshold=None if math.isinf(final_t) else final_t,
            cheap=ModelRef(name=self.inputs.cheap.name, run_id=self.inputs.cheap.run_id),
            strong=ModelRef(name=self.inputs.strong.name, run_id=self.inputs.strong.run_id),
            fit=Fit(
                items=len(self.ids),
                folds=self.spec.folds,
                seed=self.spec.seed,
                max_drop_points=self.spec.max_drop_points,
                fold_thresholds=[None if math.isinf(t) else t for t in chosen],
            ),
            held_out=HeldOut(
                accuracy=fig.accuracy.score or 0.0,
                strong_accuracy=strong,
                diff_points=vs.diff_points,
                ci95_points=vs.ci95_points,
                mcnemar_p=vs.p_value,
                strong_share=fig.strong_share,
                usd_per_1k_items=fig.usd_per_1k_items,
                strong_usd_per_1k_items=figures(
                    single(self.inputs.strong.items[i], strong_call=True) for i in self.ids
                ).usd_per_1k_items,
            ),
        )
        return PolicyResult(
            name=label(signal),
            signal=signal,
            figures=fig,
            vs_strong=vs,
            areas=by_area(results.values()),
            fold_thresholds=chosen,
            sweep=sweep,
            apgr=apgr(points, weak, strong),
            cpt50=cpt(points, weak, strong, 0.5),
            cpt80=cpt(points, weak, strong, 0.8),
            train_drop_points=sum(drops) / len(drops),
            train_cost=sum(costs) / len(costs),
            train_strong_cost=sum(strong_costs) / len(strong_costs),
            by_cost=by_cost,
            fallback_items=fallback,
            export=export,
            results=list(results.values()),
        )


def _option_result(option: Option, strong: Option, ids: Sequence[str]) -> OptionResult:
    results = [single(option.items[i], strong_call=option is strong) for i in ids]
    vs = None
    if option is not strong:
        vs = paired_compare(
            {i: strong.items[i].correct for i in ids}, {r.item_id: r.correct for r in results}
        )
    return OptionResult(option.name, figures(results), vs, by_area(results))


def analyse_route(
    data: RouteData,
    spec: RouteSpec,
    *,
    embeddings: Mapping[str, Sequence[float]] | None = None,
    judged: Mapping[str, JudgedAnswer] | None = None,
) -> RouteReport:
    """Evaluate single options, the oracle and every signal's policy on held-out folds (pure)."""
    ids = check_shared(data, spec.min_shared)
    if len(ids) < spec.folds:
        raise UsageError(f"{len(ids)} shared items cannot fill {spec.folds} folds", flag="--folds")
    cheap, strong = pick_pair(data, ids, spec)
    inputs = SignalInputs(data, cheap, strong, embeddings, judged)
    fold = stratified_folds({i: data.area(i) for i in ids}, spec.folds, spec.seed)
    evaluator = _Evaluator(inputs, spec, ids, split(fold, spec.folds, ids))
    options = [_option_result(o, strong, ids) for o in data.options]
    strong_index = data.options.index(strong)
    best = [oracle([o.items[i] for o in data.options], strong_index) for i in ids]
    best_vs = paired_compare({i: strong.items[i].correct for i in ids}, {r.item_id: r.correct for r in best})
    oracle_result = OptionResult("oracle", figures(best), best_vs, by_area(best))
    policies: list[PolicyResult] = []
    skipped: dict[str, str] = {}
    for signal in spec.signals:
        why = SIGNALS[signal.kind].missing(signal, inputs)
        if why is not None:
            skipped[label(signal)] = why
            continue
        policies.append(evaluator.evaluate(signal))
    qualified = [p for p in policies if p.train_drop_points >= -spec.max_drop_points - 1e-9]
    cheaper = [p for p in qualified if p.train_cost < p.train_strong_cost]
    # Policies priced in $ first (a share of strong calls is not a price), then the cheapest on training.
    chosen = min(cheaper, key=lambda p: (not p.by_cost, p.train_cost, -p.train_drop_points), default=None)
    costs_known = all(o.figures.cost_usd is not None for o in options)
    notes = list(data.notes)
    if not costs_known:
        notes.append(
            "some items have no cost (a self-hosted option without a price: pass --price RUN=IN,OUT); "
            "thresholds were chosen by the share of strong calls instead of $"
        )
    return RouteReport(
        cheap.name, strong.name, len(ids), spec, options, oracle_result, policies, skipped, chosen, notes,
        costs_known,
    )  # fmt: skip
