"""`analyse_route` on made-up runs: thresholds chosen on training folds only, the recommended policy, the
exported JSON, and the refusals."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import pytest

from bench.accuracy.logprobs import LogprobSummary
from bench.errors import UsageError
from bench.whatif.export import RoutePolicy
from bench.whatif.model import ItemOutcome, JudgedAnswer, Option, RouteData
from bench.whatif.route import RouteSpec, analyse_route
from bench.whatif.signals import (
    ClassifierSignal,
    FormatSignal,
    JudgeSignal,
    KeywordSignal,
    LogprobSignal,
    PromptLengthSignal,
)


def lp(p10: float) -> LogprobSummary:
    return LogprobSummary(n=5, min=p10 - 1, p05=p10 - 0.5, p10=p10, p25=p10 / 2, p50=p10 / 4, mean=p10 / 3)


def make_data(n: int = 60, seed: int = 1) -> RouteData:
    """Half 'easy' items (short prompts: cheap right), half 'hard' (long prompts: cheap mostly wrong).
    Cheap is confident (p10 -0.05) when right and unsure (-2.0) when wrong, with a few exceptions."""
    rng = random.Random(seed)
    cheap: dict[str, ItemOutcome] = {}
    strong: dict[str, ItemOutcome] = {}
    prompts: dict[str, str] = {}
    for k in range(n):
        hard = k % 2 == 1
        item = f"q{k:03d}"
        area = "hard" if hard else "easy"
        prompts[item] = ("explain in detail " * 10 if hard else "add ") + str(k)
        right = (not hard) or rng.random() < 0.2
        sure = right if rng.random() > 0.1 else not right
        cheap[item] = ItemOutcome(item, area, right, 0.001, 100.0, "x", lp(-0.05 if sure else -2.0))
        strong[item] = ItemOutcome(item, area, rng.random() > 0.05, 0.01, 500.0, "y")
    return RouteData(
        (Option("tiny", "a" * 32, cheap), Option("api", "b" * 32, strong)), prompts, notes=("made up",)
    )


def test_singles_oracle_and_policies_with_a_recommendation() -> None:
    data = make_data()
    spec = RouteSpec(folds=5, max_drop_points=5.0, signals=(PromptLengthSignal(), LogprobSignal()))
    report = analyse_route(data, spec)
    assert (report.cheap, report.strong, report.items) == ("tiny", "api", 60)
    assert [o.name for o in report.options] == ["tiny", "api"]
    assert report.options[1].vs_strong is None and report.options[0].vs_strong is not None
    assert report.oracle.figures.accuracy.score >= report.options[1].figures.accuracy.score  # type: ignore[operator]
    assert [p.name for p in report.policies] == ["router:prompt_length", "cascade:logprob(p10)"]
    router = report.policies[0]
    # Long prompts are the hard ones: the router sends about half the items to the strong model.
    assert 0.4 <= router.figures.strong_share <= 0.6
    assert len(router.fold_thresholds) == 5 and len(router.sweep) == 11
    assert router.sweep[0].figures.strong_share == 0.0 and router.sweep[-1].figures.strong_share == 1.0
    assert router.apgr is not None and router.apgr > 0.5
    assert router.cpt50 is not None and router.cpt50 <= 0.6
    assert report.chosen is not None and report.chosen.train_drop_points >= -5.0
    assert report.chosen.figures.cost_usd < report.options[1].figures.cost_usd  # type: ignore[operator]
    assert set(router.areas) == {"easy", "hard"} and report.notes[0] == "made up"


def test_each_item_is_decided_by_a_threshold_that_never_saw_its_labels() -> None:
    """Flip one item's right/wrong on both sides: every other fold may change, but not its own decision."""
    data = make_data()
    vectors = {i: [float(len(p) > 20), float(int(i[1:]) % 3), 1.0] for i, p in data.prompts.items()}
    spec = RouteSpec(signals=(PromptLengthSignal(), ClassifierSignal(), LogprobSignal()), max_drop_points=3)
    base = analyse_route(data, spec, embeddings=vectors)
    for target in ("q007", "q010", "q033"):
        cheap, strong = data.options
        flipped = RouteData(
            (
                replace(cheap, items={**cheap.items, target: replace(cheap.items[target], correct=False)}),
                replace(strong, items={**strong.items, target: replace(strong.items[target], correct=True)}),
            ),
            data.prompts,
        )
        again = analyse_route(flipped, spec, embeddings=vectors)
        for before, after in zip(base.policies, again.policies, strict=True):
            one = {r.item_id: r.strong_call for r in before.results}
            two = {r.item_id: r.strong_call for r in after.results}
            assert one[target] == two[target], (before.name, target)


