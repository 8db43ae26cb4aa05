"""Fit check: weight bytes from safetensors headers, KV bytes per token from config.json, the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serve.fit import (
    GIB,
    MemoryBudget,
    check_fit,
    check_vllm_fit,
    kv_bytes_per_token,
    safetensors_header,
    weights_bytes,
)
from serve.gpus import MIB, Gpu
from serve.vllm.config import VllmSpec

LLAMA_70B = {
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "hidden_size": 8192,
    "max_position_embeddings": 131072,
    "torch_dtype": "bfloat16",
}
WEIGHTS_70B = 70_553_706_496 * 2  # parameters × bf16 bytes
H100 = Gpu(index=0, free_bytes=81_000 * MIB, total_bytes=81_559 * MIB)


def test_tiny_model_weights_from_headers(tiny_random_dir: Path) -> None:
    header = safetensors_header(tiny_random_dir / "model.safetensors")
    params = sum(
        int(v["shape"][0]) * (int(v["shape"][1]) if len(v["shape"]) > 1 else 1)
        for k, v in header.items()
        if k != "__metadata__"
    )
    assert params == 20_452_224
    assert weights_bytes(tiny_random_dir) == params * 2  # bfloat16
    # The header says less than the file size only by the header itself.
    assert (
        0 < (tiny_random_dir / "model.safetensors").stat().st_size - weights_bytes(tiny_random_dir) < 64_000
    )


def test_tiny_model_kv_and_cpu_verdict(tiny_random_dir: Path) -> None:
    config = json.loads((tiny_random_dir / "config.json").read_text())
    assert kv_bytes_per_token(config, 2) == 2 * 6 * 6 * 64 * 2  # 9,216 bytes
    spec = VllmSpec(model=str(tiny_random_dir), served_model_name="t", device="cpu", max_model_len=1024)
    report = check_vllm_fit(spec, model_dir=tiny_random_dir, gpus=[], ram_available=8 * GIB)
    assert not isinstance(report, str)
    assert report.fits
    assert report.max_concurrent_seqs == (2 * GIB) // (9216 * 1024)  # 227 with a 2 GiB KV cache
    assert any("max concurrent sequences at 1024 tokens: 227" in line for line in report.lines())


def test_tiny_model_on_a_tiny_gpu_does_not_fit(tiny_random_dir: Path) -> None:
    spec = VllmSpec(model=str(tiny_random_dir), served_model_name="t", max_model_len=1024)
    small = Gpu(index=0, free_bytes=1000 * MIB, total_bytes=1000 * MIB)
    report = check_vllm_fit(spec, model_dir=tiny_random_dir, gpus=[small], variants=["t:nf4"])
    assert not isinstance(report, str) and not report.fits
    assert any("t:nf4" in w for w in report.ways_out) and any("--tp" in w for w in report.ways_out)


def test_70b_needs_more_than_one_h100() -> None:
    per_token = kv_bytes_per_token(LLAMA_70B, 2)
    assert per_token == 2 * 80 * 8 * 128 * 2  # 327,680 bytes = 320 KiB
    one = MemoryBudget(
        device="cuda", devices=1, total_bytes=int(H100.total_bytes * 0.9), free_bytes=H100.free_bytes
    )
    report = check_fit(weight_bytes=WEIGHTS_70B, weight_source="test", config=LLAMA_70B, max_model_len=8192,
                       kv_dtype_bytes=2, budget=one, variants=["llama-70b:fp8"])  # fmt: skip
    assert not report.fits
    assert report.ways_out[0] == "a quantized variant: llama-70b:fp8"
    assert "more GPUs: --tp 2" in report.ways_out
    four = MemoryBudget(device="cuda", devices=4, total_bytes=int(4 * H100.total_bytes * 0.9),
                        free_bytes=4 * H100.free_bytes)  # fmt: skip
    report = check_fit(weight_bytes=WEIGHTS_70B, weight_source="test", config=LLAMA_70B, max_model_len=8192,
                       kv_dtype_bytes=2, budget=four)  # fmt: skip
    assert report.fits
    kv_space = four.total_bytes - WEIGHTS_70B - 4 * GIB
    assert report.kv_space_bytes == kv_space
    assert report.max_concurrent_seqs == kv_space // (per_token * 8192)


def test_shorter_length_is_offered_when_only_the_kv_cache_is_short() -> None:
    budget = MemoryBudget(device="cuda", devices=1, total_bytes=20 * GIB, free_bytes=20 * GIB)
    report = check_fit(weight_bytes=16 * GIB, weight_source="test", config=LLAMA_70B, max_model_len=131072,
                       kv_dtype_bytes=2, budget=budget)  # fmt: skip
    assert not report.fits
    fitting = (3 * GIB) // (2 * 80 * 8 * 128 * 2)
    assert f"a shorter --max-model-len (at most about {fitting} tokens fit)" in report.ways_out


def test_skips_without_local_files_or_hub() -> None:
    spec = VllmSpec(model="org/unpulled", served_model_name="x")
    note = check_vllm_fit(spec, model_dir=None, gpus=[H100])
    assert isinstance(note, str) and "skipped" in note


def test_on_the_fly_quantization_reads_the_one_bytes_per_param_table() -> None:
    """vLLM quantizing a 16-bit checkpoint as it loads: fp8 keeps 1.02 of 2 bytes a parameter (0.51),
    in-flight bitsandbytes is 4-bit NF4 at 0.56 of 2 (0.28); no quantization keeps them all."""
    from serve.fit import BYTES_PER_PARAM, on_the_fly_scale

    assert on_the_fly_scale("fp8") == pytest.approx(0.51)
    assert on_the_fly_scale("bitsandbytes") == pytest.approx(0.28)
    assert on_the_fly_scale(None) == on_the_fly_scale("compressed-tensors") == 1.0
    assert BYTES_PER_PARAM["bnb-nf4"] / BYTES_PER_PARAM[None] == on_the_fly_scale("bitsandbytes")
