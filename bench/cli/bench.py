"""`llmbench bench`: the measuring commands (load, accuracy, diff)."""

from __future__ import annotations

import click

from bench.cli.load import load


@click.group()
def bench() -> None:
    """Measure endpoints: speed under load, task accuracy, and differences between runs."""


bench.add_command(load)
