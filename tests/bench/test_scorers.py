"""Deterministic scorers: exact, regex, keyword, numeric and JSON schema, on right and wrong answers."""

from __future__ import annotations

from typing import Any

import pytest

from bench.accuracy.scorers import extract_json, normalize, score_deterministic
from bench.accuracy.suite import SuiteItem


def item(scorer: Any = "exact", **fields: Any) -> SuiteItem:
    return SuiteItem.model_validate({"id": "i", "area": "a", "prompt": "q", "scorer": scorer, **fields})


def test_normalize() -> None:
    assert normalize("  The  Answer:\n 42. ") == "the answer: 42"
    assert normalize('"Lima"') == "lima"
    assert normalize("ｆｕｌｌ") == "full"  # NFKC folds full-width letters


@pytest.mark.parametrize(
    ("output", "ok"),
    [("Lima", True), (" lima.\n", True), ("'LIMA'", True), ("Lima, Peru", False), ("", False)],
)
def test_exact(output: str, ok: bool) -> None:
    v = score_deterministic(item(references=["Lima", "Lima city"]), output)
    assert v.correct is ok and v.score == float(ok)


def test_regex_extracts_then_matches() -> None:
    it = item({"kind": "regex", "pattern": r"answer:\s*(\w+)"}, reference="B")
    assert score_deterministic(it, "Thinking... Answer: b").correct is True
    wrong = score_deterministic(it, "answer: C")
    assert wrong.correct is False and wrong.extra["extracted"] == "C"
    assert score_deterministic(it, "no idea").detail == "pattern not found in the answer"
    whole = item({"kind": "regex", "pattern": r"\d+"}, reference="12")
    assert score_deterministic(whole, "it is 12 apples").correct is True


@pytest.mark.parametrize(
    ("mode", "output", "ok"),
    [
        ("all", "Paris is the capital of France.", True),
        ("all", "Paris is lovely.", False),
        ("any", "Only France here", True),
        ("any", "Berlin", False),
        ("none", "Berlin", True),
        ("none", "I love PARIS!", False),
        ("all", "Parisian France", False),  # whole words only
    ],
)
def test_keyword_modes(mode: str, output: str, ok: bool) -> None:
    it = item({"kind": "keyword", "mode": mode, "keywords": ["Paris", "France"]})
    assert score_deterministic(it, output).correct is ok


@pytest.mark.parametrize(
    ("output", "spec", "ok"),
    [
        ("The total is 1,234.", {}, True),
        ("First 3 then 1234", {}, True),  # the last number counts
        ("1234.4", {"tolerance": 0.5}, True),
        ("1240", {"rel_tolerance": 0.01}, True),
        ("1240", {"tolerance": 1}, False),
        ("about twelve hundred", {}, False),
        ("-1234", {}, False),
    ],
)
def test_numeric(output: str, spec: dict[str, float], ok: bool) -> None:
    assert score_deterministic(item({"kind": "numeric", **spec}, reference="1234"), output).correct is ok


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.mark.parametrize(
    ("output", "ok", "detail"),
    [
        ('{"name": "Ada", "age": 36}', True, "valid"),
        ('Here you go:\n```json\n{"name": "ada", "age": 36, "x": 1}\n```', True, "valid"),
        ('{"name": "Ada", "age": "36"}', False, "schema"),
        ('{"name": "Bob", "age": 36}', False, "fields differ"),
        ("no json at all", False, "no JSON"),
        ('{"name": "Ada", "age": 36', False, "no JSON"),
    ],
)
def test_json_schema(output: str, ok: bool, detail: str) -> None:
    it = item({"kind": "json_schema", "schema": SCHEMA}, reference='{"name": "Ada", "age": 36}')
    v = score_deterministic(it, output)
    assert v.correct is ok
    assert detail in v.detail


def test_json_schema_without_reference_checks_the_schema_only() -> None:
    it = item({"kind": "json_schema", "schema": SCHEMA})
    assert score_deterministic(it, '{"name": "Zed", "age": 1}').correct is True
    assert extract_json("x [1, 2] y") == [1, 2]


def test_judge_and_embedding_are_not_deterministic() -> None:
    with pytest.raises(KeyError):
        score_deterministic(item("embedding", reference="x"), "x")
