"""Readers of user feedback and test exports, in a registry keyed by format; each gives FeedbackRecords and
the problems of its malformed lines (file:line and why).

Formats:
- `feedback`: llmbench's own JSONL, one object per line: `input` (text or chat messages), `output` (what the
  model answered), `rating` (a number; below `bad_below` is bad) or `thumbs` ("up"/"down" or true/false),
  and optionally `expected` (text or a list), `rubric`, `area`, `id`, `comment`. Unknown keys are errors.
- `langfuse`: a dataset items export (JSON array, `{"data": [...]}` or JSONL: `id`, `input`,
  `expectedOutput`, `metadata`, `sourceTraceId`, `status`), with an optional scores export (`traceId`,
  `name`, `value`, `stringValue`, `dataType`): an item whose source trace has a bad score was marked bad.
- `openai-evals`: OpenAI evals samples JSONL: `input` (text or chat messages) and `ideal` (text or a list).
- `promptfoo`: a promptfoo test CSV: variable columns, `__expected` (an assertion: plain text or `equals:`,
  `contains:`, `icontains:`, `contains-any:`, `contains-all:`, `not-contains:`, `is-json`, `llm-rubric:`),
  `__description`, `__metadata:area`. The prompt is the template rendered with the variables, or the only
  variable (or one named prompt, question, input or query).
Third-party exports carry many fields llmbench does not use; those are ignored, not errors.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.accuracy.suite import JsonSchemaSpec, JudgeSpec, KeywordSpec, Message, ScorerSpec
from bench.errors import ConfigError
from bench.prompts.templates import PromptTemplate, render
from bench.validation import problems, read_text

Format = Literal["feedback", "langfuse", "openai-evals", "promptfoo"]
FORMATS: tuple[Format, ...] = ("feedback", "langfuse", "openai-evals", "promptfoo")
BAD_LABELS = frozenset({"bad", "negative", "down", "thumbs_down", "thumbsdown", "incorrect", "wrong", "no"})
PROMPT_COLUMNS = ("prompt", "question", "input", "query")


@dataclass(frozen=True)
class Problem:
    """A malformed line: where (file:line) and why."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class FeedbackRecord:
    """One question with what the user (or the test) said about it."""

    where: str
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    output: str | None = None
    bad: bool | None = None  # None: not rated
    references: list[str] = field(default_factory=list)
    rubric: str | None = None
    area: str | None = None
    id: str | None = None
    scorer: ScorerSpec | None = None  # how the source says to check an answer (promptfoo assertions)


@dataclass(frozen=True)
class ReadOptions:
    """What the readers need besides the file."""

    bad_below: float = 3.0
    template: PromptTemplate | None = None
    scores: Path | None = None  # langfuse scores export


class _Invalid(Exception):
    pass


def _text(path: Path) -> str:
    try:
        return read_text(path, what="the import file")
    except FileNotFoundError as exc:
        raise ConfigError(f"no file at {path}", file=str(path), fix="check the path") from exc


def _jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    """(file:line, parsed JSON or _Invalid) for each non-empty line."""
    for lineno, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            yield where, _Invalid(f"not valid JSON ({exc.msg} at column {exc.colno})")


def _records(path: Path) -> Iterator[tuple[str, Any]]:
    """A JSON array, a `{"data": [...]}` page, or JSONL."""
    text = _text(path)
    stripped = text.lstrip()
    if stripped.startswith("[") or (
        stripped.startswith("{") and '"data"' in stripped[:200] and "\n{" not in text
    ):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})", file=str(path)
            ) from exc
        rows = data.get("data") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ConfigError(f"{path}: expected a list of items or {{'data': [...]}}", file=str(path))
        yield from ((f"{path}[{i}]", row) for i, row in enumerate(rows))
        return
    yield from _jsonl(path)


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise _Invalid("chat input must be a non-empty list of {role, content} messages")
    try:
        return [Message.model_validate(m).model_dump() for m in value]
    except ValidationError as exc:
        raise _Invalid(f"chat input: {problems(exc)[0].line()}") from None


