"""Whether the process that wrote a `running` row (a run or a sweep) is still alive.

A row records its writer's pid and the process's start time; a pid the system has reused for another
process does not count as alive, so a killed run or sweep reads as partial.
"""

from __future__ import annotations

import psutil


def process_alive(pid: int | None, started: float | None) -> bool:
    """True when process `pid` exists and is the one that started the run (not a reused pid)."""
    if pid is None:
        return True  # nothing to check against: trust the row
    try:
        created = float(psutil.Process(pid).create_time())
    except psutil.Error:
        return False
    return started is None or abs(created - started) < 1.0
