"""`llmbench models` and main()'s error handling, run as a user runs them (subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml
from fixtures_vllm import LLMBENCH


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LLMBENCH, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and "llmbench, version" in out.stdout


def test_models_list_shows_every_kind_as_json() -> None:
    out = run("models", "list", "--json")
    assert out.returncode == 0, out.stderr
    entries = json.loads(out.stdout)
    kinds = {e["kind"] for e in entries}
    assert kinds == {"local", "api", "hardware", "mock"}
    names = {e["name"] for e in entries}
    assert {"tiny-random", "tiny-skills", "mock-openai", "mock-anthropic"} <= names


def test_models_list_table_has_the_four_sections() -> None:
    out = run("models", "list", env={"COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    for title in ("local", "api", "hardware", "mock"):
        assert f"\n{title}" in "\n" + out.stdout


def test_models_show_prints_the_entry() -> None:
    out = run("models", "show", "mock-openai")
    assert out.returncode == 0, out.stderr
    data = yaml.safe_load(out.stdout)
    assert data["kind"] == "mock" and data["model"] == "mock-gpt"


def test_unknown_name_suggests_close_matches_without_traceback() -> None:
    out = run("models", "show", "tiny-skils")
    assert out.returncode == 2
    assert "tiny-skills" in out.stderr and "Traceback" not in out.stderr


def test_validate_rejects_a_typo_with_file_key_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "models.yaml"
    bad.write_text(
        "schema: llmbench.models/1\n"
        "local:\n"
        "  m: {repo: org/m, revision: abc123, license: mit, context: {native: 10, served: 10}, gatd: true}\n"
    )
    out = run("models", "validate", str(bad))
    assert out.returncode == 2
    assert str(bad) in out.stderr
    assert "local.m.gatd" in out.stderr and "did you mean 'gated'" in out.stderr
    assert "local.m.revision" in out.stderr and "40-character" in out.stderr
    assert "Traceback" not in out.stderr


def test_debug_env_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "models.yaml"
    bad.write_text("schema: llmbench.models/1\nlocal: {m: {wrong: 1}}\n")
    out = run("models", "validate", str(bad), env={"LLMBENCH_DEBUG": "1"})
    assert out.returncode == 2 and "Traceback" in out.stderr


def test_validate_accepts_the_shipped_file() -> None:
    shipped = Path(__file__).resolve().parents[2] / "models.yaml"
    out = run("models", "validate", str(shipped))
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout


def test_overlay_from_environment_is_merged(tmp_path: Path) -> None:
    overlay = tmp_path / "mine.yaml"
    overlay.write_text(
        "schema: llmbench.models/1\nlocal:\n"
        "  my-model: {repo: org/m, license: mit, context: {native: 8, served: 8}}\n"
    )
    out = run("models", "show", "my-model", env={"LLMBENCH_MODELS": str(overlay)})
    assert out.returncode == 0, out.stderr
    assert "org/m" in out.stdout
    flag = run("--models-file", str(overlay), "models", "list", "--json", "--kind", "local")
    assert "my-model" in {e["name"] for e in json.loads(flag.stdout)}
