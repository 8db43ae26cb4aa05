"""Request-log replay: the user's own OpenAI chat-completions request bodies, sent as recorded.

A JSONL file, one request per line, as a gateway or the SDK logs them. A line is either the body itself
(`{"model": ..., "messages": [...], "max_tokens": ..., "tools": ...}`), with optional `timestamp` and
`session_id` keys beside the body's own, or a wrapper `{"timestamp": ..., "session_id": ..., "body": {...}}`
(`request` is read like `body`). `timestamp` is seconds (or milliseconds, `timestamp_unit: ms`) or an
ISO-8601 date-time.

Each request is sent as recorded: messages, max_tokens (or max_completion_tokens), temperature and every
other field (tools, tool_choice, response_format, stop, seed…) ride in `extra_body`. The target's model
name replaces the logged `model`, and the client sets `stream` itself. A body without a length limit gets
`default_output_tokens`.

With timestamps on every line the log is replayed open-loop at the recorded times (`window` chooses the
part and the speed); without any it is a request sequence that the run's load profile paces. A line that
is not a valid request is listed (`FILE:LINE: why`) and the workload refused, unless `skip_invalid`, which
leaves such lines out and counts them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from bench.errors import ConfigError
from bench.prompts.workloads.base import (
    DataPath,
    LineProblem,
    OpenLoopRequests,
    RequestSequence,
    Window,
    WorkloadBase,
    file_error,
    number,
)
from bench.records import GenRequest
from bench.validation import read_text

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# Fields the request itself carries or the client sets; everything else is sent in extra_body as logged.
_CONSUMED = frozenset(
    {"model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options", "temperature"}
)
_WRAPPER_KEYS = ("body", "request")
FIX = (
    "each line must be a chat-completions request body with a non-empty 'messages' list, optionally with "
    "'timestamp' and 'session_id'; correct or remove the lines listed, or set skip_invalid: true "
    "(--skip-invalid) to leave them out"
)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One valid line: its line number, when it was sent (s, or None), its session, its body."""

    line: int
    time_s: float | None
    session_id: str | None
    body: dict[str, Any]

    def request(self, request_id: int, default_output_tokens: int) -> GenRequest:
        """The GenRequest that sends this body as recorded."""
        body = self.body
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or default_output_tokens
        return GenRequest(
            request_id,
            messages=body["messages"],
            max_tokens=limit,
            temperature=body.get("temperature"),
            extra_body={k: v for k, v in body.items() if k not in _CONSUMED},
            session_id=self.session_id,
        )


@dataclass(frozen=True, slots=True)
class RequestLog:
    """The valid requests of a log file, and how many lines were left out."""

    requests: tuple[LoggedRequest, ...]
    skipped: int
    problems: tuple[LineProblem, ...]  # the lines left out, and why

    @property
    def timed(self) -> bool:
        return bool(self.requests) and self.requests[0].time_s is not None


class RequestLogWorkload(WorkloadBase):
    """Replay a JSONL log of OpenAI chat-completions request bodies."""

    kind: Literal["request_log"] = "request_log"
    file: DataPath = Field(description="the JSONL log (relative to this workload file)")
    window: Window = Window()
    skip_invalid: bool = Field(False, description="leave invalid lines out (counted) instead of refusing")
    default_output_tokens: int = Field(256, ge=1, description="max_tokens for a body that sets no limit")
    timestamp_unit: Literal["s", "ms"] = Field("s", description="unit of numeric timestamps")
    timing: Literal["recorded", "profile"] = Field(
        "recorded", description="recorded: send at the logged times; profile: the load profile paces"
    )

    @model_validator(mode="after")
    def _chat_only(self) -> RequestLogWorkload:
        if self.api != "chat":
            raise ValueError("a request log holds chat-completions bodies: api must be 'chat'")
        return self

    def read(self, *, skip_invalid: bool | None = None) -> RequestLog:
        """Read the log: ConfigError listing every invalid line, unless invalid lines are skipped
        (`skip_invalid` overrides the file's setting, as --skip-invalid does)."""
        skip = self.skip_invalid if skip_invalid is None else skip_invalid
        return read_request_log(self.file, skip_invalid=skip, unit=self.timestamp_unit)

    def check(self) -> None:
        """Read the log as the file asks: ConfigError listing every invalid line unless skip_invalid."""
        self.read()

    def build(self, *, skip_invalid: bool | None = None) -> OpenLoopRequests | RequestSequence:
        """Open-loop at the recorded times when the log has them, else a sequence the profile paces."""
        log = self.read(skip_invalid=skip_invalid)
        default = self.default_output_tokens
        if log.timed and self.timing == "recorded":
            kept, offsets = self.window.select([r.time_s or 0.0 for r in log.requests])
            chosen = [log.requests[i] for i in kept]
            return OpenLoopRequests(
                offsets, lambda i: chosen[i].request(i, default), skipped=log.skipped, notes=_notes(log)
            )
        limit = self.window.max_requests
        requests = log.requests[:limit] if limit is not None else log.requests
        return RequestSequence(lambda i: requests[i].request(i, default), len(requests), skipped=log.skipped)


