"""The `llmbench` command: the root group, and main() which turns errors into messages once."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from bench import __version__
from bench.cli._context import AppContext
from bench.cli._errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, describe
from bench.cli._lazy import LazyGroup
from bench.settings import Settings

COMMANDS = {
    "models": "bench.cli.models:models",
    "pull": "bench.cli.pull:pull",
    "serve": "bench.cli.serve:serve",
    "bench": "bench.cli.bench:bench",
    "runs": "bench.cli.runs:runs",
    "report": "bench.cli.report:report",
    "card": "bench.cli.card:card",
    "compare": "bench.cli.compare:compare",
    "quantize": "bench.cli.quantize:quantize",
    "suite": "bench.cli.suite:suite",
    "sweep": "bench.cli.sweep:sweep",
    "whatif": "bench.cli.whatif:whatif",
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="llmbench")
@click.option(
    "--models-file",
    "models_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Extra models.yaml merged over the shipped one (repeatable; also LLMBENCH_MODELS).",
)
@click.pass_context
def cli(ctx: click.Context, models_files: tuple[Path, ...]) -> None:
    """Serve open-weight models, benchmark them against commercial APIs, and compare cost and quality."""
    ctx.obj = AppContext(Settings.from_env(models_files=models_files))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI; map known errors to one message and an exit code."""
    debug = os.environ.get("LLMBENCH_DEBUG") == "1"
    try:
        args = list(argv) if argv is not None else None
        code = cli.main(args=args, prog_name="llmbench", standalone_mode=False)
        # Outside standalone mode click returns a command's ctx.exit(N) code instead of exiting with it.
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        known = describe(exc)
        if debug or known is None:
            traceback.print_exc()
        if known is None:
            click.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
            click.echo("this is a bug in llmbench; please report it with LLMBENCH_DEBUG=1 output", err=True)
            sys.exit(EXIT_FAILURE)
        code, message = known
        click.echo(f"error: {message}", err=True)
        sys.exit(code)
