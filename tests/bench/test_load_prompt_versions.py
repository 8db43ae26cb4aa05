"""Prompt versions in load runs: every prompt asked through the template, the template stored whole with
the run's prompts (name, version and hash readable back), and `bench load --template` as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench.errors import UsageError
from bench.prompts import PromptSpec, build_requests
from bench.prompts.templates import PromptTemplate, apply_to_messages
from bench.runs.load import with_template
from bench.store import Store

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = PromptTemplate(
    name="support", version="3", system="You are {{who}}.", user="Question: {{q}}", defaults={"who": "terse"}
)
OVERLAY = """\
schema: llmbench.models/1
mock:
  fast-mock:
    provider: openai
    model: fast
    latency: {ttft_ms: 2, itl_ms: 1}
"""


def test_every_prompt_is_asked_through_the_template() -> None:
    plain = PromptSpec(input_tokens="16", output_tokens="4")
    versioned = with_template(plain, TEMPLATE)
    before, after = build_requests(plain, 3, seed=7), build_requests(versioned, 3, seed=7)
    for a, b in zip(before, after, strict=True):
        assert a.messages is not None and b.messages == [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": f"Question: {a.messages[0]['content']}"},
        ]
        assert b.input_tokens is None and b.max_tokens == a.max_tokens  # the length is the server's to count
    assert versioned.template is not None and versioned.template.ref() == TEMPLATE.ref()
    # Stored and read back whole, so a replay rebuilds the same requests.
    again = PromptSpec.model_validate_json(versioned.model_dump_json())
    assert build_requests(again, 3, seed=7) == after


def test_a_conversation_gets_the_template_on_its_last_user_message() -> None:
    messages = [
        {"role": "system", "content": "old"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "second"},
    ]
    assert apply_to_messages(TEMPLATE, messages) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "Question: second"},
    ]


def test_a_template_needs_the_chat_api() -> None:
    with pytest.raises(UsageError) as err:
        with_template(PromptSpec(api="completions", output_tokens="4"), TEMPLATE)
    assert err.value.flag == "--template" and "needs the chat API" in str(err.value)


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_bench_load_template_stores_the_prompt_version(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(OVERLAY, encoding="utf-8")
    template = tmp_path / "support.prompt.yaml"
    template.write_text(
        "schema: llmbench.prompt/1\nname: support\nversion: 3\nsystem: You are {{who}}.\n"
        "user: 'Question: {{q}}'\ndefaults: {who: terse}\n",
        encoding="utf-8",
    )
    store, out = tmp_path / "s.sqlite", tmp_path / "out.json"
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "llmbench"), "--models-file", str(models), "bench", "load",
         "--target", "fast-mock", "--requests", "3", "--output-tokens", "4", "--input-tokens", "16",
         "--template", str(template), "--store", str(store), "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(out.read_text())["runs"]
    with Store.open(store) as s:
        prompts = s.get_run(run["run_id"]).load_profile.prompts
    assert prompts.template is not None and prompts.template.ref() == TEMPLATE.ref()