def _notes(log: RequestLog) -> list[str]:
    return [f"{log.skipped} invalid lines were skipped"] if log.skipped else []


def read_request_log(path: Path, *, skip_invalid: bool = False, unit: str = "s") -> RequestLog:
    """Every valid request of a log; ConfigError listing the invalid lines unless `skip_invalid`."""
    try:
        text = read_text(path, what="request log")
    except FileNotFoundError as exc:
        raise ConfigError(f"request log not found: {path}", file=str(path), fix="check the path") from exc
    problems: list[LineProblem] = []
    found: list[LoggedRequest] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            found.append(_parse_line(raw, line, unit))
        except ValueError as exc:
            problems.append(LineProblem(line, str(exc)))
    valid = _check_times(found, problems)
    problems.sort(key=lambda p: p.line)
    if problems and not skip_invalid:
        raise file_error(path, problems, what="request lines", fix=FIX)
    if not valid:
        raise ConfigError(f"{path} holds no valid requests", file=str(path), fix=FIX)
    return RequestLog(tuple(valid), len(problems), tuple(problems))


def _check_times(found: Sequence[LoggedRequest], problems: list[LineProblem]) -> list[LoggedRequest]:
    """Every line timed or none (the majority decides); timed lines in order. Returns the lines kept."""
    timed = sum(r.time_s is not None for r in found)
    keep_timed = timed * 2 >= len(found) and timed > 0
    out: list[LoggedRequest] = []
    for r in found:
        if (r.time_s is not None) != keep_timed:
            why = (
                "has no timestamp while most lines do" if keep_timed else "has a timestamp while most do not"
            )
            problems.append(LineProblem(r.line, why))
        elif keep_timed and out and (r.time_s or 0.0) < (out[-1].time_s or 0.0):
            problems.append(
                LineProblem(r.line, f"timestamp is before line {out[-1].line}'s: sort the log by timestamp")
            )
        else:
            out.append(r)
    return out


def _parse_line(raw: str, line: int, unit: str) -> LoggedRequest:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    wrapper = next((k for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
    if wrapper is not None:
        body = dict(obj[wrapper])
        meta = obj
    else:
        body = {k: v for k, v in obj.items() if k not in ("timestamp", "session_id")}
        meta = obj
    _check_body(body)
    return LoggedRequest(line, _time(meta.get("timestamp"), unit), _session(meta.get("session_id")), body)


def _check_body(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if messages is None:
        raise ValueError("no 'messages': not a chat-completions request body")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{i}] is not an object")
        role = message.get("role")
        if role not in ROLES:
            raise ValueError(f"messages[{i}].role {role!r} is not one of {', '.join(ROLES)}")
        content = message.get("content")
        no_text_ok = role in ("assistant", "tool", "function") or "tool_calls" in message
        if not (isinstance(content, str | list) or (content is None and no_text_ok)):
            raise ValueError(f"messages[{i}].content must be a string or a list of parts")
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{key} {value!r} is not a positive whole number")
    if body.get("n", 1) != 1:
        raise ValueError(f"n={body['n']!r}: only requests for one choice can be replayed")
    if "tools" in body and not isinstance(body["tools"], list):
        raise ValueError("'tools' must be a list")
    if "response_format" in body and not isinstance(body["response_format"], dict):
        raise ValueError("'response_format' must be an object")
    temperature = body.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float) or isinstance(temperature, bool)
    ):
        raise ValueError(f"temperature {temperature!r} is not a number")


def _time(value: Any, unit: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return number(value, "timestamp") * (0.001 if unit == "ms" else 1.0)
        except ValueError:
            pass
        try:
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"timestamp {value!r} is neither a number nor an ISO-8601 date-time") from None
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    seconds = number(value, "timestamp") * (0.001 if unit == "ms" else 1.0)
    if seconds < 0:
        raise ValueError(f"timestamp {value!r} is negative")
    return seconds


def _session(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"session_id {value!r} must be a string")
