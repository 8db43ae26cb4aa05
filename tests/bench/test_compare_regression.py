"""Feedback into regression suites, end to end as a user runs it: `llmbench suite import` of a feedback
file, `bench accuracy` of two versions of a system against a real loopback server, and `llmbench compare`
failing (exit 1, McNemar's p in the message) when fixed complaints come back significantly, passing when
the difference is not significant. McNemar's p is the exact two-sided binomial test (bench.stats)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.records import ItemRecord
from bench.report.compare import input_tokens_delta
from bench.report.regression import check_regression
from bench.stats import mcnemar_exact
from bench.store import Store

# Eight complaints (thumbs down, with the answer the user expected) and four questions answered well.
COMPLAINTS = [(f"What is the code of order {n}?", f"C{n}") for n in range(8)]
PRAISED = [(f"Spell the word {w}.", w.upper()) for w in ("ant", "bee", "cat", "dog")]


class Answers(BaseHTTPRequestHandler):
    """Model 'm' answers each question from `answers` (the last user message's text), 'no idea' else."""

    answers: dict[str, str]

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        data = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = body["messages"][-1]["content"]
        text = self.answers.get(question, "no idea")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        usage = {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}}
        self.wfile.write(b"data: %s\n\ndata: %s\n\ndata: [DONE]\n\n" % (
            json.dumps(chunk).encode(), json.dumps(usage).encode()))  # fmt: skip


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(answers: dict[str, str]) -> str:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Answers,), {"answers": answers}))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def llmbench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The feedback file imported as a suite: 8 regression items and 4 ordinary ones."""
    lines = [{"input": q, "output": "wrong", "thumbs": "down", "expected": a} for q, a in COMPLAINTS]
    lines += [{"input": q, "output": a, "thumbs": "up", "expected": a} for q, a in PRAISED]
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    code, out, err = llmbench(capsys, "suite", "import", str(feedback), "--format", "feedback",
                              "--name", "support", "--out", str(tmp_path / "suites"), "--json")  # fmt: skip
    assert code == 0, err
    written = json.loads(out)
    assert (written["version"], written["items"], written["regression_items"]) == (1, 12, 8)
    return tmp_path / "suites" / "support.jsonl"


def run(capsys: pytest.CaptureFixture[str], url: str, suite: Path, db: Path) -> str:
    code, out, err = llmbench(capsys, "bench", "accuracy", "--target", url, "--suite", str(suite),
                              "--server-kind", "generic", "--store", str(db), "--json")  # fmt: skip
    assert code == 0, err
    return str(json.loads(out)["run_id"])


def answers(broken: int) -> dict[str, str]:
    """Every question answered right but the first `broken` complaints (they come back)."""
    right = dict(COMPLAINTS + PRAISED)
    return {q: ("wrong again" if i < broken else a) for i, (q, a) in enumerate(right.items())}


@pytest.mark.slow  # about 3.9 s: scripts/test runs it, scripts/check stays under a minute
def test_fixed_complaints_that_come_back_fail_compare_with_mcnemars_p(
    serve: Any, suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BASE answers all 12 right. NEW breaks 6 of the 8 fixed complaints: 6 discordant pairs, all one way;
    exact McNemar p = 2 · (1/2)^6 = 0.03125 < 0.05 → exit 1. NEW breaking 5: p = 2 · (1/2)^5 = 0.0625 → not
    significant, exit 0 (and says so)."""
    db = tmp_path / "r.sqlite"
    base = run(capsys, serve(answers(0)), suite, db)
    with Store.open(db) as store:
        profile = store.get_run(base).accuracy_profile
    assert (profile.suite_version, profile.regression_area) == (1, "regression")
    six = run(capsys, serve(answers(6)), suite, db)
    five = run(capsys, serve(answers(5)), suite, db)

    code, out, err = llmbench(capsys, "compare", base, six, "--store", str(db))
    assert code == 1, err
    flat = " ".join(out.split())
    assert "gate regression<+0pts" in flat and "FAIL: 6 of 8 regression items fixed in BASE came back" in flat
    assert "McNemar exact p = 0.0312 (significant at 5%)" in flat

    code, out, err = llmbench(capsys, "compare", base, five, "--store", str(db), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc["regression"]["came_back"]) == 5 and doc["regression"]["fixed"] == []
    assert doc["regression"]["mcnemar_p"] == pytest.approx(0.0625) and doc["failed"] is False
    (gate,) = doc["gates"]
    assert gate["gate"] == "regression<+0pts" and gate["verdict"].startswith("pass: 5 of 8")
    assert "not significant at 5%" in gate["verdict"]


def test_the_regression_check_by_hand() -> None:
    """Regression items r1..r5; BASE right on r1–r4, NEW right on r2, r5: came back r1, r3, r4 (3), fixed
    r5 (1). Scores 4/5 → 2/5: −40 points. McNemar exact on 3 vs 1: p = 2 · (C(4,0) + C(4,1)) / 2^4 = 0.625.
    An item of another area (x) is left out."""

    def items(right: set[str]) -> list[ItemRecord]:
        out = [ItemRecord(f"r{n}", "ok", "regression", correct=f"r{n}" in right) for n in range(1, 6)]
        return [*out, ItemRecord("x", "ok", "other", correct=False)]

    check = check_regression("regression", items({"r1", "r2", "r3", "r4"}), items({"r2", "r5"}))
    assert check is not None
    assert (check.n, check.came_back, check.fixed) == (5, ["r1", "r3", "r4"], ["r5"])
    assert check.diff_points == pytest.approx(-40.0)
    assert check.p_value == mcnemar_exact(3, 1) == pytest.approx(0.625)
    assert not check.failed and "3 of 5 regression items fixed in BASE came back" in check.sentence()


def test_the_input_tokens_a_prompt_version_adds_by_hand() -> None:
    """Items a, b, c with 10, 20, 30 prompt tokens (BASE) and 30, 50, 55 (NEW): means 20 → 45, +25 per item
    (+125%); per-item differences 20, 30, 25: sd 5, t95(2) = 4.303, half-width 4.303 · 5/√3 = 12.4217 →
    [12.578, 37.422], significant. An item on one side only is left out."""
    d = input_tokens_delta({"a": 10, "b": 20, "c": 30, "x": 99}, {"a": 30, "b": 50, "c": 55})
    assert (d.base, d.new, d.change) == (20.0, 45.0, 25.0) and d.change_rel == pytest.approx(1.25)
    assert d.ci is not None and d.ci == pytest.approx((12.5783, 37.4217), abs=1e-4)
    assert d.significant is True and d.unit == "tok"
    assert input_tokens_delta({"a": 1}, {"b": 2}).reason == "no item with a token count on both sides"
