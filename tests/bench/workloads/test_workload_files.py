"""Workload files: every example loads and builds, the fixtures match their generator, and a bad file is
refused naming the file, the line or key, and the fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.prompts.workloads import (
    WORKLOADS,
    OpenLoopRequests,
    RequestLogWorkload,
    RequestSequence,
    SessionPlan,
    SharedPrefixWorkload,
    TraceWorkload,
    load_workload,
)
from bench.prompts.workloads.fixtures import fixture_files

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "workloads"


def test_every_example_loads_and_builds() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    kinds = set()
    for path in files:
        workload = load_workload(path)
        kinds.add(workload.kind)
        built = workload.build()
        if isinstance(built, SessionPlan):
            assert built.turns > 0
            session = built.sessions[0]
            assert built.request(session, 0, [], 0).messages
        elif isinstance(built, OpenLoopRequests):
            assert len(built) > 0 and built[len(built) - 1].request.max_tokens > 0
            assert list(built.offsets_s) == sorted(built.offsets_s)
        else:
            assert isinstance(built, RequestSequence) and built.take(3)
    assert kinds == set(WORKLOADS)  # one example per kind at least


def test_example_figures() -> None:
    shared = load_workload(EXAMPLES / "shared_prefix.yaml")
    assert isinstance(shared, SharedPrefixWorkload)
    built = shared.build()
    assert built.reuse_share == shared.designed_reuse_share(200) and 0.5 < (built.reuse_share or 0) < 1
    trace = load_workload(EXAMPLES / "trace.yaml")
    assert isinstance(trace, TraceWorkload) and trace.file == EXAMPLES / "data" / "mooncake.jsonl"
    replay = trace.build()
    assert replay.reuse_share is not None and replay.reuse_share > 0.3
    log = load_workload(EXAMPLES / "request_log.yaml")
    assert isinstance(log, RequestLogWorkload) and len(log.build()) == 40


def test_fixtures_are_what_the_script_writes(tmp_path: Path) -> None:
    for name, text in fixture_files(0).items():
        assert (EXAMPLES / "data" / name).read_text(encoding="utf-8") == text, (
            "run scripts/make-fixture-traces"
        )
    script = REPO / "scripts" / "make-fixture-traces"
    run = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--seed", "3"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert "mooncake.jsonl" in run.stdout
    assert (tmp_path / "azure.csv").read_text(encoding="utf-8") == fixture_files(3)["azure.csv"]
    check = [sys.executable, str(script), "--check", "--out", str(tmp_path), "--seed", "3"]
    assert subprocess.run(check, capture_output=True, check=False).returncode == 0
    (tmp_path / "azure.csv").write_text("stale\n", encoding="utf-8")
    assert subprocess.run(check, capture_output=True, check=False).returncode == 1


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: phases\n", "w.yaml: schema: required key is missing"),
        ("schema: llmbench.workload/9\nkind: phases\nphases: [{duration_s: 1, rate: 1}]\n",
         "w.yaml:1: schema: this llmbench reads 'llmbench.workload/1' workload files, not 'llmbench.workl"),
        ("schema: llmbench.workload/1\nkind: session\n", "w.yaml: kind: unknown workload kind 'session'"),
        ("schema: llmbench.workload/1\nkind: phases\nphases:\n  - {duration_s: 1, rate: 1}\n"
         "  - {duration_s: 1, rat: 2}\n",
         "w.yaml:5: phases[1].rat: unknown key 'rat'; did you mean 'rate'?"),
        ("schema: llmbench.workload/1\nkind: shared_prefix\nprefixes: {count: 2, tokens: 10}\n"
         "question_tokens: lots\n",
         "w.yaml:4: question_tokens: 'lots': lengths are whole numbers of tokens"),
        ("schema: llmbench.workload/1\nkind: sessions\nsessions: 2\n",
         "w.yaml:1: set exactly one of arrival_rate (sessions per second) or concurrent"),
        ("schema: llmbench.workload/1\nkind: phases\nphases: [\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_bad_files_name_the_line_or_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_workload(path)
    assert message in str(info.value)
    assert info.value.file == str(path) and info.value.fix


def test_unknown_kind_suggests_the_close_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_workload(write(tmp_path, "schema: llmbench.workload/1\nkind: session\n"))
    assert info.value.fix == "did you mean 'sessions'?"


def test_data_files_are_checked_on_load(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text('{"timestamp": 5, "input_length": 3, "output_length": 1}\n'
                                      '{"timestamp": 1, "input_length": 3, "output_length": 1}\n',
                                      encoding="utf-8")  # fmt: skip
    path = write(tmp_path, "schema: llmbench.workload/1\nkind: trace\nformat: mooncake\nfile: t.jsonl\n")
    with pytest.raises(ConfigError, match=r"t.jsonl:2: arrives at 0.001 s, before line 1 \(0.005 s\)"):
        load_workload(path)
    lines = '{"messages": []}\n{"messages": [{"role": "user", "content": "x"}]}\n'
    (tmp_path / "log.jsonl").write_text(lines, encoding="utf-8")
    log = write(tmp_path, "schema: llmbench.workload/1\nkind: request_log\nfile: log.jsonl\n")
    with pytest.raises(ConfigError, match=r"log.jsonl:1: 'messages' must be a non-empty list"):
        load_workload(log)
    loaded = load_workload(log, skip_invalid=True)
    assert isinstance(loaded, RequestLogWorkload) and loaded.build().skipped == 1


def test_examples_copy_with_their_data(tmp_path: Path) -> None:
    """Relative data paths follow the workload file, wherever it is."""
    shutil.copytree(EXAMPLES, tmp_path / "w")
    trace = load_workload(tmp_path / "w" / "trace-azure.yaml")
    assert isinstance(trace, TraceWorkload) and trace.file == tmp_path / "w" / "data" / "azure.csv"
