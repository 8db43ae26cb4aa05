"""What `bench load` shows: a rich live panel on a terminal, plain lines otherwise, then a table."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from bench.loadgen.driver import LoadEvent, LoadResult, RunFinished, RunProgress, RunResult, RunStarted
from bench.loadgen.runner import Progress

PLAIN_EVERY_S = 5.0  # a plain progress line at most this often


def _fraction(p: Progress) -> float | None:
    """Share of the run done, by request count or by time, whichever is further along."""
    shares = []
    if p.planned:
        shares.append((p.ok + p.failed + p.cancelled) / p.planned)
    if p.duration_s:
        shares.append(p.elapsed_s / p.duration_s)
    return min(1.0, max(shares)) if shares else None


def _line(p: Progress) -> str:
    rate = f"{p.rate_per_s:.1f}/s" if p.rate_per_s is not None else "-"
    ttft = f"{p.ttft_p50_ms:.0f} ms" if p.ttft_p50_ms is not None else "-"
    return (
        f"{p.phase:<9} {p.elapsed_s:6.1f}s  sent {p.sent}  ok {p.ok}  errors {p.failed}  "
        f"in flight {p.in_flight}  rate {rate}  TTFT p50 {ttft}"
    )


def _finished_line(r: RunResult) -> str:
    s = r.summary
    ttft = f"{s.ttft_ms.p50:.1f} ms" if s.ttft_ms.p50 is not None else "-"
    tps = f"{s.output_tokens_per_s:.1f}" if s.output_tokens_per_s is not None else "unknown"
    flag = "  CLIENT-BOUND" if s.client_bound else ""
    cut = f", {s.cancelled} cut off" if s.cancelled else ""
    return (
        f"done: {r.status}, {s.completed} ok, {s.failed} failed{cut}, TTFT p50 {ttft}, "
        f"{tps} output tok/s{flag}"
    )


class PlainProgress:
    """Progress as plain lines (not a terminal): one per run start and end, one every few seconds."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._last = 0.0

    def __call__(self, event: LoadEvent) -> None:
        if isinstance(event, RunStarted):
            of = f"/{event.total}" if event.total else ""
            self.console.print(
                f"run {event.index + 1}{of}: {event.label} (run {event.run_id[:8]})", highlight=False
            )
            self._last = time.monotonic()
        elif isinstance(event, RunProgress):
            now = time.monotonic()
            if now - self._last >= PLAIN_EVERY_S and event.progress.phase != "done":
                self._last = now
                self.console.print("  " + _line(event.progress), highlight=False)
        elif isinstance(event, RunFinished):
            self.console.print("  " + _finished_line(event.result), highlight=False)


class LiveDisplay:
    """A rich live panel: the current run's progress bar, rate, running TTFT p50 and errors."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._title = ""
        self._progress: Progress | None = None
        self._done: list[str] = []
        self._live = Live(console=console, get_renderable=self._render, refresh_per_second=2, transient=True)

    def __enter__(self) -> LiveDisplay:
        self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.__exit__(kind, exc, tb)
        for line in self._done:
            self.console.print(line, highlight=False)

    def __call__(self, event: LoadEvent) -> None:
        # Runs on the event loop: only store state; rendering happens on rich's refresh thread.
        if isinstance(event, RunStarted):
            of = f"/{event.total}" if event.total else ""
            self._title = f"run {event.index + 1}{of}: {event.label} (run {event.run_id[:8]})"
            self._progress = None
        elif isinstance(event, RunProgress):
            self._progress = event.progress
        elif isinstance(event, RunFinished):
            self._done.append(f"{self._title}\n  {_finished_line(event.result)}")

    def _render(self) -> Any:
        parts: list[Any] = [Text(line) for line in self._done[-3:]]
        if self._title:
            parts.append(Text(self._title, style="bold"))
        p = self._progress
        if p is not None:
            fraction = _fraction(p)
            if fraction is not None:
                parts.append(ProgressBar(total=1.0, completed=fraction, width=50))
            style = "red" if p.failed else ""
            parts.append(Text(_line(p), style=style))
        return Group(*parts)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# Short marks in the table for each flag kind; the sentence of each flag is printed under it.
MARKS = {
    "failed": "FAILED",
    "errors": "errors",
    "cut_off": "cut-off",
    "unfixed_length": "len-not-fixed",
    "tokens_unknown": "tok-unknown",
    "tokens_estimated": "tok-estimated",
    "coalesced_reads": "coalesced",
    "client_bound": "client-bound",
}


def flag_marks(r: RunResult) -> str:
    """The run's status plus one mark per flag kind, e.g. `complete · cut-off · client-bound`."""
    kinds = dict.fromkeys(f.kind for f in r.summary.flags)
    return " · ".join(
        [r.status, *(MARKS.get(k, k) for k in kinds if not (k == "failed" and r.status == "failed"))]
    )


