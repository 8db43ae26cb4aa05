"""Stratified, deterministic k-fold splits."""

from __future__ import annotations

import pytest

from bench.whatif.folds import split, stratified_folds

AREAS = {f"a{i}": "alpha" for i in range(6)} | {f"b{i}": "beta" for i in range(4)}


def test_every_area_is_spread_over_the_folds_and_sizes_differ_by_at_most_one() -> None:
    fold = stratified_folds(AREAS, 2, seed=3)
    for f in (0, 1):
        assert sum(1 for i, a in AREAS.items() if a == "alpha" and fold[i] == f) == 3
        assert sum(1 for i, a in AREAS.items() if a == "beta" and fold[i] == f) == 2
    three = stratified_folds(AREAS, 3, seed=3)
    sizes = sorted(list(three.values()).count(f) for f in range(3))
    assert sizes == [3, 3, 4]


def test_the_same_seed_gives_the_same_folds_and_another_seed_others() -> None:
    assert stratified_folds(AREAS, 2, seed=3) == stratified_folds(dict(reversed(AREAS.items())), 2, seed=3)
    assert any(stratified_folds(AREAS, 2, seed=s) != stratified_folds(AREAS, 2, seed=3) for s in range(4, 9))


def test_split_never_puts_an_item_on_both_sides() -> None:
    ids = sorted(AREAS)
    fold = stratified_folds(AREAS, 5, seed=0)
    seen: list[str] = []
    for train, test in split(fold, 5, ids):
        assert not set(train) & set(test) and set(train) | set(test) == set(ids)
        seen += test
    assert sorted(seen) == ids


def test_bad_k() -> None:
    with pytest.raises(ValueError, match="k ≥ 2"):
        stratified_folds(AREAS, 1)
    with pytest.raises(ValueError, match="cannot fill"):
        stratified_folds(AREAS, 11)
