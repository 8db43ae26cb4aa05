"""`llmbench serve --dry-run` for GPU setups (tp, fp8, bitsandbytes, compressed-tensors, Ray) and planning."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import UsageError
from bench.registry import load_registry
from bench.serving.plan import ServeOptions, parse_engine_args, plan_serve
from bench.settings import Settings
from serve.vllm.command import VllmEngine
from serve.vllm.config import VllmSpec

SHA_A = "a" * 40
SHA_B = "b" * 40
OVERLAY = f"""
schema: llmbench.models/1
local:
  big-llama:
    repo: org/big-llama
    revision: {SHA_A}
    license: llama3
    context: {{native: 131072, served: 8192}}
    vllm_args: {{max-model-len: 8192, max-num-seqs: 128}}
  big-llama-fp8:
    repo: org/big-llama
    revision: {SHA_A}
    license: llama3
    context: {{native: 131072, served: 8192}}
    derived_from: big-llama
    variant: fp8
    quantization: {{method: fp8, source: llmbench}}
  big-llama-nf4:
    repo: org/big-llama
    revision: {SHA_A}
    license: llama3
    context: {{native: 131072, served: 8192}}
    derived_from: big-llama
    variant: nf4
    quantization: {{method: bnb-nf4, source: llmbench}}
  big-llama-w4a16:
    repo: org/big-llama-w4a16
    revision: {SHA_B}
    license: llama3
    context: {{native: 131072, served: 8192}}
    derived_from: big-llama
    variant: w4a16
    quantization: {{method: w4a16, source: hub}}
