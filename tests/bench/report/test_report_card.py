"""System cards: registry facts, measured figures that cite their runs, failure examples, intended use."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import trade_off_store

from bench.registry import load_registry
from bench.report.card import CardInput, build_card
from bench.report.jsonout import pricing_from_registry

REGISTRY = load_registry()
PRICING = pricing_from_registry(REGISTRY)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("card") / "results.sqlite"
    return path, trade_off_store(path)


def test_card_of_a_local_model(store: tuple[Path, dict[str, str]]) -> None:
    path, ids = store
    _, entry = REGISTRY.get("tiny-skills")
    use = "Intended for offline tests of llmbench.\n\nNot for answering real questions."
    card = build_card(CardInput("tiny-skills", "local", entry, use, "use.md"), path, PRICING)
    headings = ("Model", "Speed and cost at the operating point", "Accuracy", "Known failure modes",
                "Intended use and limitations", "Provenance")  # fmt: skip
    for heading in headings:
        assert f"## {heading}" in card
    assert "license: apache-2.0" in card and "builtin `tiny-skills`" in card
    op = ids["local-c4"][:12]
    assert f"(run `{op}`)" in card  # speed and cost cite the operating-point run
    assert "concurrency 4" in card and "cpu-2vcpu" in card and "$0.0832/hour" in card
    assert f"run `{ids['local-acc'][:12]}`" in card and "| arithmetic | 56.0% |" in card
    assert "- **arithmetic**: 44 of 100 wrong" in card and "answered '41', expected '42'" in card
    assert "Not for answering real questions." in card and "(from use.md)" in card


def test_card_of_an_api_and_of_an_unmeasured_variant(
    store: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, _ = store
    _, mini = REGISTRY.get("mock-mini")
    card = build_card(CardInput("mock-mini", "mock", mini), path, PRICING)
    assert "Simulated API: openai model `mock-mini`" in card and "output $0.6" in card
    assert "per 1M correct answers" in card and "Not stated: pass `--use FILE`" in card
    # Its load run's server reported no cached tokens: the cost says how it was billed.
    assert "(cache not reported: billed as if nothing were cached)" in card
    assert "cache read $0.075" in card
    assert "**Simulated**: a mock oracle configured to answer right 70% of the time" in card
    _, gpt = REGISTRY.get("gpt-4o-mini")
    empty = build_card(CardInput("gpt-4o-mini", "api", gpt), tmp_path / "none.sqlite", PRICING)
    assert "n/a: no load run stored for this target." in empty
    assert "n/a: no accuracy run stored for this target." in empty
    assert "0 stored runs: none" in empty
