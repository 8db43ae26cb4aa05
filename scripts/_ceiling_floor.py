"""The floor client for scripts/bench-client-ceiling: the least a streaming load client can do.

A closed loop of `--concurrency` aiohttp streams (uvloop where installed, as llmbench runs) that posts
prebuilt request bodies and only reads each response to its end: no SSE parsing, no timing, no records.
It sends the same prompts as llmbench (bench.prompts, built before the clock starts), so the server does
the same work; what llmbench costs above it is the cost of measuring. Prints one JSON object.

    .venv/bin/python scripts/_ceiling_floor.py --url URL --model M --tokenizer DIR --concurrency 16
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


def bodies(args: argparse.Namespace) -> list[bytes]:
    from bench.prompts import PromptSpec, build_requests
    from bench.tokenizer import load_tokenizer

    spec = PromptSpec(
        input_tokens=str(args.input_tokens), output_tokens=str(args.output_tokens), unit="model"
    )
    requests = build_requests(spec, args.requests, args.seed, load_tokenizer(args.tokenizer))
    return [
        json.dumps(
            {
                "model": args.model,
                "messages": r.messages,
                "max_tokens": r.max_tokens,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        ).encode()
        for r in requests
    ]


async def run(args: argparse.Namespace, payloads: list[bytes]) -> dict[str, Any]:
    import aiohttp

    url = args.url.rstrip("/").removesuffix("/v1") + "/v1/chat/completions"
    headers = {"Content-Type": "application/json"}
    queue = iter(payloads)
    done = failed = 0

    async def stream(session: aiohttp.ClientSession) -> None:
        nonlocal done, failed
        for payload in queue:
            async with session.post(url, data=payload, headers=headers) as resp:
                read = resp.content.readany
                while await read():
                    pass
                if resp.status == 200:
                    done += 1
                else:
                    failed += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(stream(session) for _ in range(args.concurrency)))
        wall = time.perf_counter() - t0
    return {
        "completed": done,
        "failed": failed,
        "req_s": done / wall,
        "tok_s": done * args.output_tokens / wall,
        "duration_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--input-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    payloads = bodies(args)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args, payloads))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(run(args, payloads))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
