"""Levers side by side: savings and accuracy costs of a cascade and a cache, by hand."""

from __future__ import annotations

import pytest

from bench.whatif.cache import CacheSpec, analyse_cache
from bench.whatif.levers import Lever, favoured, levers, prompt_lever, provider_cache_lever
from bench.whatif.model import ItemOutcome, Option, RouteData
from bench.whatif.requestlog import LoggedRequest
from bench.whatif.route import RouteSpec, analyse_route
from bench.whatif.signals import PromptLengthSignal


def log() -> list[LoggedRequest]:
    """Four requests, two bodies, each asked twice 10 s apart, $0.01 each: both repeats hit their first
    answer; the repeat of B has a reference that the cached answer does not match."""
    from bench.accuracy.suite import SuiteItem

    def body(t: str) -> dict[str, object]:
        return {"model": "m", "messages": [{"role": "user", "content": t}]}

    wrong = SuiteItem(id="b", area="log", prompt="B", reference="b2")
    return [
        LoggedRequest(0, body("A"), 0.0, 1.0, 0.01, 1000, "a"),
        LoggedRequest(1, body("B"), 1.0, 2.0, 0.01, 1000, "b"),
        LoggedRequest(2, body("A"), 10.0, 11.0, 0.01, 1000, "a"),
        LoggedRequest(3, body("B"), 11.0, 12.0, 0.01, 1000, "b", wrong),
    ]


def test_a_cache_lever_by_hand() -> None:
    """Measured (all 4): hits r2 and r3, net saved $0.02 of $0.04 spend = 50% (lookup free here).
    False hits 1 (r3) of 4 requests: accuracy −25 points; Wilson 95% of 1/4 is [4.56%, 69.9%] →
    [−69.9, −4.56] points."""
    report = analyse_cache(log(), CacheSpec(fill_share=0, semantic=False, costs={"lookup_usd": 0.0}))
    (lever,) = levers(cache=report)
    assert lever.name == "exact cache" and lever.saved_share == pytest.approx(0.5)
    assert lever.accuracy_points == -25.0
    lo, hi = lever.accuracy_ci95_points
    assert (round(lo, 1), round(hi, 2)) == (-69.9, -4.56)
    assert favoured([lever], max_drop_points=1.0) is None  # it saves, but loses 25 points
    assert favoured([lever], max_drop_points=30.0) == lever


def test_a_route_lever_saves_against_the_strong_model() -> None:
    """20 items; cheap ($0.001) right on the 10 short prompts only, strong ($0.01) right everywhere. The
    prompt-length router sends the long ones to strong: $0.11 against $0.20 → saves 45%, loses 0 points."""
    cheap, strong, prompts = {}, {}, {}
    for k in range(20):
        long = k % 2 == 1
        item = f"q{k:02d}"
        prompts[item] = ("x" * 50 if long else "y") + str(k)
        cheap[item] = ItemOutcome(item, "a", not long, 0.001, 10.0)
        strong[item] = ItemOutcome(item, "a", True, 0.01, 10.0)
    data = RouteData((Option("c", "c" * 32, cheap), Option("s", "s" * 32, strong)), prompts)
    report = analyse_route(data, RouteSpec(min_shared=5, signals=(PromptLengthSignal(),)))
    (lever,) = levers(route=report)
    assert lever.name == "router:prompt_length" and lever.saved_share == pytest.approx(0.45)
    assert lever.accuracy_points == 0.0 and favoured([lever]) == lever


def test_a_prompt_version_lever_by_hand() -> None:
    """Four items. Base prompt: $0.010 each, right on 1, 2, 3. A shorter version: $0.006 each, right on 1, 2,
    4. Saved 1 − 0.024/0.040 = 40%. Paired: base-only right 1 (item 3), version-only 1 (item 4): change 0
    points, McNemar exact p = 2 · (C(2,0) + C(2,1))/4 capped at 1 = 1."""
    base = {f"i{n}": ItemOutcome(f"i{n}", "a", n in (1, 2, 3), 0.010) for n in (1, 2, 3, 4)}
    short = {f"i{n}": ItemOutcome(f"i{n}", "a", n in (1, 2, 4), 0.006) for n in (1, 2, 3, 4)}
    lever = prompt_lever(Option("base", "b" * 32, base), Option("short@2", "s" * 32, short))
    assert lever is not None and lever.kind == "prompt" and lever.name == "short@2"
    assert lever.saved_share == pytest.approx(0.4)
    assert (lever.accuracy_points, lever.mcnemar_p, lever.items) == (0.0, 1.0, 4)
    unpriced = {**short, "i4": ItemOutcome("i4", "a", True, None)}
    lever = prompt_lever(Option("base", "b" * 32, base), Option("v", "v" * 32, unpriced))
    assert lever is not None and lever.saved_share is None  # an unknown cost is unknown, not zero
    assert prompt_lever(Option("base", "b" * 32, base), Option("v", "v" * 32, {})) is None


def test_the_provider_cache_lever_by_hand() -> None:
    """128 prompt tokens per request, 32 of them cache reads, 64 output; $3 in, $0.30 cached, $15 out per 1M:
    billed 96·3 + 32·0.3 + 64·15 = 1257.6 µ$, uncached 128·3 + 64·15 = 1344 µ$ → saves 1 − 1257.6/1344 =
    6.4286%; it serves the model's own answer to the exact prompt: 0 points, no interval."""
    lever = provider_cache_lever("mock-frontier", 1257.6e-6, 1344e-6, 40)
    assert lever.saved_share == pytest.approx(1 - 1257.6 / 1344) == pytest.approx(0.0642857, abs=1e-7)
    assert (lever.accuracy_points, lever.accuracy_ci95_points, lever.items) == (0.0, None, 40)


def test_favoured_is_the_largest_saving_within_the_drop() -> None:
    """Saves 60% at −3 points, 40% at −0.5, 20% at +1, unknown: within 1 point the 40% one is favoured."""
    found = [
        Lever("a", "route", 0.6, -3.0, (-6.0, 0.0), 100),
        Lever("b", "prompt", 0.4, -0.5, (-2.0, 1.0), 100),
        Lever("c", "cache", 0.2, 1.0, (0.0, 2.0), 100),
        Lever("d", "route", None, 0.0, (-1.0, 1.0), 100),
    ]
    assert favoured(found, max_drop_points=1.0) == found[1]
    assert favoured(found, max_drop_points=5.0) == found[0]
    assert [lv.name for lv in levers(more=found)] == ["a", "b", "c", "d"]  # largest saving first
