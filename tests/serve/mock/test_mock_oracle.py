"""The oracle answer model: matching, seeded accuracy, wrong-but-plausible answers, token counting."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from serve.mock.answers import UNKNOWN_ANSWER, TokenCounter
from serve.mock.server import running_mock
from serve.specs import AnswerModel, MockSpec


def _items(n: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    for i in range(n):
        question = f"What is {i} plus {i}?"
        if i % 2:
            items.append({"id": f"q{i}", "prompt": question, "reference": str(2 * i)})
        else:
            messages = [{"role": "system", "content": "Answer."}, {"role": "user", "content": question}]
            items.append({"id": f"q{i}", "messages": messages, "references": [str(2 * i), f"{2 * i}.0"]})
    return items


@pytest.fixture(scope="module")
def oracle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "items.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in _items(300)) + "\n")
    return path


def _answers(url: str, n: int) -> list[str]:
    out = []
    with httpx.Client(base_url=url) as http:
        for i in range(n):
            # Extra whitespace on purpose: matching normalizes it.
            body = {"model": "m", "messages": [{"role": "user", "content": f"What is  {i} plus\n{i}? "}]}
            out.append(
                http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
            )
    return out


@pytest.mark.parametrize("accuracy", [1.0, 0.0])
def test_all_right_or_all_wrong(oracle_file: Path, accuracy: float) -> None:
    answers = AnswerModel(kind="oracle", oracle_file=oracle_file, accuracy=accuracy)
    with running_mock(MockSpec(model="m", port=0, answers=answers)) as url:
        got = _answers(url, 40)
    right = [got[i] in (str(2 * i), f"{2 * i}.0") for i in range(40)]
    assert all(right) if accuracy == 1.0 else not any(right)
    if accuracy == 0.0:
        assert all(answer.isdigit() for answer in got)  # another item's reference: plausible


def test_accuracy_is_about_right_and_deterministic(oracle_file: Path) -> None:
    answers = AnswerModel(kind="oracle", oracle_file=oracle_file, accuracy=0.7, seed=11)
    runs = []
    for n in (300, 100):  # a restarted server decides the same way
        with running_mock(MockSpec(model="m", port=0, answers=answers)) as url:
            runs.append(_answers(url, n))
    assert runs[0][:100] == runs[1]
    right = sum(runs[0][i] == str(2 * i) for i in range(300))
    assert 0.6 * 300 <= right <= 0.8 * 300


def test_completions_prompt_usage_and_unknown_question(oracle_file: Path) -> None:
    answers = AnswerModel(kind="oracle", oracle_file=oracle_file, accuracy=1.0)
    with running_mock(MockSpec(model="m", port=0, answers=answers)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        reply = client.completions.create(model="m", prompt="What is 21 plus 21?", max_tokens=20)
        templated = client.completions.create(
            model="m", prompt="Q: What is 1 plus 1? A: 2\nQ: What is 5 plus 5?\nA:", max_tokens=20
        )
        unknown = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Who are you?"}], max_tokens=20
        )
        stream = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "What is 7 plus 7?"}],
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert reply.choices[0].text == "42"
    assert reply.usage is not None and reply.usage.completion_tokens == 1  # ceil(2 chars / 4)
    assert templated.choices[0].text == "10"  # the question nearest the end of the prompt
    assert unknown.choices[0].message.content == UNKNOWN_ANSWER
    assert unknown.usage is not None and unknown.usage.completion_tokens == 4  # ceil(13 / 4)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "14"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 1


def test_oracle_with_ignore_eos_pads_to_max_tokens(oracle_file: Path) -> None:
    answers = AnswerModel(kind="oracle", oracle_file=oracle_file)
    with running_mock(MockSpec(model="m", port=0, answers=answers, strict=False)) as url:
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": "What is 3 plus 3?"}],
            "max_tokens": 16,
            "ignore_eos": True,
        }
        reply = httpx.post(url + "/v1/chat/completions", json=body).json()
    assert reply["choices"][0]["message"]["content"].startswith("6")
    assert reply["usage"]["completion_tokens"] == 16
    assert reply["choices"][0]["finish_reason"] == "length"


def test_tokenizer_counts_prompt_tokens(tmp_path: Path) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[UNK]": 0, "hello": 1, "world": 2}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    counter = TokenCounter(tmp_path)
    assert counter.count("hello world hello") == 3
    pieces, count, truncated = counter.pieces("hello world hello", 2)
    assert (pieces, count, truncated) == (["hello", " world"], 2, True)
    with running_mock(MockSpec(model="m", port=0, tokenizer=tmp_path / "tokenizer.json")) as url:
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": "hello world hello world"}],
            "max_tokens": 2,
        }
        usage = httpx.post(url + "/v1/chat/completions", json=body).json()["usage"]
    assert usage["prompt_tokens"] == 4
    assert usage["completion_tokens"] == 2
