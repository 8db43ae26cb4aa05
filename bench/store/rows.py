"""What the store hands back (RunInfo, ItemRecord, ServerSample) and how values are encoded in it."""

from __future__ import annotations

import dataclasses
import json
import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import PurePath
from typing import Any, Literal, NamedTuple

from bench.records import RequestRecord

RunKind = Literal["load", "accuracy"]
RunStatus = Literal["running", "complete", "partial", "failed"]
RUN_KINDS: tuple[str, ...] = ("load", "accuracy")
FINAL_STATUSES: tuple[str, ...] = ("complete", "partial", "failed")

# Keys whose values are secrets (compared lower-case, '-' read as '_'): redacted before anything is stored.
SECRET_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "x_api_key",
        "key",
        "token",
        "auth_token",
        "access_token",
        "bearer",
        "authorization",
        "proxy_authorization",
        "password",
        "secret",
        "client_secret",
    }
)
REDACTED = "***"


class ServerSample(NamedTuple):
    """One Prometheus sample taken during a run: time (s since the run's origin), name, labels, value."""

    t_s: float
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run as stored. `status` reads 'partial' for a 'running' run whose process is gone."""

    id: str
    kind: RunKind
    status: RunStatus
    stored_status: RunStatus  # what the row says; differs from status only for a killed run
    started_at: str  # ISO 8601 UTC
    ended_at: str | None
    group_id: str | None
    target: dict[str, Any]
    profile: dict[str, Any]
    provenance: dict[str, Any]
    summary: dict[str, Any] | None
    note: str | None
    error: str | None
    pid: int | None
    n_requests: int
    n_items: int
    sweep_id: str | None = None
    point_id: str | None = None


def rebase(record: RequestRecord, origin_s: float) -> RequestRecord:
    """A copy of `record` with every time moved to seconds since `origin_s` (what the store keeps)."""

    def opt(t: float | None) -> float | None:
        return None if t is None else t - origin_s

    return dataclasses.replace(
        record,
        scheduled_s=record.scheduled_s - origin_s,
        start_s=record.start_s - origin_s,
        end_s=record.end_s - origin_s,
        first_byte_s=opt(record.first_byte_s),
        first_token_s=opt(record.first_token_s),
        first_content_s=opt(record.first_content_s),
        token_chunk_s=[t - origin_s for t in record.token_chunk_s],
    )


def pack_times(times: list[float], origin_s: float) -> bytes:
    """Chunk times as float64 little-endian seconds since origin: exact and 8 bytes each."""
    values = array("d", [t - origin_s for t in times] if origin_s else times)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def unpack_times(blob: bytes) -> list[float]:
    """Inverse of `pack_times`."""
    values = array("d")
    values.frombytes(blob)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def scrub(value: Any) -> Any:
    """`value` with every secret-named key's value replaced by '***', recursively."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if str(k).lower().replace("-", "_") in SECRET_KEYS else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):  # pydantic models
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def to_json(value: Any) -> str:
    """Compact JSON; pydantic models, dataclasses, enums, paths and datetimes are converted."""
    return json.dumps(value, separators=(",", ":"), default=_json_default, allow_nan=True)


def from_json(text: str | None) -> Any:
    """Inverse of `to_json`; None stays None."""
    return None if text is None else json.loads(text)
