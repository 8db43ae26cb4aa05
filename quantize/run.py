"""`run_quantize(plan)`: build the checkpoint in a temporary folder, manifest last, then rename into place.

An interrupted or failed run leaves no folder that looks complete: the checkpoint is built in a hidden
sibling folder (`.NAME.partial-*`), which is removed on any failure; the manifest goes in last, and only
then is the folder renamed to its final name. With `force`, the previous folder is moved aside first and
deleted after the rename.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from quantize.bnb import quantize_bnb
from quantize.compressor import run_worker
from quantize.errors import OutputExists
from quantize.manifest import CalibrationInfo, QuantManifest, SizeInfo, ToolInfo, write_manifest
from quantize.preflight import folder_sizes
from quantize.spec import QuantizeResult, QuantPlan, Sizes

Progress = Callable[[str], None]


def default_log_file(out_dir: Path) -> Path:
    """Where the tool's log goes when the caller names none: beside the output folder."""
    return out_dir.parent / f"{out_dir.name}.quantize.log"


def run_quantize(
    plan: QuantPlan, progress: Progress | None = None, *, log_file: Path | None = None
) -> QuantizeResult:
    """Quantize as planned; returns the finished folder, its manifest and the sizes before and after."""
    say = progress or (lambda _msg: None)
    spec, method = plan.spec, plan.method
    out = spec.out_dir
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.work-", dir=out.parent))
    started = time.perf_counter()
    try:
        if method.tool == "bitsandbytes":
            say(f"quantizing {spec.source.name} with bitsandbytes {method.name} on {plan.device}")
            facts = quantize_bnb(spec.source.path, tmp, plan.recipe, device=plan.device, method=method.name)
        else:
            assert plan.quant_python is not None
            log = log_file or default_log_file(out)
            say(f"quantizing {spec.source.name} by llm-compressor {method.name} on {plan.device} (log {log})")
            facts = run_worker(plan.quant_python, _job(plan, tmp), work, log, device=plan.device)
        seconds = time.perf_counter() - started
        after = folder_sizes(tmp)
        manifest = _manifest(plan, after, facts, seconds)
        write_manifest(tmp, manifest)
        _into_place(tmp, out, force=spec.force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"wrote {out}")
    return QuantizeResult(
        path=out,
        manifest=manifest.to_json(),
        before=plan.source_sizes,
        after=after,
        seconds=seconds,
    )


def _job(plan: QuantPlan, out: Path) -> dict[str, Any]:
    spec = plan.spec
    calibration = None
    if plan.method.calibration and spec.calibration is not None:
        calibration = {"texts": spec.calibration.texts, "chat": spec.calibration.chat}
    return {
        "source": str(spec.source.path),
        "out": str(out),
        "recipe": plan.recipe,
        "device": plan.device,
        "calibration": calibration,
        "samples": plan.calibration_samples,
        "max_seq_len": spec.max_seq_len,
        "seed": spec.seed,
    }


def _manifest(plan: QuantPlan, after: Sizes, facts: dict[str, Any], seconds: float) -> QuantManifest:
    """The manifest; `after` is measured before the manifest itself is written (bytes of the checkpoint)."""
    spec, method = plan.spec, plan.method
    before = plan.source_sizes
    packages: dict[str, str | None] = dict(facts.get("versions") or {})
    tool_package = "llmcompressor" if method.tool == "llm-compressor" else "bitsandbytes"
    calibration = None
    if method.calibration and spec.calibration is not None:
        used = spec.calibration.model_copy(
            update={"texts": spec.calibration.texts[: plan.calibration_samples]}
        )
        calibration = CalibrationInfo(
            name=spec.calibration.name,
            samples=plan.calibration_samples,
            sha256=used.sha256,
            chat_template=spec.calibration.chat,
            max_seq_len=spec.max_seq_len,
        )
    ratio = after.weights_bytes / before.weights_bytes if before.weights_bytes else None
    return QuantManifest(
        variant=spec.variant_name,
        method=method.name,
        registry_method=method.registry_method,
        format=method.format,
        source=spec.source,
        tool=ToolInfo(name=method.tool, version=packages.get(tool_package), packages=packages),
        recipe=plan.recipe,
        recipe_yaml=facts.get("recipe_yaml"),
        calibration=calibration,
        device=plan.device,
        size=SizeInfo(before=before.to_json(), after=after.to_json(), ratio=ratio),
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        seconds=seconds,
        llmbench_version=_llmbench_version(),
    )


def _into_place(tmp: Path, out: Path, *, force: bool) -> None:
    """Rename tmp to out; an existing out is moved aside first (force) and deleted afterwards."""
    old: Path | None = None
    if out.exists() or out.is_symlink():
        if not force:
            raise OutputExists(str(out))
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent)) / "previous"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old.parent)


def _llmbench_version() -> str | None:
    try:
        return metadata.version("llmbench")
    except metadata.PackageNotFoundError:
        return None
