"""What a server started by `llmbench serve` says about itself: GET /llmbench/info (llmbench.serve-info/1).

A bench run against a bare URL reads it to record where its figures came from (engine and version, model
repo and revision, quantization and its manifest, engine arguments, the serving machine's accelerators)
and to know which request fields the server accepts. The caller builds the static part (it knows the
registry); `runtime_info` adds what only the serving machine knows, when the server starts.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

INFO_PATH = "/llmbench/info"
SCHEMA = "llmbench.serve-info/1"
INFO_ENV = "LLMBENCH_SERVE_INFO"  # the JSON handed to vLLM's info middleware


def llmbench_version() -> str | None:
    """The installed llmbench distribution's version (serve does not import bench)."""
    try:
        return metadata.version("llmbench")
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def accelerators() -> list[dict[str, Any]]:
    """The serving machine's GPUs (nvidia-smi), or its CPU when it has none."""
    from serve.gpus import describe_gpus

    gpus = describe_gpus()
    if gpus:
        return [{"kind": "gpu", **g} for g in gpus]
    return [{"kind": "cpu", "name": _cpu_model(), "cores": os.cpu_count()}]


def runtime_info(static: Mapping[str, Any], *, engine_version: str | None = None) -> dict[str, Any]:
    """`static` (from the caller) plus what the serving machine knows now; the document served."""
    info: dict[str, Any] = {"schema": SCHEMA, "server": "llmbench", **dict(static)}
    info["llmbench_version"] = llmbench_version()
    engine = dict(info.get("engine") or {})
    if engine_version is not None:
        engine["version"] = engine_version
    info["engine"] = engine
    info["accelerators"] = accelerators()
    info["started_at"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return info


def info_json(info: Mapping[str, Any]) -> bytes:
    """The response body."""
    return json.dumps(dict(info), sort_keys=True).encode()
