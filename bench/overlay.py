"""The user's registry overlay (`~/.config/llmbench/models.yaml`): the one module that writes it.

`llmbench quantize` (and a sweep that makes a variant first, through the same call) adds the variant's
entry here. The file is read as YAML, the entry added or replaced with every other entry kept, the merged
registry validated, the previous file kept as models.yaml.bak, and the new one written atomically.
Comments are not carried over by the YAML rewrite.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml

from bench.errors import ConfigError
from bench.registry import SCHEMA, load_registry
from bench.settings import Settings, user_models_file

Section = Literal["local", "api", "hardware", "mock"]


def read_overlay(path: Path) -> dict[str, Any]:
    """The overlay's mapping (empty when the file does not exist); ConfigError when it is not a mapping."""
    if not path.is_file():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path} is not a mapping; fix it before quantizing", file=str(path))
    return loaded or {}


def with_entry(raw: dict[str, Any], section: Section, name: str, data: dict[str, Any]) -> dict[str, Any]:
    """`raw` with `section.name` added or replaced (every other entry kept) and the schema line set."""
    out = dict(raw)
    out.setdefault("schema", SCHEMA)
    entries = dict(out.get(section) or {})
    entries[name] = data
    out[section] = entries
    return out


def back_up(path: Path) -> Path | None:
    """Copy `path` to NAME.bak beside it (None when there is nothing to keep)."""
    if not path.is_file():
        return None
    backup = path.with_name(path.name + ".bak")
    shutil.copy2(path, backup)
    return backup


def write_overlay(settings: Settings, raw: dict[str, Any], path: Path) -> None:
    """Write `raw` to `path` atomically, after validating the registry it makes with the other overlays;
    a ConfigError names the problem and leaves the file as it was. The previous file is backed up."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".models.", suffix=".yaml", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(raw, fh, sort_keys=False, allow_unicode=True, width=110)
        others = [p for p in settings.overlays if p != path]
        load_registry([*others, tmp])  # ConfigError names the problem before anything is replaced
        back_up(path)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def add_entry(
    settings: Settings, name: str, data: dict[str, Any], path: Path | None = None, section: Section = "local"
) -> Path:
    """Add or replace `section.NAME` in the user's overlay (or `path`), keeping every other entry; returns
    the file written."""
    path = path or user_models_file()
    write_overlay(settings, with_entry(read_overlay(path), section, name, data), path)
    return path
