"""The chosen routing policy as a small JSON document, `llmbench.route-policy/1`: the signal, the threshold
and the fallback, with the held-out estimate it was chosen by. Read back with `RoutePolicy.from_json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bench.whatif.signals import SignalSpec, Stage

SCHEMA: Literal["llmbench.route-policy/1"] = "llmbench.route-policy/1"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ModelRef(_Doc):
    """One side of the pair: the option's name and the stored run it was measured in."""

    name: str
    run_id: str


class Fit(_Doc):
    """How the threshold was chosen: on every item after k-fold cross-validation gave the estimate."""

    items: int
    folds: int
    seed: int
    max_drop_points: float
    fold_thresholds: list[float | None]  # each fold's choice (None: never the strong model)


class HeldOut(_Doc):
    """The policy on held-out folds, against the strong model on the same items (paired)."""

    accuracy: float
    strong_accuracy: float
    diff_points: float
    ci95_points: tuple[float, float]
    mcnemar_p: float
    strong_share: float
    usd_per_1k_items: float | None
    strong_usd_per_1k_items: float | None


class RoutePolicy(_Doc):
    """A router or a cascade: the strong model when the signal's score ≥ threshold, or when the signal
    cannot be computed (the fallback); otherwise the cheap model."""

    schema_: Literal["llmbench.route-policy/1"] = Field(SCHEMA, alias="schema")
    kind: Stage
    signal: SignalSpec
    params: dict[str, Any] = Field(default_factory=dict)  # what the signal needs (a classifier's weights)
    threshold: float | None  # None: never the strong model (but for the fallback)
    fallback: Literal["strong"] = "strong"
    cheap: ModelRef
    strong: ModelRef
    fit: Fit
    held_out: HeldOut

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoutePolicy:
        return cls.model_validate(data)

    def write(self, path: Path) -> None:
        """Write the policy as indented JSON."""
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
