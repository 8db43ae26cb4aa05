"""What `serve` checks before it starts anything, and what the server will say about itself.

A flag the chosen backend would ignore is refused (never dropped silently); a hub model that is not in any
local cache is refused with the command that pulls it; a quantized checkpoint whose GEMM the vLLM CPU build
here lacks is refused with the alternatives; `serve_info` is the static part of the server's
GET /llmbench/info document (llmbench.serve-info/1), from the registry entry and the model folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, UsageError
from bench.registry import LocalModel
from quantize.methods import METHODS, Method
from serve.vllm.kernels import CpuKernels

FLAGS = {
    "gpus": "--gpus",
    "tp": "--tp",
    "pp": "--pp",
    "nodes": "--nodes",
    "ray_address": "--ray-address",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "max_model_len": "--max-model-len",
    "vllm_python": "--vllm-python",
    "strict": "--strict/--no-strict",
    "workers": "--workers",
}
HF_DTYPES = ("bfloat16", "float32", "auto")  # what the transformers backend loads
HF_ENGINE_ARGS = frozenset({"dtype", "max-model-len"})  # --engine-arg keys the hf backend honours
QUANT_MANIFEST = "llmbench-quant.json"  # written by `llmbench quantize` into the checkpoint folder


def refuse_given(options: Any, names: list[str], why: str) -> None:
    """UsageError for the first of `names` the user gave: a flag a backend would ignore is refused."""
    fields = type(options).model_fields
    for name in names:
        if getattr(options, name) != fields[name].get_default(call_default_factory=True):
            raise UsageError(f"{FLAGS[name]} does not apply: {why}", flag=FLAGS[name])


def check_backend_flags(options: Any, backend: str, device: str) -> None:
    """Refuse what `backend` (on `device`) would not honour."""
    if backend != "mock":
        refuse_given(options, ["strict"], "field strictness is a mock-backend setting")
        refuse_given(options, ["workers"], "worker processes on one port are a mock-backend setting")
    if backend == "mock":
        refuse_given(
            options,
            ["gpus", "tp", "pp", "nodes", "ray_address", "gpu_memory_utilization", "max_model_len"],
            "the mock backend simulates a server and runs no model",
        )
        if options.engine_args:
            raise UsageError("the mock backend runs no engine; drop --engine-arg", flag="--engine-arg")
    elif backend == "hf":
        refuse_given(
            options,
            ["gpus", "tp", "pp", "nodes", "ray_address", "gpu_memory_utilization", "vllm_python"],
            "the transformers backend (--backend hf) runs one process on one device; use --backend vllm",
        )
        unknown = sorted(set(options.engine_args) - HF_ENGINE_ARGS)
        if unknown:
            raise UsageError(
                f"the transformers backend honours only {', '.join(sorted(HF_ENGINE_ARGS))}; "
                f"{', '.join(unknown)} would be ignored (use --backend vllm)",
                flag="--engine-arg",
            )
        dtype = options.engine_args.get("dtype")
        if dtype is not None and dtype not in HF_DTYPES:
            raise UsageError(
                f"dtype={dtype} is not one the transformers backend loads ({', '.join(HF_DTYPES)})",
                flag="--engine-arg",
            )
    elif backend == "vllm" and device == "cpu":
        refuse_given(
            options,
            ["gpu_memory_utilization"],
            "vLLM's CPU build sizes its KV cache from VLLM_CPU_KVCACHE_SPACE, not GPU memory",
        )
        refuse_given(options, ["gpus"], "there is no GPU to choose on the CPU build")
    if (options.nodes or 1) > 1 and not options.ray_address:
        raise UsageError(
            f"serving on {options.nodes} nodes needs an existing Ray cluster: start one (`ray start --head` "
            "on the head node) and pass --ray-address HEAD_IP:6379",
            flag="--ray-address",
        )


def missing_cpu_kernels(name: str, method: Method, kernels: CpuKernels | None) -> ConfigError | None:
    """The error for a `method` checkpoint whose vLLM CPU kernels this build lacks here, else None.

    Nothing is refused when the probe could not run (`kernels` None or unknown): the engine then says.
    """
    missing = kernels.missing(method.vllm_cpu_ops) if kernels is not None else []
    if not missing or kernels is None:
        return None
    others = [m.name for m in METHODS.values() if m.vllm_cpu_ops and not kernels.missing(m.vllm_cpu_ops)]
    fixes = []
    if method.hf_serves:
        fixes.append("serve it with --backend hf")
    if method.vllm_cpu_where:
        fixes.append(f"serve it on a CPU with AVX-512 ({method.vllm_cpu_where})")
    fixes.append("serve it with vLLM on an NVIDIA GPU (--device cuda)")
    if others:
        fixes.append(f"quantize with a method vLLM serves on this CPU ({', '.join(others)})")
    hf = "" if method.hf_serves else f"; the hf backend cannot load {method.format} checkpoints"
    return ConfigError(
        f"{name} is a {method.name} checkpoint ({method.summary}) and vLLM cannot serve it on this CPU: "
        f"{kernels.describe()}, which have no {', '.join(missing)} (the engine would die at its first "
        "forward pass)",
        key=name,
        fix="; or ".join(fixes) + hf,
    )


def hub_cached(repo: str, revision: str | None, cache_dir: Path | None = None) -> bool:
    """Whether the Hugging Face cache holds this repo's config.json at `revision` (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(repo, "config.json", revision=revision, cache_dir=cache_dir)
    return isinstance(found, str)


def not_pulled(name: str, entry: LocalModel, env: Mapping[str, str]) -> ConfigError | None:
    """The error to raise before any engine starts when a hub model is in no local cache, else None."""
    if entry.repo is None or hub_cached(entry.repo, entry.revision):
        return None
    gated = " It is gated: accept its license on the hub and set HF_TOKEN first." if entry.gated else ""
    offline = " (HF_HUB_OFFLINE is set: it cannot be downloaded now)" if env.get("HF_HUB_OFFLINE") else ""
    return ConfigError(
        f"{name} ({entry.repo}@{(entry.revision or 'main')[:12]}) is not pulled{offline}",
        key=name,
        fix=f"run `llmbench pull {name}` first, or pass --pull to pull it before serving.{gated}",
    )


def read_quant_manifest(folder: Path | None) -> dict[str, Any] | None:
    """The `llmbench quantize` manifest in a checkpoint folder, if there is one."""
    if folder is None:
        return None
    try:
        data = json.loads((folder / QUANT_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def serve_info(
    name: str,
    entry: LocalModel | None,
    *,
    backend: str,
    folder: Path | None,
    revision: str | None = None,
    engine_args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The static part of GET /llmbench/info for a registry entry (the server adds the rest)."""
    quant = None
    if entry is not None and entry.quantization is not None:
        quant = {**entry.quantization.model_dump(mode="json"), "manifest": read_quant_manifest(folder)}
    return {
        "backend": backend,
        "accepts_extras": backend != "mock",  # the mock's own strictness overrides this
        "engine": {"name": {"vllm": "vllm", "hf": "transformers", "mock": "llmbench-mock"}[backend]},
        "model": {
            "name": name,
            "repo": None if entry is None else entry.repo,
            "revision": revision or (None if entry is None else entry.revision),
            "derived_from": None if entry is None else entry.derived_from,
            "variant": None if entry is None else entry.variant,
            "builtin": None if entry is None else entry.builtin,
            "folder": None if folder is None else str(folder),
        },
        "quantization": quant,
        "engine_args": dict(engine_args or {}),
    }
