"""The README tells the truth: every file it names is in the repository, its overlay example is a valid
models.yaml with the real section names, it links the suite format, and it says what the code does with a
mock target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.errors import UsageError
from bench.registry import KINDS, load_registry, validate_file
from bench.runs.targets import resolve_target
from bench.settings import Settings

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
# A repository path (under a top-level folder) or a Markdown file, wherever the README names it.
PATH = re.compile(
    r"(?<![\w/.:~$-])((?:scripts|locks|examples|bench|serve|quantize|tests)/[\w./-]*\w|\w[\w-]*\.md)\b"
)


def test_every_file_the_readme_names_is_in_the_repository() -> None:
    named = set(PATH.findall(README))
    assert {"examples/quickstart.yaml", "scripts/check", "locks/main.txt"} <= named
    missing = sorted(n for n in named if not (REPO / n).exists())
    assert not missing, f"the README names files that are not in the repository: {missing}"


def test_the_overlay_example_is_a_valid_models_file_with_the_real_sections(tmp_path: Path) -> None:
    block = re.search(r"```yaml\n(schema: llmbench\.models/1\n.*?)```", README, re.S)
    assert block, "the README shows an overlay file"
    sections = re.findall(r"^([a-z]+):", block[1], re.M)
    assert sections == ["schema", *KINDS]
    path = tmp_path / "overlay.yaml"
    path.write_text(block[1], encoding="utf-8")
    validate_file(path)
    merged = load_registry([path])
    assert "mock-anthropic" not in merged.names("mock")  # `NAME: null` removes a shipped entry


def test_the_readme_links_the_suite_format() -> None:
    assert "[bench/suites/README.md](bench/suites/README.md)" in README


def test_readme_and_cli_agree_that_a_mock_target_is_its_own_process(tmp_path: Path) -> None:
    assert "runs as its own server process (`python -m serve`" in README
    assert "in-process" not in README
    settings = Settings(home=tmp_path)
    with pytest.raises(UsageError) as info:
        resolve_target("mock-mini", load_registry(), settings, url="http://127.0.0.1:9/v1")
    assert "its own server process" in str(info.value) and "in-process" not in str(info.value)
