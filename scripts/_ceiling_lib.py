"""llmbench's load engine as a library, for scripts/bench-client-ceiling: client + LoadRunner, nothing else.

No results store, no /metrics sampler, no provenance: the engine alone, so the ceiling script can tell
what the CLI's extras cost. Prompts are built before the clock starts, as the CLI does. Prints one JSON
object (the run's summary plus the wall time of the send loop) on stdout.

    .venv/bin/python scripts/_ceiling_lib.py --url URL --model M --tokenizer DIR --concurrency 16 --requests N
        [--workers W]

With `--workers W` the run goes through W worker processes (bench.loadgen.workers.WorkerPool) instead of
one in-process LoadRunner; the pool starts before the clock does. Prompts are sized in the tokenizer's own
tokens, chat template included (`--length-unit model`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def worker_client(url: str, model: str, timeout_s: float, tokenizer: str | None) -> Any:
    """A worker process's client: the same configuration as in process (module level: it pickles)."""
    from bench.clients import ClientConfig, make_client
    from bench.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer)
    config = ClientConfig(
        base_url=url,
        model=model,
        server_kind="generic",
        timeout_s=timeout_s,
        tokenizer=None if tok.approximate else tok,
        keep_text=False,
    )
    return make_client("openai-chat", config)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.clients import ClientConfig, make_client
    from bench.loadgen.profiles import ConcurrentProfile
    from bench.loadgen.runner import LoadRunner
    from bench.loadgen.schedule import make_plan
    from bench.loadgen.spec import LoadSpec
    from bench.metrics import summarize
    from bench.prompts import build_requests
    from bench.tokenizer import load_tokenizer

    spec = LoadSpec(
        target=args.url,
        model=args.model,
        api="openai-chat",
        profile="concurrent",
        concurrency=[args.concurrency],
        requests=args.requests,
        input_tokens=str(args.input_tokens),
        output_tokens=str(args.output_tokens),
        tokenizer=args.tokenizer,
        length_unit="model",
        seed=args.seed,
    )
    tokenizer = load_tokenizer(args.tokenizer)
    requests = build_requests(spec.prompt_spec("openai-chat"), args.requests, args.seed, tokenizer)
    plan = make_plan(ConcurrentProfile(concurrency=args.concurrency), spec.limits())
    # The same client configuration as `llmbench bench load --target URL` (run_load's _Session.run).
    config = ClientConfig(
        base_url=args.url,
        model=args.model,
        server_kind="generic",
        timeout_s=spec.timeout_s,
        tokenizer=None if tokenizer.approximate else tokenizer,
        keep_text=False,
    )
    if args.workers > 1:
        return await _run_workers(args, plan, requests, spec.timeout_s)
    async with make_client("openai-chat", config) as client:
        await client.check()
        t0 = time.perf_counter()
        outcome = await LoadRunner(client, plan, iter(requests)).run()
        wall = time.perf_counter() - t0
    summary = summarize(outcome.records, client=outcome.client).to_json()
    return {"summary": summary, "wall_s": wall, "ended": outcome.ended}


async def _run_workers(
    args: argparse.Namespace, plan: Any, requests: list[Any], timeout_s: float
) -> dict[str, Any]:
    import functools

    from bench.loadgen.workers import WorkerPool
    from bench.metrics import summarize

    make = functools.partial(worker_client, args.url, args.model, timeout_s, args.tokenizer)
    async with WorkerPool(make, args.workers) as pool:
        t0 = time.perf_counter()
        outcome = await pool.run(plan, iter(requests))
        wall = time.perf_counter() - t0
    summary = summarize(outcome.records, client=outcome.client).to_json()
    total = outcome.client_total
    return {
        "summary": summary,
        "wall_s": wall,
        "ended": outcome.ended,
        "workers": args.workers,
        "client_total_cpu_s": None if total is None else total.cpu_s,
        "worker_cpu_shares": [w.client.cpu_share for w in outcome.workers],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="base URL of the server (with or without /v1)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--tokenizer", required=True, help="tokenizer folder that sizes the prompts")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--input-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1: in process)")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(_run(args))
    else:  # the CLI runs on uvloop when it is installed: do the same
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(_run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
