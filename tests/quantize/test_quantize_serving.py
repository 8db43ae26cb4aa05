"""Variants made by `llmbench quantize` serve by name: the backend and the vLLM flags for each method.

The checkpoints here are header-only fakes with each method's quantization_config: planning reads config.json
and never loads weights. Real serving of real checkpoints is in tests/e2e/test_quantize_e2e.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.errors import ConfigError, UsageError
from bench.registry import load_registry
from bench.serving.plan import ServeOptions, plan_serve
from bench.settings import Settings
from serve.hf.server import HfServeSpec
from serve.lifecycle import ServePlan
from serve.vllm.command import VllmEngine
from serve.vllm.config import VllmSpec


def _engine(options: ServeOptions, cwd: Path, env: object) -> VllmEngine:
    return VllmEngine(
        prefix=("/x/python", "-m", "vllm.entrypoints.openai.api_server"), style="module", source="t"
    )


def plan(overlay: Path, name: str, **options: Any) -> ServePlan:
    """plan_serve on a box without a GPU, with a vLLM install that is found but never run."""
    registry, settings = load_registry([overlay]), Settings.from_env()
    return plan_serve(
        registry, settings, name, ServeOptions(**options), gpu_query=lambda: None, find_engine=_engine
    )


@pytest.mark.parametrize("name", ["nf4", "int8"])
def test_bitsandbytes_variants_serve_on_the_hf_backend_without_a_gpu(
    variants_overlay: Path, name: str
) -> None:
    got = plan(variants_overlay, f"tiny-skills:{name}")
    assert got.backend == "hf"
    spec = got.spec
    assert isinstance(spec, HfServeSpec)
    assert spec.model_dir.name == f"tiny-skills-{name}"  # the saved checkpoint, not the base
    with pytest.raises(UsageError, match="vLLM on CPU cannot load bitsandbytes; serve it with --backend hf"):
        plan(variants_overlay, f"tiny-skills:{name}", backend="vllm")


@pytest.mark.parametrize("name", ["fp8-dynamic", "w8a8", "w4a16"])
def test_compressed_tensors_variants_serve_on_vllm_cpu(variants_overlay: Path, name: str) -> None:
    got = plan(variants_overlay, f"tiny-skills:{name}")
    assert got.backend == "vllm"
    spec = got.spec
    assert isinstance(spec, VllmSpec)
    assert spec.device == "cpu" and spec.quantization is None  # vLLM reads the checkpoint's own config
    assert Path(spec.model).name == f"tiny-skills-{name}"
    with pytest.raises(UsageError, match="cannot load"):
        plan(variants_overlay, f"tiny-skills:{name}", backend="hf")


@pytest.mark.parametrize("name", ["nf4", "int8", "fp8-dynamic", "w8a8", "w4a16"])
def test_dry_run_on_a_gpu_shows_the_flags_of_each_variant(
    variants_overlay: Path, name: str, hermetic_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    python.chmod(0o755)
    argv = ["--models-file", str(variants_overlay), "serve", f"tiny-skills:{name}", "--backend", "vllm",
            "--device", "cuda", "--gpus", "0", "--dry-run", "--vllm-python", str(python)]  # fmt: skip
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    out = capsys.readouterr().out
    folder = hermetic_env / "models" / f"tiny-skills-{name}"
    assert f"--model {folder} " in out
    assert f"served-model-name: tiny-skills-{name}" in out
    assert "CUDA_VISIBLE_DEVICES=0" in out and "VLLM_CPU_KVCACHE_SPACE" not in out
    if name in ("nf4", "int8"):  # the two bitsandbytes methods
        assert "quantization: bitsandbytes" in out
    else:
        assert "quantization:" not in out  # compressed-tensors: vLLM detects it from config.json


def test_unbuilt_gptq_variant_says_to_quantize_first(variants_overlay: Path, hermetic_env: Path) -> None:
    shutil.rmtree(hermetic_env / "models" / "tiny-skills-w4a16")
    with pytest.raises(ConfigError) as info:
        plan(variants_overlay, "tiny-skills:w4a16")
    assert "llmbench quantize tiny-skills --method w4a16" in info.value.fix
