"""Errors raised by the bench package.

LlmbenchError
├── ConfigError              a models.yaml / sweep file / suite is invalid (file, key path, fix)
│   └── UnknownNameError     a registry name that does not exist (close matches attached)
├── UsageError               an invalid flag value (names the flag)
├── TargetError              an endpoint is unreachable or rejects the model before any load starts
│   └── NotAnLlmServerError  the URL answers, but not as an OpenAI-compatible server (a web page, say)
├── MissingKeyError          the API key environment variable is unset
├── RunAbortedError          a run stopped early (server died, Ctrl-C); records so far are kept
│   ├── InterruptedRunError  stopped by Ctrl-C (exit 130)
│   └── RunFailedError       every request failed, or the error cap stopped the run
├── SweepInterrupted         Ctrl-C during a sweep: the server is stopped, the data kept (exit 130)
├── WorkerStartError         the load generator's worker processes (--workers) could not start
└── StoreError               the results store cannot be opened or migrated
    ├── StoreReadOnlyError   the store is on read-only media (or not writable): read commands only
    └── UnknownIdError       no run or sweep matches an id (or a prefix matches several)
"""

from __future__ import annotations

from collections.abc import Sequence


class LlmbenchError(Exception):
    """Root of every error the bench package raises."""


class ConfigError(LlmbenchError):
    """An input file is invalid; names the file, the key path and the fix."""

    def __init__(
        self, message: str, *, file: str | None = None, key: str | None = None, fix: str = ""
    ) -> None:
        super().__init__(message)
        self.file = file
        self.key = key
        self.fix = fix


class UnknownNameError(ConfigError):
    """A registry name that does not exist."""

    def __init__(self, name: str, kind: str, matches: Sequence[str]) -> None:
        hint = f"did you mean: {', '.join(matches)}?" if matches else "see `llmbench models list`"
        super().__init__(f"unknown {kind} {name!r}", key=name, fix=hint)
        self.name = name
        self.matches = list(matches)


class UsageError(LlmbenchError):
    """An invalid command-line value; names the flag."""

    def __init__(self, message: str, *, flag: str) -> None:
        super().__init__(message)
        self.flag = flag


class TargetError(LlmbenchError):
    """The target endpoint is unreachable or does not serve the model."""

    def __init__(self, message: str, *, url: str, model: str | None = None, fix: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.model = model
        self.fix = fix


class NotAnLlmServerError(TargetError):
    """Something answers at the URL, but not as an OpenAI-compatible server: the URL is wrong."""


class MissingKeyError(LlmbenchError):
    """The environment variable that holds an API key is unset."""

    def __init__(self, env_var: str, entry: str) -> None:
        super().__init__(f"{entry} needs an API key: set the environment variable {env_var}")
        self.env_var = env_var
        self.entry = entry


class RunAbortedError(LlmbenchError):
    """A run stopped early; the records measured so far are stored and the run is marked partial."""

    def __init__(self, message: str, *, run_id: str, kept: int) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.kept = kept


class InterruptedRunError(RunAbortedError):
    """The user stopped the run (Ctrl-C); the records so far are stored and the run is marked partial."""


class RunFailedError(RunAbortedError):
    """Every request of a run failed (or --max-error-rate stopped it); its records are stored as failed."""


class NoOperatingPointError(RunFailedError):
    """A goodput search whose first probe missed the SLO or could not be measured: no operating point (the
    server answered; its runs are stored)."""


class SweepInterrupted(LlmbenchError):
    """A sweep stopped by Ctrl-C; every record so far is stored and `--resume` finishes it."""

    def __init__(self, sweep_id: str) -> None:
        super().__init__(
            f"sweep {sweep_id} interrupted (Ctrl-C): its server was stopped and every record kept; "
            f"finish it with `llmbench sweep --resume {sweep_id[:8]}`"
        )
        self.sweep_id = sweep_id


class WorkerStartError(LlmbenchError):
    """The load generator's worker processes (`--workers`) could not start: a process could not be made,
    an import failed in it, or it was not ready in time. Nothing was sent by the run that needed them."""

    def __init__(self, message: str, *, workers: int | None = None, fix: str = "") -> None:
        super().__init__(message)
        self.workers = workers  # how many were asked for, when known
        self.fix = fix or (
            "run without --workers (one process sends everything), or with fewer; check that the machine "
            "can start Python processes (memory, process limits) and that `python -c 'import bench'` works"
        )


class StoreError(LlmbenchError):
    """The results store cannot be opened or migrated."""


class StoreReadOnlyError(StoreError):
    """The store cannot be written (read-only media, permissions); reading it still works."""


class UnknownIdError(StoreError):
    """No stored run or sweep matches an id, or a prefix matches several."""
