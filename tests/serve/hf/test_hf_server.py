"""The hf backend over HTTP: the openai SDK, streaming, logprobs, errors, auth, metrics, start/stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import torch

from serve.errors import PortInUseError, ServerStartError
from serve.hf.server import HfServeSpec, load_engine, running_hf
from serve.tiny import build_builtin

MODEL = "tiny"
REPO = Path(__file__).resolve().parents[3]
# A real transformers server per module (about 10 s in all): scripts/test runs these, scripts/check runs the
# hf engine's own tests (the `cache` keyword included).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_builtin("tiny-random", tmp_path_factory.mktemp("hf-server") / "tiny-random", seed=0).path


@pytest.fixture(scope="module")
def url(tiny_dir: Path) -> Iterator[str]:
    spec = HfServeSpec(
        model_dir=tiny_dir, served_model_name=MODEL, port=0, dtype="float32", max_model_len=256
    )
    with running_hf(spec) as base:
        yield base


@pytest.fixture()
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def _metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_models_and_health(url: str, client: openai.OpenAI) -> None:
    assert httpx.get(url + "/health").status_code == 200
    assert [m.id for m in client.models.list()] == [MODEL]


def test_chat_and_completion_with_usage(client: openai.OpenAI, tiny_dir: Path) -> None:
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=8,
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    assert chat.choices[0].message.role == "assistant"
    assert chat.choices[0].finish_reason == "length"
    assert chat.usage is not None and chat.usage.completion_tokens == 8
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    prompt_ids = tok(
        tok.apply_chat_template(
            [{"role": "user", "content": "hello"}], add_generation_prompt=True, tokenize=False
        ),
        add_special_tokens=False,
    )["input_ids"]
    assert chat.usage.prompt_tokens == len(prompt_ids)
    assert chat.usage.total_tokens == len(prompt_ids) + 8
    comp = client.completions.create(
        model=MODEL,
        prompt="the quick brown fox",
        max_tokens=5,
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    assert comp.object == "text_completion" and comp.choices[0].finish_reason == "length"
    assert comp.usage is not None and comp.usage.completion_tokens == 5


def test_streaming_chat_matches_non_streamed_and_reports_usage(client: openai.OpenAI) -> None:
    kw = dict(
        model=MODEL,
        messages=[{"role": "user", "content": "stream me"}],
        max_tokens=12,
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    whole = client.chat.completions.create(**kw)  # type: ignore[call-overload]
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))  # type: ignore[call-overload]
    assert chunks[0].choices[0].delta.role == "assistant" and not chunks[0].choices[0].delta.content
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_completion_sse_shape(url: str) -> None:
    body = {
        "model": MODEL,
        "prompt": "abc",
        "max_tokens": 4,
        "temperature": 0,
        "stream": True,
        "ignore_eos": True,
    }
    with httpx.stream("POST", url + "/v1/completions", json=body) as resp:
        lines = [line for line in resp.iter_lines() if line]
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(c["object"] == "text_completion" and "usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_stop_string_is_not_in_output(client: openai.OpenAI) -> None:
    kw = dict(
        model=MODEL, prompt="paris tokyo", max_tokens=24, temperature=0, extra_body={"ignore_eos": True}
    )
    full = client.completions.create(**kw).choices[0].text  # type: ignore[call-overload]
    stop = full[4:7]
    cut = client.completions.create(stop=[stop], **kw).choices[0]  # type: ignore[call-overload]
    assert cut.text == full[: full.find(stop)] and cut.finish_reason == "stop"
    streamed = client.completions.create(stop=stop, stream=True, **kw)  # type: ignore[call-overload]
    assert "".join(c.choices[0].text for c in streamed) == cut.text


def test_seeded_sampling_is_reproducible(client: openai.OpenAI) -> None:
    kw = dict(
        model=MODEL,
        prompt="rome",
        max_tokens=12,
        temperature=1.0,
        top_p=0.95,
        extra_body={"ignore_eos": True},
    )
    a = client.completions.create(seed=3, **kw).choices[0].text  # type: ignore[call-overload]
    b = client.completions.create(seed=3, **kw).choices[0].text  # type: ignore[call-overload]
    assert a == b


def test_echo_logprobs_match_a_direct_forward_pass(url: str, tiny_dir: Path) -> None:
    spec = HfServeSpec(model_dir=tiny_dir, served_model_name=MODEL, dtype="float32")
    engine = load_engine(spec)
    ids = list(engine.tokenizer("the quick brown fox jumps")["input_ids"])
    body = {"model": MODEL, "prompt": ids, "max_tokens": 0, "echo": True, "logprobs": 3, "temperature": 0}
    out = httpx.post(url + "/v1/completions", json=body, timeout=60).json()
    choice = out["choices"][0]
    lp = choice["logprobs"]
    assert set(lp) == {"tokens", "token_logprobs", "top_logprobs", "text_offset"}
    assert len(lp["tokens"]) == len(ids) and lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    assert choice["text"] == engine.tokenizer.decode(ids)
    assert lp["text_offset"][0] == 0 and lp["text_offset"] == sorted(lp["text_offset"])
    with torch.inference_mode():
        lsm = torch.log_softmax(engine.model(torch.tensor([ids])).logits[0].float(), dim=-1)
    for j in range(1, len(ids)):
        assert lp["token_logprobs"][j] == pytest.approx(float(lsm[j - 1, ids[j]]), abs=1e-4)
        top = lp["top_logprobs"][j]
        assert 3 <= len(top) <= 4 and max(top.values()) == pytest.approx(float(lsm[j - 1].max()), abs=1e-4)
    assert out["usage"] == {"prompt_tokens": len(ids), "completion_tokens": 0, "total_tokens": len(ids)}
    # echo with one generated token, as lm-eval's loglikelihood requests send it, on a batch of prompts
    body = {
        "model": MODEL,
        "prompt": [ids, ids[:3]],
        "max_tokens": 1,
        "echo": True,
        "logprobs": 1,
        "temperature": 0,
    }
    out = httpx.post(url + "/v1/completions", json=body, timeout=60).json()
    assert [c["index"] for c in out["choices"]] == [0, 1]
    assert len(out["choices"][0]["logprobs"]["token_logprobs"]) == len(ids) + 1
    assert len(out["choices"][1]["logprobs"]["token_logprobs"]) == 4
    greedy = out["choices"][0]["logprobs"]
    assert greedy["token_logprobs"][-1] == pytest.approx(max(greedy["top_logprobs"][-1].values()), abs=1e-6)


def test_chat_logprobs_shape(client: openai.OpenAI) -> None:
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=3,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
        extra_body={"ignore_eos": True},
    )
    content = chat.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and len(content) == 3
    assert all(len(c.top_logprobs) == 2 and c.logprob <= 0 for c in content)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        ({"prompt": "x"}, 400, "model"),
        ({"model": MODEL, "prompt": "x", "max_tokens": "many"}, 400, "max_tokens"),
        ({"model": MODEL, "prompt": "x", "max_tokens": -1}, 400, "max_tokens"),
        ({"model": MODEL, "prompt": "x", "n": 2}, 400, "n"),
        ({"model": MODEL, "prompt": "word " * 300, "max_tokens": 1}, 400, "prompt"),
        ({"model": MODEL, "prompt": "word", "max_tokens": 256}, 400, "max_tokens"),
        ({"model": MODEL, "prompt": [10**9]}, 400, "prompt"),
        ({"model": "other", "prompt": "x"}, 404, "model"),
    ],
)
def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(
    url: str, body: object, status: int, param: str | None
) -> None:
    if isinstance(body, bytes):
        resp = httpx.post(url + "/v1/completions", content=body, headers={"content-type": "application/json"})
    else:
        resp = httpx.post(url + "/v1/completions", json=body)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param
    ok = httpx.post(
        url + "/v1/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 1}, timeout=60
    )
    assert ok.status_code == 200


def test_bad_chat_request(url: str) -> None:
    resp = httpx.post(url + "/v1/chat/completions", json={"model": MODEL, "messages": []})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "messages"


def test_metrics_count_requests_and_tokens(url: str, client: openai.OpenAI) -> None:
    before_gen = _metric(url, "vllm:generation_tokens_total")
    before_ok = _metric(url, "vllm:request_success_total")
    client.completions.create(
        model=MODEL, prompt="count me", max_tokens=6, temperature=0, extra_body={"ignore_eos": True}
    )
    text = httpx.get(url + "/metrics").text
    for name in (
        "num_requests_running",
        "num_requests_waiting",
        "prompt_tokens_total",
        "kv_cache_usage_perc",
    ):
        assert f'vllm:{name}{{model_name="{MODEL}"}}' in text
    assert _metric(url, "vllm:generation_tokens_total") == before_gen + 6
    assert _metric(url, "vllm:request_success_total") == before_ok + 1


def test_client_disconnect_frees_the_batch_slot(url: str) -> None:
    body = {"model": MODEL, "prompt": "go on", "max_tokens": 200, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", url + "/v1/completions", json=body) as resp:
        next(resp.iter_lines())
    deadline = time.monotonic() + 30
    while _metric(url, "vllm:num_requests_running") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metric(url, "vllm:num_requests_running") == 0
    assert _metric(url, "vllm:generation_tokens_total") > 0


def test_api_key_is_required_when_set(tiny_dir: Path) -> None:
    spec = HfServeSpec(model_dir=tiny_dir, served_model_name=MODEL, port=0, api_key="sekret", dtype="float32")
    assert "sekret" not in repr(spec) and "sekret" not in json.dumps(spec.model_dump(mode="json"))
    with running_hf(spec) as base:
        denied = httpx.get(base + "/v1/models")
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
        wrong = httpx.get(base + "/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert httpx.get(base + "/health").status_code == 200
        good = openai.OpenAI(base_url=base + "/v1", api_key="sekret", max_retries=0)
        assert good.completions.create(model=MODEL, prompt="x", max_tokens=1).choices


def test_port_in_use_is_a_clear_error(tiny_dir: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec = HfServeSpec(model_dir=tiny_dir, served_model_name=MODEL, port=port)
        with pytest.raises(PortInUseError, match=f"port {port}"), running_hf(spec):
            pass


def test_model_load_failure_is_a_server_start_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not a config")
    spec = HfServeSpec(model_dir=tmp_path, served_model_name=MODEL, port=0)
    with pytest.raises(ServerStartError, match="could not load the model"), running_hf(spec):
        pass
    with (
        pytest.raises(ServerStartError, match=r"config\.json is missing"),
        running_hf(spec.model_copy(update={"model_dir": tmp_path / "none"})),
    ):
        pass


@pytest.mark.slow  # several seconds: left to scripts/test, kept out of scripts/check
def test_serve_hf_blocks_until_sigterm(tiny_dir: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from serve.hf.server import HfServeSpec, serve_hf\n"
        f"spec = HfServeSpec(model_dir=Path({str(tiny_dir)!r}), served_model_name='tiny', port=0)\n"
        "serve_hf(spec, on_ready=lambda url: print('READY', url, flush=True))\n"
        "print('STOPPED', flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("READY http://127.0.0.1:")
            base = line.split()[1]
            body = {"model": MODEL, "prompt": "x", "max_tokens": 2}
            assert httpx.post(base + "/v1/completions", json=body, timeout=60).status_code == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert proc.stdout.read().strip() == "STOPPED"
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.slow  # several seconds: left to scripts/test, kept out of scripts/check
@pytest.mark.parametrize("quantization", ["bnb-int8", "bnb-nf4"])
def test_bitsandbytes_quantized_at_load_time(
    tiny_dir: Path, quantization: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = HfServeSpec(model_dir=tiny_dir, served_model_name=MODEL, port=0, quantization=quantization)  # type: ignore[arg-type]
    with running_hf(spec) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
        out = client.completions.create(
            model=MODEL, prompt="abc", max_tokens=4, extra_body={"ignore_eos": True}
        )
        assert out.usage is not None and out.usage.completion_tokens == 4
    assert not any("MatMul8bitLt" in r.getMessage() for r in caplog.records)
