"""What every workload kind shares: the versioned file model, the replay window, and the output types.

Output types (pure data; no store, no registry, no clients):

- `OpenLoopRequests`: an open-loop schedule, a sequence of `TimedRequest(offset_s, request)` sorted by
  offset. Offsets are fixed when it is built; each request is built when indexed (prompts of long traces
  would not fit in memory all at once), the same request every time.
- `RequestSequence`: requests without send times, paced by the run's load profile (closed loop, rate,
  goodput search).
- `bench.prompts.workloads.sessions.SessionPlan`: multi-turn conversations.

Lengths are reference tokens (⌈UTF-8 bytes ÷ 4⌉, bench.records.reference_tokens), the same text for every
target; `GenRequest.input_tokens` is left unset, as for PromptSpec's reference unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, overload

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bench.errors import ConfigError
from bench.records import GenRequest

SCHEMA = "llmbench.workload/1"
MAX_LISTED = 20  # problems listed in one error; the rest are counted
Api = Literal["chat", "completions"]


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """A relative path in a workload file is relative to that file's folder."""
    base = (info.context or {}).get("base")
    return value if value.is_absolute() or base is None else Path(base) / value


DataPath = Annotated[Path, AfterValidator(_resolve)]


class WorkloadBase(BaseModel):
    """Keys every workload file has."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: str = Field(SCHEMA, alias="schema", description=f"the file format: {SCHEMA}")
    kind: str
    name: str | None = Field(None, description="a label for reports; default: the file name")
    description: str = ""
    seed: int = Field(0, description="every random choice (lengths, texts, arrivals) follows from it")
    api: Api = Field("chat", description="chat: messages; completions: one prompt string")

    def check(self) -> None:
        """Read the data files the workload names (none by default); ConfigError naming bad lines."""

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str) -> str:
        if value != SCHEMA:
            raise ValueError(f"this llmbench reads {SCHEMA!r} workload files, not {value!r}")
        return value


class Window(BaseModel):
    """Which part of a recorded trace or log is replayed, and how fast (times in s of the recording)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_s: float = Field(0.0, ge=0, description="skip what arrived before this, s after the first arrival")
    duration_s: float | None = Field(None, gt=0, description="replay this long of the recording (s)")
    max_requests: int | None = Field(None, ge=1, description="stop after this many requests")
    time_scale: float = Field(
        1.0, gt=0, description="multiplies recorded gaps: 0.1 replays ten times faster, 2 at half speed"
    )

    def select(self, times_s: Sequence[float]) -> tuple[list[int], list[float]]:
        """The indices kept from sorted arrival times (s), and their offsets from the first kept (s)."""
        if not times_s:
            return [], []
        origin = times_s[0] + self.start_s
        kept: list[int] = []
        for i, t in enumerate(times_s):
            if t < origin:
                continue
            if self.duration_s is not None and t - origin >= self.duration_s:
                break
            if self.max_requests is not None and len(kept) >= self.max_requests:
                break
            kept.append(i)
        first = times_s[kept[0]] if kept else origin
        return kept, [(times_s[i] - first) * self.time_scale for i in kept]


class TimedRequest(NamedTuple):
    """One request of an open-loop schedule: when to send it (s after the run's origin) and what."""

    offset_s: float
    request: GenRequest


class OpenLoopRequests(Sequence[TimedRequest]):
    """An open-loop schedule: offsets fixed in advance, requests built on access (request_id = index)."""

    def __init__(
        self,
        offsets_s: Sequence[float],
        make: Callable[[int], GenRequest],
        *,
        reuse_share: float | None = None,
        skipped: int = 0,
        notes: Sequence[str] = (),
    ) -> None:
        self.offsets_s: tuple[float, ...] = tuple(offsets_s)
        self._make = make
        self.reuse_share = reuse_share  # designed share of prompt tokens that repeat earlier ones
        self.skipped = skipped  # input lines or rows left out (invalid and skipped, or unsendable)
        self.notes: tuple[str, ...] = tuple(notes)

    def __len__(self) -> int:
        return len(self.offsets_s)

    @overload
    def __getitem__(self, index: int) -> TimedRequest: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[TimedRequest]: ...

    def __getitem__(self, index: int | slice) -> TimedRequest | Sequence[TimedRequest]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return TimedRequest(self.offsets_s[index], self._make(index))

    @property
    def duration_s(self) -> float:
        """Offset of the last request (s); 0 for one request or none."""
        return self.offsets_s[-1] if self.offsets_s else 0.0


class RequestSequence:
    """Requests in order without send times (request_id = index); endless when `count` is None."""

    def __init__(
        self,
        make: Callable[[int], GenRequest],
        count: int | None = None,
        *,
        reuse_share: float | None = None,
        skipped: int = 0,
    ) -> None:
        self._make = make
        self.count = count
        self.reuse_share = reuse_share
        self.skipped = skipped

    def __iter__(self) -> Iterator[GenRequest]:
        i = 0
        while self.count is None or i < self.count:
            yield self._make(i)
            i += 1

    def request(self, index: int) -> GenRequest:
        """Request `index` (the same one every time); cycles past the end of a finite sequence."""
        return self._make(index if self.count is None else index % self.count)

    def take(self, n: int) -> list[GenRequest]:
        """The first `n` requests (a finite sequence is cycled, request ids continuing)."""
        return [self._with_id(self.request(i), i) for i in range(n)]

    @staticmethod
    def _with_id(request: GenRequest, request_id: int) -> GenRequest:
        return request if request.request_id == request_id else replace(request, request_id=request_id)


@dataclass(frozen=True, slots=True)
class LineProblem:
    """One bad line (or row) of a data file: where, what is wrong."""

    line: int
    why: str


def file_error(path: Path, problems: Sequence[LineProblem], *, what: str, fix: str) -> ConfigError:
    """A ConfigError listing the bad lines of `path` as `FILE:LINE: why` (the first MAX_LISTED)."""
    shown = [f"{path}:{p.line}: {p.why}" for p in problems[:MAX_LISTED]]
    more = len(problems) - len(shown)
    if len(shown) == 1 and not more:
        head = shown[0]
    else:
        head = f"{len(problems)} invalid {what} in {path}:\n  " + "\n  ".join(shown)
        if more:
            head += f"\n  … and {more} more"
    return ConfigError(head, file=str(path), key=f"line {problems[0].line}" if problems else None, fix=fix)


def whole_number(value: Any, name: str, *, minimum: int = 0) -> int:
    """A count in a data file: an int, or a float/string holding a whole number; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} {value!r} is not a whole number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            as_float = _float_or_none(value)
            if as_float is None or not as_float.is_integer():
                raise ValueError(f"{name} {value!r} is not a whole number") from None
            number = int(as_float)
    else:
        raise ValueError(f"{name} {value!r} is not a whole number")
    if number < minimum:
        raise ValueError(f"{name} {number} is below {minimum}")
    return number


def _float_or_none(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def number(value: Any, name: str) -> float:
    """A time in a data file: an int, a float, or a string holding one; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} {value!r} is not a number")
    found = float(value) if isinstance(value, int | float) else None
    if isinstance(value, str):
        found = _float_or_none(value)
    if found is None or not math.isfinite(found):
        raise ValueError(f"{name} {value!r} is not a number")
    return found
