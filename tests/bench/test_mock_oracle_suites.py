"""Mock endpoints with a configured accuracy: an oracle over a builtin suite, per-area shares, filler."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.accuracy.suite import load_suite
from bench.errors import ConfigError
from bench.registry import MockEndpoint, load_registry
from bench.serving.answers import resolve_answers
from bench.suite_files import resolve_suite_path
from serve.mock.answers import UNKNOWN_ANSWER, Answerer, Generation, Oracle, TokenCounter
from serve.specs import AnswerModel


def _gen(text: str, max_tokens: int | None = 64) -> Generation:
    return Generation(api="chat", model="m", prompt_text=text, match_text=text, max_tokens=max_tokens)


def test_builtin_oracle_file_resolves_to_the_shipped_suite() -> None:
    answers = resolve_answers(AnswerModel(kind="oracle", oracle_file=Path("builtin:tiny-skills")))
    assert answers.oracle_file == resolve_suite_path("builtin:tiny-skills")
    assert answers.oracle_file is not None and answers.oracle_file.is_file()
    plain = AnswerModel(kind="oracle", oracle_file=Path("/some/file.jsonl"))
    assert resolve_answers(plain) is plain
    with pytest.raises(ConfigError, match="no builtin suite"):
        resolve_answers(AnswerModel(kind="oracle", oracle_file=Path("builtin:nope")))


def test_per_area_accuracy_is_what_the_oracle_scores() -> None:
    path = resolve_suite_path("builtin:tiny-skills")
    shares = {"arithmetic": 0.0, "lookup": 1.0, "string": 0.5}
    oracle = Oracle.load(path, accuracy=0.25, seed=0, area_accuracy=shares)
    suite = load_suite("builtin:tiny-skills")
    by_area: dict[str, list[bool]] = {}
    for item in suite.items:
        found = oracle.lookup(item.prompt or "")
        assert found is not None and found.area == item.area
        right = oracle.reply(found) in item.all_references
        by_area.setdefault(item.area, []).append(right)
    share = {a: sum(v) / len(v) for a, v in by_area.items()}
    assert share["arithmetic"] == 0.0 and share["lookup"] == 1.0
    assert 0.35 <= share["string"] <= 0.65 and 0.1 <= share["comparison"] <= 0.4  # comparison: the default


def test_unknown_questions_get_filler_of_the_full_budget_when_asked() -> None:
    path = resolve_suite_path("builtin:tiny-skills")
    counter = TokenCounter(None)
    filler = Answerer(AnswerModel(kind="oracle", oracle_file=path, unknown="filler"), counter)
    answer = filler.answer(_gen("Write a long essay about rivers.", max_tokens=50))
    assert answer.tokens == 50 and answer.finish == "length"
    short = Answerer(AnswerModel(kind="oracle", oracle_file=path), counter)
    assert "".join(short.answer(_gen("Write a long essay about rivers.")).pieces) == UNKNOWN_ANSWER
    known = filler.answer(_gen("What is 59 + 63?"))
    assert known.finish == "stop" and known.tokens < 10


def test_the_shipped_trade_off_mocks_have_an_oracle_and_prices() -> None:
    registry = load_registry()
    for name in ("mock-frontier", "mock-mini"):
        _, entry = registry.get(name)
        assert isinstance(entry, MockEndpoint) and entry.prices is not None
        assert entry.answers.kind == "oracle" and str(entry.answers.oracle_file) == "builtin:tiny-skills"
    _, frontier = registry.get("mock-frontier")
    _, mini = registry.get("mock-mini")
    assert isinstance(frontier, MockEndpoint) and isinstance(mini, MockEndpoint)
    assert frontier.answers.accuracy > mini.answers.accuracy
    assert frontier.prices and mini.prices and frontier.prices.output_per_1m > mini.prices.output_per_1m
    assert frontier.latency.ttft_ms > mini.latency.ttft_ms


def test_area_accuracy_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="area_accuracy"):
        AnswerModel(kind="oracle", oracle_file=Path("x"), area_accuracy={"a": 1.5})
