"""The one translator from pydantic errors to 'file: key.path: message', and UTF-8 input files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.errors import ConfigError
from bench.validation import config_error, key_path, problems, read_text, usage_error


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(1, ge=1)


class Tagged(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["a", "b"]


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    steps: list[Inner] = Field(default_factory=list)
    by_name: dict[str, Inner] = Field(default_factory=dict)
    variants: list[str | Tagged] = Field(default_factory=list)
    max_tokens: int | None = Field(None, gt=0)


def errors_of(data: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        Outer.model_validate(data)
    return info.value


def test_key_paths_read_as_written() -> None:
    assert key_path(("loads", 0, "concurrency")) == "loads[0].concurrency"
    assert key_path(("local", "m", "context", "native")) == "local.m.context.native"
    assert key_path(()) == ""


def test_every_problem_with_its_key_path_and_a_fix() -> None:
    found = problems(
        errors_of({"steps": [{"limit": 0}, {"limt": 2}], "by_name": {"x": {"limit": "lots"}}}),
        Outer,
    )
    lines = [p.line("f.yaml") for p in found]
    assert "f.yaml: name: required key is missing; add it" in lines
    assert "f.yaml: steps[0].limit: must be ≥ 1 (got 0)" in lines
    assert "f.yaml: steps[1].limt: unknown key 'limt'; did you mean 'limit'?" in lines
    assert any(line.startswith("f.yaml: by_name.x.limit: ") and "'lots'" in line for line in lines)


def test_union_member_tags_are_left_out_of_the_key_path() -> None:
    found = problems(errors_of({"name": "n", "variants": [{"method": "c"}]}), Outer)
    keys = {p.key for p in found}
    assert "variants[0].method" in keys
    assert not any("Tagged" in k or ".str" in k for k in keys)


def test_config_error_lists_every_problem_with_the_file() -> None:
    error = config_error(errors_of({"steps": [{"limit": 0}]}), file="x.yaml", model=Outer, fix="fix it")
    assert isinstance(error, ConfigError)
    text = str(error)
    assert text.startswith("2 problems:\n  x.yaml: ")
    assert error.file == "x.yaml" and error.fix == "fix it"


def test_usage_error_names_the_flag_that_set_the_field() -> None:
    error = usage_error(errors_of({"name": "n", "max_tokens": 0}), {"name": "NAME"})
    assert error.flag == "--max-tokens" and str(error) == "must be > 0 (got 0)"
    error = usage_error(errors_of({}), {"name": "NAME"})
    assert error.flag == "NAME"


def test_a_file_that_is_not_utf8_names_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes("a: 1\nb: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        read_text(path, what="the sweep file")
    assert str(info.value) == f"{path}: line 2, column 7: the sweep file is not UTF-8 text (byte 0xe9)"
    assert "iconv" in info.value.fix and str(path) in info.value.fix
    path.write_text("a: é\n", encoding="utf-8")
    assert read_text(path, what="x") == "a: é\n"
