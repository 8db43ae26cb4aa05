"""The session driver in process: a fake client that answers each turn with a text of its own (or fails
the turns it is told to), through a LoadSession with a workload file, an in-memory sink, no server."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from bench.loadgen.conversations import ConversationRunner
from bench.loadgen.profiles import Limits, Warmup
from bench.loadgen.schedule import Plan
from bench.loadgen.session import Endpoint, LoadSession
from bench.loadgen.sink import MemorySink
from bench.loadgen.spec import LoadSpec
from bench.loadgen.traffic import PlannedSessions, WorkloadTraffic
from bench.prompts.workloads import SessionsWorkload
from bench.records import GenRequest, RequestRecord, Status
from bench.tokenizer import load_tokenizer

TTFT_S = 0.002


class ChatClient:
    """Answers turn k of session s with `answer s k` after TTFT_S; fails the (session, turn) pairs in
    `fail` with an HTTP 500; keeps every request it was sent."""

    def __init__(self, fail: frozenset[tuple[str, int]] = frozenset(), hold_s: float = 0.0) -> None:
        self.fail = fail
        self.hold_s = hold_s
        self.requests: list[GenRequest] = []

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def check(self) -> None:
        return None

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        self.requests.append(request)
        start = time.perf_counter()
        try:
            await asyncio.sleep(TTFT_S + self.hold_s)
        except asyncio.CancelledError:
            now = time.perf_counter()
            return RequestRecord(request.request_id, Status.CANCELLED, scheduled_s, start, now,
                                 error_kind="cancelled")  # fmt: skip
        end = time.perf_counter()
        if (request.session_id, request.turn) in self.fail:
            return RequestRecord(
                request.request_id, Status.ERROR, scheduled_s, start, end,
                http_status=500, error_kind="http_500", error_text="boom",
            )  # fmt: skip
        return RequestRecord(
            request.request_id, Status.OK, scheduled_s, start, end, first_byte_s=end, first_token_s=end,
            first_content_s=end, token_chunk_s=[end], input_tokens=10, output_tokens=3,
            tokens_from="usage", output_text=f"answer {request.session_id} {request.turn}",
        )  # fmt: skip


def workload_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sessions.yaml"
    path.write_text("schema: llmbench.workload/1\nkind: sessions\n" + body, encoding="utf-8")
    return path


def load_session(client: ChatClient, sink: MemorySink, path: Path, **options: Any) -> LoadSession:
    spec = LoadSpec.from_options(target="http://fake.invalid/v1", workload=str(path), **options)
    tokenizer = load_tokenizer(None)
    traffic = WorkloadTraffic(spec, tokenizer)
    endpoint = Endpoint(server_kind="vllm", server_kind_from="test", sends_extras=True)
    return LoadSession(
        spec, client, sink, endpoint, spec.prompt_spec("openai-chat"), tokenizer, traffic=traffic
    )


def by_session(records: list[RequestRecord]) -> dict[str, list[RequestRecord]]:
    out: dict[str, list[RequestRecord]] = {}
    for r in sorted(records, key=lambda r: (r.session_id or "", r.turn or 0)):
        out.setdefault(r.session_id or "", []).append(r)
    return out


async def test_a_failed_turn_leaves_the_later_turns_not_sent_and_the_others_go_on(tmp_path: Path) -> None:
    path = workload_file(tmp_path, "sessions: 3\nconcurrent: 2\nturns: 4\nuser_tokens: 8\noutput_tokens: 4\n")
    client, sink = ChatClient(fail=frozenset({("session-1", 1)})), MemorySink()
    runs = await load_session(client, sink, path).run(handle_sigint=False)
    [run] = runs
    records = by_session(sink.run(run.run_id).records)
    assert [r.status for r in records["session-1"]] == [
        Status.OK, Status.ERROR, Status.NOT_SENT, Status.NOT_SENT,
    ]  # fmt: skip
    unsent = records["session-1"][2]
    assert unsent.error_kind == "not_sent" and unsent.turn == 2
    assert unsent.error_text == "not sent: turn 1 failed (http_500), so the session ended"
    for other in ("session-0", "session-2"):
        assert [r.status for r in records[other]] == [Status.OK] * 4
    assert len(client.requests) == 4 + 2 + 4  # the unsent turns never reached the client
    s = run.summary
    assert s.sessions is not None
    assert (s.sessions.started, s.sessions.completed, s.sessions.abandoned, s.sessions.cut_off) == (
        3,
        2,
        1,
        0,
    )
    assert (s.sessions.turns_sent, s.sessions.turns_failed, s.sessions.turns_not_sent) == (10, 1, 2)
    assert (s.completed, s.failed) == (9, 1)
    assert [t.not_sent for t in s.turns] == [0, 0, 1, 1]
    assert run.profile.kind == "concurrent" and run.profile.concurrency == 2  # the file's own pacing
    assert run.profile.workload is not None and run.profile.workload.paced_by == "workload"


async def test_each_turn_carries_the_history_with_the_answers_returned(tmp_path: Path) -> None:
    path = workload_file(
        tmp_path,
        "sessions: 2\nconcurrent: 1\nturns: 3\nthink_time_s: 0.01\nuser_tokens: 8\noutput_tokens: 4\n",
    )
    client, sink = ChatClient(), MemorySink()
    [run] = await load_session(client, sink, path, profile="synchronous").run(handle_sigint=False)
    last = next(r for r in client.requests if r.session_id == "session-1" and r.turn == 2)
    assert last.messages is not None
    assert [m["role"] for m in last.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in last.messages if m["role"] == "assistant"] == [
        "answer session-1 0",
        "answer session-1 1",
    ]
    # Turn k is due when turn k − 1 ended plus the think time, and is sent then.
    records = by_session(sink.run(run.run_id).records)["session-1"]
    for before, after in itertools.pairwise(records):
        assert after.scheduled_s == before.end_s + 0.01
        assert after.start_s >= after.scheduled_s
    # Synchronous: one session at a time, so session 1 starts after session 0 ended.
    first = by_session(sink.run(run.run_id).records)["session-0"]
    assert records[0].start_s >= first[-1].end_s
    assert run.profile.kind == "synchronous" and run.profile.workload is not None
    assert run.profile.workload.paced_by == "profile"


async def test_warm_up_sessions_run_first_and_are_left_out(tmp_path: Path) -> None:
    path = workload_file(tmp_path, "sessions: 2\nconcurrent: 2\nturns: 2\nuser_tokens: 8\noutput_tokens: 4\n")
    client, sink = ChatClient(), MemorySink()
    [run] = await load_session(client, sink, path, warmup=1).run(handle_sigint=False)
    records = sink.run(run.run_id).records
    warm = [r for r in records if r.warmup]
    assert {r.session_id for r in warm} == {"session-0"} and len(warm) == 2
    measured = [r for r in records if not r.warmup]
    assert {r.session_id for r in measured} == {"session-1", "session-2"}  # 2 measured sessions
    assert min(r.start_s for r in measured) >= max(r.end_s for r in warm)  # no overlap
    assert run.summary.warmup == 2 and run.summary.sessions is not None
    assert run.summary.sessions.completed == 2


async def test_rate_profile_starts_sessions_at_the_rate(tmp_path: Path) -> None:
    path = workload_file(tmp_path, "sessions: 4\nconcurrent: 1\nturns: 2\nuser_tokens: 8\noutput_tokens: 4\n")
    client, sink = ChatClient(), MemorySink()
    [run] = await load_session(client, sink, path, profile="constant", rate=[50.0]).run(handle_sigint=False)
    records = sink.run(run.run_id).records
    starts = sorted(r.scheduled_s for r in records if r.turn == 0)
    assert len(starts) == 4
    assert [round(b - a, 9) for a, b in itertools.pairwise(starts)] == [0.02, 0.02, 0.02]
    assert run.profile.kind == "constant" and run.profile.rate == 50.0
    assert run.summary.load is not None and run.summary.load.target is not None
    assert run.summary.load.target.value == 50.0  # sessions per second


async def test_the_run_end_leaves_the_turns_it_cut_not_sent(tmp_path: Path) -> None:
    """A duration-bound run: the session in flight is cut off, its later turns recorded as not sent."""
    sessions = SessionsWorkload.model_validate(
        {"sessions": 1, "concurrent": 1, "turns": 3, "user_tokens": 8, "output_tokens": 4}
    )
    source = PlannedSessions(sessions, ignore_eos=False)
    limits = Limits(requests=1, duration_s=0.05, grace_s=0.0, warmup=Warmup())
    plan = Plan(concurrency=1, offsets_s=None, warmup_count=0, limits=limits)
    client = ChatClient(hold_s=1.0)  # every answer takes a second: the duration ends during turn 0
    runner = ConversationRunner(client, plan, source)
    outcome = await runner.run()
    statuses = sorted((r.turn or 0, r.status) for r in outcome.records)
    assert statuses == [(0, Status.CANCELLED), (1, Status.NOT_SENT), (2, Status.NOT_SENT)]
    unsent = [r for r in outcome.records if r.status is Status.NOT_SENT]
    assert {r.error_text for r in unsent} == {"not sent: the run ended before this turn"}
    assert outcome.ended == "complete"


@pytest.mark.parametrize("flag", [{"time_scale": 0.5}, {"window_start_s": 1.0}])
def test_replay_flags_are_refused_for_sessions(tmp_path: Path, flag: dict[str, float]) -> None:
    from bench.errors import UsageError

    path = workload_file(tmp_path, "sessions: 1\nconcurrent: 1\n")
    spec = LoadSpec.from_options(target="http://fake.invalid/v1", workload=str(path), **flag)
    with pytest.raises(UsageError, match=r"--time-scale|--window-start"):
        WorkloadTraffic(spec, load_tokenizer(None))


async def test_output_budgets_are_scaled_to_the_targets_tokens(tmp_path: Path, tiny_random_dir: Path) -> None:
    """As bench.prompts.output_scale does for prompt specs: the target's tokens per reference token over
    the first requests' texts multiplies each budget, so every option is asked for the same text."""
    from bench.loadgen.profiles import SynchronousProfile
    from bench.prompts import SCALE_SAMPLE, text_output_scale
    from bench.prompts.workloads import SharedPrefixWorkload

    path = tmp_path / "rag.yaml"
    path.write_text(
        "schema: llmbench.workload/1\nkind: shared_prefix\nprefixes: {count: 3, tokens: 200}\n"
        "question_tokens: 16\noutput_tokens: 40\n",
        encoding="utf-8",
    )
    spec = LoadSpec.from_options(target="http://fake.invalid/v1", workload=str(path), requests=4)
    tok = load_tokenizer(str(tiny_random_dir))
    traffic = WorkloadTraffic(spec, tok)
    prepared = await traffic.prepare(SynchronousProfile(), traffic.limits(spec.limits()), 0)
    seq = SharedPrefixWorkload.model_validate(
        {"prefixes": {"count": 3, "tokens": 200}, "question_tokens": 16, "output_tokens": 40}
    ).build()
    texts = ["".join(m["content"] for m in seq.request(i).messages or []) for i in range(SCALE_SAMPLE)]
    scale = text_output_scale(texts, tok)
    assert scale > 1.2  # a byte-level BPE counts more tokens than one per 4 bytes
    assert prepared.output_scale == scale
    assert prepared.requests is not None
    sent = list(prepared.requests)
    assert [r.max_tokens for r in sent] == [round(40 * scale)] * 4
    assert all(r.ignore_eos for r in sent) and [r.request_id for r in sent] == [0, 1, 2, 3]
