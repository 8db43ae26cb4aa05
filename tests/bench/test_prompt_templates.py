"""Prompt templates (llmbench.prompt/1): load, hash, render; missing and unknown variables refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.errors import ConfigError
from bench.prompts.templates import PromptTemplate, load_template, render

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prompts" / "support-answer.prompt.yaml"


def test_the_example_loads_and_renders() -> None:
    t = load_template(EXAMPLE)
    assert (t.name, t.version, t.variables) == ("support-answer", "1", ["product", "help_url", "question"])
    messages = render(t, {"question": "How do I export my notes?"})
    assert messages[0]["role"] == "system" and messages[0]["content"].startswith(
        "You are the support assistant of Acme Notes."
    )
    assert messages[1] == {"role": "user", "content": "Customer question: How do I export my notes?"}


def test_the_hash_covers_the_content_and_nothing_else(tmp_path: Path) -> None:
    t = PromptTemplate(name="p", version=2, system=None, user="Q: {{q}}")  # type: ignore[arg-type]
    content = {"name": "p", "version": "2", "system": None, "user": "Q: {{q}}", "defaults": {}}
    assert t.sha256 == hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    assert t.ref().model_dump() == {"name": "p", "version": "2", "sha256": t.sha256}
    assert PromptTemplate(name="p", version="2", user="Q: {{ q }}").sha256 != t.sha256  # the text changed
    file = tmp_path / "p.yaml"
    file.write_text("# a comment\nschema: llmbench.prompt/1\nname: p\nversion: 2\nuser: 'Q: {{q}}'\n")
    assert load_template(file).sha256 == t.sha256  # comments and layout are not content


def test_placeholders_only_and_literal_braces() -> None:
    t = PromptTemplate(name="j", version="1", user='Reply as JSON like {"a": 1} about {{ topic }}.')
    assert t.variables == ["topic"]
    assert render(t, {"topic": 7})[0]["content"] == 'Reply as JSON like {"a": 1} about 7.'


def test_missing_and_unknown_variables_are_refused() -> None:
    t = PromptTemplate(name="p", version="1", user="{{a}} {{b}}")
    with pytest.raises(ConfigError, match="missing b; unknown c") as info:
        render(t, {"a": "x", "c": "y"})
    assert info.value.fix == "its variables are: a, b"


def test_a_bad_file_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: llmbench.prompt/1\nname: p\nversion: 1\nuser: hi\nsytem: typo\n")
    with pytest.raises(ConfigError, match="sytem"):
        load_template(bad)
    with pytest.raises(ValidationError, match="defaults for variables the template does not use: x"):
        PromptTemplate(name="p", version="1", user="hi", defaults={"x": "1"})
    with pytest.raises(ConfigError, match="no prompt template at"):
        load_template(tmp_path / "none.yaml")
