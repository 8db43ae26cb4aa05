"""Datasets of the local lm-eval test tasks, read from the JSONL files next to this module (offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _load(name: str) -> Any:
    import datasets

    rows = [json.loads(line) for line in (HERE / name).read_text().splitlines() if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def arith(**_metadata: Any) -> Any:
    """Two-digit additions (generate_until)."""
    return _load("arith.jsonl")


def compare(**_metadata: Any) -> Any:
    """Yes/no comparisons (multiple_choice)."""
    return _load("compare.jsonl")
