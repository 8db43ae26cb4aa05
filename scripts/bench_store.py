"""Results-store insert speed: records/s for add_request (per-record commit and batched) and add_requests.

Usage: .venv/bin/python scripts/bench_store.py [--records N] [--chunks C]
Each record carries C chunk times and about 4 characters of text per chunk, like a real streamed reply.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.records import RequestRecord, Status
from bench.store import Store


def make(i: int, chunks: int) -> RequestRecord:
    t = 1000.0 + i * 0.01
    times = [t + 0.05 + k * 0.002 for k in range(chunks)]
    return RequestRecord(
        request_id=i,
        status=Status.OK,
        scheduled_s=t,
        start_s=t,
        end_s=times[-1] + 0.001,
        first_byte_s=times[0],
        first_token_s=times[0],
        first_content_s=times[0],
        token_chunk_s=times,
        input_tokens=128,
        output_tokens=chunks,
        tokens_from="usage",
        http_status=200,
        output_text="word" * chunks,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--chunks", type=int, default=128)
    args = parser.parse_args()
    records = [make(i, args.chunks) for i in range(args.records)]
    with tempfile.TemporaryDirectory() as tmp:
        for label, interval, bulk in (
            ("add_request, commit per record", 0.0, False),
            ("add_request, commit every 50 ms", 0.05, False),
            ("add_requests, one transaction", 0.0, True),
        ):
            path = Path(tmp) / f"{label[:12]}-{interval}.sqlite"
            with Store.open(path, commit_interval_s=interval) as store:
                run = store.start_run("load", {"name": "bench"}, {}, {})
                t0 = time.perf_counter()
                if bulk:
                    store.add_requests(run, records, 1000.0)
                else:
                    for r in records:
                        store.add_request(run, r, 1000.0)
                store.flush()
                elapsed = time.perf_counter() - t0
                t1 = time.perf_counter()
                loaded = store.load_records(run)
                load_s = time.perf_counter() - t1
            assert len(loaded) == len(records)
            size_mb = path.stat().st_size / 2**20
            print(
                f"{label:34s} {len(records) / elapsed:9,.0f} records/s   "
                f"load {len(records) / load_s:9,.0f} records/s   file {size_mb:5.1f} MiB"
            )


if __name__ == "__main__":
    main()