def notes_lines(result: LoadResult) -> list[str]:
    """What to read under the table: each run's flags and its error breakdown (kind, HTTP status, message)."""
    lines: list[str] = []
    shared: dict[tuple[str, str], list[str]] = {}  # the same caveat on several runs is said once
    for r in result.runs:
        for flag in r.summary.flags:
            if flag.kind not in ("failed", "errors"):
                shared.setdefault((flag.kind, flag.detail), []).append(r.label)
    for (kind, detail), labels in shared.items():
        who = labels[0] if len(labels) == 1 else f"{len(labels)} runs"
        lines.append(f"{who}: {MARKS.get(kind, kind)}: {detail}")
    for r in result.runs:
        s = r.summary
        for d in s.error_details:
            status = f" HTTP {d['http_status']}" if d["http_status"] else ""
            lines.append(f"{r.label}: {d['count']} × {d['kind']}{status}: {d['first_message']}")
    return lines


def runs_table(result: LoadResult, width: int = 200) -> Table:
    """The final table, one row per run; below 120 columns the less essential columns are left out."""
    wide = width >= 120
    table = Table(
        title=f"{result.target.name} · {result.target.model}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption="latencies in ms, percentiles over successful requests; warm-up excluded; "
        "≥: requests were cut off, so the tail is a lower bound",
        caption_justify="left",
    )
    columns: list[tuple[str, bool]] = [
        ("profile", True),
        ("ok", True),
        ("err", True),
        ("cut\noff", True),
        ("TTFT\np50", True),
        ("TTFT\np99", wide),
        ("ITL\np50", True),
        ("TPOT\np50", True),
        ("e2e\np50", wide),
        ("req/s", True),
        ("out\ntok/s", True),
        ("good\nreq/s", True),
        ("status", True),
        ("run", wide),
    ]
    for name, shown in columns:
        if shown:
            left = name in ("profile", "status", "run")
            table.add_column(name, justify="left" if left else "right", no_wrap=name == "profile")
    for r in result.runs:
        s = r.summary
        cells = [
            (r.label, True),
            (str(s.completed), True),
            (str(s.failed), True),
            (str(s.cancelled), True),
            (_ms(s.ttft_ms.p50), True),
            (_ms(s.ttft_ms.p99) + ("≥" if s.cancelled else ""), wide),
            (_ms(s.itl_ms.p50), True),
            (_ms(s.tpot_ms.p50), True),
            (_ms(s.e2e_ms.p50), wide),
            (_num(s.requests_per_s), True),
            ("unknown" if "output_tokens_per_s" in s.unknown else _num(s.output_tokens_per_s, 1), True),
            (_num(s.goodput_requests_per_s), True),
            (flag_marks(r), True),
            (r.run_id[:8], wide),
        ]
        table.add_row(*(text for text, shown in cells if shown))
    return table


def operating_point_lines(result: LoadResult) -> list[str]:
    """For a goodput search: the operating point found, its attainment and throughput, and the warnings."""
    lines: list[str] = []
    for r in result.runs:
        point = r.profile.get("operating_point")
        if r.profile.get("kind") != "goodput" or not isinstance(point, dict):
            continue
        s = r.summary
        ci = point.get("attainment_ci") or [None, None]
        share = f"{point['attainment']:.1%}" if point.get("attainment") is not None else "n/a"
        bounds = f" [{ci[0]:.1%}, {ci[1]:.1%}]" if ci[0] is not None else ""
        tps = "unknown" if s.output_tokens_per_s is None else f"{s.output_tokens_per_s:.1f} output tok/s"
        lines.append(
            f"operating point: {point['dimension']} {point['value']:g} (SLO attainment {share}{bounds} in "
            f"the search, target {point['target_attainment']:.1%}; {len(point['probes'])} probes) → {tps}, "
            f"goodput {_num(s.goodput_requests_per_s)} req/s (run {r.run_id[:8]})"
        )
        lines.extend(f"operating point: warning: {w}" for w in point.get("warnings") or [])
    return lines
