"""llmbench suites: JSONL files of {id, area, prompt | messages, reference(s), scorer, rubric?}.

`builtin:NAME` resolves to bench/suites/NAME.jsonl. Every line is validated; a bad line is reported
with the file and the line number. The suite's hash covers the file's bytes, so a stored run says
exactly which items it scored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.errors import ConfigError
from bench.prompts.templates import PromptTemplate, render, render_text
from bench.suite_files import resolve_suite_path
from bench.validation import config_error, decode_utf8

SUITE_FORMAT_FIX = "see bench/suites/README.md for the suite format"
MANIFEST_SCHEMA: Literal["llmbench.suite/1"] = "llmbench.suite/1"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExactSpec(_Spec):
    """Normalized exact match against any reference."""

    kind: Literal["exact"] = "exact"


class RegexSpec(_Spec):
    """Extract with a regex (group 1 if present, else the whole match), then exact match."""

    kind: Literal["regex"] = "regex"
    pattern: str


class KeywordSpec(_Spec):
    """Keywords that must appear (all/any) or must not appear (none), case-insensitive, whole words."""

    kind: Literal["keyword"] = "keyword"
    mode: Literal["any", "all", "none"] = "all"
    keywords: list[str] = Field(min_length=1)


class NumericSpec(_Spec):
    """The last number in the answer equals the reference within an absolute or relative tolerance."""

    kind: Literal["numeric"] = "numeric"
    tolerance: float = Field(0.0, ge=0)
    rel_tolerance: float = Field(0.0, ge=0)


class JsonSchemaSpec(_Spec):
    """The answer holds one JSON value valid against `schema`; fields in the reference must match."""

    kind: Literal["json_schema"] = "json_schema"
    schema_: Annotated[dict[str, Any], Field(alias="schema")]


class EmbeddingSpec(_Spec):
    """Cosine similarity to the reference (advisory only: never the correctness metric)."""

    kind: Literal["embedding"] = "embedding"


class JudgeSpec(_Spec):
    """An LLM judge applies the item's rubric and returns a structured verdict."""

    kind: Literal["judge"] = "judge"


ScorerSpec = Annotated[
    ExactSpec | RegexSpec | KeywordSpec | NumericSpec | JsonSchemaSpec | EmbeddingSpec | JudgeSpec,
    Field(discriminator="kind"),
]


class Message(_Spec):
    """One chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


class SuiteItem(_Spec):
    """One question of a suite."""

    id: str = Field(min_length=1)
    area: str = Field(min_length=1)
    prompt: str | None = None
    messages: list[Message] | None = None
    reference: str | None = None
    references: list[str] | None = None
    scorer: ScorerSpec = ExactSpec()
    rubric: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    vars: dict[str, str] | None = Field(
        None, description="values of a prompt template's variables (the run names the template)"
    )

    @model_validator(mode="before")
    @classmethod
    def _scorer_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("scorer"), str):
            data = {**data, "scorer": {"kind": data["scorer"]}}
        return data

    @model_validator(mode="after")
    def _complete(self) -> SuiteItem:
        if self.vars is not None and self.messages is not None:
            raise ValueError(
                "'vars' fill a prompt template: give them alone or with 'prompt', not 'messages'"
            )
        if self.prompt is not None and self.messages is not None:
            raise ValueError("set exactly one of 'prompt' or 'messages'")
        if self.prompt is None and self.messages is None and self.vars is None:
            raise ValueError("set exactly one of 'prompt' or 'messages' (or 'vars' for a prompt template)")
        if self.reference is not None and self.references is not None:
            raise ValueError("set 'reference' or 'references', not both")
        needs_ref = not isinstance(self.scorer, KeywordSpec | JudgeSpec | JsonSchemaSpec)
        if needs_ref and not self.all_references:
            raise ValueError(f"scorer {self.scorer.kind!r} needs 'reference' or 'references'")
        if isinstance(self.scorer, JudgeSpec) and not self.rubric:
            raise ValueError("scorer 'judge' needs a 'rubric'")
        self._check_references()
        return self

    def _check_references(self) -> None:
        """A reference the scorer cannot use is an error when the suite loads, not in the middle of a run."""
        scorer = self.scorer
        if isinstance(scorer, RegexSpec):
            try:
                re.compile(scorer.pattern)
            except re.error as exc:
                raise ValueError(
                    f"scorer 'regex': pattern {scorer.pattern!r} does not compile: {exc}"
                ) from exc
        if isinstance(scorer, NumericSpec):
            for ref in self.all_references:
                try:
                    float(ref.replace(",", ""))
                except ValueError:
                    raise ValueError(f"scorer 'numeric': reference {ref!r} is not a number") from None
        if isinstance(scorer, JsonSchemaSpec):
            import jsonschema  # lazy: only suites with JSON items pay for the import

            try:
                jsonschema.validators.validator_for(scorer.schema_).check_schema(scorer.schema_)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"scorer 'json_schema': the schema is invalid: {exc.message}") from None
            for ref in self.all_references:
                try:
                    json.loads(ref)
                except ValueError:
                    raise ValueError(f"scorer 'json_schema': reference {ref[:60]!r} is not JSON") from None

    @property
    def all_references(self) -> list[str]:
        if self.references is not None:
            return list(self.references)
        return [self.reference] if self.reference is not None else []

    def chat_messages(self) -> list[dict[str, str]]:
        """The item as chat messages (a bare prompt becomes one user message)."""
        if self.messages is not None:
            return [m.model_dump() for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]

    def rendered(self, template: PromptTemplate) -> SuiteItem:
        """The item asked through `template`: its prompt fills the one variable its `vars` leave open (or
        its vars fill them all); ConfigError naming the item when that does not work."""
        if self.messages is not None:
            raise ConfigError(
                f"item {self.id!r} gives chat messages: a prompt template renders a prompt or vars",
                key=self.id,
                fix="give the item a 'prompt' (or 'vars'), or run without --template",
            )
        try:
            if self.prompt is not None:
                messages = render_text(template, self.prompt, self.vars)
            else:
                messages = render(template, self.vars or {})
        except ConfigError as exc:
            raise ConfigError(f"item {self.id!r}: {exc}", key=self.id, fix=exc.fix) from exc
        data = self.model_dump(by_alias=True, exclude={"prompt", "vars", "messages"})
        return SuiteItem.model_validate({**data, "messages": messages})


class SuiteManifest(BaseModel):
    """`llmbench.suite/1` (NAME.suite.json beside NAME.jsonl, written by `llmbench suite import`): the
    suite's version and the sha256 of the version's items, its regression area, its history file."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_: Literal["llmbench.suite/1"] = Field(MANIFEST_SCHEMA, alias="schema")
    name: str
    version: int = Field(ge=1)
    sha256: str
    items: int = 0
    regression_items: int = 0
    regression_area: str = "regression"
    areas: dict[str, int] = Field(default_factory=dict)
    history: str | None = None


