"""`llmbench bench recovery BASE VARIANT --suite S`: what a quantized variant keeps, per suite and area."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console

from bench.cli._context import AppContext
from bench.documents import RecoveryComparison, RecoveryDoc, RecoveryFigure, RecoverySpeed
from bench.errors import UsageError
from bench.registry import load_registry
from bench.settings import Settings
from bench.validation import usage_error

MIB = 1024**2


@click.command("recovery")
@click.argument("base")
@click.argument("variant")
@click.option(
    "--suite",
    "suites",
    required=True,
    multiple=True,
    metavar="SUITE[,SUITE]",
    help="builtin:NAME or a suite .jsonl (repeatable or comma-separated).",
)
@click.option("--threshold", type=float, default=None, help="Recovery under this is flagged [0.95].")
@click.option("--limit", type=int, default=None, help="Items per area.")
@click.option(
    "--max-tokens", type=int, default=None, help="Output budget per item [256, ≤ half the context]."
)
@click.option(
    "--backend",
    type=click.Choice(["vllm", "hf"]),
    default=None,
    help="Serve both on this backend [the one that serves VARIANT here].",
)
@click.option("--speed-levels", default=None, metavar="1,2,4,...", help="Base concurrencies [1,2,4,8,16,32].")
@click.option("--speed-requests", type=int, default=None, help="Measured requests per level [64, ≥ 4 × c].")
@click.option("--no-speed", is_flag=True, help="Accuracy and size only.")
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Write the llmbench.recovery/1 JSON."
)
@click.pass_obj
def recovery(app: AppContext, /, base: str, variant: str, suites: tuple[str, ...], **flags: Any) -> None:
    """Score BASE and VARIANT on the same items and load: recovery per suite and area, size, speed."""
    run_and_print(app.settings, base, variant, ",".join(suites), **flags)


def run_and_print(settings: Settings, base: str, variant: str, suites: str, **flags: Any) -> None:
    """Build the spec from flags, run, print, write --out (also what `quantize --evaluate` calls)."""
    from bench.recovery import RecoverySpec, run_recovery
    from bench.recovery.serving import ManagedServers

    options: dict[str, Any] = {
        "base": base,
        "variant": variant,
        "suites": [s.strip() for s in suites.split(",") if s.strip()],
        "threshold": flags.get("threshold"),
        "limit": flags.get("limit"),
        "max_tokens": flags.get("max_tokens"),
        "backend": flags.get("backend"),
        "speed_requests": flags.get("speed_requests"),
        "speed": not flags.get("no_speed", False),
    }
    if flags.get("speed_levels"):
        options["speed_levels"] = _ints(flags["speed_levels"])
    try:
        spec = RecoverySpec.model_validate({k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        raise usage_error(exc, model=RecoverySpec) from exc
    err = Console(stderr=True, highlight=False)
    registry = load_registry(settings.overlays)
    result = run_recovery(
        spec, registry, settings, ManagedServers(registry, settings), lambda m: err.print(m, markup=False)
    )
    click.echo("\n".join(render(result.document)))
    click.echo(f"stored: document {result.document_id[:12]} (llmbench.recovery/1) in {result.store_path}")
    out = flags.get("out")
    if out is not None:
        Path(out).write_text(json.dumps(result.document.to_json(), indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {out}")


def _ints(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise UsageError(
            f"{text!r} is not a comma-separated list of integers", flag="--speed-levels"
        ) from exc


def _fig(value: RecoveryFigure, fmt: str = "{:.3f}") -> str:
    if value.value is None:
        return f"n/a ({value.reason or 'not measured'})"
    return fmt.format(value.value)


def _recovery(r: RecoveryComparison) -> tuple[str, str]:
    rec = r.recovery
    if rec.value is None or rec.ci95 is None:
        return "n/a", rec.reason or ""
    lo, hi = rec.ci95
    return f"{rec.value:.3f}", f"[{lo:.3f}, {'inf' if hi is None else f'{hi:.3f}'}]"


def _pct(value: float | None, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.1%}"


def render(doc: RecoveryDoc) -> list[str]:
    """The recovery document as text lines."""
    b, v = doc.base, doc.variant
    out = [f"recovery of {v.name} against {b.name} (threshold {doc.threshold:g})"]
    sizes = (
        f"{b.weights_bytes / MIB:.2f} MiB ({b.dtype or '?'}) -> {v.weights_bytes / MIB:.2f} MiB"
        if b.weights_bytes is not None and v.weights_bytes is not None
        else "n/a"
    )
    out.append(f"size: weights {sizes}; ratio {_fig(doc.size_ratio)}")
    for name, s in doc.suites.items():
        rec, ci = _recovery(s)
        if s.base_score is None or s.variant_score is None:
            out.append(f"suite {name}: n/a ({ci})  FLAGGED")
            continue
        out.append(
            f"suite {name}: base {s.base_score:.1%}, variant {s.variant_score:.1%}, recovery {rec} "
            f"95% CI {ci}, n={s.n}{'  FLAGGED' if s.flagged else ''}"
        )
        out.append(f"  {'area':<14}{'base':>8}{'variant':>9}{'recovery':>10}  {'95% CI':<18}{'n':>5}")
        for area, a in s.areas.items():
            rec, ci = _recovery(a)
            flag = "  FLAGGED" if a.flagged else ""
            scores = f"{_pct(a.base_score, 8)}{_pct(a.variant_score, 9)}"
            out.append(f"  {area:<14}{scores}{rec:>10}  {ci:<18}{a.n:>5}{flag}")
        if s.failed.base or s.failed.variant:
            out.append(f"  failed requests: base {s.failed.base}, variant {s.failed.variant}")
    out.extend(_speed_lines(doc.speed))
    if doc.flagged:
        out.append(f"flagged (recovery < {doc.threshold:g}): {', '.join(doc.flagged)}")
    else:
        out.append(f"no suite or area under {doc.threshold:g}")
    out.extend(f"note: {n}" for n in doc.notes)
    return out


def _speed_lines(speed: RecoverySpeed) -> list[str]:
    ratio = speed.ratio
    if speed.skipped:
        return [f"speed: not measured ({speed.skipped})"]
    out = ["speed (output tokens/s; ratio = variant ÷ base):"]
    base = {p.concurrency: p for p in speed.base}
    var = {p.concurrency: p for p in speed.variant}
    for c in sorted(base):
        sat = "  <- base near saturation" if c == speed.saturation_concurrency else ""
        line = f"  c={c:<4} base {_tok(base[c].output_tokens_per_s)}"
        if c in var:
            line += f"  variant {_tok(var[c].output_tokens_per_s)}"
        out.append(line + sat)
    out.append(f"  ratio at concurrency 1: {_fig(ratio.concurrency_1)}")
    at = ratio.saturation.concurrency
    out.append(f"  ratio near saturation{f' (c={at})' if at else ''}: {_fig(ratio.saturation)}")
    return out


def _tok(value: float | None) -> str:
    return "n/a" if value is None else f"{value:8.1f}"
