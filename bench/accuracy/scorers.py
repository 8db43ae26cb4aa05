"""Scorers: turn a model's answer into a verdict. A plain registry keyed by the spec's `kind`.

Deterministic scorers (exact, regex, keyword, numeric, json_schema) are pure functions. Embedding
similarity is advisory (never decides correctness). The judge lives in `judge.py`, since it makes calls.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.accuracy.suite import (
    ExactSpec,
    JsonSchemaSpec,
    KeywordSpec,
    NumericSpec,
    RegexSpec,
    SuiteItem,
)


@dataclass(frozen=True)
class Verdict:
    """The outcome of scoring one answer: correct (None = not decided here), a score in [0, 1], why."""

    correct: bool | None
    score: float | None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_PUNCT_EDGES = " \t\n\r.,;:!?\"'`*()[]"
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def normalize(text: str) -> str:
    """Lowercase, NFKC, collapse white space, strip surrounding punctuation and quotes."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = " ".join(text.split())
    return text.strip(_PUNCT_EDGES)


def score_exact(item: SuiteItem, output: str) -> Verdict:
    """Normalized answer equals a normalized reference."""
    got = normalize(output)
    refs = [normalize(r) for r in item.all_references]
    ok = got in refs
    return Verdict(ok, float(ok), "" if ok else f"expected {item.all_references[0]!r}")


def score_regex(item: SuiteItem, output: str) -> Verdict:
    """Extract with the pattern, then exact-match the extraction."""
    assert isinstance(item.scorer, RegexSpec)
    match = re.search(item.scorer.pattern, output, flags=re.IGNORECASE | re.DOTALL)
    if match is None:
        return Verdict(False, 0.0, "pattern not found in the answer")
    extracted = match.group(1) if match.groups() else match.group(0)
    ok = normalize(extracted) in {normalize(r) for r in item.all_references}
    return Verdict(ok, float(ok), f"extracted {extracted!r}", {"extracted": extracted})


def score_keyword(item: SuiteItem, output: str) -> Verdict:
    """All/any/none of the keywords appear as whole words (case-insensitive)."""
    assert isinstance(item.scorer, KeywordSpec)
    text = normalize(output)
    found = [k for k in item.scorer.keywords if re.search(rf"(?<!\w){re.escape(normalize(k))}(?!\w)", text)]
    mode = item.scorer.mode
    ok = {"all": len(found) == len(item.scorer.keywords), "any": bool(found), "none": not found}[mode]
    missing = sorted(set(item.scorer.keywords) - set(found))
    detail = f"found {found}" + (f", missing {missing}" if missing and mode != "none" else "")
    return Verdict(ok, float(ok), detail, {"found": found})


def _to_float(text: str) -> float:
    return float(text.replace(",", ""))


def score_numeric(item: SuiteItem, output: str) -> Verdict:
    """The last number in the answer is within tolerance of a numeric reference."""
    assert isinstance(item.scorer, NumericSpec)
    numbers = _NUMBER.findall(output)
    if not numbers:
        return Verdict(False, 0.0, "no number in the answer")
    got = _to_float(numbers[-1])
    spec = item.scorer
    for ref in item.all_references:
        want = _to_float(ref)
        if math.isclose(got, want, abs_tol=spec.tolerance, rel_tol=spec.rel_tolerance) or got == want:
            return Verdict(True, 1.0, f"{got:g}")
    return Verdict(False, 0.0, f"got {got:g}, expected {item.all_references[0]}")


def extract_json(output: str) -> Any:
    """The first JSON value in the answer, allowing ```json fences and text around it."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", output, flags=re.DOTALL)
    text = fenced.group(1) if fenced else output
    decoder = json.JSONDecoder()
    for start, ch in enumerate(text):
        if ch in "{[":
            try:
                value, _ = decoder.raw_decode(text[start:])
            except json.JSONDecodeError:
                continue
            return value
    raise ValueError("no JSON value in the answer")


def score_json_schema(item: SuiteItem, output: str) -> Verdict:
    """The answer's JSON is valid against the schema, and matches the reference's fields if one is given."""
    import jsonschema  # lazy: only suites with JSON items pay for the import

    assert isinstance(item.scorer, JsonSchemaSpec)
    try:
        value = extract_json(output)
    except ValueError as exc:
        return Verdict(False, 0.0, str(exc))
    try:
        jsonschema.validate(value, item.scorer.schema_)
    except jsonschema.ValidationError as exc:
        return Verdict(False, 0.0, f"schema: {exc.message}")
    for ref in item.all_references:
        expected = json.loads(ref)
        if not _subset(expected, value):
            return Verdict(False, 0.0, "valid JSON, but fields differ from the reference", {"parsed": value})
    return Verdict(True, 1.0, "valid", {"parsed": value})


def _subset(expected: Any, got: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in expected.items())
    if isinstance(expected, str) and isinstance(got, str):
        return normalize(expected) == normalize(got)
    if isinstance(expected, list):
        return isinstance(got, list) and len(expected) == len(got) and all(map(_subset, expected, got))
    return bool(expected == got)


Scorer = Callable[[SuiteItem, str], Verdict]

SCORERS: dict[str, Scorer] = {
    ExactSpec().kind: score_exact,
    "regex": score_regex,
    "keyword": score_keyword,
    "numeric": score_numeric,
    "json_schema": score_json_schema,
}


def score_deterministic(item: SuiteItem, output: str) -> Verdict:
    """Score with the item's deterministic scorer; embedding and judge are handled by the runner."""
    scorer = SCORERS.get(item.scorer.kind)
    if scorer is None:
        raise KeyError(f"scorer {item.scorer.kind!r} is not deterministic")
    return scorer(item, output)
