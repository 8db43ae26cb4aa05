"""The suite format documented in bench/suites/README.md is the format the loader accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.accuracy.suite import SuiteItem

README = Path(__file__).resolve().parents[2] / "bench" / "suites" / "README.md"


def test_every_documented_example_line_is_a_valid_item() -> None:
    block = re.search(r"## Example\n\n```json\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block is not None
    lines = block.group(1).strip().splitlines()
    kinds = {SuiteItem.model_validate(json.loads(line)).scorer.kind for line in lines}
    assert kinds == {"exact", "numeric", "json_schema", "keyword"}


def test_every_scorer_kind_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    for kind in ("exact", "regex", "keyword", "numeric", "json_schema", "embedding", "judge"):
        assert f"| `{kind}`" in text, kind
