"""A small logistic-regression classifier on prompt embeddings: the trained router signal.

Fitted by Newton's method with an L2 penalty (the bias is not penalized), deterministic, in numpy (imported
when a classifier is fitted). Trained only on the training folds' items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_STEPS = 50
TOLERANCE = 1e-8


@dataclass(frozen=True)
class Logistic:
    """P(y = 1 | x) = σ(w·x + b)."""

    weights: tuple[float, ...]
    bias: float

    def probability(self, x: Sequence[float]) -> float:
        z = self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def fit_logistic(xs: Sequence[Sequence[float]], ys: Sequence[bool], l2: float = 1.0) -> Logistic:
    """Penalized maximum likelihood; with one class only, the weights are 0 and the bias its log-odds."""
    import numpy as np

    if not xs:
        raise ValueError("no training items")
    dim = len(xs[0])
    positives = sum(ys)
    if positives in (0, len(ys)):
        share = min(max(positives / len(ys), 1e-6), 1 - 1e-6)
        return Logistic((0.0,) * dim, math.log(share / (1 - share)))
    x = np.hstack([np.asarray(xs, dtype=np.float64), np.ones((len(xs), 1))])
    y = np.asarray(ys, dtype=np.float64)
    penalty = np.full(dim + 1, l2)
    penalty[-1] = 0.0
    theta = np.zeros(dim + 1)
    for _ in range(MAX_STEPS):
        p = 1.0 / (1.0 + np.exp(-(x @ theta)))
        grad = x.T @ (p - y) + penalty * theta
        hess = (x.T * (p * (1 - p))) @ x + np.diag(penalty) + 1e-9 * np.eye(dim + 1)
        step = np.linalg.solve(hess, grad)
        theta = theta - step
        if float(np.max(np.abs(step))) < TOLERANCE:
            break
    return Logistic(tuple(float(v) for v in theta[:-1]), float(theta[-1]))
