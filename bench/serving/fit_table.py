"""`llmbench models fit`: a model and every variant of it side by side on a hardware profile.

Per variant: weight memory, KV cache per token and per sequence at the served context, the most sequences
that fit at once, and whether the asked concurrency fits. Weights come, in this order, from the variant's own
checkpoint (safetensors headers), the hub's safetensors metadata (online only), or an estimate from the
base's parameter count and the method's bits per weight, and the row says which. A figure that cannot be had
is None with the reason (shown as n/a), never 0. The arithmetic is serve.fit.check_fit's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.registry import Hardware, LocalModel, Registry
from bench.serving.plan import local_model_dir
from bench.settings import Settings
from serve.fit import (
    BYTES_PER_PARAM,
    DTYPE_BYTES,
    GIB,
    OVERHEAD_BYTES_PER_DEVICE,
    MemoryBudget,
    check_fit,
    dtype_bytes,
    kv_bytes_per_token,
    safetensors_header,
)

HubInputs = Callable[[str, str | None], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class FitRow:
    """One model or variant on the profile (bytes; None = not known, `reason` says why)."""

    label: str
    entry: str
    method: str | None
    weight_bytes: int | None
    weight_source: str
    kv_bytes_per_token: int | None
    kv_bytes_per_seq: int | None
    max_seqs: int | None
    fits: bool | None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FitTable:
    """Every row, and the profile and serving settings they were computed for."""

    hardware: str
    profile: Hardware
    usable_bytes: int  # gpu-memory-utilization × memory of all GPUs
    max_model_len: int
    concurrency: int
    gpu_memory_utilization: float
    rows: list[FitRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "llmbench.fit/1",
            "hardware": self.hardware,
            "gpu": self.profile.gpu,
            "gpus": self.profile.count,
            "gpu_memory_gib": self.profile.gpu_memory_gib,
            "usable_bytes": self.usable_bytes,
            "max_model_len": self.max_model_len,
            "concurrency": self.concurrency,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "rows": [r.to_json() for r in self.rows],
        }


def served_weight_bytes(folder: Path, quantized: bool) -> int:
    """Weight bytes as vLLM holds them: 32-bit tensors of an unquantized checkpoint load as 16-bit."""
    total = 0.0
    for path in sorted(folder.glob("*.safetensors")):
        for name, info in safetensors_header(path).items():
            if name == "__metadata__":
                continue
            size = DTYPE_BYTES.get(info["dtype"], 2)
            if not quantized and info["dtype"] in ("F32", "F64"):
                size = 2
            total += size * math.prod(info["shape"])
    return int(total)


def parameter_count(folder: Path) -> int:
    """Elements of every tensor in the folder's safetensors files."""
    return sum(
        math.prod(info["shape"])
        for path in folder.glob("*.safetensors")
        for name, info in safetensors_header(path).items()
        if name != "__metadata__"
    )


def _config(folder: Path | None) -> dict[str, Any] | None:
    if folder is None:
        return None
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fit_table(
    registry: Registry,
    settings: Settings,
    name: str,
    hardware: str,
    *,
    max_model_len: int | None = None,
    concurrency: int = 1,
    gpu_memory_utilization: float = 0.9,
    hub: HubInputs | None = None,
) -> FitTable:
    """The fit of NAME (or its base, for NAME:VARIANT) and all its variants on the hardware profile."""
    kind, profile = registry.get(hardware)
    if not isinstance(profile, Hardware):
        known = ", ".join(registry.names("hardware"))
        raise UsageError(f"{hardware} is a {kind} entry, not a hardware profile ({known})", flag="--hardware")
    resolved, entry = registry.local(name)
    base_name = entry.derived_from or resolved
    base = registry.data.local[base_name]
    length = max_model_len or _served_len(base)
    if profile.gpu_memory_gib is not None:
        usable = int(profile.count * profile.gpu_memory_gib * GIB * gpu_memory_utilization)
        budget = MemoryBudget(device="cuda", devices=profile.count, total_bytes=usable, free_bytes=usable)
    elif profile.memory_gib is not None:  # a CPU-only profile: weights and KV cache live in host memory
        usable = int(profile.memory_gib * GIB * gpu_memory_utilization)
        budget = MemoryBudget(device="cpu", devices=1, total_bytes=usable, free_bytes=usable)
    else:
        raise UsageError(f"hardware profile {hardware} states no memory size", flag="--hardware")
    base_folder = local_model_dir(settings, base_name, base)
    base_facts = _facts(base_name, base, base_folder, hub)
    rows = []
    for entry_name in [base_name, *registry.variants(base_name)]:
        e = registry.data.local[entry_name]
        label = base_name if entry_name == base_name else registry.resolve(entry_name).label
        folder = local_model_dir(settings, entry_name, e)
        own = _facts(entry_name, e, folder, hub) if entry_name != base_name else base_facts
        rows.append(_row(label, entry_name, e, own, base_facts, budget, length, concurrency, profile.count))
    return FitTable(hardware, profile, usable, length, concurrency, gpu_memory_utilization, rows)