def test_signals_that_cannot_run_are_listed_with_the_reason() -> None:
    data = make_data()
    bare = RouteData(data.options, prompts={})
    spec = RouteSpec(
        signals=(
            PromptLengthSignal(),
            KeywordSignal(keywords=["explain"]),
            ClassifierSignal(),
            JudgeSignal(),
            FormatSignal(),
        )
    )
    report = analyse_route(bare, spec)
    assert report.policies == []
    assert report.skipped == {
        "router:prompt_length": "no prompt text (the runs' suite file is not at hand)",
        "router:keyword": "no prompt text (the runs' suite file is not at hand)",
        "router:classifier": "no prompt embeddings (no prompt text, or no embedding model)",
        "cascade:judge": "no judge given (--judge NAME)",
        "cascade:format": "the scorers of these items check no format (exact, keyword)",
    }
    assert report.chosen is None


def test_keyword_rule_and_judge_signal_with_its_cost() -> None:
    data = make_data()
    cheap = data.options[0]
    judged = {i: JudgedAnswer(o.correct, float(o.correct), 0.0002) for i, o in cheap.items.items()}
    spec = RouteSpec(signals=(KeywordSignal(keywords=["Explain"]), JudgeSignal()), max_drop_points=5)
    report = analyse_route(data, spec, judged=judged)
    keyword, judge = report.policies
    assert keyword.figures.strong_share == 0.5  # every hard prompt says "explain", no easy one does
    # A perfect judge: the cascade escalates exactly the items the cheap model got wrong, and pays the
    # cheap model, the judge on all 60 items and the strong model on the escalated ones.
    wrong = [i for i, o in cheap.items.items() if not o.correct]
    assert judge.figures.strong_share == pytest.approx(len(wrong) / 60)
    assert judge.figures.cost_usd == pytest.approx(60 * (0.001 + 0.0002) + len(wrong) * 0.01)


def test_the_exported_policy_round_trips() -> None:
    report = analyse_route(
        make_data(), RouteSpec(signals=(LogprobSignal(quantile="p10"),), max_drop_points=5)
    )
    assert report.chosen is not None
    policy = report.chosen.export
    data = json.loads(json.dumps(policy.to_json()))
    assert data["schema"] == "llmbench.route-policy/1"
    assert data["kind"] == "cascade" and data["fallback"] == "strong"
    assert data["signal"] == {"kind": "logprob", "quantile": "p10"}
    assert data["threshold"] == pytest.approx(2.0)  # escalate when −p10 ≥ 2.0, i.e. p10 ≤ −2.0
    assert data["cheap"]["name"] == "tiny" and data["fit"]["folds"] == 5
    assert RoutePolicy.from_json(data) == policy


def test_too_few_shared_items_are_refused_with_the_count() -> None:
    data = make_data(n=10)
    with pytest.raises(UsageError) as info:
        analyse_route(data, RouteSpec(min_shared=20))
    assert "share 10 scored items, fewer than the minimum 20" in str(info.value)
    assert "tiny (aaaaaaaa): 10" in str(info.value) and info.value.flag == "--min-shared"


def test_named_pair_and_an_unknown_name() -> None:
    data = make_data()
    report = analyse_route(data, RouteSpec(cheap="bbbb", strong="tiny", signals=()))
    assert (report.cheap, report.strong) == ("api", "tiny")
    with pytest.raises(UsageError, match="names no options"):
        analyse_route(data, RouteSpec(strong="nope", signals=()))


def test_without_costs_thresholds_follow_the_share_of_strong_calls() -> None:
    data = make_data()
    cheap, strong = data.options
    free = replace(cheap, items={i: replace(o, cost_usd=None) for i, o in cheap.items.items()})
    report = analyse_route(
        RouteData((free, strong), data.prompts), RouteSpec(signals=(PromptLengthSignal(),))
    )
    assert not report.costs_known and "--price" in report.notes[-1]
    assert report.policies[0].figures.cost_usd is None
    assert not math.isnan(report.policies[0].train_cost)
