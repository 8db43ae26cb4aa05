"""`llmbench-quant.json`: what a quantized checkpoint is, where it came from and how it was made.

Written last into the temporary folder, just before the rename, so a folder without it is not a finished
checkpoint. Schema `llmbench.quant/1`; sizes in bytes, times in seconds, the date in UTC (ISO 8601).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quantize.spec import SourceModel

MANIFEST = "llmbench-quant.json"
SCHEMA = "llmbench.quant/1"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolInfo(_Part):
    """The tool that quantized, with the versions of the packages it ran with."""

    name: Literal["bitsandbytes", "llm-compressor"]
    version: str | None
    packages: dict[str, str | None] = Field(default_factory=dict)


class CalibrationInfo(_Part):
    """The calibration set as used: its name, the samples taken and the hash of those prompts."""

    name: str
    samples: int
    sha256: str
    chat_template: bool
    max_seq_len: int


class SizeInfo(_Part):
    """Weight bytes (safetensors headers) and disk bytes before and after; ratio = after ÷ before weights."""

    before: dict[str, int]
    after: dict[str, int]
    ratio: float | None


class QuantManifest(_Part):
    """The whole manifest."""

    schema_: str = Field(SCHEMA, alias="schema")
    variant: str = Field(description="registry name of the variant")
    method: str
    registry_method: str
    format: Literal["bitsandbytes", "compressed-tensors"]
    source: SourceModel
    tool: ToolInfo
    recipe: dict[str, Any]
    recipe_yaml: str | None = Field(None, description="the recipe as llm-compressor saved it")
    calibration: CalibrationInfo | None
    device: Literal["cpu", "cuda"]
    size: SizeInfo
    created_at: str
    seconds: float = Field(ge=0, description="wall time of the quantization, s")
    llmbench_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def write_manifest(folder: Path, manifest: QuantManifest) -> Path:
    """Write the manifest into folder (atomically: a temp file, then rename)."""
    path = folder / MANIFEST
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(folder: Path) -> QuantManifest | None:
    """The manifest of a finished checkpoint, or None when the folder has none (or an unreadable one)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return QuantManifest.model_validate(data)
    except (OSError, ValueError):
        return None
