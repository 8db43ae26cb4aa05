"""The registry side of `llmbench quantize`: the source checkpoint, calibration prompts, the variant's name
and its models.yaml entry, which bench.overlay writes into the user's overlay.

The quantize package knows nothing of the registry; this module turns registry names into a QuantizeSpec
and a finished checkpoint back into a registry variant (`derived_from`, `variant`, `quantization`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bench.errors import ConfigError, UsageError
from bench.overlay import add_entry
from bench.registry import LocalModel, Registry, variant_name
from bench.serving.plan import local_model_dir
from bench.settings import Settings, user_models_file
from quantize import (
    CalibrationSet,
    Method,
    QuantizeResult,
    QuantizeSpec,
    QuantPlan,
    SourceModel,
    get_method,
    plan_quantize,
    run_quantize,
)

DEFAULT_CALIBRATION = "builtin:general"


@dataclass(frozen=True)
class VariantTarget:
    """Where a quantization of BASE with METHOD goes in the registry and on disk."""

    base: str
    entry_name: str  # the variant's registry name, e.g. tiny-skills-nf4
    variant: str  # its variant name, e.g. nf4 (served as BASE:VARIANT)
    declared: bool  # the registry already declares this variant (nothing to add to the overlay)
    folder: Path  # settings.models_dir / entry_name, where `serve` looks for it

    @property
    def label(self) -> str:
        return variant_name(self.base, self.variant)


def variant_target(registry: Registry, settings: Settings, base: str, method: Method) -> VariantTarget:
    """The variant a quantization writes: an entry the registry already declares, else BASE-METHOD."""
    for name, entry in registry.data.local.items():
        quant = entry.quantization
        if (
            entry.derived_from == base
            and quant is not None
            and quant.source == "llmbench"
            and quant.method == method.registry_method
            and entry.variant is not None
        ):
            return VariantTarget(base, name, entry.variant, True, settings.models_dir / name)
    name = f"{base}-{method.name}"
    if name in registry.names():
        raise ConfigError(
            f"the registry already has an entry {name!r} that is not a {method.name} variant of {base}",
            key=name,
            fix=f"rename that entry, or declare it as `derived_from: {base}` with "
            f"`quantization: {{method: {method.registry_method}, source: llmbench}}`",
        )
    return VariantTarget(base, name, method.name, False, settings.models_dir / name)


def base_entry(registry: Registry, name: str) -> tuple[str, LocalModel]:
    """The local base model named `name`; a variant or an API name is a usage error."""
    resolved, entry = registry.local(name)
    if entry.derived_from is not None:
        raise UsageError(
            f"{resolved} is already a variant of {entry.derived_from}; quantize the base model",
            flag="NAME",
        )
    return resolved, entry


def source_model(settings: Settings, name: str, entry: LocalModel) -> SourceModel | None:
    """The base checkpoint as a SourceModel, or None when it is not in the cache yet (pull or build it)."""
    folder = local_model_dir(settings, name, entry)
    if folder is None:
        return None
    revision = None
    content = None
    if entry.builtin is not None:
        content = _build_sha(folder)
    else:
        from serve.pull import read_manifest

        pulled = read_manifest(settings.models_dir / name)
        revision = pulled.revision if pulled is not None else entry.revision
    return SourceModel(
        name=name,
        path=folder,
        repo=entry.repo,
        revision=revision,
        builtin=entry.builtin,
        content_sha256=content,
    )


def _build_sha(folder: Path) -> str | None:
    try:
        data = json.loads((folder / "llmbench-build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    sha = data.get("sha256") if isinstance(data, dict) else None
    return str(sha) if sha else None


def calibration_set(ref: str) -> CalibrationSet:
    """Calibration prompts: a suite (builtin:NAME or .jsonl; chat prompts) or a text file (one per line)."""
    from bench.accuracy.suite import load_suite

    path = Path(ref).expanduser()
    if ref.startswith("builtin:") or path.suffix == ".jsonl":
        suite = load_suite(ref)
        texts = []
        for item in suite.items:
            users = [m["content"] for m in item.chat_messages() if m["role"] == "user"]
            texts.append(users[-1] if users else item.chat_messages()[-1]["content"])
        return CalibrationSet(name=ref, texts=texts, chat=True)
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise ConfigError(
            f"calibration file not found or unreadable: {path}",
            file=str(path),
            fix="pass builtin:SUITE, a suite .jsonl, or a text file with one sample per line",
        ) from exc
    texts = [ln for ln in lines if ln]
    if not texts:
        raise ConfigError(f"{path} holds no calibration text", file=str(path), fix="one sample per line")
    return CalibrationSet(name=str(path), texts=texts, chat=False)


def variant_entry(base: str, entry: LocalModel, method: Method, variant: str) -> dict[str, Any]:
    """The models.yaml entry of a variant: the base's facts plus derived_from, variant and quantization."""
    data = entry.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data.pop("notes", None)
    vllm_args = {k: v for k, v in (data.get("vllm_args") or {}).items() if k != "quantization"}
    if vllm_args:
        data["vllm_args"] = vllm_args
    else:
        data.pop("vllm_args", None)
    data.update(
        derived_from=base,
        variant=variant,
        quantization={"method": method.registry_method, "source": "llmbench"},
        notes=f"{method.summary}; made by `llmbench quantize {base} --method {method.name}` on "
        f"{date.today().isoformat()} (manifest: llmbench-quant.json in its folder)",
    )
    return data


