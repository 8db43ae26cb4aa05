"""llmbench's load engine as a library, for scripts/bench-client-ceiling: client + LoadRunner, nothing else.

No results store, no /metrics sampler, no provenance: the engine alone, so the ceiling script can tell
what the CLI's extras cost. Prompts are built before the clock starts, as the CLI does. Prints one JSON
object (the run's summary plus the wall time of the send loop) on stdout.

    .venv/bin/python scripts/_ceiling_lib.py --url URL --model M --tokenizer DIR --concurrency 16 --requests N
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
    async with make_client("openai-chat", config) as client:
        await client.check()
        t0 = time.perf_counter()
        outcome = await LoadRunner(client, plan, iter(requests)).run()
        wall = time.perf_counter() - t0
    summary = summarize(outcome.records, client=outcome.client).to_json()
    return {"summary": summary, "wall_s": wall, "ended": outcome.ended}


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
