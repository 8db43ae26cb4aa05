"""`llmbench pull NAME`: download a hub model at its pinned revision, or build a builtin tiny model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from pydantic import SecretStr
from rich.console import Console

from bench.cli._context import AppContext
from serve.pull import BuiltinBuild, PullResult, PullSpec, pull_builtin, pull_hub


@click.command("pull")
@click.argument("name")
@click.option("--revision", default=None, help="Commit, branch or tag instead of the registry's pin.")
@click.option("--allow-pickle", is_flag=True, help="Also fetch pickle weights (.bin/.pt); they can run code.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help="Hub cache [HF_HOME/hub].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def pull(app: AppContext, name: str, revision: str | None, allow_pickle: bool, cache_dir: Path | None,
         as_json: bool) -> None:  # fmt: skip
    """Download NAME[:VARIANT] (safetensors only) or build a builtin model into the model cache."""
    resolved, entry = app.registry.local(name)
    err = Console(stderr=True, highlight=False)
    say = (lambda _m: None) if as_json else (lambda m: err.print(m, markup=False))
    dest = app.settings.models_dir / resolved
    if entry.builtin is not None:
        result = pull_builtin(resolved, entry.builtin, dest, progress=say)
    else:
        assert entry.repo is not None
        token = os.environ.get("HF_TOKEN")
        spec = PullSpec(
            name=resolved,
            repo=entry.repo,
            revision=revision or entry.revision,
            manifest_dir=dest,
            cache_dir=cache_dir,
            allow_pickle=allow_pickle,
            token=SecretStr(token) if token else None,
            gated=entry.gated,
        )
        result = pull_hub(spec, progress=say)
    _report(result, pinned=entry.revision, as_json=as_json)


def _report(result: PullResult, *, pinned: str | None, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    click.echo(f"{result.name}: {result.path} ({len(result.files)} files, {result.bytes / 1e6:.1f} MB)")
    if result.build is not None:
        _report_build(result.build)
    if result.repo is not None:
        click.echo(f"repo: {result.repo}@{result.revision}")
        if pinned is None:
            click.echo(
                f"unpinned in models.yaml: resolved commit {result.revision}; "
                f"pin it with `revision: {result.revision}`"
            )


def _report_build(build: BuiltinBuild) -> None:
    """A builtin build's sha256, held-out scores and reference check; what differs goes to stderr."""
    how = "reused" if build.reused else f"built in {build.seconds:.1f} s"
    click.echo(f"build: sha256 {build.sha256} (seed {build.seed}, {how}, torch CPU capability "
               f"{build.cpu_capability or 'unknown'})")  # fmt: skip
    if build.per_area:
        areas = ", ".join(f"{area} {score:.3f}" for area, score in sorted(build.per_area.items()))
        click.echo(f"held-out exact match ({build.n} items): overall {build.overall:.3f}; {areas}")
    if build.matches_reference is None:
        click.echo("reference: none for this recipe and seed")
    elif build.matches_reference:
        click.echo("reference: matches the canonical build (sha256 and every area's score)")
    else:
        click.echo("warning: " + build.warnings[0], err=True)
        for line in build.warnings[1:]:
            click.echo(f"  {line}", err=True)
        click.echo("  (remove the folder and pull again to rebuild; if it still differs, please report this "
                   "output)", err=True)  # fmt: skip
