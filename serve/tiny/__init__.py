"""Builtin tiny models built offline: `tiny-random` (random weights) and `tiny-skills` (trained on CPU).

torch and transformers are imported only when a model is built or evaluated, so importing this package
costs nothing on an install without the hf extra.
"""

from serve.tiny.build import GENERATORS, BuildResult, Generator, build_builtin, content_sha256
from serve.tiny.evaluate import ExactScores, evaluate_exact
from serve.tiny.skills_data import AREAS, skills_suite, suite_jsonl

__all__ = [
    "AREAS",
    "GENERATORS",
    "BuildResult",
    "ExactScores",
    "Generator",
    "build_builtin",
    "content_sha256",
    "evaluate_exact",
    "skills_suite",
    "suite_jsonl",
]
