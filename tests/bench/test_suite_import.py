"""`llmbench suite import`: feedback and test exports become a versioned suite; bad answers become
regression items; malformed lines are listed with file:line and skipped only when asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.accuracy.scorers import score_deterministic
from bench.accuracy.suite import load_suite
from bench.accuracy.suite_import import ImportSpec, import_suite
from bench.cli import main
from bench.errors import ConfigError

FEEDBACK = [
    {"id": "t-1", "input": "What is the capital of Peru?", "output": "Quito", "thumbs": "down",
     "expected": "Lima"},
    {"input": "Summarize our refund policy.", "output": "No refunds.", "rating": 1,
     "rubric": "Must mention the 30-day refund window."},
    {"input": "What is 2 + 2?", "output": "4", "thumbs": "up"},
    {"input": "Translate 'cat' to French.", "output": "chien", "rating": 2},
    {"input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Largest planet?"}],
     "output": "Jupiter", "rating": 5, "expected": "Jupiter", "area": "science"},
]  # fmt: skip


def write_lines(path: Path, rows: list[object], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + extra)
    return path


def spec(tmp_path: Path, files: list[Path], **kw: object) -> ImportSpec:
    return ImportSpec.model_validate({"format": "feedback", "files": files, "name": "support",
                                      "out_dir": tmp_path / "suites", **kw})  # fmt: skip


def test_feedback_becomes_regression_items_and_a_suite_that_loads(tmp_path: Path) -> None:
    result = import_suite(spec(tmp_path, [write_lines(tmp_path / "fb.jsonl", FEEDBACK)]))
    assert (result.version, result.items, result.regression_items, result.changed) == (1, 3, 2, True)
    assert [p.where.rsplit(":", 1)[1] for p in result.unchecked] == ["3", "4"]  # nothing to check them with
    assert "marked bad, but has no expected answer or rubric" in result.unchecked[1].message
    suite = load_suite(str(result.suite_path))
    assert suite.sha256 == result.sha256  # what a run records as suite_sha256
    by_id = {i.id: i for i in suite.items}
    peru = by_id["reg-t-1"]
    assert (peru.area, peru.reference, peru.scorer.kind) == ("regression", "Lima", "exact")
    assert score_deterministic(peru, "Quito").correct is False  # the complaint, if it came back, fails
    assert score_deterministic(peru, "Lima").correct is True
    refund = next(i for i in suite.items if i.scorer.kind == "judge")
    assert refund.area == "regression" and refund.rubric == "Must mention the 30-day refund window."
    assert refund.id.startswith("reg-")
    planet = next(i for i in suite.items if i.area == "science")
    assert planet.messages is not None and planet.id.startswith("fb-")


def test_versions_history_and_stable_ids(tmp_path: Path) -> None:
    first = write_lines(tmp_path / "a.jsonl", FEEDBACK[:2])
    one = import_suite(spec(tmp_path, [first]))
    again = import_suite(spec(tmp_path, [first]))
    assert (again.version, again.changed, again.added) == (1, False, [])  # the same feedback: no new version
    more = write_lines(tmp_path / "b.jsonl", [FEEDBACK[4]])
    two = import_suite(spec(tmp_path, [more]))
    assert (two.version, two.items, len(two.added), two.removed) == (2, 3, 1, [])
    folder = tmp_path / "suites"
    history = [json.loads(line) for line in (folder / "support.history.jsonl").read_text().splitlines()]
    assert [h["version"] for h in history] == [1, 2] and history[0]["sha256"] == one.sha256
    assert history[1]["added"] == two.added and history[1]["sources"][0]["file"] == str(more)
    manifest = json.loads((folder / "support.suite.json").read_text())
    assert (manifest["schema"], manifest["version"], manifest["sha256"]) == (
        "llmbench.suite/1",
        2,
        two.sha256,
    )
    assert manifest["regression_items"] == 2 and manifest["areas"] == {"regression": 2, "science": 1}
    assert load_suite(str(folder / "support.versions" / "v1.jsonl")).sha256 == one.sha256
    replaced = import_suite(spec(tmp_path, [more], replace=True))
    assert (replaced.version, replaced.items, len(replaced.removed)) == (3, 1, 2)


def test_malformed_lines_are_listed_and_skipped_only_when_asked(tmp_path: Path) -> None:
    bad = write_lines(tmp_path / "fb.jsonl", FEEDBACK[:1], extra='{not json\n{"input": "x", "stars": 3}\n')
    with pytest.raises(ConfigError) as info:
        import_suite(spec(tmp_path, [bad]))
    text = str(info.value)
    assert "2 malformed lines" in text and f"{bad}:2: not valid JSON" in text and f"{bad}:3: " in text
    assert "stars" in text and "--skip-invalid" in info.value.fix
    assert not (tmp_path / "suites").exists()
    result = import_suite(spec(tmp_path, [bad], skip_invalid=True))
    assert result.items == 1 and [p.where for p in result.skipped] == [f"{bad}:2", f"{bad}:3"]


def test_langfuse_items_with_scores_and_a_template(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text("schema: llmbench.prompt/1\nname: t\nversion: 1\nuser: 'Q about {{topic}}: {{q}}'\n")
    items = {"data": [
        {"id": "i1", "input": "Reset my password", "expectedOutput": "Use the reset link.",
         "sourceTraceId": "tr1", "status": "ACTIVE", "datasetId": "d", "createdAt": "2026-01-01T00:00:00Z"},
        {"id": "i2", "input": {"topic": "billing", "q": "refund?"}, "expectedOutput": "Within 30 days.",
         "sourceTraceId": "tr2", "metadata": {"area": "billing"}},
        {"id": "i3", "input": "old", "expectedOutput": "x", "status": "ARCHIVED"},
    ]}  # fmt: skip
    scores = [
        {"traceId": "tr1", "name": "user-feedback", "value": 0, "dataType": "BOOLEAN"},
        {"traceId": "tr2", "name": "user-feedback", "value": 1, "dataType": "BOOLEAN"},
    ]
    (tmp_path / "items.json").write_text(json.dumps(items))
    (tmp_path / "scores.json").write_text(json.dumps(scores))
    result = import_suite(spec(tmp_path, [tmp_path / "items.json"], format="langfuse",
                               scores=tmp_path / "scores.json", template=template))  # fmt: skip
    suite = {i.id: i for i in load_suite(str(result.suite_path)).items}
    assert set(suite) == {"reg-i1", "i2"} and suite["reg-i1"].area == "regression"
    assert suite["i2"].area == "billing"
    assert suite["i2"].messages is not None and suite["i2"].messages[0].content == "Q about billing: refund?"


def test_openai_evals_and_promptfoo(tmp_path: Path) -> None:
    evals = write_lines(tmp_path / "e.jsonl", [
        {"input": [{"role": "user", "content": "2+3?"}], "ideal": ["5", "five"], "extra_key": 1},
        {"input": "Capital of France?", "ideal": "Paris"},
    ])  # fmt: skip
    got = import_suite(spec(tmp_path, [evals], format="openai-evals", name="evals"))
    items = load_suite(str(got.suite_path)).items
    assert [i.all_references for i in items] == [["5", "five"], ["Paris"]] and got.regression_items == 0
    csv = tmp_path / "tests.csv"
    csv.write_text(
        "question,__expected,__metadata:area\n"
        "What is 2+2?,4,math\n"
        '"Name a color",contains-any:red,colors\n'
        "Explain DNS,llm-rubric: mentions name resolution,\n"
        "Say hi,javascript: output.length > 0,\n"
        "Give JSON,is-json,\n"
    )
    with pytest.raises(ConfigError, match=r"tests.csv:5: assertion 'javascript' cannot be checked"):
        import_suite(spec(tmp_path, [csv], format="promptfoo", name="pf"))
    pf = import_suite(spec(tmp_path, [csv], format="promptfoo", name="pf", skip_invalid=True))
    kinds = [(i.area, i.scorer.kind) for i in load_suite(str(pf.suite_path)).items]
    assert kinds == [
        ("math", "exact"),
        ("colors", "keyword"),
        ("promptfoo", "judge"),
        ("promptfoo", "json_schema"),
    ]


def test_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fb = write_lines(tmp_path / "fb.jsonl", FEEDBACK)
    out_dir = tmp_path / "suites"
    main(["suite", "import", str(fb), "--format", "feedback", "--name", "support", "--out", str(out_dir)])
    out = capsys.readouterr()
    assert "suite support v1 (new version" in out.out and "3 items, 2 regression" in out.out
    assert f"not imported: {fb}:3" in out.err
    with pytest.raises(SystemExit) as exit_info:
        main(["suite", "import", str(tmp_path / "none.jsonl"), "--format", "feedback", "--name", "x"])
    assert exit_info.value.code == 2 and "no file at" in capsys.readouterr().err
