"""Waiting on conditions in tests: poll with a deadline, never a fixed sleep; and a test's own processes.

A test that starts `llmbench` as a subprocess gives it its own LLMBENCH_HOME (fixtures_vllm.cli_env), and
every process that command starts inherits it (servers in their own process groups, Ray's processes), so
`own_processes(home)` finds exactly that test's processes: never another test's, or anything else running
on the machine.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")


def wait_for(condition: Callable[[], T], *, timeout: float, what: str, every: float = 0.2) -> T:
    """Poll `condition` until it returns something truthy, and return that; AssertionError naming `what`
    when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not so after {timeout:g} s")
        time.sleep(every)


def own_processes(home: Path) -> list[psutil.Process]:
    """Live processes whose environment carries LLMBENCH_HOME=`home` (zombies left out)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        with contextlib.suppress(psutil.Error):  # gone meanwhile, or not ours to read
            if proc.environ().get("LLMBENCH_HOME") == str(home):
                found.append(proc)
    return found


def describe(procs: list[psutil.Process]) -> list[str]:
    """pid, process group and command line of each process still alive."""
    out = []
    for proc in procs:
        with contextlib.suppress(psutil.Error, OSError):
            out.append(f"{proc.pid} (group {os.getpgid(proc.pid)}): {' '.join(proc.cmdline())[:200]}")
    return out


def no_strays(home: Path, *, timeout: float = 30) -> None:
    """Wait until no process of the test whose llmbench home is `home` is alive; AssertionError lists them."""
    deadline = time.monotonic() + timeout
    while (left := own_processes(home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not describe(left), f"processes left behind after {timeout:g} s: {describe(left)}"
