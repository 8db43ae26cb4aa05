"""What `bench load` shows: a rich live panel on a terminal, plain lines otherwise, then a table.

Numbers go through the report's formatter (3 significant figures, bench.report.value); flags are named by
their stored kind (`unfixed_length`, `cut_off`), as the report names them.
"""

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

from bench.loadgen.results import LoadEvent, RunFinished, RunProgress, RunResult, RunStarted
from bench.loadgen.runner import Progress
from bench.report.value import fmt_number
from bench.runs import LoadResult

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
    rate = f"{fmt_number(p.rate_per_s)} req/s" if p.rate_per_s is not None else "-"
    ttft = f"{fmt_number(p.ttft_p50_ms)} ms" if p.ttft_p50_ms is not None else "-"
    workers = f"  ({p.workers} workers)" if p.workers > 1 else ""
    return (
        f"{p.phase:<9} {p.elapsed_s:6.1f}s  sent {p.sent}  ok {p.ok}  errors {p.failed}  "
        f"in flight {p.in_flight}  rate {rate}  TTFT p50 {ttft}{workers}"
    )


def _finished_line(r: RunResult) -> str:
    s = r.summary
    ttft = f"{fmt_number(s.ttft_ms.p50)} ms" if s.ttft_ms.p50 is not None else "-"
    tps = fmt_number(s.output_tokens_per_s) if s.output_tokens_per_s is not None else "unknown"
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


def _num(value: float | None) -> str:
    return "-" if value is None else fmt_number(value)


def flag_marks(r: RunResult) -> str:
    """The run's status plus each flag kind as stored (the report uses the same names), e.g.
    `complete · cut_off · client_bound`."""
    kinds = dict.fromkeys(f.kind for f in r.summary.flags)
    return " · ".join([r.status, *(k for k in kinds if not (k == "failed" and r.status == "failed"))])


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
        lines.append(f"{who}: {kind}: {detail}")
    for r in result.runs:
        if r.summary.workers:
            lines.append(f"{r.label}: {_workers_line(r)}")
    for r in result.runs:
        s = r.summary
        for d in s.error_details:
            status = f" HTTP {d.http_status}" if d.http_status else ""
            lines.append(f"{r.label}: {d.count} × {d.kind}{status}: {d.first_message}")
    return lines


def _workers_line(r: RunResult) -> str:
    """Each worker process of a run: sends, send lag p99, its loop's CPU, and how it ended when not well."""
    parts = []
    for w in r.summary.workers:
        share = w.client.cpu_share
        cores = "-" if share is None else f"{share:.2f}"
        part = f"#{w.index} sent {w.sent}, lag p99 {_num(w.lag_p99_ms)} ms, {cores} cores"
        if w.ended not in ("complete", "interrupted"):
            part += f", {w.ended}"
        parts.append(part)
    noun = "worker process" if len(parts) == 1 else "worker processes"
    return f"{len(parts)} {noun}: " + "; ".join(parts)


WIDE = 120  # columns: below this the less essential columns are left out, and the caption says which
PROFILE_MIN = 12  # columns the profile label keeps before it wraps


def runs_table(result: LoadResult, width: int = 200) -> Group:
    """The final table, one row per run, and its caption; below WIDE columns the less essential columns
    are left out, and the caption names them. Long cells fold onto more lines; none is cut."""
    wide = width >= WIDE
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
    left_out = [name.replace("\n", " ") for name, shown in columns if not shown]
    caption = (
        "latencies in ms, percentiles over successful requests; warm-up excluded; "
        "≥: requests were cut off, so the tail is a lower bound"
    )
    if left_out:
        caption += (
            f"; left out at {width} columns: {', '.join(left_out)} (shown at {WIDE}+ columns, in a pipe, "
            "and in --out FILE)"
        )
    table = Table(
        title=f"{result.target.name} · {result.target.model}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    label_width = min(PROFILE_MIN, max((len(r.label) for r in result.runs), default=0))
    for name, shown in columns:
        if shown:
            left = name in ("profile", "status", "run")
            least = label_width if name == "profile" else None
            table.add_column(name, justify="left" if left else "right", overflow="fold", min_width=least)
    for r in result.runs:
        s = r.summary
        cells = [
            (r.label, True),
            (str(s.completed), True),
            (str(s.failed), True),
            (str(s.cancelled), True),
            (_num(s.ttft_ms.p50), True),
            (("≥" if s.cancelled else "") + _num(s.ttft_ms.p99), wide),
            (_num(s.itl_ms.p50), True),
            (_num(s.tpot_ms.p50), True),
            (_num(s.e2e_ms.p50), wide),
            (_num(s.requests_per_s), True),
            ("unknown" if "output_tokens_per_s" in s.unknown else _num(s.output_tokens_per_s), True),
            (_num(s.goodput_requests_per_s), True),
            (flag_marks(r), True),
            (r.run_id[:8], wide),
        ]
        table.add_row(*(text for text, shown in cells if shown))
    # Under the table, not as its caption: rich wraps a caption to the table's own (wider than the
    # terminal) minimum width and then crops it.
    return Group(table, Text(caption, style="dim"))


def operating_point_lines(result: LoadResult) -> list[str]:
    """For a goodput search: the operating point found, its attainment and throughput, and the warnings."""
    lines: list[str] = []
    for r in result.runs:
        point = r.profile.operating_point
        if r.profile.kind != "goodput" or point is None:
            continue
        s = r.summary
        ci = point.attainment_ci
        share = f"{point.attainment:.1%}" if point.attainment is not None else "n/a"
        bounds = f" [{ci[0]:.1%}, {ci[1]:.1%}]" if ci is not None else ""
        tps = (
            "unknown"
            if s.output_tokens_per_s is None
            else f"{fmt_number(s.output_tokens_per_s)} output tok/s"
        )
        again = sum(len(p.retried) for p in point.search)
        probes = f"{len(point.probes)} probes" + (f", {again} invalid runs measured again" if again else "")
        lines.append(
            f"operating point: {point.dimension} {point.value:g} (SLO attainment {share}{bounds} in "
            f"the search, target {point.target_attainment:.1%}; {probes}) → {tps}, "
            f"goodput {_num(s.goodput_requests_per_s)} req/s (run {r.run_id[:8]})"
        )
        lines.extend(f"operating point: warning: {w}" for w in point.warnings)
    return lines
