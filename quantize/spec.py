"""The input of one quantization (a validated spec) and what a finished or planned one returns."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quantize.methods import Device, Method

DEFAULT_SAMPLES = 64  # calibration samples for GPTQ methods
DEFAULT_MAX_SEQ_LEN = 512  # calibration sample length cap, tokens (the model's own limit wins if lower)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceModel(_Spec):
    """The full-precision checkpoint to quantize and where it came from."""

    name: str = Field(min_length=1, description="registry name of the base model")
    path: Path = Field(description="local folder with config.json, safetensors and the tokenizer")
    repo: str | None = Field(None, description="hub repo; None for a builtin model")
    revision: str | None = Field(None, description="40-character commit the folder was pulled at")
    builtin: str | None = Field(None, description="builtin generator (tiny-random, tiny-skills)")
    content_sha256: str | None = Field(None, description="builder's hash of a builtin folder")


class CalibrationSet(_Spec):
    """Calibration prompts (GPTQ): chat prompts rendered with the model's template, or raw text."""

    name: str = Field(min_length=1, description="what the prompts came from: builtin:SUITE or a path")
    texts: list[str] = Field(min_length=1)
    chat: bool = Field(True, description="render each text as one user message with the chat template")

    def take(self, n: int) -> CalibrationSet:
        """The first n prompts (what a run with --samples n uses)."""
        return self.model_copy(update={"texts": self.texts[:n]})

    @property
    def sha256(self) -> str:
        """Hash of the prompts as used (their order and the chat flag included)."""
        blob = json.dumps({"texts": self.texts, "chat": self.chat}, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class QuantizeSpec(_Spec):
    """One quantization: source, method, output folder and the knobs (lengths in tokens)."""

    source: SourceModel
    method: str = Field(description="nf4, int8, fp8-dynamic, w8a8 or w4a16")
    out_dir: Path
    variant_name: str = Field(min_length=1, description="registry name of the variant written")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    calibration: CalibrationSet | None = None
    samples: int = Field(DEFAULT_SAMPLES, ge=1, description="calibration samples (GPTQ methods)")
    max_seq_len: int = Field(DEFAULT_MAX_SEQ_LEN, ge=8, description="calibration sample cap, tokens")
    group_size: int | None = Field(None, ge=8, description="W4A16 group size; None picks one that fits")
    force: bool = Field(False, description="replace an existing output folder")
    quant_python: Path | None = Field(None, description="interpreter of the llm-compressor venv")
    seed: int = 0


@dataclass(frozen=True)
class Sizes:
    """Weight bytes (from safetensors headers) and bytes on disk of a checkpoint folder."""

    weights_bytes: int
    disk_bytes: int

    def to_json(self) -> dict[str, int]:
        return {"weights_bytes": self.weights_bytes, "disk_bytes": self.disk_bytes}


@dataclass(frozen=True)
class QuantPlan:
    """What a run will do, checked before any work (what --dry-run prints)."""

    spec: QuantizeSpec
    method: Method
    device: Device
    recipe: dict[str, Any]
    source_sizes: Sizes
    estimated_bytes: int  # the output's size estimate, bytes (disk check)
    free_bytes: int  # free disk where the output goes, bytes
    serve_backend: str  # the backend that serves the checkpoint on this device
    quant_python: Path | None = None  # llm-compressor interpreter (llm-compressor methods)
    calibration_samples: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable lines (the caller prints them)."""
        s = self.spec
        out = [
            f"source: {s.source.name} ({s.source.path})",
            f"method: {self.method.name} ({self.method.summary}) with {self.method.tool} on {self.device}",
            f"recipe: {json.dumps(self.recipe, sort_keys=True)}",
            f"output: {s.out_dir} (registered as {s.variant_name})",
            f"size: source weights {_mib(self.source_sizes.weights_bytes)}, output estimated at most "
            f"{_mib(self.estimated_bytes)}; {_mib(self.free_bytes)} free on that disk",
            f"serves here with: {self.serve_backend}",
        ]
        if s.calibration is not None and self.method.calibration:
            out.append(
                f"calibration: {self.calibration_samples} samples from {s.calibration.name} "
                f"(sha256 {s.calibration.take(self.calibration_samples).sha256[:12]})"
            )
        if self.quant_python is not None:
            out.append(f"llm-compressor from: {self.quant_python}")
        out.extend(f"note: {n}" for n in self.notes)
        return out


@dataclass(frozen=True)
class QuantizeResult:
    """A finished quantization: the checkpoint folder, its manifest and the sizes before and after."""

    path: Path
    manifest: dict[str, Any]
    before: Sizes
    after: Sizes
    seconds: float

    @property
    def ratio(self) -> float | None:
        """Weight bytes after ÷ before (None when the source had no weights to measure)."""
        if self.before.weights_bytes <= 0:
            return None
        return self.after.weights_bytes / self.before.weights_bytes


def _mib(n: int) -> str:
    return f"{n / 1024**2:.2f} MiB"
