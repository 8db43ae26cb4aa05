"""Sample a server's Prometheus /metrics page about once a second during a run.

Only the series a load report needs are kept (requests running and waiting, KV-cache use, and the
prefix-cache query and hit counters), so parsing costs a prefix test per line; a server without the page
(404) is skipped quietly after the first try. `sample_once` reads the page at a chosen moment: before a
run and when its measuring starts, so the prefix-cache hit rate covers exactly the measured window.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import NamedTuple

import aiohttp

WANTED: tuple[str, ...] = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",  # the name before vLLM 0.10
    "vllm:prefix_cache_queries_total",  # prompt tokens looked up in the prefix cache (counter)
    "vllm:prefix_cache_hits_total",  # of which found there
)


class Sample(NamedTuple):
    """One sample: seconds since the run's origin, series name, labels, value."""

    t_s: float
    name: str
    labels: dict[str, str]
    value: float


def metrics_url(base_url: str) -> str:
    """Prometheus lives at the server root: http://h:p/v1 -> http://h:p/metrics."""
    root = base_url.rstrip("/")
    root = root.removesuffix("/v1")
    return root + "/metrics"


def parse_prometheus(text: str, names: Sequence[str], t_s: float) -> list[Sample]:
    """The samples of `names` in a Prometheus text page (exposition format 0.0.4), stamped `t_s`."""
    wanted = tuple(names)
    out: list[Sample] = []
    for line in text.splitlines():
        if not line.startswith(wanted):
            continue
        head, _, rest = line.rpartition("}") if "}" in line else ("", "", line)
        if head:
            name, _, label_text = head.partition("{")
            value_text = rest.strip().split(" ")[0]
        else:
            name, _, value_text = line.partition(" ")
            value_text = value_text.strip().split(" ")[0]
            label_text = ""
        if name not in wanted:
            continue  # a longer name that shares the prefix, e.g. *_total
        try:
            value = float(value_text)
        except ValueError:
            continue
        if math.isnan(value):
            continue
        out.append(Sample(t_s, name, _labels(label_text), value))
    return out


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in text.split('",'):
        key, sep, value = part.partition("=")
        if sep:
            labels[key.strip().strip(",")] = value.strip().strip('"')
    return labels


class ServerMetricsSampler:
    """Polls `url` every `every_s` seconds until cancelled; `samples` holds what it read."""

    def __init__(
        self,
        url: str,
        origin_s: float,
        *,
        every_s: float = 1.0,
        names: Sequence[str] = WANTED,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.origin_s = origin_s
        self.every_s = every_s
        self.names = tuple(names)
        self.headers = headers or {}
        self.samples: list[Sample] = []
        self.available: bool | None = None  # None until the first answer
        self.errors = 0

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=max(0.5, self.every_s * 2))

    async def sample_once(self) -> None:
        """Read the page now (no-op once the server is known to have none)."""
        if self.available is False:
            return
        async with aiohttp.ClientSession(timeout=self._timeout(), trust_env=False) as session:
            await self._sample(session)

    async def barrier(self) -> float:
        """Read the page, then return perf_counter: a runner's measure barrier (counters at its start)."""
        await self.sample_once()
        return time.perf_counter()

    def rebase(self, origin_s: float) -> None:
        """Count times from `origin_s` from now on; samples already taken move with it (they go negative
        when taken before it)."""
        shift = origin_s - self.origin_s
        self.samples = [s._replace(t_s=s.t_s - shift) for s in self.samples]
        self.origin_s = origin_s

    async def run(self) -> None:
        """Sample until cancelled, or stop at once when the server has no /metrics page."""
        if self.available is False:
            return
        async with aiohttp.ClientSession(timeout=self._timeout(), trust_env=False) as session:
            next_at = time.perf_counter()
            while True:
                if not await self._sample(session):
                    return
                next_at += self.every_s
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def _sample(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(self.url, headers=self.headers) as resp:
                if resp.status in (404, 405, 401, 403):
                    if self.available is None:
                        self.available = False
                        return False
                    self.errors += 1
                    return True
                text = await resp.text()
                t_s = time.perf_counter() - self.origin_s
        except (aiohttp.ClientError, TimeoutError):
            self.errors += 1  # a busy or restarting server: try again next second
            return True
        found = parse_prometheus(text, self.names, t_s)
        if self.available is None:
            self.available = bool(found)
            if not found:
                return False  # a page without any series we want (not vLLM-like): stop asking
        self.samples.extend(found)
        return True
