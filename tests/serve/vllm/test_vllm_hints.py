# ruff: noqa: E501  (log excerpts are kept as vLLM prints them)
"""Known vLLM start failures map to a hint (log excerpts as vLLM, torch and huggingface_hub print them)."""

from __future__ import annotations

import pytest

from serve.hints import hint_for, match_hint

OOM = """\
(EngineCore_DP0 pid=4121) ERROR 11-20 10:01:12 [core.py:708] EngineCore failed to start.
(EngineCore_DP0 pid=4121) ERROR 11-20 10:01:12 [core.py:708] torch.OutOfMemoryError: CUDA out of memory. Tried to \
allocate 1.96 GiB. GPU 0 has a total capacity of 23.55 GiB of which 1.02 GiB is free. Including non-PyTorch memory, \
this process has 22.51 GiB memory in use.
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""
KV = """\
(EngineCore_DP0 pid=93) ERROR 11-20 10:03:40 [core.py:708] ValueError: To serve at least one request with the \
model's max seq len (131072), (16.00 GiB KV cache is needed, which is larger than the available KV cache memory \
(9.41 GiB). Based on the available memory, the estimated maximum model length is 77072. Try increasing \
`gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or decreasing `max_model_len` when \
initializing the engine.
"""
NO_GPU = """\
  File "/work/main/.venv-vllm/lib/python3.11/site-packages/vllm/config/device.py", line 55, in __post_init__
    raise RuntimeError(
RuntimeError: Failed to infer device type, please set the environment variable `VLLM_LOGGING_LEVEL=DEBUG` to turn \
on verbose logging to help debug the issue.
"""
NO_CUDA = "RuntimeError: No CUDA GPUs are available\n"
QUANT_GPU = (
    "ValueError: The quantization method fp8 is not supported for the current GPU. Minimum capability: 89. "
    "Current capability: 80.\n"
)
QUANT_CPU = "ValueError: bitsandbytes quantization is currently not supported in cpu.\n"
GATED = """\
huggingface_hub.errors.GatedRepoError: 401 Client Error. (Request ID: Root=1-6733c0a1-1b2c)

Cannot access gated repo for url https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/resolve/main/config.json.
Access to model meta-llama/Llama-3.1-8B-Instruct is restricted. You must have access to it and be authenticated to \
access it. Please log in.
"""


@pytest.mark.parametrize(
    ("log", "name", "words"),
    [
        (OOM, "out-of-memory", "quantized variant"),
        (KV, "kv-cache-too-small", "--max-model-len"),
        (NO_GPU, "no-gpu", "nvidia-smi"),
        (NO_CUDA, "no-gpu", "--backend hf"),
        (QUANT_GPU, "quantization-unsupported", "variant"),
        (QUANT_CPU, "quantization-unsupported", "variant"),
        (GATED, "gated", "HF_TOKEN"),
    ],
)
def test_known_failures(log: str, name: str, words: str) -> None:
    found = match_hint(log)
    assert found is not None and found.name == name
    assert words in hint_for(log)


def test_unknown_log_has_no_hint() -> None:
    assert hint_for("INFO: Started server process [42]\nINFO: Waiting for application startup.") == ""
