"""Sweep gates: `llmbench sweep FILE --baseline RUN` compares every accuracy run of the sweep with the
baseline as `llmbench compare` does, and fails (exit 1) when a fixed complaint comes back significantly.
Real mock endpoints (their answers an oracle over the imported regression suite) on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main


def llmbench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow  # about 1.9 s: scripts/test runs it, scripts/check stays under a minute
def test_a_sweep_fails_its_gate_when_complaints_come_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """8 complaints (thumbs down, with the expected answer) and 4 praised answers become a suite with 8
    regression items. Baseline: a mock right on everything. The sweep: 'fixed' (right on everything: no
    discordant pair, McNemar p = 1, pass) and 'relapsed' (wrong on every regression item: 8 came back, 0
    fixed, exact p = 2 · (1/2)^8 = 0.0078125: FAIL) → exit 1."""
    lines = [
        {"input": f"What is the code of order {n}?", "thumbs": "down", "expected": f"C{n}"} for n in range(8)
    ]
    lines += [
        {"input": f"Spell {w}.", "thumbs": "up", "expected": w.upper()} for w in ("ant", "bee", "cat", "dog")
    ]
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    code, _, err = llmbench(capsys, "suite", "import", str(feedback), "--format", "feedback", "--name",
                            "support", "--out", str(tmp_path))  # fmt: skip
    assert code == 0, err
    suite = tmp_path / "support.jsonl"
    oracle = f"{{kind: oracle, oracle_file: {suite}, accuracy: 1.0, seed: 1"
    models = tmp_path / "models.yaml"
    models.write_text(
        "schema: llmbench.models/1\nmock:\n"
        f"  fixed:\n    provider: openai\n    model: fixed\n    answers: {oracle}}}\n"
        f"  relapsed:\n    provider: openai\n    model: relapsed\n"
        f"    answers: {oracle}, area_accuracy: {{regression: 0.0}}}}\n",
        encoding="utf-8",
    )
    db = tmp_path / "r.sqlite"
    head = ["--models-file", str(models)]
    code, out, err = llmbench(capsys, *head, "bench", "accuracy", "--target", "fixed", "--suite", str(suite),
                              "--store", str(db), "--json")  # fmt: skip
    assert code == 0, err
    baseline = json.loads(out)["run_id"]
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        f"schema: llmbench.sweep/1\nname: gates\nmax_usd: 0\ntargets: [{{name: fixed}}, {{name: relapsed}}]\n"
        f'suites: [{{suite: "{suite}"}}]\n',
        encoding="utf-8",
    )
    code, _, err = llmbench(capsys, *head, "sweep", str(sweep), "--baseline", "nosuchrun", "--store", str(db))
    assert code == 2 and "nosuchrun" in err  # refused before anything starts
    code, out, err = llmbench(capsys, *head, "sweep", str(sweep), "--baseline", baseline[:10], "--store",
                              str(db), "--report", str(tmp_path / "r.html"))  # fmt: skip
    assert code == 1, err
    flat = " ".join(out.split())
    assert "gate regression<+0pts fixed on" in flat and "pass: 0 of 8 regression items fixed in BASE" in flat
    assert "gate regression<+0pts relapsed on" in flat
    assert "FAIL: 8 of 8 regression items fixed in BASE came back in NEW" in flat
    assert "McNemar exact p = 0.00781 (significant at 5%)" in flat
