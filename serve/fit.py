"""Will the model fit? Weight bytes from safetensors headers, KV-cache bytes per token from config.json."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serve.gpus import Gpu
from serve.vllm.config import VllmSpec

GIB = 1024**3
# CUDA context, activations and sampler buffers beside weights and KV cache: a rough allowance per device.
OVERHEAD_BYTES_PER_DEVICE = 1 * GIB

DTYPE_BYTES: dict[str, float] = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I64": 8, "I32": 4,
    "I16": 2, "I8": 1, "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F4": 0.5, "F6_E2M3": 0.75,
    "F6_E3M2": 0.75,
}  # fmt: skip
_TORCH_DTYPE_BYTES = {
    "float32": 4, "float": 4, "fp32": 4, "float16": 2, "half": 2, "fp16": 2, "bfloat16": 2, "bf16": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "float8_e4m3fn": 1,
}  # fmt: skip


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of one .safetensors file (8-byte little-endian length, then JSON)."""
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header: dict[str, Any] = json.loads(fh.read(length))
    return header


def tensor_bytes(header: Mapping[str, Any]) -> int:
    """Bytes of all tensors described by a safetensors header."""
    total = 0.0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        total += DTYPE_BYTES.get(info["dtype"], 2) * math.prod(info["shape"])
    return int(total)


def weights_bytes(folder: Path) -> int:
    """Weight bytes of a local checkpoint from its safetensors headers (0 when it has none)."""
    return sum(tensor_bytes(safetensors_header(p)) for p in sorted(folder.glob("*.safetensors")))


def bytes_from_param_counts(counts: Mapping[str, int]) -> int:
    """Weight bytes from a {safetensors dtype: parameter count} mapping (the hub's safetensors metadata)."""
    return int(sum(DTYPE_BYTES.get(dtype, 2) * n for dtype, n in counts.items()))


def dtype_bytes(name: str | None, default: int = 2) -> int:
    """Bytes per element of a torch/vLLM dtype name ('auto' and unknown names give the default)."""
    if not name:
        return default
    return int(_TORCH_DTYPE_BYTES.get(name.lower().removeprefix("torch."), default))


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language-model part of a config (multimodal configs nest it under text_config)."""
    inner = config.get("text_config")
    return inner if isinstance(inner, Mapping) else config


def kv_bytes_per_token(config: Mapping[str, Any], kv_dtype_bytes: int) -> int:
    """KV-cache bytes per token = 2 (K and V) × layers × kv_heads × head_dim × dtype bytes."""
    cfg = text_config(config)
    layers = int(cfg["num_hidden_layers"])
    heads = int(cfg["num_attention_heads"])
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or cfg["hidden_size"] // heads)
    return 2 * layers * kv_heads * head_dim * kv_dtype_bytes


@dataclass(frozen=True)
class MemoryBudget:
    """Memory the engine may use: on GPU util × total per device, on CPU the KV space and available RAM."""

    device: str  # "cuda" or "cpu"
    devices: int
    total_bytes: int  # what the engine may use for weights + KV + overhead (GPU) or for weights (CPU)
    free_bytes: int  # free memory now on the chosen devices (GPU) or available RAM (CPU)
    kv_space_bytes: int | None = None  # CPU only: VLLM_CPU_KVCACHE_SPACE


@dataclass(frozen=True)
class FitReport:
    """The numbers behind the fit verdict, and the ways out when it does not fit."""

    fits: bool
    weight_bytes: int
    weight_source: str
    kv_bytes_per_token: int
    max_model_len: int
    kv_space_bytes: int
    max_concurrent_seqs: int
    budget: MemoryBudget
    ways_out: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable lines (the caller prints them)."""
        b = self.budget
        where = f"{b.devices} GPU(s)" if b.device == "cuda" else "CPU"
        out = [
            f"weights: {_gib(self.weight_bytes)} ({self.weight_source})",
            f"KV cache: {self.kv_bytes_per_token / 1024:.1f} KiB/token; one {self.max_model_len}-token "
            f"sequence needs {_gib(self.kv_bytes_per_token * self.max_model_len)}",
        ]
        if b.device == "cuda":
            out.append(
                f"memory on {where}: {_gib(b.total_bytes)} usable (gpu-memory-utilization × total), "
                f"{_gib(b.free_bytes)} free now; left for KV cache: {_gib(self.kv_space_bytes)}"
            )
        else:
            out.append(
                f"memory on {where}: KV cache space {_gib(self.kv_space_bytes)} (VLLM_CPU_KVCACHE_SPACE), "
                f"{_gib(b.free_bytes)} RAM available"
            )
        out.append(f"max concurrent sequences at {self.max_model_len} tokens: {self.max_concurrent_seqs}")
        out.extend(f"note: {n}" for n in self.notes)
        if not self.fits:
            out.extend(f"way out: {w}" for w in self.ways_out)
        return out


