"""Every stored document type (each subclass of bench.documents.StoredModel) reads back as the value that
wrote it: from_json(to_json(x)) == x, through JSON text as the store keeps it.

A property test: for each type, values are generated from its own field annotations (optional fields left
out or filled, None or a value, nested documents generated in turn), many seeds per type. A new document
type is covered the day it subclasses StoredModel; a field type the generator cannot make fails here, by
name, rather than going untested. bench.metrics.summary.RunSummary (a dataclass) has its own property test
in test_documents_roundtrip.py.
"""

from __future__ import annotations

import enum
import importlib
import json
import pkgutil
import random
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import bench
from bench.documents import StoredModel

SEEDS = 25


def _import_all() -> None:
    for info in pkgutil.walk_packages(bench.__path__, "bench."):
        if not info.name.endswith("__main__") and not info.name.startswith("bench.cli"):
            importlib.import_module(info.name)


def _subclasses(cls: type[StoredModel]) -> Iterator[type[StoredModel]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


_import_all()
TYPES = sorted({c for c in _subclasses(StoredModel)}, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _number(tp: type, rng: random.Random, bounds: list[Any]) -> float | int:
    """A number within the field's own bounds (annotated_types Ge/Gt/Le/Lt in its metadata)."""
    lo, hi = (0, 10_000) if tp is int else (0.0, 10_000.0)
    for b in bounds:
        for attr, is_lo in (("ge", True), ("gt", True), ("le", False), ("lt", False)):
            v = getattr(b, attr, None)
            if v is not None:
                step = 0 if attr in ("ge", "le") else (1 if tp is int else 1e-6)
                lo, hi = (max(lo, v + step), hi) if is_lo else (lo, min(hi, v - step))
    if tp is int:
        return rng.choice([int(lo), rng.randint(int(lo), int(min(hi, lo + 20)))])
    return rng.choice([float(lo) if lo > 0 else 0.5 * hi if hi < 1 else 1.0, rng.uniform(lo, hi)])


def _value(tp: Any, rng: random.Random, depth: int, bounds: list[Any] | None = None) -> Any:
    """A JSON value of annotation `tp` (as the store would hold it)."""
    bounds = bounds or []
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return rng.choice([None, 1, 2.5, "x", [1, "a"], {"k": [True, None]}])
    if origin in (typing.Union, types.UnionType):
        choices = [a for a in args if a is not type(None)]
        if type(None) in args and (rng.random() < 0.3 or depth > 3):
            return None
        return _value(rng.choice(choices), rng, depth, bounds)
    if origin is typing.Literal:
        return rng.choice(args)
    if origin is typing.Annotated:
        return _value(args[0], rng, depth, bounds)
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return [_value(a, rng, depth + 1) for a in args]
        item = args[0] if args else Any
        return [_value(item, rng, depth + 1) for _ in range(rng.randint(0, 0 if depth > 3 else 3))]
    if origin is dict or tp is dict:
        key, item = args if args else (str, Any)
        n = rng.randint(0, 0 if depth > 3 else 3)
        return {str(_value(key, rng, depth + 1)) + f"{i}": _value(item, rng, depth + 1) for i in range(n)}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _document(tp, rng, depth + 1)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return rng.choice(list(tp)).value
    if tp is bool:
        return rng.random() < 0.5
    if tp in (int, float):
        return _number(tp, rng, bounds)
    if tp is str:
        return rng.choice(["a", "tiny-skills", "v1.2_x", "x" * rng.randint(1, 40), "ümlaut · ≤ 2 ms"])
    if tp is Path:
        return rng.choice(["suite.jsonl", "/tmp/x/y.yaml"])
    raise AssertionError(f"the generator cannot make a {tp!r}: teach _value this type")


def _document(cls: type[BaseModel], rng: random.Random, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        if not field.is_required() and rng.random() < 0.3:
            continue  # left out: its default
        out[field.alias or name] = _value(field.annotation, rng, depth, list(field.metadata))
    if cls.model_config.get("extra") == "allow" and rng.random() < 0.5:
        out["said_by_a_newer_server"] = {"n": rng.randint(0, 9)}
    return out


def _through_text(data: Any) -> Any:
    return json.loads(json.dumps(data))


def test_every_stored_document_type_is_found() -> None:
    names = {c.__name__ for c in TYPES}
    # The stored top-level documents (runs' targets, profiles, provenance, summaries; sweeps; recovery).
    wanted = {"TargetDoc", "Provenance", "AccuracyRunProfile", "AccuracySummary", "LoadRunProfile",
              "PointDetail", "SweepPoint", "RecoveryDoc", "WorkloadDoc", "TemplateRef"}  # fmt: skip
    assert wanted <= names, wanted - names


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
def test_a_stored_document_reads_back_as_itself(cls: type[StoredModel]) -> None:
    made = 0
    for seed in range(SEEDS * 4):
        rng = random.Random(f"{cls.__qualname__}:{seed}")
        try:
            doc = cls.from_json(_through_text(_document(cls, rng)))
        except ValidationError:
            continue  # a generated case the type's own checks refuse (e.g. a bound on a field)
        stored = _through_text(doc.to_json())
        again = cls.from_json(stored)
        assert again == doc, f"{cls.__name__} (seed {seed}) reads back differently"
        assert _through_text(again.to_json()) == stored, f"{cls.__name__} (seed {seed}) writes differently"
        made += 1
        if made == SEEDS:
            break
    assert made >= SEEDS // 2, f"only {made} generated {cls.__name__} documents were valid"
