"""Stores built from constructed runs for the report tests: real records, real summaries, real store writes.

Load runs get RequestRecords with chosen TTFT, inter-token gaps and token counts, summarized by the real
`bench.metrics.summarize`; accuracy runs get ItemRecords whose correctness per area is fixed by a seed,
summarized by the real `bench.accuracy.summary.summarize`. Nothing is mocked.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.accuracy.summary import summarize as summarize_items
from bench.loadgen.documents import LoadRunProfile
from bench.metrics import Slo, summarize
from bench.records import ItemRecord, RequestRecord, Status
from bench.store import Store

AREAS = ("arithmetic", "comparison", "lookup", "string")
SUITE = "builtin:tiny-skills"
SUITE_SHA = "ab" * 32
SLO = "ttft_ms=1000,tpot_ms=60"


def target(name: str, kind: str, api: str = "openai-chat") -> dict[str, Any]:
    return {"name": name, "kind": kind, "url": "http://127.0.0.1:1/v1", "api": api, "model": name,
            "server_kind": "llmbench" if kind == "local" else "openai"}  # fmt: skip


def records(
    n: int,
    *,
    ttft_s: float,
    itl_s: float,
    out_tokens: int = 64,
    in_tokens: int = 128,
    cached: int = 0,
    failed: int = 0,
    cancelled: int = 0,
    concurrency: int = 1,
    seed: int = 0,
    bytes_per_token: int = 4,
) -> list[RequestRecord]:
    """`n` requests sent `concurrency` at a time; TTFT and gaps jitter ±20% around the given values.

    Each request's prompt and answer text is `bytes_per_token` bytes per token of its own count (4: one
    reference token per token, like an API; 1: a byte-level model, four of its tokens per reference token).
    """
    rng = random.Random(seed)
    out: list[RequestRecord] = []
    clock = [0.0] * concurrency
    for i in range(n + failed + cancelled):
        slot = i % concurrency
        start = clock[slot]
        ttft = ttft_s * rng.uniform(0.8, 1.2)
        chunks = [start + ttft + k * itl_s * rng.uniform(0.8, 1.2) for k in range(out_tokens)]
        chunks = sorted(chunks)
        end = chunks[-1] + 0.001
        status = Status.OK if i < n else (Status.ERROR if i < n + failed else Status.CANCELLED)
        rec = RequestRecord(
            request_id=i, status=status, scheduled_s=start, start_s=start, end_s=end,
            first_byte_s=start + ttft * 0.9, first_token_s=chunks[0], first_content_s=chunks[0],
            token_chunk_s=chunks if status is Status.OK else chunks[:3],
            input_tokens=in_tokens, output_tokens=out_tokens if status is Status.OK else None,
            cached_input_tokens=cached or None, tokens_from="usage" if status is Status.OK else "none",
            http_status=200 if status is Status.OK else 500,
            error_kind=None if status is Status.OK else "http_500", output_text="x" * 8,
            input_bytes=in_tokens * bytes_per_token,
            output_bytes=out_tokens * bytes_per_token if status is Status.OK else 0,
        )  # fmt: skip
        out.append(rec)
        clock[slot] = end
    return out


def add_load_run(
    store: Store,
    tgt: Mapping[str, Any],
    recs: Sequence[RequestRecord],
    *,
    profile: Mapping[str, Any],
    slo: str | None = SLO,
    hardware: str | None = None,
    status: str = "complete",
    extra_summary: Mapping[str, Any] | None = None,
    sweep_id: str | None = None,
    point_id: str | None = None,
) -> str:
    """Store one load run with its real summary (in a sweep's point, when given); returns its id."""
    provenance: dict[str, Any] = {
        "llmbench": {"version": "0.1.0", "git": {"sha": "f" * 40, "dirty": False}},
        "engine": {"name": "vllm" if tgt["kind"] == "local" else "mock", "version": "0.32.0"},
        "model": {"repo": None, "revision": None},
        "quantization": None,
    }
    if hardware:
        provenance["hardware_profile"] = hardware
    label = profile.get("label") or f"{profile['kind']}"
    prompts = {"kind": "synthetic", "input_tokens": {"kind": "fixed", "a": 32}, "unit": "reference",
               "output_tokens": {"kind": "fixed", "a": 16}}  # fmt: skip
    stored = LoadRunProfile.model_validate(
        {"limits": {"requests": len(recs)}, **profile, "label": label, "slo": slo, "prompts": prompts}
    )
    run_id = store.start_run("load", tgt, stored, provenance, sweep_id=sweep_id, point_id=point_id)
    store.add_requests(run_id, recs, 0.0)
    summary = summarize(
        recs, slo=None if slo is None else Slo.parse(slo), load_target=stored.target
    ).to_json()
    summary.update(extra_summary or {})
    store.finish_run(run_id, status, summary)  # type: ignore[arg-type]
    return run_id


def items(accuracy: Mapping[str, float], *, per_area: int = 100, seed: int = 0) -> list[ItemRecord]:
    """Items of the four areas, right with the given probability per area (seeded per item id)."""
    out = []
    for area in AREAS:
        for k in range(per_area):
            item_id = f"{area[:3]}-{k:04d}"
            right = random.Random(f"{seed}:{item_id}").random() < accuracy.get(area, 0.5)
            out.append(
                ItemRecord(item_id=item_id, status="ok", area=area, score=float(right), correct=right,
                           output="42" if right else "41", reference="42", input_tokens=20, output_tokens=3,
                           latency_ms=50.0,
                           extra={"cached_input_tokens": 0, "input_bytes": 80, "output_bytes": 12})
            )  # fmt: skip
    return out


def oracle(accuracy: float) -> dict[str, Any]:
    """The `mock_answers` provenance `bench accuracy` stores for a mock entry with an oracle."""
    return {"kind": "oracle", "oracle_file": SUITE, "accuracy": accuracy, "area_accuracy": {}, "seed": 0}


def add_accuracy_run(
    store: Store,
    tgt: Mapping[str, Any],
    scored: Sequence[ItemRecord],
    *,
    suite: str = SUITE,
    mock_answers: Mapping[str, Any] | None = None,
    sweep_id: str | None = None,
    point_id: str | None = None,
) -> str:
    sha = SUITE_SHA if suite == SUITE else "cd" * 32
    profile = {"target": tgt["name"], "suite": suite, "suite_sha256": sha,
               "templates": {"item": "t"}, "items": len(scored)}  # fmt: skip
    provenance: dict[str, Any] = {"llmbench": {"version": "0.1.0"}}
    if mock_answers is not None:
        provenance["mock_answers"] = dict(mock_answers)
    run_id = store.start_run("accuracy", tgt, profile, provenance, sweep_id=sweep_id, point_id=point_id)
    store.add_items(run_id, scored)
    summary = summarize_items(scored, suite=suite.removeprefix("builtin:"), target=tgt["name"], run_id=run_id)
    store.finish_run(run_id, "complete", summary)
    return run_id


LOCAL = target("tiny-skills", "local")
INT8 = target("tiny-skills:int8", "local")
FRONTIER = target("mock-frontier", "mock", api="anthropic")
MINI = target("mock-mini", "mock")


def trade_off_store(path: Path) -> dict[str, str]:
    """A store like the offline demo: a tiny model and its int8 variant on a CPU box, two mock APIs."""
    ids: dict[str, str] = {}
    with Store.open(path) as store:
        for c, ttft, itl in ((1, 0.05, 0.004), (4, 0.12, 0.008), (16, 1.4, 0.05)):
            ids[f"local-c{c}"] = add_load_run(
                store, LOCAL, records(60, ttft_s=ttft, itl_s=itl, concurrency=c, seed=c, bytes_per_token=1),
                profile={"kind": "concurrent", "concurrency": c}, hardware="cpu-2vcpu",
            )  # fmt: skip
        for c, ttft, itl in ((4, 0.08, 0.006), (16, 0.3, 0.02)):
            recs = records(60, ttft_s=ttft, itl_s=itl, concurrency=c, seed=10 + c, bytes_per_token=1)
            ids[f"int8-c{c}"] = add_load_run(
                store, INT8, recs,
                profile={"kind": "concurrent", "concurrency": c}, hardware="cpu-2vcpu",
            )  # fmt: skip
        ids["frontier-load"] = add_load_run(
            store, FRONTIER, records(40, ttft_s=0.6, itl_s=0.025, concurrency=8, cached=32, seed=3),
            profile={"kind": "concurrent", "concurrency": 8},
        )  # fmt: skip
        ids["mini-load"] = add_load_run(
            store, MINI, records(40, ttft_s=0.15, itl_s=0.008, concurrency=8, seed=4),
            profile={"kind": "concurrent", "concurrency": 8},
        )  # fmt: skip
        base = {"arithmetic": 0.6, "comparison": 0.7, "lookup": 0.95, "string": 0.65}
        ids["local-acc"] = add_accuracy_run(store, LOCAL, items(base))
        ids["int8-acc"] = add_accuracy_run(store, INT8, items({**base, "arithmetic": 0.55}))
        ids["frontier-acc"] = add_accuracy_run(
            store, FRONTIER, items({"arithmetic": 0.97, "comparison": 0.95, "lookup": 0.98, "string": 0.9}),
            mock_answers=oracle(0.95),
        )  # fmt: skip
        ids["mini-acc"] = add_accuracy_run(
            store, MINI, items({"arithmetic": 0.55, "comparison": 0.75, "lookup": 0.9, "string": 0.6}),
            mock_answers=oracle(0.70),
        )  # fmt: skip
    return ids
