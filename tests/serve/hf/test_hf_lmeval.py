"""lm-eval's local-completions multiple-choice (loglikelihood) tasks run against the hf backend."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serve.hf.server import HfServeSpec, running_hf
from serve.tiny import build_builtin

pytestmark = pytest.mark.slow

DOCS = [
    {"question": "the capital of france is", "choices": ["paris", "rome", "lima"], "answer": 0},
    {"question": "the quick brown", "choices": ["fox", "cloud", "river"], "answer": 0},
    {"question": "seven plus four is", "choices": ["eleven", "seven"], "answer": 0},
    {"question": "a red and green", "choices": ["blue", "cache", "layer weight"], "answer": 2},
]
TASK_YAML = """\
task: hf_backend_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
"""


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_builtin("tiny-random", tmp_path_factory.mktemp("hf-lmeval") / "tiny-random", seed=0).path


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lmeval-task")
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    (folder / "hf_backend_mc.yaml").write_text(TASK_YAML.format(data=data))
    return folder


@pytest.fixture(scope="module")
def url(tiny_dir: Path) -> Iterator[str]:
    spec = HfServeSpec(model_dir=tiny_dir, served_model_name="tiny", port=0, dtype="float32")
    with running_hf(spec) as base:
        yield base


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _evaluate(model: str, model_args: str, task_dir: Path) -> list[list[float]]:
    """Per-document loglikelihoods of each choice, in document order."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    out: dict[str, Any] = lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=["hf_backend_mc"],
        task_manager=TaskManager(include_path=str(task_dir)),
        log_samples=True,
        batch_size=4,
    )
    assert "acc,none" in out["results"]["hf_backend_mc"]
    samples = sorted(out["samples"]["hf_backend_mc"], key=lambda s: s["doc_id"])
    return [[float(r[0]) for r in s["filtered_resps"]] for s in samples]


def test_local_completions_token_ids_match_lm_eval_hf(url: str, tiny_dir: Path, task_dir: Path) -> None:
    common = f"tokenizer={tiny_dir},tokenizer_backend=huggingface"
    served = _evaluate(
        "local-completions",
        f"base_url={url}/v1/completions,model=tiny,{common},tokenized_requests=True,num_concurrent=2",
        task_dir,
    )
    direct = _evaluate("hf", f"pretrained={tiny_dir},dtype=float32,device=cpu", task_dir)
    assert len(served) == len(DOCS)
    for got, want in zip(served, direct, strict=True):
        assert got == pytest.approx(want, abs=1e-3)


def test_local_completions_text_prompts(url: str, tiny_dir: Path, task_dir: Path) -> None:
    common = f"tokenizer={tiny_dir},tokenizer_backend=huggingface"
    served = _evaluate(
        "local-completions",
        f"base_url={url}/v1/completions,model=tiny,{common},tokenized_requests=False",
        task_dir,
    )
    assert [len(s) for s in served] == [len(d["choices"]) for d in DOCS]
    assert all(math.isfinite(x) and x < 0 for s in served for x in s)
