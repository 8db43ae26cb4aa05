"""`llmbench bench accuracy` and `bench diff` as a user runs them: exit codes and messages from main()."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_vllm import LLMBENCH, REPO, cli_env

from bench.suite_files import builtin_suites_dir
from serve.mock.server import running_mock
from serve.specs import AnswerModel, MockSpec


def llmbench(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LLMBENCH, *args], cwd=REPO, env=cli_env(home), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture
def oracle() -> Iterator[str]:
    answers = AnswerModel(kind="oracle", oracle_file=builtin_suites_dir() / "tiny-skills.jsonl", accuracy=0.8)
    with running_mock(MockSpec(model="oracle", port=0, answers=answers)) as url:
        yield url


def test_unreachable_target_is_reported_before_the_run(tmp_path: Path) -> None:
    done = llmbench(
        "bench", "accuracy", "--target", "http://127.0.0.1:9/v1", "--model", "m",
        "--suite", "builtin:tiny-skills", home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot reach" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "results.sqlite").exists()


def test_malformed_suite_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "area": "x", "prompt": "p", "reference": "1"}\n{"id": "b", "area": "x"}\n')
    done = llmbench(
        "bench", "accuracy", "--target", "http://127.0.0.1:9/v1", "--suite", str(bad), home=tmp_path
    )
    assert done.returncode == 2
    assert f"{bad}:2:" in done.stderr and "fix:" in done.stderr


def test_accuracy_then_diff(oracle: str, tmp_path: Path) -> None:
    ids = []
    for _ in range(2):
        done = llmbench(
            "bench", "accuracy", "--target", oracle, "--suite", "builtin:tiny-skills", "--limit", "10",
            "--json", home=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        ids.append(json.loads(done.stdout)["run_id"])
    done = llmbench("bench", "diff", ids[0][:8], ids[1][:8], home=tmp_path)
    assert done.returncode == 0, done.stderr
    # The mock answers each item the same way every time: two runs score the same.
    assert "scores the same as A" in done.stdout
    done = llmbench("bench", "diff", "ffff", ids[1], home=tmp_path)
    assert done.returncode == 2 and "no run matches 'ffff'" in done.stderr  # bad input: exit 2
