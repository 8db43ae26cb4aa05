"""Where suite files are: `builtin:NAME` is bench/suites/NAME.jsonl (shipped with llmbench), anything else a
path. Parsing a suite is the accuracy package's (bench.accuracy.suite); serving a mock whose oracle is a
builtin suite needs only the file, so this sits in the low layer.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from bench.errors import ConfigError


def builtin_suites_dir() -> Path:
    """The folder of suites shipped with llmbench."""
    return Path(str(resources.files("bench").joinpath("suites")))


def builtin_suite_names() -> list[str]:
    return sorted(p.stem for p in builtin_suites_dir().glob("*.jsonl"))


def resolve_suite_path(ref: str) -> Path:
    """Map `builtin:NAME` or a path to a suite file."""
    if ref.startswith("builtin:"):
        name = ref.removeprefix("builtin:")
        path = builtin_suites_dir() / f"{name}.jsonl"
        if not path.is_file():
            names = builtin_suite_names()
            close = difflib.get_close_matches(name, names, n=1)
            known = ", ".join(f"builtin:{n}" for n in names)
            hint = f"did you mean 'builtin:{close[0]}'? " if close else ""
            raise ConfigError(f"no builtin suite {name!r}", key=ref, fix=f"{hint}builtin suites: {known}")
        return path
    path = Path(ref).expanduser()
    if not path.is_file():
        builtin = difflib.get_close_matches(ref, builtin_suite_names(), n=1)
        hint = f"did you mean 'builtin:{builtin[0]}'? " if builtin else ""
        raise ConfigError(
            f"suite file not found: {path}",
            file=str(path),
            fix=f"{hint}give builtin:NAME, an existing JSONL file or lm-eval:TASK[,TASK]",
        )
    return path
