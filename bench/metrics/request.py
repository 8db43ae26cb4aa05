"""Per-request latencies (TTFT, ITL, TPOT, e2e) and SLO bounds over them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from bench.errors import UsageError
from bench.records import RequestRecord

SLO_KEYS = ("ttft_ms", "ttfa_ms", "tpot_ms", "itl_ms", "e2e_ms")


@dataclass(frozen=True, slots=True)
class RequestMetrics:
    """What one record measured, in ms. A field is None where the record does not define it."""

    e2e_ms: float  # end_s − start_s
    ttft_ms: float | None  # first_token_s − start_s
    ttfb_ms: float | None  # first_byte_s − start_s
    ttfc_ms: float | None  # first_content_s − start_s (first visible content)
    itl_ms: tuple[float, ...]  # gaps between consecutive token-bearing chunks
    mean_itl_ms: float | None  # mean of itl_ms; None with fewer than two chunks
    tpot_ms: float | None  # (e2e − ttft) / (output_tokens − 1); None unless output_tokens > 1
    sched_lag_ms: float  # start_s − scheduled_s: how late the client sent it


def _ms(later: float | None, earlier: float) -> float | None:
    return None if later is None else (later - earlier) * 1000.0


def request_metrics(record: RequestRecord) -> RequestMetrics:
    """Latencies of one record (ms); times may be absolute or rebased, as long as they share an origin.

    ITL gaps come from chunk times, TPOT from the token count: a chunk is never assumed to be one token.
    """
    e2e = (record.end_s - record.start_s) * 1000.0
    ttft = _ms(record.first_token_s, record.start_s)
    gaps = tuple((b - a) * 1000.0 for a, b in pairwise(record.token_chunk_s))
    tokens = record.output_tokens
    tpot = (e2e - ttft) / (tokens - 1) if ttft is not None and tokens is not None and tokens > 1 else None
    return RequestMetrics(
        e2e_ms=e2e,
        ttft_ms=ttft,
        ttfb_ms=_ms(record.first_byte_s, record.start_s),
        ttfc_ms=_ms(record.first_content_s, record.start_s),
        itl_ms=gaps,
        mean_itl_ms=math.fsum(gaps) / len(gaps) if gaps else None,
        tpot_ms=tpot,
        sched_lag_ms=(record.start_s - record.scheduled_s) * 1000.0,
    )


# The SLO attainment an operating point must reach by default (goodput search, report): the share of
# measured requests that met every bound, errors and cut-off requests counting as misses.
DEFAULT_ATTAINMENT = 0.99


@dataclass(frozen=True, slots=True)
class Slo:
    """Upper bounds (ms) a successful request must meet to count toward goodput; None = no bound.

    `ttft_ms` bounds the time to the first generated token (reasoning or answer), `ttfa_ms` the time to the
    first answer token (RequestMetrics.ttfc_ms: the first visible content), which a reasoning model's user
    waits for.

    `itl_ms` bounds the request's *mean* inter-chunk gap: a per-request max or p99 would fail a request
    for one scheduler hiccup, and with tens of gaps per request a p99 is simply the max.

    A bound on a metric the request does not define is judged as follows: TTFT with no token at all
    fails, and TTFA without an answer token; TPOT fails when the output token count is unknown and
    passes when the request produced at most one token (there is no "per output token" time to exceed);
    ITL passes with fewer than two chunks (no gap to exceed).
    """

    ttft_ms: float | None = None
    ttfa_ms: float | None = None
    tpot_ms: float | None = None
    itl_ms: float | None = None
    e2e_ms: float | None = None

    @classmethod
    def parse(cls, text: str, *, flag: str = "--slo") -> Slo:
        """Parse 'ttft_ms=500,tpot_ms=50' (any subset of ttft_ms, ttfa_ms, tpot_ms, itl_ms, e2e_ms; ms)."""
        bounds: dict[str, float] = {}
        for raw in text.split(","):
            part = raw.strip()
            if not part:
                continue
            key, sep, value = (s.strip() for s in part.partition("="))
            if not sep:
                raise UsageError(f"{part!r} is not KEY=MS (e.g. ttft_ms=500,tpot_ms=50)", flag=flag)
            if key not in SLO_KEYS:
                raise UsageError(f"unknown SLO key {key!r}; use any of {', '.join(SLO_KEYS)}", flag=flag)
            if key in bounds:
                raise UsageError(f"SLO key {key!r} is given twice", flag=flag)
            try:
                bound = float(value)
            except ValueError:
                raise UsageError(f"{key}={value!r} is not a number of milliseconds", flag=flag) from None
            if not math.isfinite(bound) or bound <= 0:
                raise UsageError(f"{key}={value} must be a positive number of milliseconds", flag=flag)
            bounds[key] = bound
        if not bounds:
            raise UsageError("no SLO bound given (e.g. ttft_ms=500,tpot_ms=50)", flag=flag)
        return cls(**bounds)

    def to_json(self) -> dict[str, float]:
        """The bounds that are set, by key (ms)."""
        return {k: v for k in SLO_KEYS if (v := getattr(self, k)) is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Slo:
        """Inverse of `to_json`."""
        return cls(**{k: float(data[k]) for k in SLO_KEYS if data.get(k) is not None})

    def __str__(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in self.to_json().items())

    def met_by(self, m: RequestMetrics, output_tokens: int | None) -> bool:
        """True when the request meets every bound (see the class docstring for undefined metrics)."""
        if self.e2e_ms is not None and m.e2e_ms > self.e2e_ms:
            return False
        if self.ttft_ms is not None and (m.ttft_ms is None or m.ttft_ms > self.ttft_ms):
            return False
        if self.ttfa_ms is not None and (m.ttfc_ms is None or m.ttfc_ms > self.ttfa_ms):
            return False
        if self.tpot_ms is not None:
            if m.tpot_ms is None:
                if output_tokens is None or output_tokens > 1:
                    return False
            elif m.tpot_ms > self.tpot_ms:
                return False
        return not (self.itl_ms is not None and m.mean_itl_ms is not None and m.mean_itl_ms > self.itl_ms)
