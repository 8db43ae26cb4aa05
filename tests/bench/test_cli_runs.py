"""`llmbench runs`: a stored load run can be listed, shown, and its summary recomputed from raw records."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fixtures_vllm import LLMBENCH

from bench.store import Store


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    return subprocess.run([*LLMBENCH, *args], capture_output=True, text=True, timeout=180, env=env)


@pytest.mark.slow  # seconds of real serving: scripts/test runs it
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
    assert again == stored and data["recompute_matches"] is True
    assert "llmbench" in data["provenance"]


def test_unknown_run_id_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "empty.sqlite"
    Store.open(store).close()
    out = run("runs", "show", "deadbeef", "--store", str(store))
    assert out.returncode != 0 and "deadbeef" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_read_only_commands_never_create_a_store_at_a_mistyped_path(tmp_path: Path) -> None:
    typo = tmp_path / "typo.sqlite"
    for args in (["runs", "list"], ["runs", "show", "abc"], ["bench", "diff", "a", "b"]):
        out = run(*args, "--store", str(typo))
        assert out.returncode == 1, out.stderr
        assert "no results store at" in out.stderr and "Traceback" not in out.stderr
        assert not typo.exists()
