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
AIPERF_VENV = ROOT / ".venv-aiperf"
AIPERF_PACKAGES = (["aiperf==0.13.0"],)  # NVIDIA's load tester; no torch needed


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
    # llmbench's prompts are sized in the tokenizer's own tokens with the chat template included (as vLLM
    # counts them), the other clients' by their content alone: llmbench asks for this many more, so the
    # server counts the same content length for every client (see `chat_overhead`).
    template_tokens: int = 0
    workers: int = 1  # llmbench-lib only: worker processes (bench.loadgen.workers)


@dataclass
class ClientRun:
    """One command to run and where its results land."""

    cmd: list[str]
    result: Path
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()  # environment variables to remove


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
    cmd += ["--requests", str(w.requests), "--input-tokens", str(w.input_tokens + w.template_tokens)]
    cmd += ["--length-unit", "model", "--output-tokens", str(w.output_tokens)]
    cmd += ["--tokenizer", str(w.tokenizer), "--seed", str(w.seed)]
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
    cmd += ["--requests", str(w.requests), "--input-tokens", str(w.input_tokens + w.template_tokens)]
    cmd += ["--output-tokens", str(w.output_tokens), "--seed", str(w.seed), "--workers", str(w.workers)]
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


def _aiperf(w: Workload, tmp: Path) -> ClientRun:
    out = tmp / "aiperf"
    cmd = [str(AIPERF_VENV / "bin" / "aiperf"), "profile", "--model", w.model, "--url", w.url]
    cmd += ["--endpoint-type", "chat", "--streaming", "--concurrency", str(w.concurrency)]
    cmd += ["--request-count", str(w.requests), "--synthetic-input-tokens-mean", str(w.input_tokens)]
    cmd += ["--synthetic-input-tokens-stddev", "0", "--output-tokens-mean", str(w.output_tokens)]
    cmd += [
        "--output-tokens-stddev",
        "0",
        "--extra-inputs",
        "ignore_eos:true",
        "--tokenizer",
        str(w.tokenizer),
    ]
    cmd += ["--random-seed", str(w.seed), "--output-artifact-dir", str(out), "--ui", "none"]
    # AIPerf 0.13 in offline mode looks a tokenizer up in the hub cache only, never at a local path; online
    # it takes an absolute path as local and asks the hub nothing.
    offline = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")  # any value, even 0, means offline to AIPerf
    return ClientRun(cmd, out / "profile_export_aiperf.json", unset=offline)


def _parse_aiperf(path: Path) -> dict[str, float]:
    data = json.loads(path.read_text())
    count = data.get("request_count") or {}
    errors = data.get("error_request_count") or {}
    duration = data.get("benchmark_duration") or {}
    return {
        "completed": float(count.get("avg") or 0.0),
        "failed": float(errors.get("avg") or 0.0),
        "req_s": float(data["request_throughput"]["avg"]),
        "tok_s": float((data.get("output_token_throughput") or {}).get("avg") or 0.0),
        "duration_s": float(duration.get("avg") or 0.0),
    }


def _floor(w: Workload, tmp: Path) -> ClientRun:
    out = tmp / "floor.json"
    cmd = [str(VENV / "bin" / "python"), str(ROOT / "scripts" / "_ceiling_floor.py"), "--url", w.url]
    cmd += ["--model", w.model, "--tokenizer", str(w.tokenizer), "--concurrency", str(w.concurrency)]
    cmd += ["--requests", str(w.requests), "--input-tokens", str(w.input_tokens + w.template_tokens)]
    cmd += ["--output-tokens", str(w.output_tokens), "--seed", str(w.seed)]
    return ClientRun(cmd, out)  # prints its JSON: the caller sends stdout to `out`


def _parse_floor(path: Path) -> dict[str, float]:
    lines = [line for line in path.read_text().splitlines() if line.startswith("{")]
    data = json.loads(lines[-1])
    return {k: float(data[k]) for k in ("completed", "failed", "req_s", "tok_s", "duration_s")}


CLIENTS: dict[str, Client] = {
    "llmbench": Client("llmbench", _llmbench_cli, _parse_llmbench_cli),
    "llmbench-lib": Client("llmbench-lib", _llmbench_lib, _parse_llmbench_lib),
    "vllm": Client("vllm", _vllm, _parse_vllm),
    "guidellm": Client("guidellm", _guidellm, _parse_guidellm),
    "aiperf": Client("aiperf", _aiperf, _parse_aiperf),
    "floor": Client("floor", _floor, _parse_floor),
}
PRINTS_RESULT = ("llmbench-lib", "floor")  # these print their JSON: stdout is the result file


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


def ensure_venv(venv: Path, packages: tuple[list[str], ...], tool: str, say: Callable[[str], None]) -> None:
    """Create `venv` with `packages` (in that order, from the package index) when `tool` is missing."""
    if (venv / "bin" / tool).exists():
        return
    python = os.environ.get("PYTHON", "python3")
    if not (venv / "bin" / "python").exists():
        say(f"creating {venv} (a throwaway venv for {tool})")
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    for group in packages:
        say(f"pip install {' '.join(group)} into {venv.name}")
        subprocess.run([*pip, *group], check=True)
    if not (venv / "bin" / tool).exists():
        sys.exit(f"{venv}/bin/{tool} is still missing after the install")


def ensure_guidellm(say: Callable[[str], None]) -> None:
    """Create .venv-guidellm (torch==2.13.0 first, then guidellm) when it is missing."""
    ensure_venv(GUIDELLM_VENV, GUIDELLM_PACKAGES, "guidellm", say)


def ensure_aiperf(say: Callable[[str], None]) -> None:
    """Create .venv-aiperf (aiperf==0.13.0 from the package index) when it is missing."""
    ensure_venv(AIPERF_VENV, AIPERF_PACKAGES, "aiperf", say)


def chat_overhead(tokenizer: Path) -> int:
    """Tokens the chat template adds around one user message, by the tokenizer in `tokenizer`."""
    code = (
        "import sys; from bench.tokenizer import load_tokenizer; t = load_tokenizer(sys.argv[1]); "
        "print(t.count_chat([{'role': 'user', 'content': ''}]) if t.chat_exact else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", code, str(tokenizer)], capture_output=True, text=True, env=env
    )
    return int(done.stdout.strip()) if done.returncode == 0 else 0
