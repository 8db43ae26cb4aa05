"""The clients scripts/bench-client-ceiling compares: how to run each one and how to read what it reports.

Each client is one command (run pinned to one core by the caller) that writes a results file; `parse`
turns that file into the client's own figures. Everything here is stdlib: the ceiling script runs with any
Python 3.11, and each client runs from its own venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VLLM_VENV = ROOT / ".venv-vllm"
GUIDELLM_VENV = ROOT / ".venv-guidellm"
GUIDELLM_PACKAGES = (["torch==2.13.0"], ["guidellm"])  # torch first: any other spec pulls CUDA wheels


@dataclass(frozen=True)
class Workload:
    """What every client sends: the same server, model, prompts, lengths and concurrency."""

    url: str  # base URL without /v1
    model: str  # model id the mock answers to (the tokenizer folder's path, as GuideLLM wants)
    tokenizer: Path
    concurrency: int
    requests: int
    input_tokens: int
    output_tokens: int
    seed: int


@dataclass
class ClientRun:
    """One command to run and where its results land."""

    cmd: list[str]
    result: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Client:
    """An anchor or llmbench client: `build` makes its command, `parse` reads its results file."""

    name: str
    build: Callable[[Workload, Path], ClientRun]
    parse: Callable[[Path], dict[str, float]]


def _llmbench_cli(w: Workload, tmp: Path) -> ClientRun:
    out = tmp / "llmbench.json"
    cmd = [str(VENV / "bin" / "llmbench"), "bench", "load", "--target", w.url + "/v1", "--model", w.model]
    cmd += ["--api", "openai-chat", "--profile", "concurrent", "--concurrency", str(w.concurrency)]
    cmd += ["--requests", str(w.requests), "--input-tokens", str(w.input_tokens)]
    cmd += ["--output-tokens", str(w.output_tokens), "--tokenizer", str(w.tokenizer), "--seed", str(w.seed)]
    cmd += ["--store", str(tmp / "results.sqlite"), "--out", str(out), "--quiet"]
    return ClientRun(cmd, out)


def _parse_llmbench_cli(path: Path) -> dict[str, float]:
    summary = json.loads(path.read_text())["runs"][0]["summary"]
    return _llmbench_summary(summary)


def _llmbench_summary(summary: dict[str, Any]) -> dict[str, float]:
    return {
        "completed": float(summary["requests"]["completed"]),
        "failed": float(summary["requests"]["failed"]),
        "req_s": float(summary["requests_per_s"] or 0.0),
        "tok_s": float(summary["output_tokens_per_s"] or 0.0),
        "duration_s": float(summary.get("duration_s") or 0.0),
    }


def _llmbench_lib(w: Workload, tmp: Path) -> ClientRun:
    out = tmp / "llmbench-lib.json"
    cmd = [str(VENV / "bin" / "python"), str(ROOT / "scripts" / "_ceiling_lib.py"), "--url", w.url]
    cmd += ["--model", w.model, "--tokenizer", str(w.tokenizer), "--concurrency", str(w.concurrency)]
    cmd += ["--requests", str(w.requests), "--input-tokens", str(w.input_tokens)]
    cmd += ["--output-tokens", str(w.output_tokens), "--seed", str(w.seed)]
    # The helper prints its JSON: the caller sends stdout to `out`.
    return ClientRun(cmd, out)


def _parse_llmbench_lib(path: Path) -> dict[str, float]:
    lines = [line for line in path.read_text().splitlines() if line.startswith("{")]
    return _llmbench_summary(json.loads(lines[-1])["summary"])


def _vllm(w: Workload, tmp: Path) -> ClientRun:
    out = tmp / "vllm.json"
    cmd = [str(VLLM_VENV / "bin" / "python"), "-m", "vllm.entrypoints.cli.main", "bench", "serve"]
    cmd += ["--backend", "openai-chat", "--base-url", w.url, "--endpoint", "/v1/chat/completions"]
    cmd += ["--model", w.model, "--tokenizer", str(w.tokenizer), "--dataset-name", "random"]
    cmd += ["--random-input-len", str(w.input_tokens), "--random-output-len", str(w.output_tokens)]
    cmd += ["--num-prompts", str(w.requests), "--max-concurrency", str(w.concurrency), "--ignore-eos"]
    cmd += ["--seed", str(w.seed), "--disable-tqdm", "--save-result", "--result-dir", str(tmp)]
    cmd += ["--result-filename", out.name]
    env = {"VLLM_TARGET_DEVICE": "cpu"}
    shim = vllm_shim()
    if shim is not None:
        env["PYTHONPATH"] = str(shim)
    return ClientRun(cmd, out, env)


def _parse_vllm(path: Path) -> dict[str, float]:
    data = json.loads(path.read_text())
    return {
        "completed": float(data["completed"]),
        "failed": float(data.get("failed", 0) or 0),
        "req_s": float(data["request_throughput"]),
        "tok_s": float(data["output_throughput"]),
        "duration_s": float(data["duration"]),
    }


def _guidellm(w: Workload, tmp: Path) -> ClientRun:
    out = tmp / "guidellm.json"
    backend = f"kind=openai_http,target={w.url},model={w.model},request_format=/v1/chat/completions"
    data = f"kind=synthetic_text,prompt_tokens={w.input_tokens},output_tokens={w.output_tokens}"
    cmd = [str(GUIDELLM_VENV / "bin" / "guidellm"), "run", "--backend", backend]
    cmd += ["--profile", f"kind=concurrent,streams={w.concurrency}"]
    cmd += ["--constraint", f"kind=max_requests,count={w.requests}", "--data", data]
    cmd += [
        "--tokenizer",
        f"kind=huggingface_auto,model={w.tokenizer}",
        "--seed",
        f"kind=static,value={w.seed}",
    ]
    cmd += ["--output", f"kind=json,path={out}", "--disable-console-interactive"]
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return ClientRun(cmd, out, env)


def _parse_guidellm(path: Path) -> dict[str, float]:
    bench = json.loads(path.read_text())["benchmarks"][0]
    metrics = bench["metrics"]
    totals = metrics["request_totals"]
    duration = float(bench.get("duration") or 0.0)
    return {
        "completed": float(totals["successful"]),
        "failed": float(totals.get("errored", 0)),
        "req_s": float(metrics["requests_per_second"]["successful"]["mean"]),
        "tok_s": float(metrics["output_tokens_per_second"]["successful"]["mean"]),
        "duration_s": duration,
    }


CLIENTS: dict[str, Client] = {
    "llmbench": Client("llmbench", _llmbench_cli, _parse_llmbench_cli),
    "llmbench-lib": Client("llmbench-lib", _llmbench_lib, _parse_llmbench_lib),
    "vllm": Client("vllm", _vllm, _parse_vllm),
    "guidellm": Client("guidellm", _guidellm, _parse_guidellm),
}


def vllm_shim() -> Path | None:
    """A temp folder with vllm's dist-info when the vLLM venv lacks the metadata its CLI looks up."""
    probe = [str(VLLM_VENV / "bin" / "python"), "-c", "import importlib.metadata as m; m.version('vllm')"]
    if subprocess.run(probe, capture_output=True).returncode == 0:
        return None
    folder = Path(tempfile.mkdtemp(prefix="vllm-shim-"))
    # The version must contain "cpu": vLLM picks its CPU platform from the "vllm" version string.
    info = folder / "vllm-0.32.0+cpu.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\n")
    (info / "RECORD").write_text("")
    return folder


def ensure_guidellm(say: Callable[[str], None]) -> None:
    """Create .venv-guidellm (torch==2.13.0 first, then guidellm) when it is missing."""
    if (GUIDELLM_VENV / "bin" / "guidellm").exists():
        return
    python = os.environ.get("PYTHON", "python3")
    if not (GUIDELLM_VENV / "bin" / "python").exists():
        say(f"creating {GUIDELLM_VENV} (a throwaway venv for GuideLLM)")
        subprocess.run([python, "-m", "venv", str(GUIDELLM_VENV)], check=True)
    pip = [str(GUIDELLM_VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    for packages in GUIDELLM_PACKAGES:
        say(f"pip install {' '.join(packages)} into {GUIDELLM_VENV.name}")
        subprocess.run([*pip, *packages], check=True)
    if not (GUIDELLM_VENV / "bin" / "guidellm").exists():
        sys.exit(f"{GUIDELLM_VENV}/bin/guidellm is still missing after the install")
