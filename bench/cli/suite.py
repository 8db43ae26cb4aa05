"""`llmbench suite import`: user feedback and test exports become a versioned regression suite."""

from __future__ import annotations

import json
from pathlib import Path

import click
from pydantic import ValidationError

from bench.validation import usage_error

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.group("suite")
def suite() -> None:
    """Suites built from your own feedback and tests."""


@suite.command("import")
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option("--format", "fmt", required=True,
              type=click.Choice(["feedback", "langfuse", "openai-evals", "promptfoo"]),
              help="What the files are.")  # fmt: skip
@click.option("--name", required=True, help="The suite's name (its file is NAME.jsonl).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("suites"),
              show_default=True, help="Folder of the suite, its manifest and its history.")  # fmt: skip
@click.option(
    "--scores", type=_FILE, default=None, help="langfuse: the scores export (bad scores mark items)."
)
@click.option(
    "--template", type=_FILE, default=None, help="Prompt template rendering inputs given as variables."
)
@click.option("--scorer", type=click.Choice(["exact", "judge"]), default=None,
              help="How expected answers are checked [exact].")  # fmt: skip
@click.option("--bad-below", type=float, default=None, help="A numeric rating below this is bad [3].")
@click.option("--regression-area", default=None, help="Area of the items users marked bad [regression].")
@click.option(
    "--replace", is_flag=True, help="Write only the imported items (default: merge into the suite)."
)
@click.option(
    "--skip-invalid", is_flag=True, help="Skip malformed lines (they are listed) instead of failing."
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def import_(
    files: tuple[Path, ...],
    fmt: str,
    name: str,
    out_dir: Path,
    scores: Path | None,
    template: Path | None,
    scorer: str | None,
    bad_below: float | None,
    regression_area: str | None,
    replace: bool,
    skip_invalid: bool,
    as_json: bool,
) -> None:
    """Import FILES (feedback JSONL, Langfuse dataset export, OpenAI evals JSONL or promptfoo CSV) as suite
    NAME: items users marked bad become regression items with their expected answer or a rubric for the
    judge. A new version is written only when the items changed; the history keeps every version."""
    from bench.accuracy.suite_import import ImportSpec, import_suite

    values = {"format": fmt, "files": files, "name": name, "out_dir": out_dir, "scores": scores,
              "template": template, "scorer": scorer, "bad_below": bad_below,
              "regression_area": regression_area, "replace": replace,
              "skip_invalid": skip_invalid}  # fmt: skip
    try:
        spec = ImportSpec.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise usage_error(exc, {"files": "FILES", "out_dir": "--out"}, model=ImportSpec) from exc
    result = import_suite(spec)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    state = "new version" if result.changed else "unchanged"
    r = result
    click.echo(
        f"suite {r.name} v{r.version} ({state}, sha256 {r.sha256[:12]}): {r.items} items, "
        f"{r.regression_items} regression; {len(r.added)} added, {len(r.updated)} updated, "
        f"{len(r.removed)} removed"
    )
    click.echo(f"suite file: {result.suite_path} (run it with --suite {result.suite_path})")
    for problem in result.skipped:
        click.echo(f"skipped (malformed): {problem}", err=True)
    for problem in result.unchecked:
        click.echo(f"not imported: {problem}", err=True)
