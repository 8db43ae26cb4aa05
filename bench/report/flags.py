"""Flags that qualify a run's figures: partial, client-bound, cut off, unfixed length, unknown tokens.

A load run's flags are the ones its summary stored ({kind, detail} objects, bench.metrics.summary): one
definition, computed once. The run's own status (partial, failed) and an accuracy run's failed items are
added here, since no summary flag says them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.store import RunInfo

# Kinds that mark a run visibly in every table (the figures may mislead without them).
SERIOUS = (
    "partial",
    "failed",
    "client_bound",
    "cut_off",
    "unfixed_length",
    "tokens_unknown",
    "load_not_reached",
    "not_streamed",
    "hardware_mismatch",
    "shared_cores",
    "cache_not_reported",
)


@dataclass(frozen=True, slots=True)
class Flag:
    """One qualification of one run."""

    kind: str
    detail: str
    run_id: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "detail": self.detail, "run_id": self.run_id}


def _derived(info: RunInfo) -> list[tuple[str, str]]:
    """What the summary's flags do not say: how the run itself ended, and an accuracy run's failed items.

    A load run's flags are computed once, when it is summarized (bench.metrics.summary), and read here as
    stored; they are never derived a second time from the summary's other fields.
    """
    out: list[tuple[str, str]] = []
    if info.status == "partial":
        out.append(("partial", f"the run stopped early: {info.error or 'no reason stored'}"))
    elif info.status == "failed":
        out.append(("failed", f"the run failed: {info.error or 'no reason stored'}"))
    acc = info.accuracy_summary
    if acc is not None and acc.failed:
        out.append(("errors", f"{acc.failed} items failed (neither right nor wrong)"))
    return out


def run_flags(info: RunInfo) -> list[Flag]:
    """Every flag of a run: those it stored, then the derived ones it did not store."""
    flags: list[Flag] = []
    seen: set[str] = set()
    summary = info.load_summary
    for raw in [] if summary is None else summary.flags:
        flags.append(Flag(raw.kind, raw.detail or raw.kind, info.id))
        seen.add(raw.kind)
    for kind, detail in _derived(info):
        if kind not in seen:
            flags.append(Flag(kind, detail, info.id))
            seen.add(kind)
    return flags


def is_lower_bound(flags: list[Flag]) -> bool:
    """Whether a run's tail latencies are lower bounds (requests were cut off)."""
    return any(f.kind == "cut_off" for f in flags)
