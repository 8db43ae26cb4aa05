"""`llmbench runs`: a stored load run can be listed, shown, and its summary recomputed from raw records."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from fixtures_vllm import LLMBENCH


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    return subprocess.run([*LLMBENCH, *args], capture_output=True, text=True, timeout=180, env=env)


def test_list_and_show_a_stored_load_run(tmp_path: Path) -> None:
    store = tmp_path / "results.sqlite"
    overlay = tmp_path / "fast.yaml"
    overlay.write_text(
        "schema: llmbench.models/1\nmock:\n"
        "  fast-mock: {provider: openai, model: fast, latency: {ttft_ms: 5, itl_ms: 1}}\n"
    )
    load = run(
        "--models-file", str(overlay), "bench", "load", "--target", "fast-mock", "--profile", "concurrent",
        "--concurrency", "2", "--requests", "12", "--output-tokens", "8", "--store", str(store), "--quiet",
    )  # fmt: skip
    assert load.returncode == 0, load.stderr

    listed = run("runs", "list", "--store", str(store), "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry["kind"] == "load" and entry["status"] == "complete" and entry["records"] >= 12

    shown = run("runs", "show", entry["id"][:8], "--store", str(store), "--recompute")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["id"] == entry["id"]
    stored, again = data["summary"], data["summary_recomputed"]
    assert again["requests"]["completed"] == stored["requests"]["completed"] == 12
    assert again["ttft_ms"]["p50"] == stored["ttft_ms"]["p50"]
    assert "llmbench" in data["provenance"]


def test_unknown_run_id_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "empty.sqlite"
    out = run("runs", "show", "deadbeef", "--store", str(store))
    assert out.returncode != 0 and "deadbeef" in out.stderr and "Traceback" not in out.stderr
