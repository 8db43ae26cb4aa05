"""The import contracts in pyproject.toml (checked by `lint-imports` in scripts/check) cover every room."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path
from typing import Any

import bench

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# The only imports a contract may ignore: the drivers below the store write to it until bench/runs lands.
DRIVERS_TO_STORE = {
    "bench.loadgen.driver -> bench.store",
    "bench.accuracy.driver -> bench.store",
    "bench.accuracy.lmeval_driver -> bench.store",
}


def contracts() -> dict[str, dict[str, Any]]:
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return {c["id"]: c for c in data["tool"]["importlinter"]["contracts"]}


def rooms() -> set[str]:
    return {f"bench.{m.name}" for m in pkgutil.iter_modules(bench.__path__)}


def test_every_room_but_the_cli_is_kept_from_click_and_rich() -> None:
    sources = set(contracts()["printer"]["source_modules"])
    assert sources == {"serve", "quantize"} | rooms() - {"bench.cli", "bench.__main__"}


def test_only_the_drivers_writing_to_the_store_are_ignored() -> None:
    for contract in contracts().values():
        assert set(contract.get("ignore_imports", [])) <= DRIVERS_TO_STORE, contract["id"]
