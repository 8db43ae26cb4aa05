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

from bench.accuracy.documents import AccuracyRunProfile, AccuracySummary
from bench.documents import Provenance, TargetDoc
from bench.loadgen.documents import LoadRunProfile
from bench.metrics import RunSummary
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
    """One run as stored, its documents as their types. `status` reads 'partial' for a 'running' run whose
    process is gone. A load run's profile and summary are LoadRunProfile and RunSummary; an accuracy run's
    AccuracyRunProfile and AccuracySummary (`load_profile`, `load_summary`… say which, typed)."""

    id: str
    kind: RunKind
    status: RunStatus
    stored_status: RunStatus  # what the row says; differs from status only for a killed run
    started_at: str  # ISO 8601 UTC
    ended_at: str | None
    group_id: str | None
    target: TargetDoc
    profile: LoadRunProfile | AccuracyRunProfile
    provenance: Provenance
    summary: RunSummary | AccuracySummary | None
    note: str | None
    error: str | None
    pid: int | None
    n_requests: int
    n_items: int
    sweep_id: str | None = None
    point_id: str | None = None

    @property
    def load_profile(self) -> LoadRunProfile:
        """The profile of a load run (a TypeError for an accuracy run: a caller bug)."""
        if not isinstance(self.profile, LoadRunProfile):
            raise TypeError(f"run {self.id} is an {self.kind} run, not a load run")
        return self.profile

    @property
    def accuracy_profile(self) -> AccuracyRunProfile:
        if not isinstance(self.profile, AccuracyRunProfile):
            raise TypeError(f"run {self.id} is a {self.kind} run, not an accuracy run")
        return self.profile

    @property
    def load_summary(self) -> RunSummary | None:
        """A load run's summary (None while running, for an accuracy run, or without one)."""
        return self.summary if isinstance(self.summary, RunSummary) else None

    @property
    def accuracy_summary(self) -> AccuracySummary | None:
        return self.summary if isinstance(self.summary, AccuracySummary) else None

    def to_json(self) -> dict[str, Any]:
        """The run as `runs show` prints it: its documents as stored."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "group_id": self.group_id,
            "sweep_id": self.sweep_id,
            "point_id": self.point_id,
            "target": self.target.to_json(),
            "profile": self.profile.to_json(),
            "provenance": self.provenance.to_json(),
            "summary": None if self.summary is None else self.summary.to_json(),
            "note": self.note,
            "error": self.error,
        }


def read_documents(
    kind: str, target: Any, profile: Any, provenance: Any, summary: Any
) -> tuple[TargetDoc, LoadRunProfile | AccuracyRunProfile, Provenance, RunSummary | AccuracySummary | None]:
    """A run row's JSON documents as their types (older shapes are upgraded by each model's reader)."""
    if kind == "load":
        return (
            TargetDoc.from_json(target),
            LoadRunProfile.from_json(profile),
            Provenance.from_json(provenance),
            None if summary is None else RunSummary.from_json(summary),
        )
    return (
        TargetDoc.from_json(target),
        AccuracyRunProfile.from_json(profile),
        Provenance.from_json(provenance),
        None if summary is None else AccuracySummary.from_json(summary),
    )


def plain(document: Any) -> Any:
    """A document as JSON data: a typed document's `to_json()`, or a mapping as it is."""
    to_json_ = getattr(document, "to_json", None)
    return to_json_() if callable(to_json_) else document


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
