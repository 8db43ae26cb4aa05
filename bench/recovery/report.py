"""The `llmbench.recovery/1` document from scored items and load summaries (pure functions, no I/O).

Recovery is variant score ÷ base score on the items both scored, per suite and per area, with a paired
bootstrap 95% CI (bench.stats.paired_compare; the difference in points has Newcombe's paired score
interval). An area whose recovery is under the threshold is
flagged even when the suite's average passes. A figure that could not be measured is
`{"value": null, "reason": "..."}`, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.accuracy.summary import diff_items
from bench.documents import RECOVERY_SCHEMA as SCHEMA
from bench.documents import (
    RecoveryComparison,
    RecoveryDoc,
    RecoveryFigure,
    RecoverySide,
    RecoverySpeed,
    RecoverySpeedPoint,
    SideCounts,
    SpeedRatios,
    SuiteRecovery,
)
from bench.records import ItemRecord
from bench.stats import PairedComparison

__all__ = ["SCHEMA", "ModelFacts", "SpeedPoint", "SpeedRuns", "SuiteRuns", "recovery_document"]


def na(reason: str) -> RecoveryFigure:
    """A figure that is missing, with the reason."""
    return RecoveryFigure(value=None, reason=reason)


@dataclass(frozen=True)
class ModelFacts:
    """One side of the comparison: what was served, how, and its size (bytes; None when unknown)."""

    label: str  # NAME or NAME:VARIANT as given
    entry: str  # registry entry name (the served model name)
    backend: str
    method: str | None = None  # registry quantization method
    weights_bytes: int | None = None
    disk_bytes: int | None = None
    size_reason: str | None = None  # why the size is unknown
    dtype: str | None = None  # stored dtype (config.json)
    manifest: Mapping[str, Any] | None = None
    served_dtype: str | None = None  # the dtype the engine served it in (its engine arguments)
    calibration: str | None = None  # the calibration set a quantized variant was made with (its manifest)

    def side(self) -> RecoverySide:
        return RecoverySide(
            name=self.label,
            entry=self.entry,
            backend=self.backend,
            method=self.method,
            # What was served: the engine's own dtype (vLLM serves a float32 folder in bfloat16 on CPU);
            # the folder's stored dtype beside it.
            dtype=self.served_dtype or self.dtype,
            dtype_from="engine" if self.served_dtype else ("config.json" if self.dtype else None),
            stored_dtype=self.dtype,
            weights_bytes=self.weights_bytes,
            disk_bytes=self.disk_bytes,
            size_reason=self.size_reason or None,
            manifest=dict(self.manifest) if self.manifest is not None else None,
        )


@dataclass(frozen=True)
class SuiteRuns:
    """Both runs of one suite: their store ids and scored items."""

    base_run: str
    base_items: Sequence[ItemRecord]
    variant_run: str
    variant_items: Sequence[ItemRecord]


@dataclass(frozen=True)
class SpeedPoint:
    """One load run at a fixed concurrency (rates per second, latencies ms; None when not measured)."""

    concurrency: int
    output_tokens_per_s: float | None
    tpot_p50_ms: float | None
    ttft_p50_ms: float | None
    completed: int
    failed: int
    run_id: str | None
    status: str = "complete"

    def doc(self) -> RecoverySpeedPoint:
        return RecoverySpeedPoint(
            concurrency=self.concurrency,
            output_tokens_per_s=self.output_tokens_per_s,
            tpot_p50_ms=self.tpot_p50_ms,
            ttft_p50_ms=self.ttft_p50_ms,
            completed=self.completed,
            failed=self.failed,
            run_id=self.run_id,
            status=self.status,
        )


@dataclass(frozen=True)
class SpeedRuns:
    """Load runs of both sides; `skipped` holds the reason when speed was not measured."""

    base: list[SpeedPoint] = field(default_factory=list)
    variant: list[SpeedPoint] = field(default_factory=list)
    saturation: int | None = None
    saturation_share: float = 0.9
    skipped: str | None = None


def _comparison(c: PairedComparison, threshold: float) -> dict[str, Any]:
    """The fields of a RecoveryComparison (a suite's add its runs and counts)."""
    out: dict[str, Any] = {
        "n": c.n,
        "base_score": c.a_score,
        "variant_score": c.b_score,
        "diff_points": c.diff_points,
        "diff_ci95_points": c.ci95_points,
        "base_only_correct": c.a_only,
        "variant_only_correct": c.b_only,
        "p_value": c.p_value,
    }
    if c.ratio is None or c.ratio_ci95 is None:
        out["recovery"] = na("the base scores 0 here: recovery (variant ÷ base) is undefined")
        out["flagged"] = c.b_score < c.a_score
        return out
    lo, hi = c.ratio_ci95
    out["recovery"] = RecoveryFigure(value=c.ratio, ci95=(lo, None if hi == float("inf") else hi))
    out["flagged"] = c.ratio < threshold
    out["clearly_below"] = hi < threshold  # the whole interval is under the threshold
    return out


def _scored(items: Sequence[ItemRecord]) -> set[str]:
    return {f"{i.item_id}#{i.repeat}" for i in items if i.status == "ok" and i.correct is not None}


def suite_recovery(runs: SuiteRuns, threshold: float) -> SuiteRecovery:
    """Recovery of one suite, overall and per area, each with its paired 95% CI and flag."""
    if not _scored(runs.base_items) & _scored(runs.variant_items):
        failed = {
            "base": sum(i.status == "error" for i in runs.base_items),
            "variant": sum(i.status == "error" for i in runs.variant_items),
        }
        first = next((i.error_text for i in [*runs.base_items, *runs.variant_items] if i.error_text), None)
        reason = (
            f"no item was scored on both sides (failed: base {failed['base']}, variant {failed['variant']}"
        )
        reason += f"; first error: {first})" if first else ")"
        return SuiteRecovery(
            base_run=runs.base_run, variant_run=runs.variant_run, n=0, base_score=None,
            variant_score=None, recovery=na(reason), flagged=True, areas={},
            failed=SideCounts(base=failed["base"], variant=failed["variant"]),
            unpaired=SideCounts(base=len(runs.base_items), variant=len(runs.variant_items)),
        )  # fmt: skip
    diff = diff_items(runs.base_run, runs.base_items, runs.variant_run, runs.variant_items)
    return SuiteRecovery(
        base_run=runs.base_run,
        variant_run=runs.variant_run,
        **_comparison(diff.overall, threshold),
        areas={area: RecoveryComparison(**_comparison(c, threshold)) for area, c in diff.areas.items()},
        failed=SideCounts(base=diff.a_failed, variant=diff.b_failed),
        unpaired=SideCounts(base=diff.only_a, variant=diff.only_b),
    )


def saturation_level(points: Sequence[SpeedPoint], share: float) -> int | None:
    """The lowest concurrency reaching `share` of the best measured output tok/s (None: no figures)."""
    measured = [p for p in points if p.output_tokens_per_s is not None and p.failed == 0]
    if not measured:
        return None
    best = max(p.output_tokens_per_s or 0.0 for p in measured)
    return min(p.concurrency for p in measured if (p.output_tokens_per_s or 0.0) >= share * best)


def _ratio_at(speed: SpeedRuns, concurrency: int | None, what: str) -> RecoveryFigure:
    if concurrency is None:
        return na(f"{what}: the base has no throughput figure to find its saturation point")
    base = next((p for p in speed.base if p.concurrency == concurrency), None)
    var = next((p for p in speed.variant if p.concurrency == concurrency), None)
    for side, point in (("base", base), ("variant", var)):
        if point is None:
            return na(f"{what}: the {side} was not measured at concurrency {concurrency}")
        if point.failed or point.output_tokens_per_s is None:
            return na(
                f"{what}: the {side}'s run at concurrency {concurrency} had {point.failed} failed requests"
            )
    assert base is not None and var is not None
    value = (var.output_tokens_per_s or 0.0) / (base.output_tokens_per_s or 1.0)
    return RecoveryFigure(value=value, concurrency=concurrency)


def speed_section(speed: SpeedRuns) -> RecoverySpeed:
    """Output tok/s of both sides, and the ratio (variant ÷ base) at concurrency 1 and near saturation."""
    if speed.skipped is not None:
        reason = f"speed not measured: {speed.skipped}"
        return RecoverySpeed(
            ratio=SpeedRatios(concurrency_1=na(reason), saturation=na(reason)), skipped=speed.skipped
        )
    return RecoverySpeed(
        metric="output_tokens_per_s",
        saturation_concurrency=speed.saturation,
        saturation_share=speed.saturation_share,
        base=[p.doc() for p in speed.base],
        variant=[p.doc() for p in speed.variant],
        ratio=SpeedRatios(
            concurrency_1=_ratio_at(speed, 1, "concurrency 1"),
            saturation=_ratio_at(speed, speed.saturation, "near saturation"),
        ),
    )


def size_ratio(base: ModelFacts, variant: ModelFacts) -> RecoveryFigure:
    """Variant weight bytes ÷ base weight bytes (safetensors headers)."""
    for side in (base, variant):
        if side.weights_bytes is None:
            return na(f"{side.label}: {side.size_reason or 'no weights to measure'}")
    assert base.weights_bytes is not None and variant.weights_bytes is not None
    if base.weights_bytes <= 0:
        return na(f"{base.label}: no safetensors weights")
    return RecoveryFigure(
        value=variant.weights_bytes / base.weights_bytes, basis="weight bytes (safetensors headers)"
    )


def recovery_document(
    base: ModelFacts,
    variant: ModelFacts,
    suites: Mapping[str, SuiteRuns],
    speed: SpeedRuns,
    *,
    threshold: float,
    notes: Sequence[str] = (),
) -> RecoveryDoc:
    """The whole `llmbench.recovery/1` document."""
    per_suite = {name: suite_recovery(runs, threshold) for name, runs in suites.items()}
    flagged = []
    for name, suite in per_suite.items():
        if suite.flagged:
            flagged.append(name)
        flagged.extend(f"{name}/{area}" for area, a in suite.areas.items() if a.flagged)
    return RecoveryDoc(
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        base=base.side(),
        variant=variant.side(),
        threshold=threshold,
        size_ratio=size_ratio(base, variant),
        suites=per_suite,
        flagged=flagged,
        passed=not flagged,
        speed=speed_section(speed),
        notes=list(notes),
    )
