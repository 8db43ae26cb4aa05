"""`llmbench models`: list, show and validate registry entries; fit a model and its variants on hardware."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from bench.cli._context import AppContext
from bench.errors import UsageError
from bench.registry import ApiEndpoint, Entry, Hardware, LocalModel, MockEndpoint, validate_file


@click.group()
def models() -> None:
    """List, show and validate models.yaml entries (local models, APIs, hardware, mocks)."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print entries as JSON.")
@click.option(
    "--kind",
    type=click.Choice(["local", "api", "hardware", "mock"]),
    default=None,
    help="Only entries of this kind.",
)
@click.pass_obj
def list_(app: AppContext, as_json: bool, kind: str | None) -> None:
    """List registry entries with their key facts."""
    registry = app.registry
    rows = [(name, k, entry) for name, k, entry in registry.items() if kind is None or k == kind]
    if as_json:
        out = [
            {"name": n, "kind": k, **entry.model_dump(mode="json", exclude_defaults=False)}
            for n, k, entry in rows
        ]
        click.echo(json.dumps(out, indent=2))
        return
    console = Console()
    for section in ("local", "api", "hardware", "mock"):
        entries = [(n, e) for n, k, e in rows if k == section]
        if entries:
            console.print(_table(section, entries))
    console.print(f"[dim]sources: {', '.join(str(p) for p in registry.sources)}[/dim]")


@models.command("show")
@click.argument("name")
@click.pass_obj
def show(app: AppContext, name: str) -> None:
    """Show one entry in full (NAME or NAME:VARIANT)."""
    registry = app.registry
    found = registry.resolve(name)
    resolved, kind, entry = found.name, found.kind, found.entry
    data: dict[str, Any] = {
        "name": resolved,
        "kind": kind,
        **entry.model_dump(mode="json", exclude_none=True),
    }
    if isinstance(entry, LocalModel):
        data["pinned"] = entry.pinned
        variants = registry.variants(resolved)
        if variants:
            data["variants"] = variants
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


@models.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
def validate(file: Path) -> None:
    """Check a models.yaml file on its own; exit 2 with the key path and fix if it is invalid."""
    registry = validate_file(file)
    counts = {k: len(registry.names(k)) for k in ("local", "api", "hardware", "mock")}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    unpinned = [n for n, e in registry.data.local.items() if not e.pinned]
    click.echo(f"{file}: valid ({summary or 'no entries'})")
    if unpinned:
        click.echo(
            f"unpinned (no revision; `llmbench pull` records the commit it resolves): {', '.join(unpinned)}"
        )


