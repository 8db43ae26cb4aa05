"""The answer page as a user makes it: real mock endpoints with a configured accuracy, measured with
`bench load` and `bench accuracy`, then `report`, `compare` (exit codes), `card` and `runs export`."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
from fixtures_vllm import LLMBENCH, REPO, cli_env

SLO = "ttft_ms=2000,tpot_ms=100"


def llmbench(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LLMBENCH, *args], cwd=REPO, env=cli_env(home), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Load and accuracy runs of mock-frontier and mock-mini in one store; their run ids."""
    home = tmp_path_factory.mktemp("home")
    ids: dict[str, str] = {}
    for mock in ("mock-frontier", "mock-mini"):
        done = llmbench(
            "bench", "load", "--target", mock, "--profile", "concurrent", "--concurrency", "8",
            "--requests", "24", "--input-tokens", "32", "--output-tokens", "16", "--slo", SLO, "--quiet",
            "--out", str(home / f"{mock}-load.json"), home=home,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        ids[f"{mock}-load"] = json.loads((home / f"{mock}-load.json").read_text())["runs"][0]["run_id"]
        done = llmbench(
            "bench", "accuracy", "--target", mock, "--suite", "builtin:tiny-skills", "--limit", "25",
            "--concurrency", "16", "--json", home=home,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        ids[f"{mock}-acc"] = json.loads(done.stdout)["run_id"]
    return home, ids


def test_report_in_every_format(measured: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    home, _ = measured
    md = llmbench("report", "--format", "md", "--max-drop", "40", home=home)
    assert md.returncode == 0, md.stderr
    assert "**Recommendation:** **mock-mini**" in md.stdout and "| mock-frontier | API |" in md.stdout
    assert "<img" not in md.stdout
    out = tmp_path / "r.json"
    assert llmbench("report", "--format", "json", "--out", str(out), home=home).returncode == 0
    data = json.loads(out.read_text())
    assert data["schema"] == "llmbench.report/1" and data["headline"]["best_accuracy"] == "mock-frontier"
    frontier = next(r for r in data["leaderboard"] if r["key"] == "mock-frontier")
    assert frontier["accuracy"]["value"] > 0.85 and frontier["cost"]["usd_per_1m_output"]["value"] > 0
    html = tmp_path / "r.html"
    done = llmbench("report", "--format", "html", "--out", str(html), home=home)
    assert done.returncode == 0 and "wrote" in done.stderr and html.stat().st_size > 1_000_000
    assert 'id="leaderboard"' in html.read_text()


def test_compare_exit_codes(measured: tuple[Path, dict[str, str]]) -> None:
    home, ids = measured
    base, new = ids["mock-frontier-acc"], ids["mock-mini-acc"]
    failing = llmbench("compare", base, new, "--fail-on", "accuracy<-2pts", home=home)
    assert failing.returncode == 1, failing.stderr
    assert "gate accuracy<-2pts" in failing.stdout and "FAIL" in failing.stdout
    passing = llmbench("compare", base, new, "--fail-on", "accuracy<-60pts,cost_per_correct>+5%", home=home)
    assert passing.returncode == 0, passing.stderr
    bad_gate = llmbench("compare", base, new, "--fail-on", "accuracy<<2", home=home)
    assert bad_gate.returncode == 2 and "is not METRIC" in bad_gate.stderr
    mixed = llmbench("compare", base, ids["mock-mini-load"], home=home)
    assert mixed.returncode == 2 and "same kinds of run" in mixed.stderr
    latency = llmbench(
        "compare", ids["mock-mini-load"], ids["mock-frontier-load"], "--fail-on", "ttft_p95>+10%", home=home
    )
    assert latency.returncode == 1 and "ttft_p95" in latency.stdout  # 600 ms against 150 ms
    unknown = llmbench("compare", base[:6] + "zz", new, home=home)
    assert unknown.returncode == 2 and "unknown run id" in unknown.stderr


def test_compare_refuses_another_suite(measured: tuple[Path, dict[str, str]]) -> None:
    home, ids = measured
    done = llmbench(
        "bench", "accuracy", "--target", "mock-mini", "--suite", "builtin:general", "--limit", "2", "--json",
        home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    other = json.loads(done.stdout)["run_id"]
    refused = llmbench("compare", ids["mock-mini-acc"], other, home=home)
    assert refused.returncode == 2
    assert "different suites (builtin:tiny-skills" in refused.stderr and "builtin:general" in refused.stderr


def test_card_and_export(measured: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    home, ids = measured
    use = tmp_path / "use.md"
    use.write_text("Stands in for a small commercial model in offline reports.\n")
    card = llmbench("card", "mock-mini", "--use", str(use), home=home)
    assert card.returncode == 0, card.stderr
    assert "# System card: mock-mini" in card.stdout and ids["mock-mini-acc"][:12] in card.stdout
    assert "Stands in for a small commercial model" in card.stdout
    out = tmp_path / "runs.csv"
    done = llmbench("runs", "export", "--csv", "--out", str(out), home=home)
    assert done.returncode == 0, done.stderr
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["run_id"] for r in rows} >= set(ids.values())
    assert llmbench("runs", "export", "--out", str(out), home=home).returncode == 2
