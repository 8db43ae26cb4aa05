"""Prompt templates: a versioned system prompt and user template with `{{variable}}` placeholders.

A template file (YAML or JSON, `llmbench.prompt/1`):

    schema: llmbench.prompt/1
    name: support-answer
    version: 3
    system: You are the support assistant of {{product}}. Answer in at most three sentences.
    user: "Customer question: {{question}}"
    defaults: {product: Acme Notes}      # optional values for variables the caller may leave out

Only `{{ name }}` (a Python identifier, spaces allowed inside the braces) is a placeholder; every other
brace is literal text, so JSON examples in a prompt need no escaping. `render(template, variables)` gives
chat messages and refuses a missing or an unknown variable; `render_text(template, text)` fills the one
variable without a default with a bare prompt text (a suite item's prompt, a load's prompt), and
`apply_to_messages` does so for a conversation's last user message. A run records `template.ref()`
(TemplateRef): its name, version and the sha256 of its content (name, version, system, user, defaults),
so a changed prompt is never mistaken for the old one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.documents import StoredModel
from bench.errors import ConfigError
from bench.validation import config_error, read_text

SCHEMA: Literal["llmbench.prompt/1"] = "llmbench.prompt/1"
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
TEMPLATE_FIX = "see bench/prompts/templates.py for the llmbench.prompt/1 format"


class TemplateRef(StoredModel):
    """What a run records about the prompt template it used: its name, version and content hash."""

    name: str
    version: str
    sha256: str

    @property
    def label(self) -> str:
        """'name@version (sha256 prefix)', as tables show it."""
        return f"{self.name}@{self.version} ({self.sha256[:8]})"


class PromptTemplate(BaseModel):
    """A versioned prompt: a system prompt (optional) and a user template."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["llmbench.prompt/1"] = Field(SCHEMA, alias="schema")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str = Field(min_length=1, description="e.g. 3 or 2026-01-a")
    system: str | None = None
    user: str = Field(min_length=1)
    defaults: dict[str, str] = Field(default_factory=dict)
    description: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _defaults_are_variables(self) -> PromptTemplate:
        unknown = sorted(set(self.defaults) - set(self.variables))
        if unknown:
            raise ValueError(f"defaults for variables the template does not use: {', '.join(unknown)}")
        return self

    @property
    def variables(self) -> list[str]:
        """Every placeholder's name, in order of first appearance (system first)."""
        seen: dict[str, None] = {}
        for text in (self.system or "", self.user):
            for match in PLACEHOLDER.finditer(text):
                seen.setdefault(match.group(1), None)
        return list(seen)

    @property
    def sha256(self) -> str:
        """sha256 (hex) of the content: name, version, system, user and defaults as canonical JSON."""
        content = {"name": self.name, "version": self.version, "system": self.system, "user": self.user,
                   "defaults": self.defaults}  # fmt: skip
        return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    @property
    def free_variables(self) -> list[str]:
        """The variables without a default: what a caller must give."""
        return [v for v in self.variables if v not in self.defaults]

    def ref(self) -> TemplateRef:
        """What a run records about the prompt it used."""
        return TemplateRef(name=self.name, version=self.version, sha256=self.sha256)


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with every placeholder replaced by its value (all must be present)."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def render(template: PromptTemplate, variables: Mapping[str, Any]) -> list[dict[str, str]]:
    """Chat messages: the system prompt (if any), then the user message; ConfigError for a missing or an
    unknown variable. Values are turned into text with str()."""
    names = template.variables
    unknown = sorted(set(variables) - set(names))
    values = {**template.defaults, **{k: str(v) for k, v in variables.items()}}
    missing = [n for n in names if n not in values]
    if unknown or missing:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(unknown)}"] if unknown else []
        )
        raise ConfigError(
            f"prompt {template.name}@{template.version}: {'; '.join(parts)}",
            key=(missing or unknown)[0],
            fix=f"its variables are: {', '.join(names) or '(none)'}",
        )
    messages = (
        [] if template.system is None else [{"role": "system", "content": fill(template.system, values)}]
    )
    return [*messages, {"role": "user", "content": fill(template.user, values)}]


def render_text(
    template: PromptTemplate, text: str, variables: Mapping[str, Any] | None = None
) -> list[dict[str, str]]:
    """Chat messages for a bare prompt `text`: it fills the one variable without a default that
    `variables` leave open; ConfigError when none or several are open."""
    values = dict(variables or {})
    free = [v for v in template.free_variables if v not in values]
    if len(free) != 1:
        has = f"{', '.join(free)} are open" if free else "no variable is left open"
        raise ConfigError(
            f"prompt {template.name}@{template.version}: a prompt text fills the one variable without a "
            f"default, but {has}",
            key="defaults",
            fix="give every variable but the one the text fills a default (or give items their vars)",
        )
    return render(template, {**values, free[0]: text})


def apply_to_messages(template: PromptTemplate, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A conversation asked through `template`: its last user message fills the user template (the one
    variable without a default) and the template's system prompt, if any, replaces the conversation's."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last is None:
        raise ConfigError(
            f"prompt {template.name}@{template.version}: a conversation without a user message cannot "
            "fill it",
            fix="give every prompt a user message",
        )
    content = messages[last].get("content")
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    rendered = render_text(template, text)
    head = messages[:last]
    if template.system is not None:
        head = [m for m in head if m.get("role") != "system"]
    return [*rendered[:-1], *head, rendered[-1], *messages[last + 1 :]]


def load_template(path: Path) -> PromptTemplate:
    """Read and validate a template file (YAML or JSON); ConfigError naming the file and the key."""
    try:
        text = read_text(path, what="the prompt template")
    except FileNotFoundError as exc:
        raise ConfigError(f"no prompt template at {path}", file=str(path), fix="check the path") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML or JSON: {exc}", file=str(path), fix=TEMPLATE_FIX) from exc
    try:
        return PromptTemplate.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, file=str(path), model=PromptTemplate, fix=TEMPLATE_FIX) from exc
