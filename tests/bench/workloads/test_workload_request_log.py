"""Request-log replay: bodies sent as recorded, timestamps as offsets, invalid lines listed or skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.errors import ConfigError
from bench.prompts.workloads import OpenLoopRequests, RequestLogWorkload, RequestSequence, Window
from bench.prompts.workloads.request_log import ROLES

CHAT = [{"role": "user", "content": "Hi"}]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def write(tmp_path: Path, lines: list[Any]) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8"
    )
    return path


def test_bodies_are_sent_as_recorded_at_the_logged_times(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"model": "gpt-4o", "messages": CHAT, "max_tokens": 30, "tools": [TOOL], "tool_choice": "auto",
         "temperature": 0.3, "stream": False, "timestamp": 100.0, "session_id": "u1"},
        {"timestamp": 101.5, "session_id": 7, "body": {"model": "gpt-4o", "messages": CHAT,
         "max_completion_tokens": 12, "response_format": {"type": "json_object"}}},
        {"model": "gpt-4o", "messages": CHAT, "timestamp": "1970-01-01T00:01:44Z"},
    ])  # fmt: skip
    built = RequestLogWorkload(file=path).build()
    assert isinstance(built, OpenLoopRequests) and built.offsets_s == (0.0, 1.5, 4.0)
    first, second, third = (built[i].request for i in range(3))
    assert first.messages == CHAT and first.max_tokens == 30 and first.temperature == 0.3
    assert first.extra_body == {"tools": [TOOL], "tool_choice": "auto"}  # no model, stream or timestamp
    assert first.session_id == "u1" and second.session_id == "7"
    assert second.max_tokens == 12 and second.extra_body == {"response_format": {"type": "json_object"}}
    assert third.max_tokens == 256  # no limit logged: default_output_tokens
    fast = RequestLogWorkload(file=path, window=Window(time_scale=0.5, max_requests=2)).build()
    assert fast.offsets_s == (0.0, 0.75)


def test_untimed_log_is_a_sequence(tmp_path: Path) -> None:
    path = write(tmp_path, [{"messages": CHAT, "max_tokens": 5}] * 3)
    built = RequestLogWorkload(file=path).build()
    assert isinstance(built, RequestSequence) and built.count == 3
    assert [r.request_id for r in built] == [0, 1, 2]
    timed = write(tmp_path, [{"messages": CHAT, "timestamp": t} for t in (1, 2)])
    assert isinstance(RequestLogWorkload(file=timed, timing="profile").build(), RequestSequence)


def test_invalid_lines_are_listed_or_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"messages": CHAT, "timestamp": 1},
        "{not json",
        {"prompt": "completions body", "timestamp": 2},
        {"messages": [{"role": "bot", "content": "x"}], "timestamp": 3},
        {"messages": CHAT, "max_tokens": 0, "timestamp": 4},
        {"messages": CHAT, "n": 2, "timestamp": 5},
        {"messages": CHAT},
        {"messages": CHAT, "timestamp": 0.5},
        {"messages": CHAT, "timestamp": 9},
    ])  # fmt: skip
    with pytest.raises(ConfigError) as info:
        RequestLogWorkload(file=path).check()
    assert str(info.value).splitlines() == [
        f"7 invalid request lines in {path}:",
        f"  {path}:2: not valid JSON (Expecting property name enclosed in double quotes, column 2)",
        f"  {path}:3: no 'messages': not a chat-completions request body",
        f"  {path}:4: messages[0].role 'bot' is not one of " + ", ".join(ROLES),
        f"  {path}:5: max_tokens 0 is not a positive whole number",
        f"  {path}:6: n=2: only requests for one choice can be replayed",
        f"  {path}:7: has no timestamp while most lines do",
        f"  {path}:8: timestamp is before line 1's: sort the log by timestamp",
    ]
    assert "skip_invalid" in info.value.fix and info.value.key == "line 2"
    built = RequestLogWorkload(file=path, skip_invalid=True).build()
    assert len(built) == 2 and built.skipped == 7 and built.offsets_s == (0.0, 8.0)
    assert built.notes == ("7 invalid lines were skipped",)
    assert RequestLogWorkload(file=path).build(skip_invalid=True).skipped == 7  # --skip-invalid


def test_a_log_without_valid_requests_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, [{"messages": []}])
    with pytest.raises(ConfigError, match="holds no valid requests"):
        RequestLogWorkload(file=path, skip_invalid=True).check()
