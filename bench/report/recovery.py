"""Quantization recovery per area, read from stored `llmbench.recovery/1` documents (made by
`llmbench bench recovery` and a sweep's variants) through their one typed model, bench.documents.RecoveryDoc.
A document it cannot read is reported as such, with the field at fault, never drawn as zeros.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bench.documents import RECOVERY_SCHEMA as SCHEMA
from bench.documents import RecoveryDoc
from bench.store import Document

__all__ = ["SCHEMA", "Recovery", "RecoveryArea", "RecoveryDocument", "read_recovery"]


@dataclass(frozen=True, slots=True)
class RecoveryArea:
    """Recovery of one area of one suite for one variant (1.0 = the base's accuracy)."""

    variant: str
    suite: str
    area: str
    recovery: float
    ci95: tuple[float, float] | None
    flagged: bool


@dataclass(frozen=True, slots=True)
class RecoveryDocument:
    """One stored recovery document the report read: its store id, its variant and the document."""

    id: str
    variant: str
    doc: RecoveryDoc

    def to_json(self) -> dict[str, Any]:
        d = self.doc
        return {"id": self.id, "variant": self.variant, "base": d.base.to_json(),
                "size_ratio": d.size_ratio.to_json(), "speed_ratios": d.speed.to_json(),
                "threshold": d.threshold}  # fmt: skip


@dataclass
class Recovery:
    """Every readable area of every stored recovery document, and what could not be read."""

    areas: list[RecoveryArea] = field(default_factory=list)
    documents: list[RecoveryDocument] = field(default_factory=list)
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
            "documents": [d.to_json() for d in self.documents],
            "na": self.empty_reason,
        }  # fmt: skip


def read_recovery(docs: Iterable[Document]) -> Recovery:
    """Per-area recovery from documents, newest first; one document per variant (the newest)."""
    out = Recovery()
    seen: set[str] = set()
    for doc in docs:
        try:
            body = RecoveryDoc.from_json(doc.body)
        except ValidationError as exc:
            errors = exc.errors()
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "?"
            what = f"{errors[0]['msg']} at {where}" if errors else str(exc)
            out.unreadable.append(f"{doc.id[:8]} ({doc.subject or '?'}): not an {SCHEMA} document: {what}")
            continue
        variant = body.variant.name
        if variant in seen:
            continue
        seen.add(variant)
        found = 0
        for suite, data in body.suites.items():
            for area, a in data.areas.items():
                rec = a.recovery
                if rec.value is None:
                    continue
                # An unbounded upper end (the base scored 0 on a resample) is drawn without an interval.
                hi = rec.ci95[1] if rec.ci95 is not None else None
                ci = (rec.ci95[0], hi) if rec.ci95 is not None and hi is not None else None
                out.areas.append(RecoveryArea(variant, suite, area, rec.value, ci, a.flagged))
                found += 1
        if found:
            out.documents.append(RecoveryDocument(doc.id, variant, body))
        else:
            out.unreadable.append(f"{doc.id[:8]} ({variant}): no area was scored on both sides")
    return out
