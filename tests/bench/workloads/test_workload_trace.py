"""Trace replay on hand-built traces: arrival gaps, the block-reuse share, prompts whose equal block ids share
text exactly (and hit the mock's prefix cache by exactly those blocks), windows, and refused bad lines."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench.clients import ClientConfig, make_client
from bench.errors import ConfigError
from bench.prompts.workloads import OpenLoopRequests, TraceWorkload, Window
from bench.records import RequestRecord, reference_tokens
from serve.mock.server import running_mock
from serve.specs import MockSpec

TWO_ROWS = [
    {"timestamp": 0, "input_length": 1024, "output_length": 8, "hash_ids": [1, 2]},
    {"timestamp": 250, "input_length": 1300, "output_length": 16, "hash_ids": [1, 2, 3]},
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def mooncake(tmp_path: Path, rows: list[dict[str, object]], **kw: object) -> OpenLoopRequests:
    workload = TraceWorkload(format="mooncake", file=write_jsonl(tmp_path / "t.jsonl", rows), **kw)  # type: ignore[arg-type]
    built = workload.build()
    assert isinstance(built, OpenLoopRequests)
    return built


def text_of(built: OpenLoopRequests, i: int) -> str:
    messages = built[i].request.messages
    assert messages is not None
    return str(messages[0]["content"])


def test_two_row_mooncake_gap_and_block_reuse_by_hand(tmp_path: Path) -> None:
    """Row 2 arrives 250 ms after row 1; it repeats blocks 1 and 2 (512 + 512 of its 1,300 tokens).
    Block-reuse share = 1,024 / (1,024 + 1,300) = 1,024 / 2,324."""
    built = mooncake(tmp_path, TWO_ROWS)
    assert built.offsets_s == (0.0, 0.25)
    assert built.reuse_share == 1024 / 2324
    first, second = text_of(built, 0), text_of(built, 1)
    assert (reference_tokens(len(first.encode())), reference_tokens(len(second.encode()))) == (1024, 1300)
    assert second[: 4 * 1024] == first  # blocks 1 and 2: the same text
    assert second[4 * 1024 :].startswith("[block 3] ") and first.startswith("[block 1] ")
    assert [built[i].request.max_tokens for i in range(2)] == [8, 16]
    assert built[1] == built[1]  # built on access, the same every time


def test_the_mock_caches_exactly_the_shared_blocks(tmp_path: Path) -> None:
    """The OpenAI dialect reads 1,024 cached tokens (8 steps of 128) on row 2: the designed share."""
    built = mooncake(tmp_path, TWO_ROWS)

    async def main(url: str) -> list[RequestRecord]:
        async with make_client("openai-chat", ClientConfig(url, "m", server_kind="openai")) as client:
            return [await client.send(built[i].request, 0.0) for i in range(len(built))]

    with running_mock(MockSpec(model="m", port=0)) as url:
        records = asyncio.run(main(url))
    assert [(r.input_tokens, r.cached_input_tokens) for r in records] == [(1024, 0), (1300, 1024)]
    assert sum(r.cached_input_tokens or 0 for r in records) / sum(r.input_tokens or 0 for r in records) == (
        built.reuse_share
    )


def test_window_and_time_scale(tmp_path: Path) -> None:
    rows = [{"timestamp": 1000 * t, "input_length": 10, "output_length": 1} for t in (0, 1, 2, 3, 4, 5)]
    window = Window(start_s=1, duration_s=3, time_scale=0.5)  # rows at 1, 2, 3 s; gaps halved
    built = mooncake(tmp_path, rows, window=window)
    assert built.offsets_s == (0.0, 0.5, 1.0)
    assert mooncake(tmp_path, rows, window=Window(max_requests=2)).offsets_s == (0.0, 1.0)


def test_azure_and_burstgpt(tmp_path: Path) -> None:
    azure = tmp_path / "azure.csv"
    azure.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.1805900,396,109\n",
        encoding="utf-8",
    )
    built = TraceWorkload(format="azure", file=azure).build()
    assert built.offsets_s == pytest.approx((0.0, 3.5))
    assert reference_tokens(len(text_of(built, 1).encode())) == 396 and built[1].request.max_tokens == 109
    assert built.reuse_share == 0.0
    burst = tmp_path / "burst.csv"
    burst.write_text(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "5,ChatGPT,472,18,490,Conversation log\n"
        "45,ChatGPT,1087,0,1087,Conversation log\n"  # failed: no output to replay
        "118,GPT-4,417,276,693,API log\n"
        "120,ChatGPT,100,20,120,API log\n",
        encoding="utf-8",
    )
    built = TraceWorkload(format="burstgpt", file=burst, model_filter="ChatGPT").build()
    assert built.offsets_s == (0.0, 115.0) and built.skipped == 1
    assert built.notes == ("1 rows recorded without output were left out",)
    assert len(TraceWorkload(format="burstgpt", file=burst).build()) == 3


@pytest.mark.parametrize(
    ("rows", "line", "why"),
    [
        ([TWO_ROWS[1], TWO_ROWS[0]], 2, "arrives at 0 s, before line 1 (0.25 s)"),
        ([{**TWO_ROWS[0], "timestamp": -5}], 1, "timestamp -0.005 s is negative"),
        ([{"timestamp": 0, "output_length": 3}], 1, "missing 'input_length'"),
        ([{**TWO_ROWS[0], "input_length": "many"}], 1, "input_length 'many' is not a whole number"),
    ],
)
def test_bad_mooncake_lines_are_refused_by_line(
    tmp_path: Path, rows: list[dict[str, object]], line: int, why: str
) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    with pytest.raises(ConfigError) as info:
        TraceWorkload(format="mooncake", file=path).check()
    assert str(info.value) == f"{path}:{line}: {why}"
    assert info.value.file == str(path) and "sorted by timestamp" in info.value.fix


def test_bad_csv_traces_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "azure.csv"
    path.write_text("time,ContextTokens\n1,2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        TraceWorkload(format="azure", file=path).check()
    assert str(info.value).startswith(f"{path}:1: the header lacks 'TIMESTAMP', 'GeneratedTokens'")
    assert "TIMESTAMP,ContextTokens,GeneratedTokens" in info.value.fix
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,2,3\n5,2,3\n6,x,3\n4,2,3\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        TraceWorkload(format="azure", file=path).check()
    assert str(info.value).splitlines() == [
        f"3 invalid lines in {path}:",
        f"  {path}:2: TIMESTAMP 'yesterday' is neither a date-time nor a number of seconds",
        f"  {path}:4: ContextTokens 'x' is not a whole number",
        f"  {path}:5: arrives at 4 s, before line 3 (5 s)",
    ]
    assert info.value.key == "line 2"
