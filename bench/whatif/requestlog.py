"""A request log for cache replays: what each request sent, when it arrived and completed, what it cost and
answered; canonical cache keys and the text a semantic cache embeds.

A minimal reader of request-log JSONL: each line is either `{"body": {...}, "timestamp": ..., "session_id":
...}` (optionally with `completed_at` or `latency_ms`, `cost_usd`, `answer`, `reference`, `scorer`, `ok`) or a
bare request body (`{"model": ..., "messages": [...]}`), which carries no timing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.accuracy.suite import ExactSpec, ScorerSpec, SuiteItem
from bench.errors import ConfigError
from bench.validation import config_error, read_text

Scope = Literal["last_user", "conversation", "session"]
SCOPES: tuple[Scope, ...] = ("last_user", "conversation", "session")
# Fields that change how a response is delivered, not what it says: left out of the cache key.
TRANSPORT_FIELDS = frozenset({"stream", "stream_options"})
TEXT_FIELDS = frozenset({"messages", "prompt"})
LOG_FIX = (
    'each line is {"body": {...}, "timestamp": ..., "session_id": ...} or a bare request body with '
    '"messages" or "prompt"'
)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One logged request. Times are seconds on one clock (None: not logged); cost in USD, latency in ms.

    `check` scores an answer for this request (its reference and scorer); None: no reference, so a served
    answer is judged by the judge, if one is given.
    """

    index: int
    body: Mapping[str, Any]
    arrival_s: float | None = None
    completion_s: float | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    answer: str | None = None
    check: SuiteItem | None = None
    session_id: str | None = None
    ok: bool = True

    def question(self) -> str:
        """The request as the judge reads it: its last user message."""
        return last_user_text(self.body)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: their text
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return "" if content is None else json.dumps(content, sort_keys=True)


def last_user_text(body: Mapping[str, Any]) -> str:
    """The last user message's text (a completions prompt as it is)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _text(message.get("content"))
        return ""
    return _text(body.get("prompt"))


def conversation_text(body: Mapping[str, Any]) -> str:
    """Every message as 'role: text' lines (a completions prompt as it is)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return "\n".join(
            f"{m.get('role')}: {_text(m.get('content'))}" for m in messages if isinstance(m, dict)
        )
    return _text(body.get("prompt"))


def scope_text(body: Mapping[str, Any], scope: Scope) -> str:
    """What a semantic cache embeds: the whole conversation, else the last user message."""
    return conversation_text(body) if scope == "conversation" else last_user_text(body)


def canonical(body: Mapping[str, Any]) -> str:
    """The exact cache's key: the whole request body (model, messages, tools, response_format, sampling
    parameters) as canonical JSON, transport fields (stream, stream_options) left out."""
    kept = {k: v for k, v in body.items() if k not in TRANSPORT_FIELDS}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def partition(body: Mapping[str, Any]) -> str:
    """What a semantic hit must match exactly: the body without its text (model, tools, sampling...)."""
    return canonical({k: v for k, v in body.items() if k not in TEXT_FIELDS})


class LogLine(BaseModel):
    """One line of a request-log JSONL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    body: dict[str, Any]
    timestamp: float | datetime | None = Field(None, description="arrival (epoch s or ISO 8601)")
    session_id: str | None = None
    completed_at: float | datetime | None = None
    latency_ms: float | None = Field(None, ge=0)
    cost_usd: float | None = Field(None, ge=0)
    answer: str | None = None
    reference: str | None = None
    scorer: ScorerSpec | None = None  # how an answer is scored against the reference (default exact)
    ok: bool = True


def _seconds(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


def to_request(index: int, line: LogLine) -> LoggedRequest:
    """A validated line as a LoggedRequest (its reference as a one-item check)."""
    arrival = _seconds(line.timestamp)
    completion = _seconds(line.completed_at)
    if completion is None and arrival is not None and line.latency_ms is not None:
        completion = arrival + line.latency_ms / 1000
    latency = line.latency_ms
    if latency is None and arrival is not None and completion is not None:
        latency = (completion - arrival) * 1000
    check = None
    if line.reference is not None:
        question = last_user_text(line.body) or "(no user message)"
        check = SuiteItem(
            id=f"log-{index}",
            area="log",
            prompt=question,
            reference=line.reference,
            scorer=line.scorer or ExactSpec(),
            rubric="Pass if the answer matches the reference."
            if line.scorer and line.scorer.kind == "judge"
            else None,
        )
    return LoggedRequest(
        index,
        line.body,
        arrival,
        completion,
        line.cost_usd,
        latency,
        line.answer,
        check,
        line.session_id,
        line.ok,
    )


def read_request_log(path: Path) -> list[LoggedRequest]:
    """Read a request-log JSONL; ConfigError naming file:line for the first malformed line."""
    try:
        text = read_text(path, what="the request log")
    except FileNotFoundError as exc:
        raise ConfigError(f"no request log at {path}", file=str(path), fix="check the path") from exc
    out: list[LoggedRequest] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg})", file=str(path), fix=LOG_FIX) from exc
        if isinstance(data, dict) and "body" not in data and TEXT_FIELDS & set(data):
            data = {"body": data}
        try:
            line = LogLine.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc, file=where, model=LogLine, fix=LOG_FIX) from exc
        if not TEXT_FIELDS & set(line.body):
            raise ConfigError(
                f"{where}: the body has neither 'messages' nor 'prompt'", file=str(path), fix=LOG_FIX
            )
        out.append(to_request(len(out), line))
    if not out:
        raise ConfigError(f"{path}: the request log has no requests", file=str(path), fix=LOG_FIX)
    return out


def is_timed(log: Sequence[LoggedRequest]) -> bool:
    """True when every request has an arrival time."""
    return all(r.arrival_s is not None for r in log)
