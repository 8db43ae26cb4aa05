"""lm-eval through llmbench: the recording proxy, sample matching, and the same score as the lm-eval CLI.

The CLI comparisons run lm-eval twice (about 8 s of fixed overhead each), so they are marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from lm_eval.models.api_models import JsonChatStr

from bench.accuracy.lmeval import LmEvalSpec
from bench.accuracy.lmeval_match import request_keys, sample_keys
from bench.accuracy.proxy import RecordingProxy
from bench.accuracy.spec import AccuracySpec
from bench.errors import ConfigError, UsageError
from bench.registry import load_registry
from bench.runs import run_accuracy
from bench.settings import Settings
from bench.store import Store
from serve.mock.server import running_mock
from serve.specs import AnswerModel, MockSpec

TASKS = Path(__file__).resolve().parents[1] / "data" / "lmeval"


@pytest.fixture
async def echo_upstream() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """An upstream that records the headers it got and answers with OpenAI-style usage."""
    seen: list[dict[str, str]] = []

    async def completions(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        body = await request.json()
        if body.get("prompt") == "fail":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if body.get("prompt") == "echo-key":  # some providers echo the key they were given
            key = request.headers.get("Authorization", "")
            return web.json_response({"error": {"message": f"Incorrect API key {key}"}}, status=401)
        return web.json_response(
            {"choices": [{"index": 0, "text": "ok"}], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}
        )

    app = web.Application()
    app.router.add_post("/v1/completions", completions)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", seen
    await runner.cleanup()


async def test_proxy_adds_the_key_and_records_usage(echo_upstream: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = echo_upstream
    with RecordingProxy(url, {"Authorization": "Bearer sk-secret", "X-Team": "bench"}) as proxy:
        assert proxy.base_url.endswith("/v1") and proxy.base_url != url
        async with httpx.AsyncClient(trust_env=False, headers=proxy.client_headers) as client:
            ok = await client.post(proxy.base_url + "/completions", json={"prompt": "hi"})
            bad = await client.post(proxy.base_url + "/completions", json={"prompt": "fail"})
            echoed = await client.post(proxy.base_url + "/completions", json={"prompt": "echo-key"})
        # Any other local caller: no token, or a wrong one, gets 401 and never reaches the upstream.
        async with httpx.AsyncClient(trust_env=False) as stranger:
            anon = await stranger.post(proxy.base_url + "/completions", json={"prompt": "hi"})
            wrong = await stranger.post(
                proxy.base_url + "/completions", json={"prompt": "hi"}, headers={"Authorization": "Bearer x"}
            )
    assert ok.status_code == 200 and ok.json()["choices"][0]["text"] == "ok"
    assert bad.status_code == 500
    assert anon.status_code == wrong.status_code == 401 and len(seen) == 3
    assert seen[0]["Authorization"] == "Bearer sk-secret" and seen[0]["X-Team"] == "bench"
    first, second, third = proxy.records()
    assert first.ok and (first.input_tokens, first.output_tokens) == (7, 2) and first.end_s >= first.start_s
    assert not second.ok and second.error_kind == "http_500" and "boom" in (second.error_text or "")
    assert "sk-secret" not in (third.error_text or "") and "[REDACTED]" in (third.error_text or "")
    assert "sk-secret" not in echoed.text  # the client in front never sees the key either
    assert proxy.calls[0].body == {"prompt": "hi"}


def test_proxy_reports_an_unreachable_upstream() -> None:
    with RecordingProxy("http://127.0.0.1:9/v1") as proxy:
        resp = httpx.post(
            proxy.base_url + "/completions",
            json={"prompt": "x"},
            headers=proxy.client_headers,
            trust_env=False,
        )
    assert resp.status_code == 502
    (record,) = proxy.records()
    assert record.error_kind == "connection"


def test_requests_are_matched_to_samples_by_prompt() -> None:
    chat = JsonChatStr(json.dumps([{"role": "user", "content": "What is 2 + 2?"}]))
    chat_body = {"messages": [{"role": "user", "content": "What is  2 + 2?"}]}
    assert sample_keys({"arguments": [(chat, {"until": []})]}, chat=True) == request_keys(chat_body, None)
    logged = {"arguments": [[[chat.prompt], {"until": []}]]}  # the same after a JSON round trip
    assert sample_keys(logged, chat=True) == request_keys(chat_body, None)
    mc_sample = {"arguments": [["Is 3 > 2?", " yes"], ["Is 3 > 2?", " no"]]}
    keys = sample_keys(mc_sample, chat=False)
    assert keys == ["Is 3 > 2? yes", "Is 3 > 2? no"]
    assert request_keys({"prompt": [1, 2]}, lambda ids: "Is 3 > 2? no") == ["Is 3 > 2? no"]
    assert request_keys({"prompt": ["a", "b"]}, None) == ["a", "b"]


def test_lmeval_model_args_are_offline_safe() -> None:
    spec = LmEvalSpec(tasks=("t",), base_url="http://h/v1", model="m", tokenizer="/tok", concurrency=4)
    args = spec.model_args()
    assert args["base_url"] == "http://h/v1/completions"
    assert (args["tokenizer"], args["tokenizer_backend"]) == ("/tok", "huggingface")
    with pytest.raises(UsageError, match="--tokenizer"):
        LmEvalSpec(tasks=("t",), base_url="http://h/v1", model="m").model_args()
    chat = LmEvalSpec(tasks=("t",), base_url="http://h/v1", model="m", api="openai-chat")
    assert chat.model_args()["tokenizer_backend"] == "none" and chat.chat_template()


def lmeval_cli(
    model: str, model_args: dict[str, Any], tasks: str, out: Path, chat_template: bool
) -> dict[str, Any]:
    """Run the lm-eval CLI in a subprocess; return its results JSON."""
    args = ",".join(f"{k}={v}" for k, v in model_args.items())
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "run",
        "--model",
        model,
        "--model_args",
        args,
        "--tasks",
        tasks,
        "--include_path",
        str(TASKS),
        "--output_path",
        str(out),
        "--log_samples",
    ]
    if chat_template:
        cmd.append("--apply_chat_template")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.rglob("results_*.json")
    return dict(json.loads(path.read_text()))


def check_same_scores(summary: dict[str, Any], cli: dict[str, Any], tasks: list[str]) -> None:
    for task in tasks:
        ours = summary["lm_eval"][task]
        key = f"{ours['metric']},{ours['filter']}"
        assert ours["value"] == cli["results"][task][key], task  # exactly equal
        assert summary["areas"][task]["score"] == pytest.approx(ours["value"], abs=1e-12)
        assert summary["areas"][task]["n"] == cli["n-samples"][task]["effective"]


@pytest.fixture
def oracle_url() -> Iterator[str]:
    answers = AnswerModel(kind="oracle", oracle_file=TASKS / "oracle.jsonl", accuracy=0.7, seed=1)
    with running_mock(MockSpec(model="oracle", port=0, answers=answers)) as url:
        yield url


@pytest.mark.slow
def test_chat_task_matches_the_lmeval_cli_on_the_mock(
    settings: Settings, oracle_url: str, tmp_path: Path
) -> None:
    spec = AccuracySpec(
        target=oracle_url, suite="lm-eval:llmbench_arith", api="openai-chat", tasks_dir=TASKS, concurrency=4
    )
    result = run_accuracy(spec, load_registry(), settings)
    s = result.summary.to_json()
    assert s["schema"] == "llmbench.accuracy/1" and 0 < s["score"] < 1
    assert s["requests"] == {"n": 40, "failed": 0}
    assert s["tokens"]["input"] > 0 and s["tokens"]["output"] > 0
    with Store.open(settings.results_path) as store:
        items = store.load_items(result.run_id)
        requests = store.load_records(result.run_id)
    assert len(items) == 40 and len(requests) == 40
    assert all(i.input_tokens and i.latency_ms is not None for i in items)  # every sample matched a request
    assert sum(i.input_tokens or 0 for i in items) == s["tokens"]["input"]
    base = oracle_url.rstrip("/") + "/v1"
    args = {
        "model": "oracle",
        "base_url": base + "/chat/completions",
        "num_concurrent": 4,
        "max_retries": 3,
        "tokenizer_backend": "none",
    }
    cli = lmeval_cli("local-chat-completions", args, "llmbench_arith", tmp_path / "cli", chat_template=True)
    check_same_scores(s, cli, ["llmbench_arith"])


@pytest.mark.slow
def test_completions_tasks_match_the_lmeval_cli_on_the_hf_backend(
    settings: Settings, tiny_skills_dir: Path, tmp_path: Path
) -> None:
    from serve.hf.server import HfServeSpec, running_hf

    tasks = ["llmbench_arith", "llmbench_compare"]
    with running_hf(HfServeSpec(model_dir=tiny_skills_dir, served_model_name="tiny-skills", port=0)) as url:
        spec = AccuracySpec(
            target=url,
            suite="lm-eval:" + ",".join(tasks),
            api="openai-completions",
            model="tiny-skills",
            tokenizer=str(tiny_skills_dir),
            tasks_dir=TASKS,
            chat_template=True,
            concurrency=4,
        )
        result = run_accuracy(spec, load_registry(), settings)
        s = result.summary.to_json()
        args = {
            "model": "tiny-skills",
            "base_url": url.rstrip("/") + "/v1/completions",
            "num_concurrent": 4,
            "max_retries": 3,
            "tokenizer": str(tiny_skills_dir),
            "tokenizer_backend": "huggingface",
        }
        cli = lmeval_cli("local-completions", args, ",".join(tasks), tmp_path / "cli", chat_template=True)
    check_same_scores(s, cli, tasks)
    assert s["areas"]["llmbench_compare"]["score"] > 0.6  # the trained model answers better than chance
    assert s["requests"]["n"] == 40 + 2 * 40  # one request per generation, one per choice
    with Store.open(settings.results_path) as store:
        items = store.load_items(result.run_id)
    # Token-id prompts are matched back to their samples by decoding them with the tokenizer.
    assert len(items) == 80 and all(i.input_tokens and i.extra["requests"] >= 1 for i in items)
    assert all(i.extra["requests"] == 2 for i in items if i.area == "llmbench_compare")


@pytest.mark.slow  # indexing lm-eval's installed tasks takes from 10 s to minutes on a busy machine
def test_unknown_task_is_a_config_error(settings: Settings, oracle_url: str) -> None:
    spec = AccuracySpec(
        target=oracle_url, suite="lm-eval:no_such_task_xyz", api="openai-chat", tasks_dir=TASKS
    )
    with pytest.raises(ConfigError, match="unknown lm-eval task"):
        run_accuracy(spec, load_registry(), settings)
