"""NVIDIA GPUs seen by nvidia-smi, and the choice of which ones to serve on."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from serve.errors import InvalidServeOption

QUERY = ["nvidia-smi", "--query-gpu=index,memory.free,memory.total", "--format=csv,noheader,nounits"]
MIB = 1024**2


@dataclass(frozen=True)
class Gpu:
    """One GPU: its index and memory in bytes."""

    index: int
    free_bytes: int
    total_bytes: int


# The query is injected so that selection can be tested on canned nvidia-smi output.
QueryFn = Callable[[], str | None]


def run_nvidia_smi() -> str | None:
    """Raw CSV from nvidia-smi, or None where it is missing or fails (no NVIDIA GPU)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(QUERY, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def parse_gpus(csv_text: str) -> list[Gpu]:
    """Parse `index, memory.free, memory.total` lines (MiB) into Gpu records."""
    gpus = []
    for line in csv_text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            continue
        index, free, total = (int(p) for p in parts)
        gpus.append(Gpu(index=index, free_bytes=free * MIB, total_bytes=total * MIB))
    return gpus


def list_gpus(query: QueryFn = run_nvidia_smi) -> list[Gpu]:
    """All GPUs nvidia-smi reports; empty on a machine without NVIDIA GPUs."""
    text = query()
    return parse_gpus(text) if text else []


def select_gpus(gpus: Sequence[Gpu], count: int, requested: Sequence[int] | None = None) -> list[Gpu]:
    """The GPUs to use: the requested indices, else the `count` with the most free memory."""
    by_index = {g.index: g for g in gpus}
    if requested:
        missing = [i for i in requested if i not in by_index]
        if missing and gpus:
            raise InvalidServeOption(
                f"GPU index {', '.join(map(str, missing))} not found; nvidia-smi lists "
                f"{', '.join(str(g.index) for g in gpus)}",
                option="--gpus",
            )
        return [by_index[i] for i in requested if i in by_index]
    if count > len(gpus):
        raise InvalidServeOption(
            f"{count} GPUs needed (tensor parallel × pipeline parallel) but {len(gpus)} found; "
            "lower --tp/--pp or add --nodes with a Ray cluster",
            option="--tp",
        )
    ranked = sorted(gpus, key=lambda g: (-g.free_bytes, g.index))[:count]
    return sorted(ranked, key=lambda g: g.index)


def parse_gpu_list(text: str) -> list[int]:
    """Parse `--gpus 0,1` into indices."""
    try:
        out = [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise InvalidServeOption(
            f"--gpus {text!r} must be comma-separated GPU indices such as 0,1", option="--gpus"
        ) from exc
    if not out or any(i < 0 for i in out):
        raise InvalidServeOption(
            f"--gpus {text!r} must be comma-separated GPU indices such as 0,1", option="--gpus"
        )
    return out


_DESCRIBE_FIELDS = "name,memory.total,driver_version"


def parse_gpu_descriptions(csv_text: str) -> list[dict[str, Any]]:
    """Parse `nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits`."""
    gpus: list[dict[str, Any]] = []
    for line in csv_text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0]:
            continue
        try:
            memory_mib: int | None = int(float(parts[1]))
        except ValueError:
            memory_mib = None
        gpus.append({"name": parts[0], "memory_mib": memory_mib, "driver": parts[2]})
    return gpus


def describe_gpus() -> list[dict[str, Any]]:
    """NVIDIA GPUs from nvidia-smi (name, memory MiB, driver); [] when it is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        done = subprocess.run(
            [exe, f"--query-gpu={_DESCRIBE_FIELDS}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return []
    out = done.stdout if done.returncode == 0 else None
    return parse_gpu_descriptions(out) if out else []