def _served_len(entry: LocalModel) -> int:
    value = entry.vllm_args.get("max-model-len")
    return int(str(value)) if value is not None else entry.context.served


@dataclass(frozen=True)
class _Facts:
    weights: int | None
    source: str
    config: Mapping[str, Any] | None
    params: int | None


def _facts(name: str, entry: LocalModel, folder: Path | None, hub: HubInputs | None) -> _Facts:
    quantized = entry.quantization is not None
    config = _config(folder)
    if folder is not None and config is not None and any(folder.glob("*.safetensors")):
        return _Facts(served_weight_bytes(folder, quantized), "checkpoint", config, parameter_count(folder))
    if (
        hub is not None
        and entry.repo is not None
        and (entry.quantization is None or entry.quantization.source == "hub")
    ):
        try:
            weights, config = hub(entry.repo, entry.revision)
            return _Facts(weights, "hub metadata", config, None)
        except Exception as exc:  # the hub is optional: any failure only means "not known here"
            return _Facts(None, f"hub metadata unavailable ({type(exc).__name__})", None, None)
    where = "not built" if (entry.builtin or entry.quantization) else "not pulled"
    return _Facts(None, f"{name} is {where} here", config, None)


def _row(
    label: str,
    entry_name: str,
    entry: LocalModel,
    own: _Facts,
    base: _Facts,
    budget: MemoryBudget,
    length: int,
    concurrency: int,
    gpus: int,
) -> FitRow:
    method = entry.quantization.method if entry.quantization else None
    weights, source = own.weights, own.source
    params = base.params or (int(entry.params_b * 1e9) if entry.params_b else None)
    if weights is None and params is not None:
        per = BYTES_PER_PARAM.get(method, 2.0)
        weights = int(params * per)
        source = f"estimate: {'base parameters' if base.params else 'params_b'} × {per} B"
    config = own.config or base.config
    if config is None:
        # Weights alone over the budget do not fit whatever the KV cache: that much is known.
        over = weights is not None and weights + OVERHEAD_BYTES_PER_DEVICE * gpus > budget.total_bytes
        return FitRow(label, entry_name, method, weights, source, None, None, 0 if over else None,
                      False if over else None,
                      reason="no config.json here (pull the model) for the KV-cache size")  # fmt: skip
    kv_dtype = str(entry.vllm_args.get("kv-cache-dtype", "auto"))
    per_token = kv_bytes_per_token(config, 1 if kv_dtype.startswith("fp8") else dtype_bytes("bfloat16"))
    if weights is None:
        return FitRow(label, entry_name, method, None, source, per_token, per_token * length, None, None,
                      reason=f"weights unknown: {source}")  # fmt: skip
    report = check_fit(
        weight_bytes=weights, weight_source=source, config=config, max_model_len=length,
        kv_dtype_bytes=1 if kv_dtype.startswith("fp8") else 2, budget=budget, world_size=gpus,
    )  # fmt: skip
    fits = report.fits and report.max_concurrent_seqs >= concurrency
    return FitRow(label, entry_name, method, weights, source, per_token, per_token * length,
                  report.max_concurrent_seqs, fits)  # fmt: skip
