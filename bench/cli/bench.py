"""`llmbench bench`: the measuring commands (load, accuracy, diff, recovery)."""

from __future__ import annotations

import click

from bench.cli._lazy import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={
        "load": "bench.cli.load:load",
        "accuracy": "bench.cli.accuracy:accuracy",
        "diff": "bench.cli.accuracy:diff",
        "recovery": "bench.cli.recovery:recovery",
    },
)
def bench() -> None:
    """Measure endpoints: speed under load, task accuracy, differences between runs, quantization recovery."""
