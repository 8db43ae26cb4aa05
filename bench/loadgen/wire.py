"""What the parent and its worker processes say to each other (bench.loadgen.workers, bench.loadgen.worker).

Each message is one frame on a pipe: a 4-byte big-endian length, then a pickle. Both ends read and write
through asyncio pipe transports, so neither loop ever blocks on the other. Records travel as plain tuples
of their fields (about 4× cheaper to pickle than the dataclass): the worker's event loop is the one that
must stay free.
"""

from __future__ import annotations

import asyncio
import dataclasses
import operator
import pickle
import struct
from dataclasses import dataclass
from typing import Any

from bench.loadgen.runner import Ended, Progress
from bench.loadgen.schedule import Plan
from bench.metrics import ClientStats
from bench.records import GenRequest, RequestRecord, Status

_HEADER = struct.Struct("!I")
_FIELDS = tuple(f.name for f in dataclasses.fields(RequestRecord))
_STATUS = _FIELDS.index("status")
_GET = operator.attrgetter(*_FIELDS)


def pack_record(record: RequestRecord) -> tuple[Any, ...]:
    """A record as a tuple of its fields (the status as its string value)."""
    row = list(_GET(record))
    row[_STATUS] = row[_STATUS].value
    return tuple(row)


def unpack_record(row: tuple[Any, ...]) -> RequestRecord:
    """The record `pack_record` made."""
    values = list(row)
    values[_STATUS] = Status(values[_STATUS])
    return RequestRecord(*values)


def frame(message: object) -> bytes:
    """One message as a frame."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


async def read_message(reader: asyncio.StreamReader) -> object | None:
    """The next message, or None at the end of the pipe (the other side closed it or died)."""
    try:
        head = await reader.readexactly(_HEADER.size)
        (size,) = _HEADER.unpack(head)
        body = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    message: object = pickle.loads(body)
    return message


# --- parent → worker --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One run's share for one worker: its plan, its requests (all of them, or a first chunk)."""

    run: int
    plan: Plan
    requests: list[GenRequest]
    more: bool  # more requests will come on demand (Hungry → Feed)
    low_water: int  # ... asked for when fewer than this are queued
    first_measured_offset_s: float | None  # the whole plan's, for an open-loop share
    barrier: bool  # the plan has a warm-up: wait for Measure before measuring
    progress_every_s: float


@dataclass(frozen=True, slots=True)
class Start:
    """Begin the run at perf_counter `at_s` (the same instant for every worker: CLOCK_MONOTONIC)."""

    at_s: float


@dataclass(frozen=True, slots=True)
class Measure:
    """Every worker's warm-up has finished: start measuring at perf_counter `at_s`."""

    at_s: float


@dataclass(frozen=True, slots=True)
class Feed:
    """More requests for a run fed on demand."""

    requests: list[GenRequest]
    more: bool


@dataclass(frozen=True, slots=True)
class Halt:
    """Stop sending: `interrupted` cancels what is in flight at once (Ctrl-C), as in-process."""

    ended: Ended
    reason: str


@dataclass(frozen=True, slots=True)
class Close:
    """Leave: close the client and exit."""


# --- worker → parent --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker's client is open; it waits for jobs."""

    pid: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The worker could not start or run (its traceback's last line)."""

    text: str


@dataclass(frozen=True, slots=True)
class Loaded:
    """The job is unpacked: the worker waits for Start."""


@dataclass(frozen=True, slots=True)
class Records:
    """A batch of finished records (packed), and how many requests the worker has launched so far."""

    rows: list[tuple[Any, ...]]
    sent: int


@dataclass(frozen=True, slots=True)
class WarmDone:
    """This worker's warm-up requests have all finished."""


@dataclass(frozen=True, slots=True)
class Hungry:
    """The worker's queue of requests is running low."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The worker's own progress."""

    progress: Progress


@dataclass(frozen=True, slots=True)
class Done:
    """The run's end on this worker: every record was sent before this message."""

    ended: Ended
    reason: str | None
    client: ClientStats
    process_cpu_s: float
    sent: int
    max_in_flight: int
    starved: bool  # its requests ran out while more were still due
