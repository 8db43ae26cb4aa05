"""Suite files: validation with file:line errors, builtin names, the content hash and per-area limits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bench.accuracy.suite import (
    ExactSpec,
    JsonSchemaSpec,
    KeywordSpec,
    NumericSpec,
    load_suite,
)
from bench.errors import ConfigError
from bench.suite_files import builtin_suite_names


def write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_loads_items_hash_and_scorer_shorthand(tmp_path: Path) -> None:
    f = write(
        tmp_path / "s.jsonl",
        [
            {"id": "a", "area": "math", "prompt": "1+1?", "reference": "2", "scorer": "exact"},
            "",
            {
                "id": "b",
                "area": "math",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
                "references": ["4", "4.0"],
                "scorer": {"kind": "numeric", "tolerance": 0.5},
            },
            {"id": "c", "area": "json", "prompt": "JSON", "scorer": {"kind": "json_schema", "schema": {}}},
            {"id": "d", "area": "kw", "prompt": "x", "scorer": {"kind": "keyword", "keywords": ["k"]}},
        ],
    )
    suite = load_suite(str(f))
    assert suite.name == "s"
    assert suite.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert [i.id for i in suite.items] == ["a", "b", "c", "d"]
    assert isinstance(suite.items[0].scorer, ExactSpec)
    assert isinstance(suite.items[1].scorer, NumericSpec) and suite.items[1].scorer.tolerance == 0.5
    assert isinstance(suite.items[2].scorer, JsonSchemaSpec)
    assert isinstance(suite.items[3].scorer, KeywordSpec) and suite.items[3].scorer.mode == "all"
    assert suite.items[1].all_references == ["4", "4.0"]
    assert suite.items[0].chat_messages() == [{"role": "user", "content": "1+1?"}]
    assert suite.items[1].chat_messages()[0] == {"role": "system", "content": "Be brief."}
    assert suite.areas == ["json", "kw", "math"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"id": "x", "area": "a", "reference": "1"}', "exactly one of 'prompt' or 'messages'"),
        ('{"id": "x", "area": "a", "prompt": "p"}', "needs 'reference' or 'references'"),
        ('{"id": "x", "area": "a", "prompt": "p", "reference": "1", "colour": 1}', "colour"),
        ('{"id": "x", "area": "a", "prompt": "p", "reference": "1", "scorer": "fuzzy"}', "scorer"),
        ('{"id": "x", "area": "a", "prompt": "p", "scorer": "judge"}', "needs a 'rubric'"),
        ('{"id": "x", "area": "a", "prompt": "p", "reference": "1", "references": ["1"]}', "not both"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = '{"id": "ok", "area": "a", "prompt": "p", "reference": "1"}'
    f = tmp_path / "bad.jsonl"
    f.write_text(good + "\n\n" + line + "\n")
    with pytest.raises(ConfigError) as err:
        load_suite(str(f))
    assert f"{f}:3:" in str(err.value)
    assert message in str(err.value)
    assert err.value.key == "line 3"


def test_duplicate_ids_and_empty_files_are_errors(tmp_path: Path) -> None:
    row = {"id": "x", "area": "a", "prompt": "p", "reference": "1"}
    with pytest.raises(ConfigError, match=r"dup.jsonl:2: duplicate id 'x' \(first on line 1\)"):
        load_suite(str(write(tmp_path / "dup.jsonl", [row, row])))
    with pytest.raises(ConfigError, match="no items"):
        load_suite(str(write(tmp_path / "empty.jsonl", [""])))
    with pytest.raises(ConfigError, match="suite file not found"):
        load_suite(str(tmp_path / "missing.jsonl"))


def test_builtin_suites_resolve_and_unknown_lists_them() -> None:
    names = builtin_suite_names()
    assert {"tiny-skills", "general"} <= set(names)
    suite = load_suite("builtin:tiny-skills")
    assert suite.name == "tiny-skills" and len(suite.items) == 400
    assert suite.areas == ["arithmetic", "comparison", "lookup", "string"]
    with pytest.raises(ConfigError) as err:
        load_suite("builtin:nope")
    assert "builtin:tiny-skills" in err.value.fix


def test_general_suite_is_valid_and_multi_area() -> None:
    suite = load_suite("builtin:general")
    assert 60 <= len(suite.items) <= 100
    kinds = {i.scorer.kind for i in suite.items}
    assert {"numeric", "json_schema", "keyword", "regex", "exact"} <= kinds
    assert {"reasoning", "math", "extraction", "summarization", "refusal", "hallucination"} <= set(
        suite.areas
    )


def test_limit_keeps_the_first_n_of_every_area() -> None:
    suite = load_suite("builtin:tiny-skills").limit(3)
    assert len(suite.items) == 12
    assert {a: sum(i.area == a for i in suite.items) for a in suite.areas} == {
        "arithmetic": 3,
        "comparison": 3,
        "lookup": 3,
        "string": 3,
    }
    assert suite.limit(None) is suite


@pytest.mark.parametrize(
    ("scorer", "refs", "message"),
    [
        ({"kind": "numeric"}, ["four"], "reference 'four' is not a number"),
        ({"kind": "json_schema", "schema": {"type": "objekt"}}, [], "the schema is invalid"),
        ({"kind": "json_schema", "schema": {"type": "object"}}, ["{not json"], "is not JSON"),
        ({"kind": "regex", "pattern": "(unclosed"}, ["x"], "does not compile"),
    ],
)
def test_a_reference_the_scorer_cannot_use_fails_when_the_suite_loads(
    tmp_path: Path, scorer: dict[str, object], refs: list[str], message: str
) -> None:
    good = {"id": "ok", "area": "a", "prompt": "p", "reference": "1", "scorer": "numeric"}
    bad = {
        "id": "bad",
        "area": "a",
        "prompt": "p",
        "scorer": scorer,
        **({"references": refs} if refs else {}),
    }
    f = write(tmp_path / "s.jsonl", [good, bad])
    with pytest.raises(ConfigError, match=message) as err:
        load_suite(str(f))
    assert f"{f}:2" in str(err.value)  # file and line, before any request is sent