@models.command("fit")
@click.argument("name")
@click.option(
    "--hardware",
    required=True,
    metavar="PROFILE",
    help="A hardware entry (llmbench models list --kind hardware).",
)
@click.option("--max-model-len", type=int, default=None, help="Context served, tokens [the registry's].")
@click.option(
    "--concurrency", type=int, default=1, show_default=True, help="Sequences that must fit at once."
)
@click.option(
    "--gpu-memory-utilization", type=float, default=0.9, show_default=True, help="Share vLLM may use."
)
@click.option("--json", "as_json", is_flag=True, help="Print the llmbench.fit/1 JSON.")
@click.pass_obj
def fit(app: AppContext, /, name: str, hardware: str, max_model_len: int | None, concurrency: int,
        gpu_memory_utilization: float, as_json: bool) -> None:  # fmt: skip
    """NAME and every variant on a hardware profile: weights, KV cache, max sequences, fits or not."""
    import os

    from bench.serving.fit_table import fit_table
    from serve.fit import hub_fit_inputs

    if concurrency < 1 or not 0 < gpu_memory_utilization <= 1:
        raise UsageError("--concurrency ≥ 1 and 0 < --gpu-memory-utilization ≤ 1", flag="--concurrency")
    hub = (
        None
        if os.environ.get("HF_HUB_OFFLINE")
        else (lambda r, v: hub_fit_inputs(r, v, os.environ.get("HF_TOKEN")))
    )
    table = fit_table(app.registry, app.settings, name, hardware, max_model_len=max_model_len,
                      concurrency=concurrency, gpu_memory_utilization=gpu_memory_utilization,
                      hub=hub)  # fmt: skip
    if as_json:
        click.echo(json.dumps(table.to_json(), indent=2))
        return
    p = table.profile
    console = Console(width=150)
    console.print(
        f"{table.hardware}: {p.count} × {p.gpu} ({p.gpu_memory_gib:g} GiB), "
        f"{table.gpu_memory_utilization:.0%} usable = {_gib(table.usable_bytes)}; "
        f"context {table.max_model_len} tokens; concurrency {table.concurrency}"
    )
    grid = Table(show_lines=False)
    for col in ("variant", "method", "weights", "from", "KV/token", f"KV/seq ({table.max_model_len})",
                "max seqs", f"fits c={table.concurrency}"):  # fmt: skip
        grid.add_column(col)
    for r in table.rows:
        grid.add_row(
            r.label, r.method or "-", _gib(r.weight_bytes), r.weight_source,
            "n/a" if r.kv_bytes_per_token is None else f"{r.kv_bytes_per_token / 1024:.1f} KiB",
            _gib(r.kv_bytes_per_seq), "n/a" if r.max_seqs is None else str(r.max_seqs),
            "n/a" if r.fits is None else ("yes" if r.fits else "NO"),
        )  # fmt: skip
    console.print(grid)
    for r in table.rows:
        if r.reason:
            console.print(f"n/a for {r.label}: {r.reason}", markup=False)


def _gib(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 // 10 else f"{n / 1024**2:.2f} MiB"


def _table(section: str, entries: list[tuple[str, Entry]]) -> Table:
    columns = {
        "local": ["name", "source", "revision", "params (B)", "context", "license", "quantization"],
        "api": ["name", "provider", "model", "$/1M in", "$/1M out", "$/1M cached", "prices as of"],
        "hardware": ["name", "gpu", "count", "GiB/GPU", "$/hour", "provider", "as of"],
        "mock": ["name", "stands in for", "model", "ttft ms", "itl ms", "answers"],
    }[section]
    table = Table(title=section, title_justify="left")
    for col in columns:
        table.add_column(col)
    for name, entry in entries:
        table.add_row(*_cells(name, entry))
    return table


def _cells(name: str, entry: Entry) -> list[str]:
    if isinstance(entry, LocalModel):
        source = f"builtin:{entry.builtin}" if entry.builtin else str(entry.repo)
        revision = "built" if entry.builtin else (entry.revision[:12] if entry.revision else "unpinned")
        quant = (
            f"{entry.quantization.method} ({entry.variant} of {entry.derived_from})"
            if entry.quantization
            else ""
        )
        ctx = f"{entry.context.served}/{entry.context.native}"
        return [name, source, revision, _num(entry.params_b), ctx, entry.license, quant]
    if isinstance(entry, ApiEndpoint):
        p = entry.prices
        return [name, entry.provider, entry.model, _num(p.input_per_1m), _num(p.output_per_1m),
                _num(p.cached_input_per_1m), p.as_of.isoformat()]  # fmt: skip
    if isinstance(entry, Hardware):
        return [name, entry.gpu or f"CPU: {entry.label}", str(entry.count if entry.gpu else 0),
                _num(entry.gpu_memory_gib), _num(entry.usd_per_hour),
                entry.provider, entry.as_of.isoformat()]  # fmt: skip
    assert isinstance(entry, MockEndpoint)
    answers = entry.answers.kind + (
        f" @{entry.answers.accuracy:.0%}" if entry.answers.kind == "oracle" else ""
    )
    return [
        name,
        entry.provider,
        entry.model,
        _num(entry.latency.ttft_ms),
        _num(entry.latency.itl_ms),
        answers,
    ]


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"
