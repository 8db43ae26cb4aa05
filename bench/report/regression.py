"""Regression items in `llmbench compare` (and sweep gates): complaints users filed, fixed in BASE, must not
come back in NEW.

A suite imported from feedback (`llmbench suite import`) keeps the items users marked bad in its regression
area, each with its expected answer or a rubric; a run records that area (AccuracyRunProfile.
regression_area, from the suite's manifest). On the regression items both runs scored:

- came back = right in BASE, wrong in NEW (a fixed complaint returns); fixed = wrong in BASE, right in NEW;
- McNemar's exact test on those discordant pairs (bench.stats.mcnemar_exact: the two-sided binomial test of
  `came back` among `came back + fixed` at 1/2);
- the gate fails when more came back than were fixed AND p < 0.05: one complaint coming back among a few
  is noise, and says so.

The gate is on by default whenever the runs hold regression items (`regression<0pts`); `--fail-on
regression<-Npts` sets another threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.records import ItemRecord
from bench.stats import paired_compare
from bench.store import RunInfo

METRIC = "regression"
DEFAULT_GATE = f"{METRIC}<0pts"


@dataclass(frozen=True)
class RegressionCheck:
    """BASE against NEW on the regression items both scored."""

    area: str
    n: int  # paired regression items
    came_back: list[str]  # item ids right in BASE, wrong in NEW
    fixed: list[str]  # wrong in BASE, right in NEW
    base_score: float
    new_score: float
    diff_points: float
    ci95_points: tuple[float, float]
    p_value: float  # McNemar's exact (two-sided binomial) p

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05

    @property
    def failed(self) -> bool:
        """More complaints came back than were fixed, significantly."""
        return len(self.came_back) > len(self.fixed) and self.significant

    def sentence(self) -> str:
        """What happened on the regression items, with McNemar's p."""
        back = len(self.came_back)
        first = f" (first: {', '.join(self.came_back[:3])})" if back else ""
        return (
            f"{back} of {self.n} regression items fixed in BASE came back in NEW{first}, {len(self.fixed)} "
            f"went the other way; McNemar exact p = {self.p_value:.3g} "
            f"({'significant' if self.significant else 'not significant'} at 5%)"
        )


def regression_area(base: RunInfo, new: RunInfo) -> str | None:
    """The regression area the runs recorded (NEW's first); None when neither suite has one."""
    return new.accuracy_profile.regression_area or base.accuracy_profile.regression_area


def check_regression(
    area: str, base_items: Sequence[ItemRecord], new_items: Sequence[ItemRecord]
) -> RegressionCheck | None:
    """The paired check on `area`'s items (first repeats); None when the runs share no scored one."""

    def verdicts(items: Sequence[ItemRecord]) -> dict[str, bool]:
        return {
            i.item_id: bool(i.correct)
            for i in items
            if i.area == area and i.repeat == 0 and i.status == "ok" and i.correct is not None
        }

    a, b = verdicts(base_items), verdicts(new_items)
    common = sorted(set(a) & set(b))
    if not common:
        return None
    c = paired_compare({i: a[i] for i in common}, {i: b[i] for i in common}, resamples=0)
    return RegressionCheck(
        area=area,
        n=c.n,
        came_back=[i for i in common if a[i] and not b[i]],
        fixed=[i for i in common if b[i] and not a[i]],
        base_score=c.a_score,
        new_score=c.b_score,
        diff_points=c.diff_points,
        ci95_points=c.ci95_points,
        p_value=c.p_value,
    )
