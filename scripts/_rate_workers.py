"""One open-loop run through llmbench's worker processes, for scripts/bench-rate-accuracy.

The engine alone (bench.loadgen.workers.WorkerPool with N workers; no store, no /metrics sampling): the
pool starts before the clock does, the parent only gathers records. `--worker-cpus` pins each worker to a
CPU of its own (the caller pins this parent elsewhere). Prints the run's summary and the
workers' own figures as one JSON object.

    .venv/bin/python scripts/_rate_workers.py --url URL --model M --rate 1000 --duration 15 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from _ceiling_lib import worker_client

    from bench.loadgen.profiles import ConstantProfile, Limits, PoissonProfile
    from bench.loadgen.schedule import make_plan
    from bench.loadgen.workers import WorkerPool
    from bench.metrics import summarize
    from bench.prompts import PromptSpec, build_requests

    profile = (
        PoissonProfile(rate=args.rate, seed=args.seed)
        if args.profile == "poisson"
        else ConstantProfile(rate=args.rate)
    )
    plan = make_plan(profile, Limits(duration_s=args.duration, grace_s=30))
    assert plan.offsets_s is not None
    spec = PromptSpec(input_tokens=str(args.input_tokens), output_tokens=str(args.output_tokens))
    requests = build_requests(spec, len(plan.offsets_s), args.seed)
    make = functools.partial(worker_client, args.url, args.model, 60.0, None)
    cpus = [int(c) for c in args.worker_cpus.split(",")] if args.worker_cpus else None
    async with WorkerPool(make, args.workers, cpus=cpus) as pool:
        outcome = await pool.run(plan, iter(requests))
    summary = summarize(outcome.records, client=outcome.client).to_json()
    return {
        "summary": summary,
        "ended": outcome.ended,
        "workers": [
            {
                "cpu_share": w.client.cpu_share,
                "lag_p99_ms": w.lag_p99_ms,
                "client_bound": w.client_bound_reasons,
            }
            for w in outcome.workers
        ],
        "client_total_cores": None if outcome.client_total is None else outcome.client_total.cpu_share,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--profile", choices=("poisson", "constant"), default="poisson")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--input-tokens", type=int, default=32)
    parser.add_argument("--output-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker-cpus", default=None, help="pin worker i to the i-th of these CPUs")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(_run(args))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(_run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
