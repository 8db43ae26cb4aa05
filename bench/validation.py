"""One translator from a pydantic ValidationError to user text: `file: key.path: message`.

Every input llmbench validates with pydantic (models.yaml, sweep files, suites, the specs the commands
build from flags) is reported through here, so a problem always reads the same way: the file (when there
is one), the key path as the user wrote it (`loads[0].concurrency`, `local.m.context.native`), what is
wrong, and what to do. Files get every problem at once (`config_error`); a command line gets its first
problem, named by the flag that set it (`usage_error`).

A validator that checks a whole object but blames one of its keys raises
`PydanticCustomError("…", "{message}", {"message": ..., "key": "concurrency"})`: the key is appended to
the error's location.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bench.errors import ConfigError, UsageError

# Location parts pydantic adds for validators and union members: not keys the user wrote.
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "bytes"})


@dataclass(frozen=True)
class Problem:
    """One problem of an input: where (key path; empty for the top level) and what to do."""

    key: str
    message: str
    loc: tuple[str | int, ...] = ()  # the key path as parts (union and validator tags left out)

    def line(self, file: str | None = None) -> str:
        """`file: key: message`, leaving out what is unknown."""
        return ": ".join(part for part in (file, self.key, self.message) if part)


def key_path(loc: Sequence[str | int]) -> str:
    """`('loads', 0, 'concurrency')` → `loads[0].concurrency`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def problems(exc: ValidationError, model: type[BaseModel] | None = None) -> list[Problem]:
    """Every error of `exc` as a Problem, in order, duplicates dropped.

    With the `model` that was validated, unknown keys get a 'did you mean' and pydantic's union-member
    tags (e.g. `QuantizedVariant`) are left out of the key path.
    """
    out: list[Problem] = []
    for err in exc.errors():
        loc, current = _walk(list(err["loc"]), model)
        ctx = err.get("ctx") or {}
        if isinstance(ctx.get("key"), str):
            loc.append(ctx["key"])
        problem = Problem(key_path(loc), _message(err, loc, current), tuple(loc))
        if problem not in out:
            out.append(problem)
    return out


def config_error(
    found: ValidationError | Sequence[Problem],
    *,
    file: str | Callable[[Problem], str | None] | None = None,
    model: type[BaseModel] | None = None,
    fix: str = "",
) -> ConfigError:
    """A ConfigError listing every problem, each as `file: key: message`.

    `file` is the input's path, or a function giving each problem's file (a merge of several files).
    """
    listed = problems(found, model) if isinstance(found, ValidationError) else list(found)
    files = [file(p) if callable(file) else file for p in listed]
    lines = [p.line(f) for p, f in zip(listed, files, strict=True)] or ["invalid input"]
    head = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)
    return ConfigError(head, file=files[0] if files else None, key=listed[0].key if listed else None, fix=fix)


def usage_error(
    exc: ValidationError,
    flags: Mapping[str, str] | None = None,
    *,
    default: str = "options",
    model: type[BaseModel] | None = None,
) -> UsageError:
    """A UsageError for the first problem, naming the flag that set the field (`--max-tokens`)."""
    first = problems(exc, model)[0]
    field = first.key.split(".")[0].split("[")[0]
    flag = (flags or {}).get(field) or ("--" + field.replace("_", "-") if field else default)
    key = first.key.removeprefix(field).lstrip(".")
    return UsageError(f"{key}: {first.message}" if key else first.message, flag=flag)


def none_means_default(model: type[BaseModel], data: Any) -> Any:
    """`data` without the None values of fields whose default is not None: for a model validator
    (mode="before"), so `key: null` in a file, or a flag left unset, means the field's default."""
    if not isinstance(data, dict):
        return data
    fields = model.model_fields

    def nullable(name: str) -> bool:
        field = fields[name]
        return field.default is None and field.default_factory is None

    return {k: v for k, v in data.items() if v is not None or k not in fields or nullable(k)}