def _question(value: Any, template: PromptTemplate | None) -> tuple[str | None, list[dict[str, str]] | None]:
    """(prompt, messages) from an input: text, chat messages, {messages: [...]} or variables."""
    if isinstance(value, str) and value.strip():
        return value, None
    if isinstance(value, list):
        return None, _messages(value)
    if isinstance(value, dict):
        if "messages" in value:
            return None, _messages(value["messages"])
        if template is not None:
            try:
                return None, render(template, value)
            except ConfigError as exc:
                raise _Invalid(str(exc)) from None
        texts = [v for v in value.values() if isinstance(v, str)]
        if len(value) == 1 and texts:
            return texts[0], None
        raise _Invalid(f"input is an object with keys {sorted(value)}: pass --template to render it")
    raise _Invalid("no input text")


def _references(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v.strip()]
    return [json.dumps(value, sort_keys=True, ensure_ascii=False)]


class FeedbackLine(BaseModel):
    """One line of llmbench's own feedback JSONL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    input: str | list[dict[str, Any]]
    output: str | None = None
    rating: float | None = None
    thumbs: Literal["up", "down"] | bool | None = None
    expected: str | list[str] | None = None
    rubric: str | None = None
    area: str | None = Field(None, min_length=1)
    comment: str | None = None


def read_feedback(path: Path, options: ReadOptions) -> Iterator[FeedbackRecord | Problem]:
    for where, data in _jsonl(path):
        try:
            if isinstance(data, _Invalid):
                raise data
            line = FeedbackLine.model_validate(data)
            prompt, messages = _question(line.input, options.template)
        except ValidationError as exc:
            yield Problem(where, problems(exc, FeedbackLine)[0].line())
            continue
        except _Invalid as exc:
            yield Problem(where, str(exc))
            continue
        bad = None
        if line.thumbs is not None:
            bad = line.thumbs in ("down", False)
        elif line.rating is not None:
            bad = line.rating < options.bad_below
        refs = _references(line.expected)
        yield FeedbackRecord(where, prompt, messages, line.output, bad, refs, line.rubric, line.area, line.id)


class _LangfuseItem(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # exports carry fields llmbench does not use

    id: str | None = None
    input: Any = None
    expectedOutput: Any = None  # the export's own camelCase names
    metadata: Any = None
    sourceTraceId: str | None = None
    status: str | None = None


class _LangfuseScore(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    traceId: str
    name: str | None = None
    value: float | None = None
    stringValue: str | None = None
    dataType: str | None = None


def score_is_bad(score: _LangfuseScore, bad_below: float) -> bool | None:
    """BOOLEAN: 0 is bad; CATEGORICAL: a bad label; NUMERIC: below `bad_below`."""
    kind = (score.dataType or "").upper()
    if kind == "CATEGORICAL" or (score.value is None and score.stringValue is not None):
        return None if score.stringValue is None else score.stringValue.strip().lower() in BAD_LABELS
    if score.value is None:
        return None
    if kind == "BOOLEAN":
        return score.value == 0
    return score.value < bad_below


def _bad_traces(path: Path, bad_below: float) -> dict[str, bool]:
    verdicts: dict[str, bool] = {}
    for where, data in _records(path):
        try:
            score = _LangfuseScore.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{where}: {problems(exc)[0].line()}", file=str(path)) from exc
        bad = score_is_bad(score, bad_below)
        if bad is not None:
            verdicts[score.traceId] = verdicts.get(score.traceId, False) or bad
    return verdicts


def read_langfuse(path: Path, options: ReadOptions) -> Iterator[FeedbackRecord | Problem]:
    verdicts = _bad_traces(options.scores, options.bad_below) if options.scores is not None else {}
    for where, data in _records(path):
        try:
            if isinstance(data, _Invalid):
                raise data
            item = _LangfuseItem.model_validate(data)
            if (item.status or "ACTIVE").upper() == "ARCHIVED":
                continue
            prompt, messages = _question(item.input, options.template)
        except ValidationError as exc:
            yield Problem(where, problems(exc)[0].line())
            continue
        except _Invalid as exc:
            yield Problem(where, str(exc))
            continue
        meta = item.metadata if isinstance(item.metadata, dict) else {}
        bad = verdicts.get(item.sourceTraceId) if item.sourceTraceId else None
        area, rubric = meta.get("area"), meta.get("rubric")
        yield FeedbackRecord(
            where, prompt, messages, None, bad, _references(item.expectedOutput),
            rubric if isinstance(rubric, str) else None, area if isinstance(area, str) else None, item.id,
        )  # fmt: skip


class _EvalSample(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # samples may carry other keys

    input: str | list[dict[str, Any]]
    ideal: str | list[str]


def read_openai_evals(path: Path, options: ReadOptions) -> Iterator[FeedbackRecord | Problem]:
    for where, data in _jsonl(path):
        try:
            if isinstance(data, _Invalid):
                raise data
            sample = _EvalSample.model_validate(data)
            prompt, messages = _question(sample.input, options.template)
        except ValidationError as exc:
            yield Problem(where, problems(exc, _EvalSample)[0].line())
            continue
        except _Invalid as exc:
            yield Problem(where, str(exc))
            continue
        yield FeedbackRecord(where, prompt, messages, references=_references(sample.ideal))


def promptfoo_assertion(text: str) -> tuple[ScorerSpec | None, list[str], str | None]:
    """(scorer, references, rubric) of one `__expected` value; _Invalid when llmbench cannot check it."""
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower() if sep else ""
    words = [w.strip() for w in rest.split(",") if w.strip()]
    if not sep or kind == "equals":
        return None, [rest.strip() if sep else text.strip()], None
    if kind in ("contains", "icontains"):
        return KeywordSpec(mode="all", keywords=[rest.strip()]), [], None
    if kind in ("contains-any", "icontains-any"):
        return KeywordSpec(mode="any", keywords=words), [], None
    if kind in ("contains-all", "icontains-all"):
        return KeywordSpec(mode="all", keywords=words), [], None
    if kind in ("not-contains", "not-icontains"):
        return KeywordSpec(mode="none", keywords=[rest.strip()]), [], None
    if kind == "llm-rubric":
        return JudgeSpec(), [], rest.strip()
    raise _Invalid(f"assertion {kind!r} cannot be checked by llmbench's scorers")


def read_promptfoo(path: Path, options: ReadOptions) -> Iterator[FeedbackRecord | Problem]:
    reader = csv.DictReader(_text(path).splitlines(keepends=True))
    for row in reader:
        where = f"{path}:{reader.line_num}"
        variables = {k: v for k, v in row.items() if k and not k.startswith("__")}
        expected = [v for k, v in row.items() if k and k.startswith("__expected") and v and v.strip()]
        try:
            if len(expected) > 1:
                raise _Invalid("several assertions: llmbench checks one per item")
            if not expected:
                raise _Invalid("no __expected assertion")
            if expected[0].strip().lower() == "is-json":
                scorer: ScorerSpec | None = JsonSchemaSpec.model_validate({"schema": {}})
                refs: list[str] = []
                rubric = None
            else:
                scorer, refs, rubric = promptfoo_assertion(expected[0])
            named = [variables[c] for c in PROMPT_COLUMNS if variables.get(c)]
            if options.template is not None:
                prompt, messages = _question(variables, options.template)
            elif len(variables) == 1 or named:
                prompt, messages = (named or list(variables.values()))[0], None
            else:
                raise _Invalid(f"variables {sorted(variables)}: pass --template to render the prompt")
        except _Invalid as exc:
            yield Problem(where, str(exc))
            continue
        area = row.get("__metadata:area") or None
        yield FeedbackRecord(
            where, prompt, messages, references=refs, rubric=rubric, area=area, scorer=scorer
        )


Reader = Callable[[Path, ReadOptions], Iterator[FeedbackRecord | Problem]]
READERS: Mapping[Format, Reader] = {
    "feedback": read_feedback,
    "langfuse": read_langfuse,
    "openai-evals": read_openai_evals,
    "promptfoo": read_promptfoo,
}