def check_fit(
    *,
    weight_bytes: int,
    weight_source: str,
    config: Mapping[str, Any],
    max_model_len: int,
    kv_dtype_bytes: int,
    budget: MemoryBudget,
    variants: Sequence[str] = (),
    world_size: int = 1,
) -> FitReport:
    """Compare weights + one full-length sequence of KV cache with the memory budget."""
    per_token = kv_bytes_per_token(config, kv_dtype_bytes)
    need_one = per_token * max_model_len
    notes: list[str] = []
    if budget.device == "cuda":
        kv_space = budget.total_bytes - weight_bytes - OVERHEAD_BYTES_PER_DEVICE * budget.devices
        weights_fit = weight_bytes + OVERHEAD_BYTES_PER_DEVICE * budget.devices <= budget.total_bytes
        if budget.free_bytes < budget.total_bytes:
            notes.append(
                f"only {_gib(budget.free_bytes)} is free now but vLLM reserves {_gib(budget.total_bytes)}: "
                "other processes use the GPU; lower --gpu-memory-utilization or free the GPU"
            )
    else:
        kv_space = budget.kv_space_bytes or 0
        weights_fit = weight_bytes + kv_space <= budget.free_bytes
    kv_space = max(0, kv_space)
    max_seqs = kv_space // need_one if need_one else 0
    fits = weights_fit and max_seqs >= 1
    ways: list[str] = []
    if not fits:
        if variants:
            ways.append(f"a quantized variant: {', '.join(variants)}")
        fitting_len = kv_space // per_token if per_token else 0
        if weights_fit and fitting_len > 0:
            ways.append(f"a shorter --max-model-len (at most about {fitting_len} tokens fit)")
        if budget.device == "cuda":
            per_device = budget.total_bytes / max(1, budget.devices)
            needed = weight_bytes + need_one + OVERHEAD_BYTES_PER_DEVICE * budget.devices
            tp = max(world_size + 1, math.ceil(needed / per_device)) if per_device else world_size + 1
            ways.append(f"more GPUs: --tp {_pow2(tp)}")
        else:
            ways.append("more KV cache space (VLLM_CPU_KVCACHE_SPACE, GiB) or more RAM")
    return FitReport(
        fits=fits,
        weight_bytes=weight_bytes,
        weight_source=weight_source,
        kv_bytes_per_token=per_token,
        max_model_len=max_model_len,
        kv_space_bytes=kv_space,
        max_concurrent_seqs=int(max_seqs),
        budget=budget,
        ways_out=ways,
        notes=notes,
    )


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


# Bytes per parameter as served, by quantization format (scales and zero points included, roughly): the one
# table. None is the 16-bit served dtype. bench.serving.fit_table reads it for registry variants; the vLLM
# check below reads it for on-the-fly quantization of a 16-bit checkpoint.
BYTES_PER_PARAM: dict[str | None, float] = {
    None: 2.0, "fp8": 1.02, "w8a8": 1.02, "bnb-int8": 1.02, "w4a16": 0.53, "awq": 0.53, "gptq": 0.53,
    "bnb-nf4": 0.56,
}  # fmt: skip
# vLLM's `--quantization` quantizing a 16-bit checkpoint as it loads (bitsandbytes in flight is 4-bit NF4).
_ON_THE_FLY = {"fp8": "fp8", "bitsandbytes": "bnb-nf4"}


