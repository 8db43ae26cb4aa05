"""Readers of published LLM traces, in a registry keyed by format; every bad line is refused by name.

- `mooncake`: JSONL, `{"timestamp": MS, "input_length": N, "output_length": N, "hash_ids": [...]}`; the
  ids name 512-token blocks of the prompt, equal ids meaning identical blocks (Mooncake's published traces).
- `azure`: CSV with `TIMESTAMP` (a date-time such as `2023-11-16 18:15:46.6805900`, or seconds),
  `ContextTokens`, `GeneratedTokens` (Azure's LLM inference traces, 2023 and 2024).
- `burstgpt`: CSV with `Timestamp` (s), `Model`, `Request tokens`, `Response tokens`, `Total tokens`,
  `Log Type` (BurstGPT).

Times become seconds from the file's own origin. Timestamps must be non-negative and sorted; lengths
whole numbers. Every problem is collected and the file refused with `FILE:LINE: why` and the fix.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from bench.errors import ConfigError
from bench.prompts.workloads.base import LineProblem, file_error, number, whole_number
from bench.validation import read_text

TraceFormat = Literal["mooncake", "azure", "burstgpt"]


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One recorded request: when (s), how long its prompt and answer were (tokens), its blocks."""

    line: int
    time_s: float
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] = ()
    model: str | None = None  # BurstGPT's Model column


@dataclass(frozen=True, slots=True)
class Shape:
    """What a format's lines hold, for error messages."""

    what: str
    fix: str


SHAPES: dict[str, Shape] = {
    "mooncake": Shape(
        "Mooncake JSONL trace",
        'each line is a JSON object {"timestamp": MS, "input_length": N, "output_length": N, "hash_ids": '
        "[ID, ...]}, sorted by timestamp (milliseconds from the start)",
    ),
    "azure": Shape(
        "Azure LLM inference trace (CSV)",
        "the header is TIMESTAMP,ContextTokens,GeneratedTokens; TIMESTAMP is a date-time "
        "(2023-11-16 18:15:46.6805900) or seconds, rows sorted by it; the counts are whole numbers",
    ),
    "burstgpt": Shape(
        "BurstGPT trace (CSV)",
        "the header is Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type; Timestamp is "
        "seconds from the start, rows sorted by it; the token counts are whole numbers",
    ),
}


def _mooncake(text: str, problems: list[LineProblem]) -> list[TraceRow]:
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            missing = [k for k in ("timestamp", "input_length", "output_length") if k not in obj]
            if missing:
                raise ValueError(f"missing {', '.join(repr(k) for k in missing)}")
            ids = obj.get("hash_ids", [])
            if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids
            ):
                raise ValueError(f"hash_ids {ids!r} is not a list of whole numbers")
            rows.append(
                TraceRow(
                    line,
                    _timestamp(number(obj["timestamp"], "timestamp") / 1000.0, "timestamp"),
                    whole_number(obj["input_length"], "input_length", minimum=1),
                    whole_number(obj["output_length"], "output_length"),
                    tuple(ids),
                )
            )
        except ValueError as exc:  # json.JSONDecodeError too
            problems.append(LineProblem(line, str(exc)))
    return rows


def _timestamp(seconds: float, name: str) -> float:
    if seconds < 0:
        raise ValueError(f"{name} {seconds:g} s is negative")
    return seconds


def _csv(text: str, columns: tuple[str, ...], path: Path, shape: Shape) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in columns if c not in header]
    if missing:
        raise ConfigError(
            f"{path}:1: the header lacks {', '.join(repr(c) for c in missing)} (it has {', '.join(header)})"
            f" — not a {shape.what}?",
            file=str(path),
            key="line 1",
            fix=shape.fix,
        )
    return [(reader.line_num, row) for row in reader]


def _azure_time(value: str | None) -> float:
    if value is None or not value.strip():
        raise ValueError("TIMESTAMP is empty")
    try:
        return number(value, "TIMESTAMP")
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"TIMESTAMP {value!r} is neither a date-time nor a number of seconds") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _azure(text: str, path: Path, problems: list[LineProblem]) -> list[TraceRow]:
    rows = []
    for line, row in _csv(text, ("TIMESTAMP", "ContextTokens", "GeneratedTokens"), path, SHAPES["azure"]):
        try:
            rows.append(
                TraceRow(
                    line,
                    _timestamp(_azure_time(row["TIMESTAMP"]), "TIMESTAMP"),
                    whole_number(row["ContextTokens"], "ContextTokens", minimum=1),
                    whole_number(row["GeneratedTokens"], "GeneratedTokens"),
                )
            )
        except ValueError as exc:
            problems.append(LineProblem(line, str(exc)))
    return rows


def _burstgpt(text: str, path: Path, problems: list[LineProblem]) -> list[TraceRow]:
    columns = ("Timestamp", "Model", "Request tokens", "Response tokens")
    rows = []
    for line, row in _csv(text, columns, path, SHAPES["burstgpt"]):
        try:
            rows.append(
                TraceRow(
                    line,
                    _timestamp(number(row["Timestamp"], "Timestamp"), "Timestamp"),
                    whole_number(row["Request tokens"], "Request tokens", minimum=1),
                    whole_number(row["Response tokens"], "Response tokens"),
                    model=row["Model"],
                )
            )
        except ValueError as exc:
            problems.append(LineProblem(line, str(exc)))
    return rows


Reader = Callable[[str, Path, list[LineProblem]], list[TraceRow]]
READERS: dict[str, Reader] = {
    "mooncake": lambda text, path, problems: _mooncake(text, problems),
    "azure": _azure,
    "burstgpt": _burstgpt,
}


def read_trace(path: Path, fmt: str) -> list[TraceRow]:
    """Every row of a trace file, checked: ConfigError naming each bad line and the fix."""
    shape = SHAPES[fmt]
    try:
        text = read_text(path, what=shape.what)
    except FileNotFoundError as exc:
        raise ConfigError(f"trace file not found: {path}", file=str(path), fix="check the path") from exc
    problems: list[LineProblem] = []
    rows = READERS[fmt](text, path, problems)
    for before, row in itertools.pairwise(rows):
        if row.time_s < before.time_s:
            problems.append(
                LineProblem(
                    row.line, f"arrives at {row.time_s:g} s, before line {before.line} ({before.time_s:g} s)"
                )
            )
    if problems:
        problems.sort(key=lambda p: p.line)
        raise file_error(path, problems, what="lines", fix=shape.fix)
    if not rows:
        raise ConfigError(f"{path} holds no requests", file=str(path), fix=shape.fix)
    return rows
