"""`llmbench whatif route|cache` as a user runs them (in-process through main(), errors included)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench.accuracy.documents import AccuracySummary
from bench.cli import main
from bench.records import ItemRecord
from bench.store import Store
from tests.documents import accuracy_profile, provenance, target

DATA = Path(__file__).resolve().parents[3] / "examples" / "whatif"  # the shipped request-log example


def llmbench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str, str]:
    """Two accuracy runs of 60 items: 'tiny' (cheap, right on the short prompts, unsure when wrong) and
    'api' (ten times the price, right on 95%)."""
    rng = random.Random(3)
    lines, tiny, api = [], [], []
    for k in range(60):
        hard = k % 2 == 1
        prompt = ("explain in detail " * 8 if hard else "add ") + str(k)
        lines.append(
            json.dumps(
                {"id": f"q{k}", "area": "hard" if hard else "easy", "prompt": prompt, "reference": "x"}
            )
        )
        right = not hard or rng.random() < 0.2
        p10 = -0.05 if right else -2.0
        lp = {"n": 4, "min": p10, "p05": p10, "p10": p10, "p25": p10, "p50": p10, "mean": p10}
        area = "hard" if hard else "easy"
        tiny.append(ItemRecord(f"q{k}", "ok", area, correct=right, output="x" if right else "y",
                               latency_ms=100.0, cost_usd=0.0001, extra={"logprobs": lp}))  # fmt: skip
        api.append(ItemRecord(f"q{k}", "ok", area, correct=rng.random() > 0.05, output="x",
                              latency_ms=600.0, cost_usd=0.001))  # fmt: skip
    suite = tmp_path / "suite.jsonl"
    suite.write_text("\n".join(lines) + "\n")
    import hashlib

    sha = hashlib.sha256(suite.read_bytes()).hexdigest()
    db = tmp_path / "results.sqlite"
    ids = []
    with Store.open(db) as s:
        for name, items in (("tiny", tiny), ("api", api)):
            profile = accuracy_profile(str(suite), target=name, suite_sha256=sha)
            run = s.start_run("accuracy", target(name), profile, provenance())
            s.add_items(run, items)
            right = sum(1 for i in items if i.correct)
            summary = AccuracySummary(suite=str(suite), target=name, score=right / len(items), n=len(items),
                                      correct=right)  # fmt: skip
            s.finish_run(run, "complete", summary)
            ids.append(run)
    return db, ids[0], ids[1]


def test_route_prints_the_policies_and_exports_the_chosen_one(
    store: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, tiny, api = store
    policy = tmp_path / "policy.json"
    code, out, err = llmbench(
        capsys, "whatif", "route", tiny[:8], api[:8], "--store", str(db), "--signal", "prompt_length",
        "--signal", "logprob", "--signal", "judge", "--max-drop", "5", "--export", str(policy),
    )  # fmt: skip
    assert code == 0, err
    assert "60 shared items; cheap = tiny, strong = api" in out
    for text in (
        "router:prompt_length",
        "cascade:logprob(p10)",
        "oracle",
        "APGR",
        "CPT50",
        "recommendation:",
    ):
        assert text in out
    assert "sensitivity to the threshold (held out)" in out and "by area (held out)" in out
    assert "skipped cascade:judge: no judge given (--judge NAME)" in out
    doc = json.loads(policy.read_text())
    assert doc["schema"] == "llmbench.route-policy/1" and doc["fallback"] == "strong"
    assert doc["strong"]["name"] == "api" and f"wrote {policy}" in err


def test_route_json(store: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    db, tiny, api = store
    code, out, err = llmbench(
        capsys, "whatif", "route", tiny, api, "--store", str(db), "--signal", "logprob", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "llmbench.whatif-route/1" and doc["items"] == 60
    (policy,) = doc["policies"]
    assert policy["name"] == "cascade:logprob(p10)" and len(policy["sweep"]) == 11
    assert set(policy["vs_strong"]) >= {"diff_points", "ci95_points", "mcnemar_p"}


def test_route_refuses_too_few_shared_items_with_the_count(
    store: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, tiny, api = store
    code, _, err = llmbench(capsys, "whatif", "route", tiny, api, "--store", str(db), "--min-shared", "100")
    assert code == 2
    assert "invalid value for --min-shared: the runs share 60 scored items, fewer than the minimum 100" in err


def test_route_keyword_needs_a_keyword(
    store: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, tiny, api = store
    code, _, err = llmbench(capsys, "whatif", "route", tiny, api, "--store", str(db), "--signal", "keyword")
    assert code == 2 and "--keyword" in err


def test_cache_exact_on_a_log(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = llmbench(
        capsys, "whatif", "cache", "--log", str(DATA / "support-log.jsonl"), "--no-semantic"
    )
    assert code == 0, err
    assert "20 requests; fill on the first 10, measured on the last 10" in out
    assert "exact" in out and "measured" in out and "net $ saved" in out


def test_cache_without_timestamps_prints_the_caveat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "bodies.jsonl"
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    log.write_text(json.dumps(body) + "\n" + json.dumps(body) + "\n")
    code, out, err = llmbench(
        capsys, "whatif", "cache", "--log", str(log), "--no-semantic", "--fill-share", "0"
    )
    assert code == 0, err
    assert "note: the log has no timestamps: replayed in order" in out


def test_cache_names_where_to_put_a_missing_embedding_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = tmp_path / "no-model"
    code, _, err = llmbench(
        capsys, "whatif", "cache", "--log", str(DATA / "support-log.jsonl"), "--embedding-model", str(where)
    )
    assert code == 2
    assert (
        f"no sentence-transformers model at {where}" in err and "fix: put a sentence-transformers copy" in err
    )


def test_cache_needs_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = llmbench(capsys, "whatif", "cache")
    assert code == 2 and "--run RUN_ID or --log FILE" in err


def test_a_malformed_log_line_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "bad.jsonl"
    log.write_text('{"body": {"messages": []}, "timestamp": 1}\n{"body": {"prompt": "x"}, "when": 2}\n')
    code, _, err = llmbench(capsys, "whatif", "cache", "--log", str(log), "--no-semantic")
    assert code == 2 and f"{log}:2" in err and "when" in err


@pytest.mark.slow  # loads the embedding model (about 7 s)
def test_cache_semantic_on_the_support_log(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = llmbench(
        capsys, "whatif", "cache", "--log", str(DATA / "support-log.jsonl"), "--thresholds", "0.85,0.9,0.95"
    )
    assert code == 0, err
    assert "semantic ≥ 0.9" in out
    off, on = "'How do I turn off dark mode?'", "'How do I turn on dark mode?'"
    assert f"false hit at ≥ 0.9: {off} served the answer to {on}" in out
