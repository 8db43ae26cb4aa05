"""Recovery of a quantized variant: accuracy per suite and area with paired CIs, size and speed ratios.

`run_recovery(RecoverySpec, registry, settings, serve)` is what `llmbench bench recovery` and
`llmbench quantize --evaluate` call; it stores the `llmbench.recovery/1` document in the results store.
"""

from bench.recovery.driver import RecoveryResult, Served, ServeFn, run_recovery
from bench.recovery.report import SCHEMA, recovery_document, saturation_level
from bench.recovery.spec import DEFAULT_THRESHOLD, RecoverySpec

__all__ = [
    "DEFAULT_THRESHOLD",
    "SCHEMA",
    "RecoveryResult",
    "RecoverySpec",
    "ServeFn",
    "Served",
    "recovery_document",
    "run_recovery",
    "saturation_level",
]
