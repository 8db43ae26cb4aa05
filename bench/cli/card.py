"""`llmbench card NAME[:VARIANT]`: a Markdown system card from the registry and the results store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bench.cli._context import AppContext
from bench.errors import UsageError
from bench.registry import LocalModel
from bench.settings import Settings

_PATH = click.Path(dir_okay=False, path_type=Path)


@click.command("card")
@click.argument("name")
@click.option("--use", "use_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Markdown file with the intended use and the known limitations.")  # fmt: skip
@click.option("--hardware", default=None, help="Hardware profile the target ran on [the runs' own].")
@click.option("--out", type=_PATH, default=None, help="Write the card here [stdout].")
@click.option("--store", type=_PATH, default=None, help="Results store [LLMBENCH_HOME/results.sqlite].")
@click.pass_context
def card(
    ctx: click.Context,
    name: str,
    use_file: Path | None,
    hardware: str | None,
    out: Path | None,
    store: Path | None,
) -> None:
    """Write a system card for NAME[:VARIANT] (a local model, API or mock entry): model and source revision,
    license, quantization, serving setup, speed and cost at the operating point, accuracy per area with CIs,
    failure modes with examples, intended use and limitations. Every number cites its stored run."""
    from bench.report.card import CardInput, build_card
    from bench.report.jsonout import pricing_from_registry

    app = ctx.find_object(AppContext) or AppContext(Settings.from_env())
    registry = app.registry
    found = registry.resolve(name)
    entry_name, kind, entry = found.name, found.kind, found.entry
    if not isinstance(entry, LocalModel) and kind not in ("api", "mock"):
        raise UsageError(f"{name} is a {kind} entry; a card is for a model, an API or a mock", flag="NAME")
    pricing = pricing_from_registry(registry)
    if hardware is not None and hardware not in pricing.hardware:
        raise UsageError(f"unknown hardware profile {hardware!r}", flag="--hardware")
    text = use_file.read_text(encoding="utf-8") if use_file else None
    spec = CardInput(
        name=name, kind=kind, entry=entry, intended_use=text, use_source=str(use_file) if use_file else None
    )
    markdown = build_card(spec, store or app.settings.results_path, pricing, hardware)
    if out is None:
        sys.stdout.write(markdown)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown, encoding="utf-8")
    click.echo(f"wrote {out} (registry entry {entry_name})", err=True)
