"""Shared fixtures: a hermetic environment for every test, and the expensive builds made once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from bench.registry import Registry
    from bench.settings import Settings
    from serve.tiny import BuildResult

REPO = Path(__file__).resolve().parent.parent
# Deterministic builds are cached across test sessions (keyed by the builder's own manifest).
MODEL_CACHE = Path(os.environ.get("LLMBENCH_TEST_CACHE", REPO / ".llmbench" / "test-models"))

pytest_plugins = ["fixtures_vllm"]

_CLEARED_PREFIXES = ("LLMBENCH_", "OPENAI_", "ANTHROPIC_", "HF_")


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Clear user settings and keys; point llmbench's home at tmp_path; keep hubs offline."""
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name)
    home = tmp_path / "llmbench-home"
    monkeypatch.setenv("LLMBENCH_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield home
    check_stored_summaries(tmp_path)


@pytest.fixture
def models_overlay() -> str:
    """The models.yaml overlay the `registry` fixture reads over the shipped file: none of its own here; a
    test module overrides this fixture to add its entries."""
    return "schema: llmbench.models/1\n"


@pytest.fixture
def registry(tmp_path: Path, models_overlay: str) -> Registry:
    """The shipped registry with the module's `models_overlay`, read from a file as llmbench reads it."""
    from bench.registry import load_registry

    path = tmp_path / "models.yaml"
    path.write_text(models_overlay, encoding="utf-8")
    return load_registry([path])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose home (models, logs, the results store) is tmp_path/home."""
    from bench.settings import Settings

    return Settings(home=tmp_path / "home")


def check_stored_summaries(root: Path) -> None:
    """Every load run the load generator stored in a test must recompute to its stored summary exactly.

    (`runs show --recompute`.) Runs that store unit tests write by hand, with made-up summaries, carry no
    `sent` in their profile and are left out.
    """
    from bench.loadgen.recompute import recompute
    from bench.store import Store

    for path in root.rglob("*.sqlite"):
        if path.name == "judge-cache.sqlite" or not path.is_file():
            continue
        try:
            store = Store.open(path, create=False)
        except Exception:  # not a results store (a test's own file, or a deliberately broken one)
            continue
        with store:
            for info in store.list_runs("load", limit=None):
                if info.load_summary is None or info.status == "running" or info.load_profile.sent is None:
                    continue
                again = recompute(store.load_records(info.id), info.load_profile, info.load_summary)
                assert again == info.load_summary, (
                    f"run {info.id} in {path}: recompute differs from the stored summary"
                )


@pytest.fixture(scope="session")
def tiny_random_dir() -> Path:
    """The builtin tiny-random checkpoint, built once."""
    from serve.tiny import build_builtin

    return build_builtin("tiny-random", MODEL_CACHE / "tiny-random", seed=0).path


@pytest.fixture(scope="session")
def tiny_skills_build() -> BuildResult:
    """The builtin tiny-skills checkpoint (about 2 minutes of pinned training on idle cores), built once."""
    from serve.tiny import build_builtin

    return build_builtin("tiny-skills", MODEL_CACHE / "tiny-skills", seed=0)


@pytest.fixture(scope="session")
def tiny_skills_dir(tiny_skills_build: BuildResult) -> Path:
    """The folder of the tiny-skills checkpoint."""
    return tiny_skills_build.path