def read_text(path: Path, *, what: str) -> str:
    """A UTF-8 text input file; ConfigError (path, line, fix) when it cannot be read or is not UTF-8.

    FileNotFoundError passes through, for the caller to word.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} {path}: {exc.strerror}",
            file=str(path),
            fix="check the path and its permissions",
        ) from exc
    return decode_utf8(raw, path, what=what)


def decode_utf8(raw: bytes, path: Path, *, what: str) -> str:
    """`raw` as text; ConfigError naming the file, the line of the first non-UTF-8 byte, and the fix."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{path}: line {line}, column {column}: {what} is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
            file=str(path),
            key=f"line {line}",
            fix=f"save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path} > fixed && mv fixed {path}`",
        ) from exc


# --- messages ----------------------------------------------------------------------------------------

_BOUNDS = {
    "greater_than_equal": ("ge", "≥"),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "≤"),
    "less_than": ("lt", "<"),
}


def _message(err: Any, loc: list[str | int], current: type[BaseModel] | None) -> str:
    kind = str(err["type"])
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        known = [] if current is None else _keys(current)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1) if loc else []
        if close:
            hint = f"did you mean {close[0]!r}?"
        else:
            hint = f"allowed keys: {', '.join(known)}" if known else "remove it"
        return f"unknown key {str(loc[-1]) if loc else ''!r}; {hint}"
    if kind == "missing":
        return "required key is missing; add it"
    if kind in _BOUNDS:
        name, sign = _BOUNDS[kind]
        return f"must be {sign} {ctx.get(name)} (got {err.get('input')!r})"
    if kind == "too_short" and ctx.get("min_length") is not None:
        return f"needs at least {ctx['min_length']} (got {err.get('input')!r})"
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind.endswith(("_type", "_parsing")) or kind == "literal_error":
        return f"{msg} (got {err.get('input')!r})"
    return msg


# --- walking a model along an error's location -------------------------------------------------------


def _walk(
    loc: list[str | int], model: type[BaseModel] | None
) -> tuple[list[str | int], type[BaseModel] | None]:
    """(the location as the user wrote it, the model whose keys the last part is among)."""
    shown: list[str | int] = []
    annotation: Any = model
    parent: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, str) and _is_tag(part, annotation):
            if _is_model(annotation):
                continue
            annotation = next((m for m in _models_in(annotation) if m.__name__ == part), annotation)
            continue
        shown.append(part)
        parent = _as_model(annotation)
        annotation = _step(annotation, part)
    return shown, parent


def _is_tag(part: str, annotation: Any) -> bool:
    """A validator or union-member tag pydantic put in the location (never a key of the input)."""
    if part.startswith(("function-", "tagged-union", "json-or-python", "lax-", "strict-")):
        return True
    if part in _TYPE_TAGS or "[" in part:
        return True
    return any(m.__name__ == part for m in _models_in(annotation)) and not (
        _is_model(annotation) and part in _keys(annotation)
    )


def _step(annotation: Any, part: str | int) -> Any:
    """The annotation one key (or list index, or mapping key) below `annotation`."""
    model = _as_model(annotation)
    if model is not None and isinstance(part, str):
        field = _field(model, part)
        if field is not None:
            return field.annotation
    if isinstance(part, int) or model is None:
        inner = [a for a in _members(annotation) if typing.get_origin(a) in (list, tuple, dict, set)]
        for container in inner:
            args = typing.get_args(container)
            if args:
                return args[-1]
        models = _models_in(annotation)
        return models[0] if models else None
    return None


def _field(model: type[BaseModel], name: str) -> Any:
    field = model.model_fields.get(name)
    if field is not None:
        return field
    return next((f for f in model.model_fields.values() if f.alias == name), None)


def _keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _as_model(annotation: Any) -> type[BaseModel] | None:
    """The model `annotation` is, or the only model of an optional/union annotation."""
    if _is_model(annotation):
        return typing.cast(type[BaseModel], annotation)
    direct = [a for a in _members(annotation) if _is_model(a)]
    return direct[0] if len(direct) == 1 else None


def _members(annotation: Any) -> list[Any]:
    """The members of a union (`A | B | None`), or the annotation itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_members(arg))
        return out
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    return [annotation]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every model anywhere inside an annotation (unions, lists, mappings), in order."""
    if _is_model(annotation):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        for found in _models_in(arg):
            if found not in out:
                out.append(found)
    return out
