"""The import contracts in pyproject.toml (checked by `lint-imports` in scripts/check) cover every room."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path
from typing import Any

import bench

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def contracts() -> dict[str, dict[str, Any]]:
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return {c["id"]: c for c in data["tool"]["importlinter"]["contracts"]}


def rooms() -> set[str]:
    return {f"bench.{m.name}" for m in pkgutil.iter_modules(bench.__path__)}


def test_every_room_but_the_cli_is_kept_from_click_and_rich() -> None:
    sources = set(contracts()["printer"]["source_modules"])
    assert sources == {"serve", "quantize"} | rooms() - {"bench.cli", "bench.__main__"}


def test_no_contract_ignores_an_import() -> None:
    # bench/runs opens every run: no measuring code writes to the store from below it any more.
    for contract in contracts().values():
        assert not contract.get("ignore_imports"), contract["id"]
