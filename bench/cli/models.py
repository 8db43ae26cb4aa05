"""`llmbench models`: list, show and validate registry entries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from bench.cli._context import AppContext
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
    entry: Entry
    if ":" in name:
        resolved, entry = registry.local(name)
        kind = "local"
    else:
        resolved = name
        kind, entry = registry.get(name)
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
