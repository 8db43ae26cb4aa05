"""The canonical builds of the builtin tiny models, and whether a build matches them.

reference.json (next to this file) holds, per generator, the sha256 of the canonical build and, for
tiny-skills, its exact-match score per area on the held-out questions. A build of the same builder version,
recipe and seed should match both on any x86-64 CPU with AVX2 (serve.tiny.pinned); when it does not, its
accuracy is not the published one, and `llmbench pull` says so, naming what differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REFERENCE_FILE = Path(__file__).with_name("reference.json")
_TOLERANCE = 1e-9  # scores are counts over a fixed number of items: equal or not


@dataclass(frozen=True)
class Reference:
    """The canonical build of one generator: its recipe, sha256, scores and where it was made."""

    generator: str
    seed: int
    builder_version: int
    recipe: str
    sha256: str
    per_area: dict[str, float] = field(default_factory=dict)
    overall: float | None = None
    cpu_capability: str | None = None
    built_on: str | None = None  # the machine the reference was built on, in words


def load_references(path: Path = REFERENCE_FILE) -> dict[str, Reference]:
    """The references by generator name."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: Reference(generator=name, **entry) for name, entry in data["builds"].items()}


@dataclass(frozen=True)
class ReferenceCheck:
    """A build compared with the reference of its generator (same builder version, recipe and seed)."""

    generator: str
    sha256: str
    per_area: dict[str, float]
    cpu_capability: str | None
    reference: Reference | None  # None: no reference for this builder version, recipe or seed
    sha_matches: bool = False
    differing_areas: dict[str, tuple[float | None, float]] = field(default_factory=dict)  # here, reference

    @property
    def matches(self) -> bool:
        """The reference exists and the build is the same (sha256 and every area's score)."""
        return self.reference is not None and self.sha_matches and not self.differing_areas

    def warning_lines(self) -> list[str]:
        """What differs from the reference, one point per line ([] when it matches or has no reference)."""
        ref = self.reference
        if ref is None or self.matches:
            return []
        lines = [
            f"this {self.generator} build differs from the reference build (seed {ref.seed}, builder "
            f"{ref.builder_version}, recipe {ref.recipe}), so its figures are not the published ones:"
        ]
        if not self.sha_matches:
            lines.append(f"sha256 {self.sha256} here, {ref.sha256} in the reference")
        for area, (here, there) in sorted(self.differing_areas.items()):
            shown = "missing" if here is None else f"{here:.3f}"
            lines.append(f"{area}: {shown} here, {there:.3f} in the reference")
        lines.append(
            f"built with torch CPU capability {self.cpu_capability or 'unknown'}; the reference: "
            f"{ref.cpu_capability or 'unknown'}, built on {ref.built_on or 'an unrecorded machine'}"
        )
        return lines


def check_build(
    generator: str,
    *,
    seed: int,
    builder_version: int,
    recipe: str,
    sha256: str,
    scores: dict[str, Any] | None,
    numerics: dict[str, Any] | None,
    references: dict[str, Reference] | None = None,
) -> ReferenceCheck:
    """Compare one build (the fields of its manifest) with the reference of its generator."""
    refs = load_references() if references is None else references
    ref = refs.get(generator)
    per_area = {str(k): float(v) for k, v in ((scores or {}).get("per_area") or {}).items()}
    capability = (numerics or {}).get("cpu_capability")
    if ref is None or (ref.seed, ref.builder_version, ref.recipe) != (seed, builder_version, recipe):
        return ReferenceCheck(generator, sha256, per_area, capability, None)
    differing: dict[str, tuple[float | None, float]] = {}
    for area, expected in ref.per_area.items():
        got = per_area.get(area)
        if got is None or abs(got - expected) > _TOLERANCE:
            differing[area] = (got, expected)
    return ReferenceCheck(generator, sha256, per_area, capability, ref, sha256 == ref.sha256, differing)
