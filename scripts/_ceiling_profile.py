"""Summarize a py-spy `--format raw` profile (folded stacks, with line numbers) of `llmbench bench load`.

Splits the samples by phase (start-up imports, prompt building, the send loop, the store, the summary),
then, inside the send loop, lists the functions and the llmbench source lines that take the most time.
py-spy (without --native) books a C call, such as a regex search or bytes.split, to the Python line
that made it.

    .venv/bin/python scripts/_ceiling_profile.py PROFILE.folded [--top 20]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
# First match wins: a stack is in the first phase whose marker appears in one of its frames.
PHASES = (
    ("prompt building", ("iter_requests (", "build_requests (")),
    ("results store (SQLite thread)", ("bench/store/",)),
    ("summary (metrics)", ("summarize (", "bench/metrics/")),
    ("start-up (imports)", ("<module> (", "_find_and_load (")),
    ("send loop", ("BaseClient.send (", "LoadRunner.", "Runner.run (asyncio", "aiohttp/", "uvloop")),
)
SEND_LOOP = "send loop"


def parse_frame(frame: str) -> tuple[str, str, str]:
    """(function label, short file, line) of one py-spy frame `func (file:line)`."""
    m = _FRAME.match(frame)
    if m is None:
        return frame, "", ""
    short = m.group("file")
    for cut in ("site-packages/", "/work/main/", "lib/python3.11/"):
        short = short.split(cut)[-1]
    return f"{m.group('func')} ({short})", short, m.group("line") or ""


def phase_of(stack: str) -> str:
    for label, markers in PHASES:
        if any(marker in stack for marker in markers):
            return label
    return "other"


def _print(title: str, counter: Counter[str], total: int, top: int) -> None:
    print(title)
    for label, count in counter.most_common(top):
        print(f"  {count / total:6.1%}  {label}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    phases: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    self_line: Counter[str] = Counter()
    total = loop_total = 0
    for row in args.profile.read_text().splitlines():
        stack, _, count_text = row.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        # The outermost frame is the entry script's own `<module>`: it must not make every stack start-up.
        phase = phase_of(stack.partition(";")[2])
        phases[phase] += count
        if phase != SEND_LOOP:
            continue
        loop_total += count
        frames = [parse_frame(f) for f in stack.split(";")]
        frames = [f for f in frames if f[1]]
        if not frames:
            continue
        self_fn[frames[-1][0]] += count
        for label in {f[0] for f in frames}:
            incl_fn[label] += count
        # The innermost llmbench line on the stack: where our code spent it, directly or in a callee.
        ours = [f for f in frames if f[1].startswith(("bench/", "serve/"))]
        if ours:
            func, short, line = ours[-1]
            self_line[f"{short}:{line} {func.split(' (')[0]}"] += count
    if total == 0:
        print("empty profile")
        return 1
    print(f"\nprofile {args.profile}: {total} samples")
    print("by phase: " + ", ".join(f"{p} {c / total:.0%}" for p, c in phases.most_common()))
    if loop_total == 0:
        return 0
    print(f"send loop ({loop_total} samples = 100%):")
    _print(f" top {args.top} functions by self time:", self_fn, loop_total, args.top)
    # Wrappers on every stack (the CLI entry, run_load) say nothing: leave them out.
    ours_fn = Counter({k: v for k, v in incl_fn.items() if " (bench/" in k and v < loop_total})
    _print(" llmbench functions by inclusive time:", ours_fn, loop_total, args.top)
    _print(
        " innermost llmbench line on the stack (inclusive of library calls under it):",
        self_line,
        loop_total,
        args.top,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
