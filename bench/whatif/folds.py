"""Stratified k-fold splits, deterministic from a seed: thresholds are chosen on the other folds."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence


def stratified_folds(areas: Mapping[str, str], k: int, seed: int = 0) -> dict[str, int]:
    """Each item id's fold (0..k-1), every area spread evenly over the folds.

    Items of each area (areas in sorted order, ids sorted then shuffled by `seed` and the area's name) are
    dealt round-robin, continuing where the previous area stopped, so fold sizes differ by at most one.
    """
    if k < 2:
        raise ValueError(f"k-fold needs k ≥ 2 folds, not {k}")
    if len(areas) < k:
        raise ValueError(f"{len(areas)} items cannot fill {k} folds")
    by_area: dict[str, list[str]] = {}
    for item_id, area in areas.items():
        by_area.setdefault(area, []).append(item_id)
    fold: dict[str, int] = {}
    dealt = 0
    for area in sorted(by_area):
        ids = sorted(by_area[area])
        random.Random(f"{seed}:{area}").shuffle(ids)
        for item_id in ids:
            fold[item_id] = dealt % k
            dealt += 1
    return fold


def split(fold: Mapping[str, int], k: int, ids: Sequence[str]) -> list[tuple[list[str], list[str]]]:
    """(training ids, held-out ids) for each fold, ids in the order given."""
    return [([i for i in ids if fold[i] != f], [i for i in ids if fold[i] == f]) for f in range(k)]
