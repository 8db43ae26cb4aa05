"""What the routing analyses read: each option's outcome on each item, and the items' prompts.

These are plain typed values built by `bench.whatif.source` from stored accuracy runs (or by tests by
hand); the analyses never read the store themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.accuracy.logprobs import LogprobSummary


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """One option's answer to one item: right or wrong, what it cost (USD) and took (ms), and the inputs of
    the cascade signals (its logprob summary, every repeat's answer, its format validity)."""

    item_id: str
    area: str
    correct: bool
    cost_usd: float | None = None
    latency_ms: float | None = None
    output: str = ""
    logprobs: LogprobSummary | None = None
    repeat_outputs: tuple[str, ...] = ()  # every stored repeat's answer, repeat 0 first
    format_valid: bool | None = None  # None: the scorer has no notion of format (exact, keyword)


@dataclass(frozen=True)
class Option:
    """One stored accuracy run: a model (or endpoint) answering the shared items."""

    name: str  # what tables show, e.g. the target name
    run_id: str
    items: Mapping[str, ItemOutcome]


@dataclass(frozen=True)
class RouteData:
    """Two or more options on the same items, with each item's prompt text where the suite is at hand."""

    options: tuple[Option, ...]
    prompts: Mapping[str, str] = field(default_factory=dict)  # item id → prompt text (router signals)
    notes: tuple[str, ...] = ()  # what the reader dropped or could not find, for the report

    def shared_ids(self) -> list[str]:
        """Ids every option answered (scored right or wrong), sorted."""
        if not self.options:
            return []
        common = set(self.options[0].items)
        for option in self.options[1:]:
            common &= set(option.items)
        return sorted(common)

    def area(self, item_id: str) -> str:
        """The item's area (as the first option stored it)."""
        return self.options[0].items[item_id].area

    def option(self, key: str) -> Option:
        """The option named `key`, or whose run id starts with it; KeyError when none or several match."""
        found = [o for o in self.options if o.name == key] or [
            o for o in self.options if o.run_id.startswith(key.lower())
        ]
        if len(found) != 1:
            names = ", ".join(f"{o.name} ({o.run_id[:8]})" for o in self.options)
            raise KeyError(f"{key!r} names {'no' if not found else 'several'} options; options: {names}")
        return found[0]


def ids_by_area(data: RouteData, ids: Sequence[str]) -> dict[str, list[str]]:
    """`ids` grouped by area, each group in the order given."""
    groups: dict[str, list[str]] = {}
    for item_id in ids:
        groups.setdefault(data.area(item_id), []).append(item_id)
    return groups


@dataclass(frozen=True, slots=True)
class JudgedAnswer:
    """A judge's verdict on the cheap model's answer to one item (the cascade's judge signal)."""

    passed: bool
    score: float  # 0..1
    cost_usd: float | None  # the judge call's own cost; None when its price is unknown
    latency_ms: float = 0.0  # how long the call took