"""
CSV_8 = "\n".join(f"{i}, {70000 - i * 1000}, 81920" for i in range(8))


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(OVERLAY, encoding="utf-8")
    return path


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    """An interpreter path whose `vllm` console script is absent: the module entry point is used."""
    path = tmp_path / "venv" / "bin" / "python"
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def run_cli(argv: list[str]) -> int:
    """Run the CLI like the console script does; return the exit code."""
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def dry_run(overlay: Path, fake_python: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    argv = ["--models-file", str(overlay), "serve", *args, "--dry-run", "--vllm-python", str(fake_python)]
    code = run_cli([*argv, "--backend", "vllm"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_tensor_parallel_two_gpus(
    overlay: Path, fake_python: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = dry_run(overlay, fake_python, capsys, "big-llama", "--device", "cuda", "--gpus", "0,1", "--tp", "2")
    assert f"{fake_python} -m vllm.entrypoints.openai.api_server --model org/big-llama --config " in out
    assert "CUDA_VISIBLE_DEVICES=0,1" in out
    assert "tensor-parallel-size: 2" in out
    assert f"revision: {SHA_A}" in out and f"tokenizer-revision: {SHA_A}" in out
    assert "generation-config: vllm" in out
    assert "served-model-name: big-llama" in out
    assert "max-model-len: 8192" in out and "max-num-seqs: 128" in out
    assert "gpu-memory-utilization: 0.9" in out
    assert "enforce-eager" not in out and "VLLM_CPU_KVCACHE_SPACE" not in out


def test_fp8_on_the_fly(overlay: Path, fake_python: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = dry_run(overlay, fake_python, capsys, "big-llama:fp8", "--device", "cuda", "--gpus", "0")
    assert "--model org/big-llama " in out
    assert "quantization: fp8" in out
    assert "served-model-name: big-llama-fp8" in out
    assert f"revision: {SHA_A}" in out


def test_bitsandbytes_nf4(overlay: Path, fake_python: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = dry_run(overlay, fake_python, capsys, "big-llama:nf4", "--device", "cuda", "--gpus", "0")
    assert "quantization: bitsandbytes" in out
    assert "--model org/big-llama " in out


def test_compressed_tensors_hub_variant(
    overlay: Path, fake_python: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = dry_run(overlay, fake_python, capsys, "big-llama:w4a16", "--device", "cuda", "--gpus", "0")
    assert "--model org/big-llama-w4a16 " in out
    assert f"revision: {SHA_B}" in out
    assert "quantization:" not in out  # the checkpoint's own quantization_config tells vLLM


def test_ray_multi_node(overlay: Path, fake_python: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = dry_run(
        overlay, fake_python, capsys, "big-llama", "--device", "cuda", "--tp", "8", "--pp", "2",
        "--nodes", "2", "--ray-address", "ray://head:10001",
    )  # fmt: skip
    assert "distributed-executor-backend: ray" in out
    assert "RAY_ADDRESS=ray://head:10001" in out
    assert "tensor-parallel-size: 8" in out and "pipeline-parallel-size: 2" in out
    assert "CUDA_VISIBLE_DEVICES" not in out


def test_api_key_only_in_env_and_redacted(
    overlay: Path, fake_python: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SERVE_KEY", "sk-very-secret")
    out = dry_run(
        overlay, fake_python, capsys, "big-llama", "--device", "cuda", "--api-key-env", "MY_SERVE_KEY"
    )
    assert "VLLM_API_KEY=***" in out
    assert "sk-very-secret" not in out
    assert "api-key" not in out.split("config file")[1]


def test_engine_arg_and_flags_win_over_registry(
    overlay: Path, fake_python: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = dry_run(
        overlay, fake_python, capsys, "big-llama", "--device", "cuda", "--max-model-len", "4096",
        "--engine-arg", "max-num-seqs=8", "--engine-arg", "enable-prefix-caching=true",
        "--gpu-memory-utilization", "0.8",
    )  # fmt: skip
    assert "max-model-len: 4096" in out and "max-num-seqs: 8" in out
    assert "enable-prefix-caching: true" in out and "gpu-memory-utilization: 0.8" in out


def test_cpu_builtin(fake_python: Path, capsys: pytest.CaptureFixture[str], hermetic_env: Path) -> None:
    code = run_cli(["serve", "tiny-random", "--backend", "vllm", "--device", "cpu", "--dry-run",
                    "--vllm-python", str(fake_python)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "VLLM_CPU_KVCACHE_SPACE=2" in out and "enforce-eager: true" in out and "dtype: bfloat16" in out
    assert f"--model {hermetic_env / 'models' / 'tiny-random'}" in out


def test_unknown_name_lists_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(["serve", "tiny-randm", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert "tiny-random" in err and "Traceback" not in err


def test_port_in_use_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code = run_cli(["serve", "mock-openai", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"127.0.0.1:{port} is already in use" in err and "--port" in err


def _engine(options: ServeOptions, cwd: Path, env: object) -> VllmEngine:
    return VllmEngine(prefix=("/x/vllm", "serve"), style="console", source="test")


def test_gpu_selection_picks_most_free(overlay: Path) -> None:
    registry = load_registry([overlay])
    settings = Settings(home=Path("/nonexistent"))
    options = ServeOptions(backend="vllm", tp=4)
    plan = plan_serve(registry, settings, "big-llama", options, gpu_query=lambda: CSV_8, find_engine=_engine)
    assert isinstance(plan.spec, VllmSpec)
    assert plan.spec.cuda_visible_devices == "0,1,2,3"
    assert plan.spec.device == "cuda"
    busy = "0, 1000, 81920\n1, 80000, 81920\n2, 500, 81920\n3, 60000, 81920"
    options = ServeOptions(backend="vllm", tp=2)
    plan = plan_serve(registry, settings, "big-llama", options, gpu_query=lambda: busy, find_engine=_engine)
    assert isinstance(plan.spec, VllmSpec)
    assert plan.spec.cuda_visible_devices == "1,3"


def test_too_few_gpus_is_a_usage_error(overlay: Path) -> None:
    registry = load_registry([overlay])
    with pytest.raises(UsageError, match="4 GPUs needed"):
        plan_serve(registry, Settings(home=Path("/x")), "big-llama", ServeOptions(backend="vllm", tp=4),
                   gpu_query=lambda: "0, 80000, 81920\n", find_engine=_engine)  # fmt: skip


def test_no_gpu_means_cpu(overlay: Path) -> None:
    registry = load_registry([overlay])
    plan = plan_serve(registry, Settings(home=Path("/x")), "big-llama", ServeOptions(backend="vllm"),
                      gpu_query=lambda: None, find_engine=_engine)  # fmt: skip
    assert isinstance(plan.spec, VllmSpec)
    assert plan.spec.device == "cpu" and plan.spec.cuda_visible_devices is None


def test_parse_engine_args() -> None:
    assert parse_engine_args(["max_num_seqs=8", "--enforce-eager=true", "dtype=float32", "x=[1, 2]"]) == {
        "max-num-seqs": 8,
        "enforce-eager": True,
        "dtype": "float32",
        "x": [1, 2],
    }
    with pytest.raises(UsageError):
        parse_engine_args(["novalue"])


def test_a_mock_entry_serves_its_cache_and_reasoning_and_workers_note_their_own_caches(
    tmp_path: Path,
) -> None:
    overlay = tmp_path / "models.yaml"
    overlay.write_text(
        "schema: llmbench.models/1\nmock:\n  m:\n    provider: anthropic\n    model: m-1\n"
        "    cache: {explicit_min_tokens: 256}\n    reasoning: {tokens: 12}\n"
    )
    registry = load_registry([overlay])
    plan = plan_serve(registry, Settings(home=tmp_path), "m", ServeOptions(workers=3))
    spec = plan.spec
    assert spec.cache.explicit_min_tokens == 256 and spec.reasoning.tokens == 12 and spec.workers == 3
    assert plan.probe == "messages"
    assert any("each keep their own prompt cache" in n for n in plan.notes)
    single = plan_serve(registry, Settings(home=tmp_path), "m", ServeOptions())
    assert single.notes == []
