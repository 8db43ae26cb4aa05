"""A load session in process: a fake client whose latency grows with the requests in flight, an in-memory
sink, no server and no store."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bench.errors import NoOperatingPointError, RunFailedError
from bench.loadgen.session import Endpoint, LoadSession
from bench.loadgen.sink import MemorySink
from bench.loadgen.spec import LoadSpec
from bench.records import GenRequest, RequestRecord, Status
from bench.tokenizer import load_tokenizer

MS_PER_REQUEST = 5.0  # TTFT grows by this much for every request in flight, the new one included (ms)
ITL_MS = 2.0


class QueueingClient:
    """A StreamingClient that queues: TTFT is MS_PER_REQUEST × the requests in flight when one is sent."""

    def __init__(self, fail: bool = False) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.sent = 0
        self.fail = fail

    async def __aenter__(self) -> QueueingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def check(self) -> None:
        return None

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        start = time.perf_counter()
        self.sent += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        ttft = self.in_flight * MS_PER_REQUEST / 1000
        chunks = [start + ttft + i * ITL_MS / 1000 for i in range(request.max_tokens)]
        try:
            await asyncio.sleep(chunks[-1] - start)
        finally:
            self.in_flight -= 1
        end = max(time.perf_counter(), chunks[-1])
        if self.fail:
            return RequestRecord(
                request.request_id, Status.ERROR, scheduled_s, start, end,
                http_status=500, error_kind="http_500", error_text="overloaded",
            )  # fmt: skip
        return RequestRecord(
            request.request_id, Status.OK, scheduled_s, start, end,
            first_byte_s=chunks[0], first_token_s=chunks[0], first_content_s=chunks[0],
            token_chunk_s=chunks, input_tokens=16, output_tokens=len(chunks), tokens_from="usage",
        )  # fmt: skip


def session(client: QueueingClient, sink: MemorySink, **options: Any) -> LoadSession:
    spec = LoadSpec.from_options(
        target="http://fake.invalid/v1", input_tokens="16", output_tokens="8", **options
    )
    endpoint = Endpoint(server_kind="vllm", server_kind_from="test", sends_extras=True)
    tokenizer = load_tokenizer(None)
    return LoadSession(spec, client, sink, endpoint, spec.prompt_spec("openai-chat"), tokenizer)


@pytest.mark.slow  # about 1.2 s: scripts/test runs it, scripts/check stays under a minute
async def test_a_goodput_search_finds_the_operating_point_of_a_queueing_client_in_memory() -> None:
    # TTFT ≤ 22 ms holds up to 4 requests in flight (20 ms) and fails from 5 (25 ms) on.
    client, sink = QueueingClient(), MemorySink()
    s = session(
        client, sink, profile="goodput", concurrency=[1], requests=12, search_steps=2, slo="ttft_ms=22"
    )
    runs = await s.run(handle_sigint=False)
    assert s.aborted is None

    probes, final = runs[:-1], runs[-1]
    assert [r.profile.concurrency for r in probes] == [1, 2, 4, 8, 6, 5]  # doubling, then bisection
    assert [r.profile.goodput.stage if r.profile.goodput else None for r in probes] == ["double"] * 4 + [
        "bisect"
    ] * 2
    passed = [r.summary.slo_attainment is not None and r.summary.slo_attainment.value == 1.0 for r in probes]
    assert passed == [True, True, True, False, False, False]
    point = final.profile.operating_point
    assert final.profile.kind == "goodput" and final.label == "goodput @ concurrent 4" and point is not None
    assert point.value == 4 and point.measured == pytest.approx(4, rel=0.1)
    assert point.probes == [r.run_id for r in probes] and not point.capped
    assert all(not r.summary.invalid_reasons for r in runs)  # every probe held its load and streamed
    assert client.most_in_flight == 8

    # The sink kept every run as the session reported it: profile, every record, summary, status.
    assert [r.run_id for r in sink.runs] == [r.run_id for r in runs]
    for kept, run in zip(sink.runs, runs, strict=True):
        assert kept.status == run.status == "complete" and kept.summary is run.summary
        assert kept.profile == run.profile and kept.label == run.label
        assert len(kept.records) == run.stored_records == run.summary.completed
    assert sum(len(r.records) for r in sink.runs) == client.sent
    assert {r.profile.goodput.search if r.profile.goodput else None for r in probes} == {s.group_id}


async def test_a_run_whose_every_request_failed_is_kept_failed_and_aborts_the_rest() -> None:
    sink = MemorySink()
    s = session(QueueingClient(fail=True), sink, profile="concurrent", concurrency=[2, 4], requests=6)
    runs = await s.run(handle_sigint=False)
    assert len(runs) == 1 and runs[0].status == "failed"  # the second value never ran
    assert isinstance(s.aborted, RunFailedError) and s.aborted.run_id == runs[0].run_id
    (kept,) = sink.runs
    assert kept.status == "failed" and len(kept.records) == 6 and kept.summary is not None


class SpoilingClient(QueueingClient):
    """A QueueingClient whose first `spoiled` responses arrive in one read (a stalled machine: the run is
    invalid, not_streamed), then streams as before."""

    def __init__(self, spoiled: int) -> None:
        super().__init__()
        self.spoiled = spoiled

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        record = await super().send(request, scheduled_s)
        if self.sent <= self.spoiled:
            record.token_chunk_s = [record.end_s] * len(record.token_chunk_s)
            record.first_byte_s = record.first_token_s = record.first_content_s = record.end_s
        return record


class StallingClient(QueueingClient):
    """A QueueingClient whose process stalls (a blocking 60 ms, the whole event loop with it) after each of
    its first `stalled` requests, as a shared machine stalls a client now and then: the slots are refilled
    late and the run is client-bound. Then it runs as before."""

    def __init__(self, stalled: int) -> None:
        super().__init__()
        self.stalled = stalled

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        record = await super().send(request, scheduled_s)
        if self.sent <= self.stalled:
            time.sleep(0.06)  # blocks the loop: nothing else is sent meanwhile
        return record


async def test_a_client_bound_probe_is_measured_again_and_the_probe_names_the_run_it_replaced() -> None:
    client, sink = StallingClient(stalled=8), MemorySink()
    s = session(
        client, sink, profile="goodput", concurrency=[2], requests=8, search_steps=0, slo="ttft_ms=22",
        max_load=8,
    )  # fmt: skip
    runs = await s.run(handle_sigint=False)
    assert s.aborted is None
    stalled, retried, *_rest = runs
    assert "client_bound" in " ".join(stalled.summary.invalid_reasons)
    assert not retried.summary.invalid_reasons and retried.profile.concurrency == 2
    point = runs[-1].profile.operating_point
    assert point is not None and point.value == 4 and not point.capped
    assert (point.search[0].run_id, point.search[0].retried) == (retried.run_id, [stalled.run_id])


async def test_a_probe_that_did_not_stream_is_not_measured_again() -> None:
    # Answers that arrive in one read say the server buffers them: a retry would say so again. The first
    # probe is invalid, the search ends there, with no operating point.
    client, sink = SpoilingClient(spoiled=8), MemorySink()
    s = session(
        client, sink, profile="goodput", concurrency=[2], requests=8, search_steps=0, slo="ttft_ms=22",
        max_load=8,
    )  # fmt: skip
    runs = await s.run(handle_sigint=False)
    (spoiled,) = runs
    assert "not_streamed" in " ".join(spoiled.summary.invalid_reasons)
    assert isinstance(s.aborted, NoOperatingPointError) and "was invalid" in str(s.aborted)
    assert [r.run_id for r in sink.runs] == [spoiled.run_id]  # kept


async def test_a_probe_invalid_every_time_ends_the_search_after_its_retries() -> None:
    client, sink = StallingClient(stalled=10**6), MemorySink()
    s = session(client, sink, profile="goodput", concurrency=[2], requests=8, slo="ttft_ms=22", max_load=4)
    runs = await s.run(handle_sigint=False)
    assert len(runs) == 3 and all(r.summary.invalid_reasons for r in runs)  # the probe and 2 retries
    assert isinstance(s.aborted, NoOperatingPointError) and "was invalid" in str(s.aborted)


def test_which_invalid_probes_are_worth_measuring_again() -> None:
    from bench.loadgen.profiles import worth_retrying
    from bench.metrics import RunSummary

    def flagged(*kinds: str) -> RunSummary:
        return RunSummary.from_json({"flags": [{"kind": k, "detail": "d"} for k in kinds]})

    assert worth_retrying(flagged("client_bound")) and worth_retrying(flagged("load_not_reached"))
    # A stalled client reads what piled up in one read: not streamed beside client-bound is a stall.
    assert worth_retrying(flagged("not_streamed", "client_bound", "load_not_reached"))
    assert not worth_retrying(flagged("not_streamed"))  # the server buffers: it would again
    assert not worth_retrying(flagged()) and not worth_retrying(flagged("coalesced_reads"))
