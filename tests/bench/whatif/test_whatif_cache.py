"""Cache replays on logs small enough to follow by hand: honest timing, the fill/measure split, hit rate,
$ and latency saved net of the cache's own costs, and the false-hit rate with its Wilson interval."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import pytest

from bench.accuracy.suite import SuiteItem
from bench.whatif.cache import CacheCosts, CacheSpec, analyse_cache, judge_asks, replay_all, summarize_cache
from bench.whatif.requestlog import LoggedRequest, canonical


def body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "temperature": 0, **extra}


def ref(text: str, answer: str) -> SuiteItem:
    return SuiteItem(id="x", area="log", prompt=text, reference=answer)


def req(
    i: int, text: str, t: float, ms: float, usd: float, answer: str, check: str | None = None
) -> LoggedRequest:
    return LoggedRequest(
        i, body(text), t, t + ms / 1000, usd, ms, answer, None if check is None else ref(text, check)
    )


# Arrival (s), latency (ms), cost ($), body. Bodies A, B, C.
LOG = [
    req(0, "A", 0.0, 1000, 0.010, "a"),
    req(1, "A", 0.5, 1000, 0.010, "a"),  # A is in flight (r0 completes at 1.0): a miss
    req(2, "A", 2.0, 1000, 0.010, "a"),  # hit on r0
    req(3, "B", 3.0, 1000, 0.020, "b"),
    req(4, "B", 3.5, 1000, 0.020, "b"),  # B in flight (r3 completes at 4.0): a miss
    req(5, "B", 5.0, 1000, 0.020, "b", check="b-wrong"),  # hit on r3; its reference says "b-wrong"
    req(6, "C", 6.0, 500, 0.030, "c"),
    req(7, "A", 7.0, 500, 0.010, "a", check="a"),  # hit on r0: right
]
COSTS = CacheCosts(lookup_ms=1.0, lookup_usd=0.0001, embed_ms=0.0)


def test_exact_cache_by_hand() -> None:
    """Fill share .5: r0–r3 fill, r4–r7 are measured.
    Measured: r4 miss (its match r3 is in flight), r5 hit (r3), r6 miss, r7 hit (r0): hit rate 2/4 = .5,
    in-flight misses 1. Fill part: r0 miss, r1 miss in flight, r2 hit, r3 miss: 1/4.
    $: spend .020 + .020 + .030 + .010 = .080; gross saved (hits' cost) .020 + .010 = .030; overhead
    4 × .0001 = .0004; net saved .0296.
    Latency: without 1000, 1000, 500, 500 → mean 750 ms; with 1001, 1, 501, 1 → mean 376 ms.
    False hits: r5 is served r3's answer "b", its reference is "b-wrong" → false; r7 served "a" = "a" →
    right; r4/r6 are misses. 1 false of 2 judged: rate .5, Wilson 95% [.0945, .9055] (z = 1.96:
    centre (.5 + 1.9208/2)/2.9208 = .5; half 1.96·√(.125 + .2401)/2.9208 = .4055)."""
    report = analyse_cache(LOG, CacheSpec(fill_share=0.5, costs=COSTS, semantic=False))
    m, f = report.exact.measured, report.exact.fill
    assert report.semantic == [] and report.timed and report.fill_requests == 4
    assert (m.requests, m.hits, m.hit_rate, m.in_flight_misses) == (4, 2, 0.5, 1)
    assert f is not None and (f.hits, f.hit_rate, f.in_flight_misses) == (1, 0.25, 1)
    assert m.spend_usd == pytest.approx(0.080)
    assert m.gross_saved_usd == pytest.approx(0.030)
    assert m.overhead_usd == pytest.approx(0.0004)
    assert m.net_saved_usd == pytest.approx(0.0296)
    assert (m.latency_mean_without_ms, m.latency_mean_with_ms) == (750.0, 376.0)
    assert (m.false_hits, m.unjudged_hits, m.false_hit_rate.n) == (1, 0, 2)
    assert m.false_hit_rate.score == 0.5
    lo, hi = m.false_hit_rate.ci95  # type: ignore[misc]
    assert (round(lo, 4), round(hi, 4)) == (0.0945, 0.9055)
    assert report.exact.false_examples == [("B", "B", None)]


def test_an_entry_exists_only_once_its_request_has_completed() -> None:
    """Two identical requests: the second arrives 1 ms before, at, and 1 ms after the first completes."""
    for gap_ms, hit in ((999.0, False), (1000.0, True), (1001.0, True)):
        log = [req(0, "A", 0.0, 1000, 0.01, "a"), req(1, "A", gap_ms / 1000, 1000, 0.01, "a")]
        run = analyse_cache(log, CacheSpec(fill_share=0, semantic=False)).exact
        assert (run.measured.hits == 1) is hit
        assert run.measured.in_flight_misses == (0 if hit else 1)


def test_the_key_is_the_whole_body_but_not_the_transport_fields() -> None:
    assert canonical(body("A", stream=True, stream_options={"include_usage": True})) == canonical(body("A"))
    assert canonical(body("A", temperature=0.7)) != canonical(body("A"))
    assert canonical(body("A", tools=[{"type": "function"}])) != canonical(body("A"))
    assert canonical({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_a_log_without_timestamps_is_replayed_in_order_with_the_caveat() -> None:
    log = [LoggedRequest(i, body(t)) for i, t in enumerate("AAB")]
    report = analyse_cache(log, CacheSpec(fill_share=0, semantic=False))
    assert not report.timed and report.exact.measured.hits == 1
    assert any("no timestamps" in n for n in report.notes)
    assert report.exact.measured.spend_usd is None and report.exact.measured.unjudged_hits == 1  # no answer


class TableEmbedder:
    """A fake embedder with hand-made unit vectors: cos(enable, disable) = .95, cos(enable, turn on) = .80,
    cos(disable, turn on) = .76."""

    name = "table"
    VECTORS: ClassVar[dict[str, list[float]]] = {
        "How do I enable 2FA?": [1.0, 0.0, 0.0],
        "How do I disable 2FA?": [0.95, math.sqrt(1 - 0.95**2), 0.0],
        "How can I turn on two-factor authentication?": [0.8, 0.0, 0.6],
    }

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.VECTORS[t] for t in texts]


TWO_FA = [
    req(0, "How do I enable 2FA?", 0.0, 800, 0.004, "ENABLE-STEPS", check="ENABLE-STEPS"),
    req(1, "How do I disable 2FA?", 10.0, 800, 0.004, "DISABLE-STEPS", check="DISABLE-STEPS"),
    req(2, "How can I turn on two-factor authentication?", 20.0, 800, 0.004, "ENABLE-STEPS", "ENABLE-STEPS"),
]


def test_semantic_cache_near_duplicate_of_opposite_meaning_is_a_false_hit() -> None:
    """At threshold .9: 'disable' (cos .95 to 'enable') hits and is served ENABLE-STEPS against its
    reference DISABLE-STEPS → false; the paraphrase (cos .80) misses. Hit rate 1/3, false-hit rate 1/1.
    At .75: 'disable' hits (false); the paraphrase hits 'enable' (.80; 'disable' never became an entry,
    as a hit does not generate) and is served ENABLE-STEPS → right. Hit rate 2/3, false 1/2.
    At .98 nothing hits. Cost: gross saved .004 per hit, a local embedding costs $0."""
    spec = CacheSpec(fill_share=0, thresholds=(0.98, 0.9, 0.75), costs=CacheCosts(lookup_usd=0.0))
    report = analyse_cache(TWO_FA, spec, embedder=TableEmbedder())
    by_t = {r.threshold: r.measured for r in report.semantic}
    assert [r.threshold for r in report.semantic] == [0.75, 0.9, 0.98]
    assert (by_t[0.98].hits, by_t[0.9].hits, by_t[0.75].hits) == (0, 1, 2)
    assert by_t[0.9].hit_rate == pytest.approx(1 / 3) and by_t[0.75].hit_rate == pytest.approx(2 / 3)
    assert (by_t[0.9].false_hits, by_t[0.9].false_hit_rate.score) == (1, 1.0)
    assert (by_t[0.75].false_hits, by_t[0.75].false_hit_rate.score) == (1, 0.5)
    assert by_t[0.75].net_saved_usd == pytest.approx(0.008)
    assert report.semantic[1].false_examples == [("How do I disable 2FA?", "How do I enable 2FA?", 0.95)]
    assert report.exact.measured.hits == 0
    assert report.chosen_threshold is None  # no fill part to choose on


def test_the_threshold_is_chosen_on_the_fill_part_within_the_false_hit_limit() -> None:
    """Log = the 2FA trio twice (times +100 s). Fill: the first trio; at .75 and .9 'disable' is a false
    hit there (rate 1/2 and 1/1), over the .02 limit; .98 has no hits (rate 0): chosen."""
    later = [replace(r, index=r.index + 3, arrival_s=r.arrival_s + 100, completion_s=r.completion_s + 100)  # type: ignore[operator]
             for r in TWO_FA]  # fmt: skip
    spec = CacheSpec(fill_share=0.5, thresholds=(0.75, 0.9, 0.98))
    report = analyse_cache([*TWO_FA, *later], spec, embedder=TableEmbedder())
    assert report.chosen_threshold == 0.98


def test_hits_without_a_reference_go_to_the_judge() -> None:
    log = [
        req(0, "How do I enable 2FA?", 0, 100, 0.01, "ENABLE-STEPS"),
        req(1, "How do I disable 2FA?", 1, 100, 0.01, "x"),
    ]
    spec = CacheSpec(fill_share=0, thresholds=(0.9,))
    replays = replay_all(log, spec, TableEmbedder())
    asks = judge_asks(log, replays)
    assert [(a.key, a.question, a.answer) for a in asks] == [
        ((1, 0), "How do I disable 2FA?", "ENABLE-STEPS")
    ]
    unjudged = summarize_cache(log, spec, replays)
    assert unjudged.semantic[0].measured.unjudged_hits == 1 and "could not be judged" in unjudged.notes[-1]
    judged = summarize_cache(log, spec, replays, {(1, 0): False})
    assert judged.semantic[0].measured.false_hits == 1


def test_per_session_scope_keeps_sessions_apart() -> None:
    log = [
        LoggedRequest(0, body("How do I enable 2FA?"), 0.0, 0.1, session_id="s1", answer="E"),
        LoggedRequest(1, body("How do I enable 2FA?"), 1.0, 1.1, session_id="s2", answer="E"),
        LoggedRequest(2, body("How do I enable 2FA?"), 2.0, 2.1, session_id="s1", answer="E"),
    ]
    spec = CacheSpec(fill_share=0, thresholds=(0.99,), scope="session")
    report = analyse_cache(log, spec, embedder=TableEmbedder())
    assert report.semantic[0].measured.hits == 1  # only r2 (session s1) hits r0
    assert report.exact.measured.hits == 2  # the exact cache is shared by every session