def link_folder(link: Path, target: Path) -> None:
    """Point models_dir/NAME at a checkpoint written elsewhere (--out), so `serve NAME:VARIANT` finds it."""
    if link.resolve() == target.resolve():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(target.resolve(), target_is_directory=True)


class QuantizeRequest(BaseModel):
    """The `llmbench quantize` flags; None means "not given" (defaults live on QuantizeSpec)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    method: str = Field(min_length=1)
    calibration: str | None = None
    samples: int | None = Field(None, ge=1)
    out: Path | None = None
    force: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    group_size: int | None = Field(None, ge=8)
    quant_python: Path | None = None


@dataclass(frozen=True)
class VariantPlan:
    """A checked quantization (`plan` is None while a builtin base still has to be built) and its target."""

    target: VariantTarget
    out_dir: Path
    plan: QuantPlan | None
    build: str | None  # builtin generator to build the base with first
    overlay: Path | None  # the overlay file that receives the entry (None: the registry declares it)

    def lines(self) -> list[str]:
        """What --dry-run prints."""
        head = [] if self.plan is None else self.plan.lines()
        if self.plan is None:
            head.append(f"source: {self.target.base} is built first ({self.build}); checks follow the build")
        if self.overlay is None:
            head.append(f"registry: {self.target.label} is declared already ({self.target.entry_name})")
        else:
            head.append(f"registry: adds {self.target.entry_name} ({self.target.label}) to {self.overlay}")
        if self.out_dir != self.target.folder:
            head.append(f"link: {self.target.folder} -> {self.out_dir}")
        return head


@dataclass(frozen=True)
class VariantResult:
    """A finished quantization registered as a variant."""

    target: VariantTarget
    result: QuantizeResult
    overlay: Path | None


def plan_variant(request: QuantizeRequest, registry: Registry, settings: Settings) -> VariantPlan:
    """Resolve names and check everything before any work (a builtin base not built yet is checked later)."""
    method = get_method(request.method)
    name, entry = base_entry(registry, request.name)
    target = variant_target(registry, settings, name, method)
    out_dir = (request.out or target.folder).expanduser().absolute()
    elsewhere = out_dir != target.folder
    if elsewhere and target.folder.exists() and not target.folder.is_symlink() and not request.force:
        raise UsageError(
            f"{target.folder} already holds a checkpoint of {target.label}; pass --force to replace it "
            f"with a link to {out_dir}",
            flag="--out",
        )
    overlay = None if target.declared else user_models_file()
    source = source_model(settings, name, entry)
    if source is None:
        if entry.builtin is None:
            raise ConfigError(
                f"{name} is not in the local model cache", key=name, fix=f"run `llmbench pull {name}` first"
            )
        return VariantPlan(target, out_dir, None, entry.builtin, overlay)
    calibration = None
    if method.calibration or request.calibration is not None:
        calibration = calibration_set(request.calibration or DEFAULT_CALIBRATION)
    extra: dict[str, Any] = {"samples": request.samples} if request.samples is not None else {}
    spec = QuantizeSpec(
        source=source, method=method.name, out_dir=out_dir, variant_name=target.entry_name,
        device=request.device, calibration=calibration, group_size=request.group_size, force=request.force,
        quant_python=request.quant_python, **extra,
    )  # fmt: skip
    return VariantPlan(target, out_dir, plan_quantize(spec), None, overlay)


def quantize_variant(
    request: QuantizeRequest,
    registry: Registry,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
    *,
    log_file: Path | None = None,
) -> VariantResult:
    """Plan, build the base if needed, quantize, link and register; returns the finished variant."""
    say = progress or (lambda _msg: None)
    planned = plan_variant(request, registry, settings)
    if planned.plan is None:
        from serve.pull import pull_builtin

        assert planned.build is not None
        folder = settings.models_dir / planned.target.base
        say(f"building {planned.target.base} into {folder} (first use)")
        pull_builtin(planned.target.base, planned.build, folder, progress=lambda m: say(f"  {m}"))
        planned = plan_variant(request, registry, settings)
    assert planned.plan is not None
    result = run_quantize(planned.plan, say, log_file=log_file)
    target = planned.target
    if planned.out_dir != target.folder:
        link_folder(target.folder, planned.out_dir)
    overlay = None
    if not target.declared:
        _, base = registry.local(target.base)
        data = variant_entry(target.base, base, planned.plan.method, target.variant)
        overlay = add_entry(settings, target.entry_name, data)
        say(f"registered {target.label} as {target.entry_name} in {overlay}")
    return VariantResult(target, result, overlay)