def manifest_path(suite_path: Path) -> Path:
    """Where a suite file's manifest lives: NAME.suite.json beside NAME.jsonl."""
    return suite_path.with_name(suite_path.stem + ".suite.json")


def read_manifest(path: Path) -> SuiteManifest | None:
    """The manifest at `path`; None when there is none; ConfigError when it cannot be read."""
    if not path.is_file():
        return None
    try:
        return SuiteManifest.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise ConfigError(
            f"cannot read the suite manifest {path}: {exc}",
            file=str(path),
            fix="restore it from the suite's history, or delete it (a suite runs without one)",
        ) from exc


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its name, source file, content hash and items; its version and regression area when
    a manifest of this very content (same sha256) sits beside it."""

    name: str
    path: Path
    sha256: str
    items: list[SuiteItem]
    version: int | None = None
    regression_area: str | None = None  # the area of items users marked bad (None: no such items)

    @property
    def areas(self) -> list[str]:
        return sorted({item.area for item in self.items})

    def limit(self, n: int | None) -> Suite:
        """The first n items of every area, keeping the suite balanced (n=None keeps all)."""
        if n is None:
            return self
        seen: dict[str, int] = {}
        kept = []
        for item in self.items:
            if seen.get(item.area, 0) < n:
                seen[item.area] = seen.get(item.area, 0) + 1
                kept.append(item)
        return dataclasses.replace(self, items=kept)

    def rendered(self, template: PromptTemplate) -> Suite:
        """Every item asked through `template` (the suite's hash stays that of its file; runs record the
        template's own)."""
        return dataclasses.replace(self, items=[item.rendered(template) for item in self.items])

    def unrendered(self) -> list[str]:
        """Ids of items that give only template variables (they need a template to be asked)."""
        return [i.id for i in self.items if i.prompt is None and i.messages is None]


def load_suite(ref: str) -> Suite:
    """Read and validate a suite; a malformed line raises ConfigError with file and line number."""
    path = resolve_suite_path(ref)
    raw = path.read_bytes()
    items: list[SuiteItem] = []
    ids: dict[str, int] = {}
    for lineno, line in enumerate(decode_utf8(raw, path, what="the suite").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})",
                file=str(path),
                key=f"line {lineno}",
                fix="each line must be one JSON object",
            ) from exc
        try:
            item = SuiteItem.model_validate(data)
        except ValidationError as exc:
            error = config_error(exc, file=f"{path}:{lineno}", model=SuiteItem, fix=SUITE_FORMAT_FIX)
            raise ConfigError(str(error), file=str(path), key=f"line {lineno}", fix=error.fix) from exc
        if item.id in ids:
            raise ConfigError(
                f"{path}:{lineno}: duplicate id {item.id!r} (first on line {ids[item.id]})",
                file=str(path),
                key=f"line {lineno}",
                fix="give every item a unique id",
            )
        ids[item.id] = lineno
        items.append(item)
    if not items:
        raise ConfigError(f"{path}: the suite has no items", file=str(path), fix="add JSONL lines")
    name = ref.removeprefix("builtin:") if ref.startswith("builtin:") else path.stem
    sha = hashlib.sha256(raw).hexdigest()
    manifest = read_manifest(manifest_path(path))
    version = None
    regression = "regression" if any(i.area == "regression" for i in items) else None
    if manifest is not None and manifest.sha256 == sha:  # a manifest of other content says nothing here
        version = manifest.version
        regression = manifest.regression_area if manifest.regression_items else None
    return Suite(name, path, sha, items, version, regression)
