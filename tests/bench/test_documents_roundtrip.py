"""Every stored document type reads back as the value that wrote it: from_json(to_json(x)) == x.

A property test over many generated cases (deterministic seeds): the documents pass through JSON text, as
the store keeps them, and come back equal field for field, with the same JSON again.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from bench.metrics import ClientStats, PrefixCounters, RunSummary, Slo, summarize
from bench.metrics.load import LoadTarget
from bench.records import RequestRecord, Status

CASES = 60


def _records(rng: random.Random) -> list[RequestRecord]:
    n = rng.randint(0, 40)
    sessions = rng.random() < 0.3  # a session workload: records carry a session and a turn
    concurrency = rng.choice([1, 2, 4])
    clock = [0.0] * concurrency
    out = []
    for i in range(n):
        slot = i % concurrency
        start = clock[slot] + rng.choice([0.0, 0.0, rng.uniform(0, 0.05)])
        statuses = [Status.OK, Status.ERROR, Status.TIMEOUT, Status.CANCELLED, Status.NOT_SENT]
        status = rng.choices(statuses, [8, 1, 1, 1, 1 if sessions else 0])[0]
        chunks = sorted(start + rng.uniform(0.01, 0.5) for _ in range(rng.randint(0, 6)))
        end = (chunks[-1] if chunks else start) + rng.uniform(0.0, 0.05)
        known = rng.random() < 0.9
        out.append(
            RequestRecord(
                request_id=i,
                status=status,
                scheduled_s=clock[slot],
                start_s=start,
                end_s=end,
                first_byte_s=chunks[0] if chunks else None,
                first_token_s=chunks[0] if chunks else None,
                first_content_s=chunks[-1]
                if chunks and rng.random() < 0.5
                else (chunks[0] if chunks else None),
                token_chunk_s=chunks,
                input_tokens=rng.randint(1, 200) if known else None,
                output_tokens=rng.randint(1, 50) if known and status is Status.OK else None,
                cached_input_tokens=rng.choice([None, 0, 16]),
                cache_write_tokens=rng.choice([None, 0, 8]),
                reasoning_tokens=rng.choice([None, 0, 3]),
                tokens_from=rng.choice(["usage", "tokenizer", "none"]),
                http_status=None if status is Status.OK else rng.choice([None, 500, 429]),
                error_kind=None if status is Status.OK else rng.choice(["http_500", "timeout", None]),
                error_text=None if status is Status.OK else "boom " * rng.randint(0, 3),
                warmup=rng.random() < 0.1,
                input_bytes=rng.choice([None, 400]),
                output_bytes=rng.choice([None, 64]),
                session_id=f"s{i % 3}" if sessions else None,
                turn=i // 3 if sessions else None,
            )
        )
        clock[slot] = end
    return out


def _summary(seed: int) -> RunSummary:
    rng = random.Random(seed)
    slo = rng.choice([None, Slo(ttft_ms=200.0), Slo(ttft_ms=300.0, tpot_ms=20.0, e2e_ms=900.0)])
    target = rng.choice([None, LoadTarget("concurrency", rng.choice([1, 2, 4])), LoadTarget("rate", 5.0)])
    client = rng.choice([None, ClientStats(cpu_s=rng.uniform(0, 2), wall_s=rng.uniform(1, 3), cores=2)])
    server = rng.choice([None, PrefixCounters(queries=rng.uniform(0, 1e4), hits=rng.uniform(0, 1e3))])
    return summarize(
        _records(rng),
        slo=slo,
        client=client,
        fixed_length=rng.choice([None, True, False]),
        attainment_target=rng.choice([None, 0.9, 0.99]),
        load_target=target,
        server_cache=server,
        designed_reuse=rng.choice([None, 0.0, 0.42]),
    )


def _through_text(data: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


@pytest.mark.parametrize("seed", range(CASES))
def test_a_run_summary_reads_back_as_itself(seed: int) -> None:
    summary = _summary(seed)
    stored = _through_text(summary.to_json())
    again = RunSummary.from_json(stored)
    assert again == summary
    assert again.to_json() == summary.to_json()


def test_a_summary_stored_before_the_schema_key_reads_with_empty_new_fields() -> None:
    # An older run's summary has no `schema`, `load`, reference or cache totals: it reads, with those empty.
    old = _through_text(_summary(3).to_json())
    for key in ("schema", "load", "valid"):
        old.pop(key, None)
    for key in ("reference", "cache_read", "cache_write", "reasoning"):
        old["tokens"].pop(key, None)
    summary = RunSummary.from_json(old)
    assert summary.load is None and summary.reference_tokens is None and summary.cache_read_tokens == 0
