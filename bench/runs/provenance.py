"""What a run ran on: llmbench version and git sha, Python, OS, CPU, RAM, GPUs and engine. No host names."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench
from serve.gpus import describe_gpus as gpus
from serve.gpus import parse_gpu_descriptions as parse_nvidia_smi

__all__ = ["collect_provenance", "git_info", "gpus", "parse_nvidia_smi"]


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 5.0) -> str | None:
    """stdout of `cmd`, or None when it is missing, fails or hangs: provenance never fails a run."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_info(root: Path | None = None) -> dict[str, Any]:
    """{'sha', 'dirty'} of the llmbench checkout at `root`; None values when it is not a git checkout.

    Only a checkout whose root holds the `bench` package counts: an installed llmbench inside some
    other repository must not report that repository's commit.
    """
    root = root if root is not None else Path(bench.__file__).resolve().parent.parent
    if not (root / ".git").exists() or shutil.which("git") is None:
        return {"sha": None, "dirty": None}
    out = _run(["git", "rev-parse", "HEAD"], cwd=root)
    sha = out.strip() if out else None
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root) if sha else None
    return {"sha": sha, "dirty": None if status is None else bool(status.strip())}


def cpu_model() -> str | None:
    """The CPU's marketing name, from /proc/cpuinfo (Linux) or sysctl (macOS)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        try:
            for line in cpuinfo.read_text(errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model", "Hardware") and value.strip():
                    return value.strip()
        except OSError:
            pass
    if platform.system() == "Darwin":
        out = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if out and out.strip():
            return out.strip()
    return platform.processor() or None


def total_ram_bytes() -> int | None:
    """Physical memory (bytes)."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # psutil missing or unsupported platform: fall back to sysconf
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def collect_provenance(
    engine: str | None = None, engine_version: str | None = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The run's provenance as plain JSON data; never fails, never names the host or the user.

    Machine fields (python, os, cpu, ram_bytes, gpus) describe the machine that ran the client;
    `target_provenance` adds what describes the server (engine, model, quantization, its accelerators).
    """
    cores = os.cpu_count()
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cores
    return {
        "llmbench": {"version": bench.__version__, "git": git_info()},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "os": {"system": platform.system(), "release": platform.release(), "machine": platform.machine()},
        "cpu": {"model": cpu_model(), "count": cores, "usable": usable},
        "ram_bytes": total_ram_bytes(),
        "gpus": gpus(),
        "engine": {"name": engine, "version": engine_version},
        "collected_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "extra": dict(extra or {}),
    }


def is_loopback(url: str) -> bool:
    """Whether `url` names this machine (localhost, 127.0.0.0/8, ::1)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def target_provenance(target: Any, registry: Any, *, hardware: str | None = None) -> dict[str, Any]:
    """What the server side of a run was: engine and version, model and revision, quantization, engine
    arguments and the serving machine's accelerators, from the server's own answer (llmbench.serve-info/1,
    vLLM's /version) and, for registry names, from models.yaml. `target` is a bench.runs.targets.Target.
    """
    identity = target.identity
    info: dict[str, Any] = dict(identity.info) if identity is not None and identity.info else {}
    model: dict[str, Any] = dict(info.get("model") or {})
    entry = None
    if target.kind == "local":
        try:
            _, entry = registry.local(target.name)
        except Exception:  # provenance never fails a run
            entry = None
    if entry is not None:
        model.setdefault("repo", entry.repo)
        model.setdefault("revision", entry.revision)
        model.setdefault("derived_from", entry.derived_from)
        model.setdefault("variant", entry.variant)
    model.setdefault("name", target.model)
    quantization = info.get("quantization")
    if quantization is None and entry is not None and entry.quantization is not None:
        quantization = {**entry.quantization.model_dump(mode="json"), "manifest": None}
    return {
        "engine": {
            "name": None if identity is None else identity.engine,
            "version": None if identity is None else identity.engine_version,
        },
        "server": {
            "kind": target.server_kind,
            "detected_by": None if identity is None else identity.detected_by,
            "accelerators": info.get("accelerators"),
            "backend": info.get("backend"),
            "llmbench_version": info.get("llmbench_version"),
            # Reached over loopback: the load generator ran on the serving machine, sharing its cores.
            "same_host": is_loopback(str(getattr(target, "url", "") or "")),
        },
        "model": model,
        "quantization": quantization,
        "engine_args": info.get("engine_args"),
        "hardware_profile": hardware,
    }
