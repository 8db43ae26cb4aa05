"""A mock entry's answer model with its oracle file resolved: `builtin:NAME` names a shipped suite.

The mock server (serve/) reads a JSONL path and knows nothing of suites; the registry may point a mock's
oracle at a builtin suite (`oracle_file: builtin:tiny-skills`), so the mock answers exactly the items an
accuracy run asks, right with the configured probability (overall or per area).
"""

from __future__ import annotations

from pathlib import Path

from bench.suite_files import resolve_suite_path
from serve.specs import AnswerModel

BUILTIN = "builtin:"


def resolve_answers(answers: AnswerModel) -> AnswerModel:
    """`answers` with a `builtin:NAME` oracle file replaced by that suite's path (ConfigError if unknown)."""
    ref = None if answers.oracle_file is None else str(answers.oracle_file)
    if ref is None or not ref.startswith(BUILTIN):
        return answers
    return answers.model_copy(update={"oracle_file": Path(resolve_suite_path(ref))})
