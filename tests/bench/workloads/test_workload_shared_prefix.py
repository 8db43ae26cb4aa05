"""Shared-prefix workloads: the designed reuse share by hand, Zipf popularity, exact request lengths."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.prompts.lengths import LengthDist
from bench.prompts.workloads import PrefixPool, RequestSequence, SharedPrefixWorkload, designed_reuse_share
from bench.records import reference_tokens


def test_designed_reuse_share_by_hand() -> None:
    """Two equally popular prefixes of 1,000 tokens, 24-token questions, 4 requests.

    Request i repeats an earlier prefix with probability 1 − (1/2)^i: 0, 1/2, 3/4, 7/8 — 2.125 in all.
    Share = 2.125 × 1,000 / (4 × 1,024) = 2,125 / 4,096 = 0.518798828125.
    (The closed form: n − D with D = 2 × (1 − (1/2)^4) = 1.875 distinct prefixes expected.)
    """
    pool = PrefixPool(count=2, tokens=1000)
    assert pool.expected_distinct(4) == 1.875
    assert designed_reuse_share(pool, LengthDist(a=24), 4) == 2125 / 4096
    # Uniform questions of 16..32 tokens: mean 24, the same share.
    assert designed_reuse_share(pool, LengthDist(kind="uniform", a=16, b=32), 4) == 2125 / 4096
    # One prefix: every request after the first repeats it: 3 × 1,000 / (4 × 1,024).
    assert designed_reuse_share(PrefixPool(count=1, tokens=1000), LengthDist(a=24), 4) == 3000 / 4096


def test_zipf_probabilities_by_hand() -> None:
    """s = 1 over 3 prefixes: weights 1, 1/2, 1/3 (sum 11/6) → 6/11, 3/11, 2/11."""
    pool = PrefixPool(count=3, tokens=10, popularity="zipf", zipf_s=1.0)
    assert pool.probabilities() == pytest.approx([6 / 11, 3 / 11, 2 / 11])
    # D over 2 draws: Σ 1 − (1 − p)² = (1 − 25/121) + (1 − 64/121) + (1 − 81/121) = 193/121.
    assert pool.expected_distinct(2) == pytest.approx(193 / 121)


def test_requests_carry_a_prefix_and_a_question_of_exact_lengths() -> None:
    workload = SharedPrefixWorkload(
        prefixes=PrefixPool(count=4, tokens=300, popularity="zipf", zipf_s=1.2),
        question_tokens=LengthDist(kind="uniform", a=10, b=20),
        output_tokens=LengthDist(a=7),
        requests=500,
    )
    built = workload.build()
    assert isinstance(built, RequestSequence) and built.count == 500
    assert built.reuse_share == workload.designed_reuse_share(500)
    requests = list(built)
    systems = Counter()
    for i, request in enumerate(requests):
        assert request.request_id == i and request.max_tokens == 7 and request.cache_breakpoints == (0,)
        assert request.messages is not None
        system, question = (str(m["content"]) for m in request.messages)
        assert reference_tokens(len(system.encode())) == 300
        assert 10 <= reference_tokens(len(question.encode())) <= 20
        systems[system] += 1
    counts = sorted(systems.values(), reverse=True)
    assert len(counts) == 4 and counts[0] > counts[-1]  # Zipf: the first prefix is the most used
    assert built.request(3) == requests[3] == workload.build().request(3)  # deterministic, random access
    assert [r.request_id for r in built.take(502)][-2:] == [500, 501]  # a finite sequence cycles


def test_completions_and_no_breakpoints() -> None:
    workload = SharedPrefixWorkload(
        prefixes=PrefixPool(count=1, tokens=50), api="completions", cache_breakpoints=False
    )
    request = workload.build().request(0)
    assert request.prompt is not None and request.messages is None and request.cache_breakpoints == ()
    assert reference_tokens(len(request.prompt.encode())) == 50 + 32