def on_the_fly_scale(quantization: str | None) -> float:
    """Served weight bytes over the 16-bit checkpoint's, for vLLM quantizing it in flight (1.0: none)."""
    method = _ON_THE_FLY.get(quantization or "")
    return 1.0 if method is None else BYTES_PER_PARAM[method] / BYTES_PER_PARAM[None]


def check_vllm_fit(
    spec: VllmSpec,
    *,
    model_dir: Path | None,
    gpus: Sequence[Gpu],
    variants: Sequence[str] = (),
    ram_available: int | None = None,
    hub_inputs: Callable[[str, str | None], tuple[int, dict[str, Any]]] | None = None,
) -> FitReport | str:
    """Fit report for a vLLM spec, or a note saying why the check was skipped."""
    if model_dir is not None and (model_dir / "config.json").is_file():
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        weights = weights_bytes(model_dir)
        source = "safetensors headers"
        if not weights:
            return f"fit check skipped: no *.safetensors in {model_dir}"
    elif hub_inputs is not None:
        try:
            weights, config = hub_inputs(spec.model, spec.revision)
        except Exception as exc:  # the hub is optional here: any failure only skips the check
            return (
                f"fit check skipped: {spec.model} is not pulled and the hub metadata is unavailable ({exc})"
            )
        source = "hub safetensors metadata"
    else:
        return f"fit check skipped: {spec.model} is not pulled (offline); run `llmbench pull` for the check"
    scale = on_the_fly_scale(spec.quantization) if not _prequantized(config) else 1.0
    if scale != 1.0:
        weights = int(weights * scale)
        source += f", × {scale} for on-the-fly {spec.quantization}"
    cfg = text_config(config)
    model_dtype = spec.engine_args.get("dtype") or spec.dtype or cfg.get("torch_dtype") or cfg.get("dtype")
    kv_dtype = str(spec.engine_args.get("kv-cache-dtype") or spec.kv_cache_dtype or "auto")
    kv_bytes = 1 if kv_dtype.startswith("fp8") else dtype_bytes(str(model_dtype) if model_dtype else None)
    max_len = int(
        str(spec.engine_args.get("max-model-len") or spec.max_model_len or cfg.get("max_position_embeddings"))
    )
    util = float(str(spec.engine_args.get("gpu-memory-utilization", spec.gpu_memory_utilization)))
    if spec.device == "cpu":
        budget = MemoryBudget(
            device="cpu",
            devices=1,
            total_bytes=ram_available or 0,
            free_bytes=ram_available or 0,
            kv_space_bytes=spec.cpu_kvcache_space_gib * GIB,
        )
    else:
        if spec.nodes > 1:
            return "fit check skipped: GPUs on other nodes are not visible from here (Ray places the workers)"
        if not gpus:
            return "fit check skipped: no GPU memory figures (nvidia-smi found no GPU)"
        budget = MemoryBudget(
            device="cuda",
            devices=len(gpus),
            total_bytes=int(sum(g.total_bytes for g in gpus) * util),
            free_bytes=sum(g.free_bytes for g in gpus),
        )
    return check_fit(
        weight_bytes=weights,
        weight_source=source,
        config=config,
        max_model_len=max_len,
        kv_dtype_bytes=kv_bytes,
        budget=budget,
        variants=variants,
        world_size=spec.world_size,
    )


def _prequantized(config: Mapping[str, Any]) -> bool:
    return "quantization_config" in config or "compression_config" in config


def hub_fit_inputs(repo: str, revision: str | None, token: str | None = None) -> tuple[int, dict[str, Any]]:
    """Weight bytes (hub safetensors metadata) and config.json of an un-pulled hub model (needs network)."""
    from huggingface_hub import HfApi, hf_hub_download

    meta = HfApi().get_safetensors_metadata(repo, revision=revision, token=token)
    counts: dict[str, int] = {}
    for file_meta in meta.files_metadata.values():
        for dtype, n in file_meta.parameter_count.items():
            counts[dtype] = counts.get(dtype, 0) + n
    path = hf_hub_download(repo, "config.json", revision=revision, token=token)
    config: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return bytes_from_param_counts(counts), config
