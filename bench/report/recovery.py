"""Quantization recovery per area, read from stored `llmbench.recovery/1` documents (made by
`llmbench bench recovery`). The reader is tolerant: it needs, per suite, a map of areas with a recovery
(variant ÷ base) and, where given, its 95% CI; suites may be a mapping or a list of {suite: NAME, ...}.
A document it cannot read is reported as such, never drawn as zeros.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.store import Document

SCHEMA = "llmbench.recovery/1"


@dataclass(frozen=True, slots=True)
class RecoveryArea:
    """Recovery of one area of one suite for one variant (1.0 = the base's accuracy)."""

    variant: str
    suite: str
    area: str
    recovery: float
    ci95: tuple[float, float] | None
    flagged: bool


@dataclass
class Recovery:
    """Every readable area of every stored recovery document, and what could not be read."""

    areas: list[RecoveryArea] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)  # id, variant, size and speed ratios
    unreadable: list[str] = field(default_factory=list)

    @property
    def empty_reason(self) -> str | None:
        if self.areas:
            return None
        if self.unreadable:
            return "recovery reports stored but not readable: " + "; ".join(self.unreadable)
        return "no recovery report stored"

    def to_json(self) -> dict[str, Any]:
        return {
            "areas": [
                {"variant": a.variant, "suite": a.suite, "area": a.area, "recovery": a.recovery,
                 "ci95": None if a.ci95 is None else list(a.ci95), "flagged": a.flagged}
                for a in self.areas
            ],
            "documents": self.documents,
            "na": self.empty_reason,
        }  # fmt: skip


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ci(raw: dict[str, Any]) -> tuple[float, float] | None:
    ci = raw.get("ci95") or raw.get("ci") or raw.get("recovery_ci95")
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(_num(v) is not None for v in ci):
        return (float(ci[0]), float(ci[1]))
    return None


def _suites(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    raw = body.get("suites")
    if isinstance(raw, dict):
        return [(str(k), v) for k, v in raw.items() if isinstance(v, dict)]
    if isinstance(raw, list):
        return [(str(v.get("suite") or v.get("name") or "?"), v) for v in raw if isinstance(v, dict)]
    if isinstance(body.get("areas"), dict):
        return [(str(body.get("suite") or "?"), body)]
    return []


def read_recovery(docs: Iterable[Document]) -> Recovery:
    """Per-area recovery from documents, newest first; one document per variant (the newest)."""
    out = Recovery()
    seen: set[str] = set()
    for doc in docs:
        body = doc.body
        side = body.get("variant")
        variant = str(side.get("name") if isinstance(side, dict) else side or doc.subject or "?")
        if variant in seen:
            continue
        seen.add(variant)
        threshold = _num(body.get("threshold")) or 0.95
        found = 0
        for suite, data in _suites(body):
            areas = data.get("areas")
            if not isinstance(areas, dict):
                continue
            for area, raw in areas.items():
                value = raw if _num(raw) is not None else (raw or {}).get("recovery")
                # llmbench.recovery/1 writes {"value": x, "ci95": [lo, hi]}, or {"value": null, "reason"}.
                figure = value if isinstance(value, dict) else None
                rec = _num(figure.get("value") if figure is not None else value)
                if rec is None:
                    continue
                ci = _ci(figure) if figure is not None else (_ci(raw) if isinstance(raw, dict) else None)
                flagged = (
                    bool(raw.get("flagged"))
                    if isinstance(raw, dict) and "flagged" in raw
                    else rec < threshold
                )
                out.areas.append(RecoveryArea(variant, suite, str(area), rec, ci, flagged))
                found += 1
        if found:
            speed = body.get("speed_ratios") or body.get("speed")
            out.documents.append(
                {"id": doc.id, "variant": variant, "base": body.get("base"),
                 "size_ratio": body.get("size_ratio"), "speed_ratios": speed, "threshold": threshold}
            )  # fmt: skip
        else:
            out.unreadable.append(f"{doc.id[:8]} ({variant}): no per-area recovery found under 'suites'")
    return out
