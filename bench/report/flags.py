"""Flags that qualify a run's figures: partial, client-bound, cut off, unfixed length, unknown tokens.

The load driver may store `summary["flags"]` ({kind, detail} objects); older runs do not, so the same
kinds are also derived from the summary's own fields, without duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.store import RunInfo

# Kinds that mark a run visibly in every table (the figures may mislead without them).
SERIOUS = ("partial", "failed", "client_bound", "cut_off", "unfixed_length", "tokens_unknown")


@dataclass(frozen=True, slots=True)
class Flag:
    """One qualification of one run."""

    kind: str
    detail: str
    run_id: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "detail": self.detail, "run_id": self.run_id}


def _derived(info: RunInfo) -> list[tuple[str, str]]:
    s: dict[str, Any] = info.summary or {}
    out: list[tuple[str, str]] = []
    if info.status == "partial":
        out.append(("partial", f"the run stopped early: {info.error or 'no reason stored'}"))
    elif info.status == "failed":
        out.append(("failed", f"the run failed: {info.error or 'no reason stored'}"))
    if info.kind == "load":
        if s.get("client_bound"):
            reasons = "; ".join(s.get("client_bound_reasons") or []) or "the client was the bottleneck"
            out.append(("client_bound", reasons))
        req = s.get("requests") or {}
        if req.get("cancelled"):
            out.append(
                ("cut_off", f"{req['cancelled']} requests cancelled at cool-down: the tail is a lower bound")
            )
        if req.get("failed"):
            errors = ", ".join(f"{k} {v}" for k, v in (req.get("errors") or {}).items())
            out.append(("errors", f"{req['failed']} requests failed ({errors or 'no breakdown'})"))
        if (s.get("tokens") or {}).get("output_incomplete"):
            out.append(("tokens_unknown", "some successful requests have no output token count"))
    else:
        if s.get("failed"):
            out.append(("errors", f"{s['failed']} items failed (neither right nor wrong)"))
    return out


def run_flags(info: RunInfo) -> list[Flag]:
    """Every flag of a run: those it stored, then the derived ones it did not store."""
    flags: list[Flag] = []
    seen: set[str] = set()
    for raw in (info.summary or {}).get("flags") or []:
        if isinstance(raw, dict) and raw.get("kind"):
            kind = str(raw["kind"])
            flags.append(Flag(kind, str(raw.get("detail") or kind), info.id))
            seen.add(kind)
    for kind, detail in _derived(info):
        if kind not in seen:
            flags.append(Flag(kind, detail, info.id))
            seen.add(kind)
    return flags


def is_lower_bound(flags: list[Flag]) -> bool:
    """Whether a run's tail latencies are lower bounds (requests were cut off)."""
    return any(f.kind == "cut_off" for f in flags)
