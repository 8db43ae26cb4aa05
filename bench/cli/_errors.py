"""The one table that turns errors into user text and exit codes (used only by main())."""

from __future__ import annotations

from collections.abc import Callable

from bench import errors as be
from quantize import errors as qe
from serve import errors as se

EXIT_USAGE = 2  # usage and input errors (click uses 2 as well)
EXIT_FAILURE = 1  # a run or a server failed
EXIT_INTERRUPTED = 130

Render = Callable[[BaseException], str]


def _config(exc: BaseException) -> str:
    assert isinstance(exc, be.ConfigError)
    return f"{exc}" + (f"\n  fix: {exc.fix}" if exc.fix else "")


def _usage(exc: BaseException) -> str:
    assert isinstance(exc, be.UsageError)
    return f"invalid value for {exc.flag}: {exc}"


def _target(exc: BaseException) -> str:
    assert isinstance(exc, be.TargetError)
    text = f"{exc}\n  target: {exc.url}" + (f" (model {exc.model})" if exc.model else "")
    return text + (f"\n  fix: {exc.fix}" if exc.fix else "")


def _aborted(exc: BaseException) -> str:
    assert isinstance(exc, be.RunAbortedError)
    marked = "failed" if isinstance(exc, be.RunFailedError) else "partial"
    return (
        f"{exc}\n  {exc.kept} records were stored in run {exc.run_id} (marked {marked}); "
        f"see `llmbench runs show {exc.run_id[:8]}`, then re-run the same command to measure again"
    )


def _workers(exc: BaseException) -> str:
    assert isinstance(exc, be.WorkerStartError)
    asked = f" (--workers {exc.workers})" if exc.workers is not None else " (--workers)"
    return f"the load generator's worker processes could not start{asked}: {exc}\n  fix: {exc.fix}"


def _start(exc: BaseException) -> str:
    assert isinstance(exc, se.ServerStartError)
    parts = [str(exc)]
    if exc.log_tail:
        parts.append("last log lines:\n" + "\n".join("  | " + line for line in exc.log_tail.splitlines()))
    if exc.hint:
        parts.append(f"hint: {exc.hint}")
    return "\n".join(parts)


def _died(exc: BaseException) -> str:
    assert isinstance(exc, se.ServerDiedError)
    tail = "\n".join("  | " + line for line in exc.log_tail.splitlines())
    return f"{exc} (exit code {exc.returncode})" + (f"\nlast log lines:\n{tail}" if tail else "")


def _option(exc: BaseException) -> str:
    assert isinstance(exc, se.InvalidServeOption)
    return f"invalid value for {exc.option}: {exc}"


def _quantize_failed(exc: BaseException) -> str:
    assert isinstance(exc, qe.QuantizeFailed)
    if not exc.log_tail:
        return str(exc)
    return f"{exc}\nlast log lines:\n" + "\n".join("  | " + line for line in exc.log_tail.splitlines())


def _plain(exc: BaseException) -> str:
    return str(exc)


# Most specific first: the first matching class wins.
TABLE: list[tuple[type[BaseException], int, Render]] = [
    (be.UnknownNameError, EXIT_USAGE, _config),
    (be.ConfigError, EXIT_USAGE, _config),
    (be.UsageError, EXIT_USAGE, _usage),
    (be.MissingKeyError, EXIT_USAGE, _plain),
    (be.NotAnLlmServerError, EXIT_USAGE, _target),
    (be.TargetError, EXIT_FAILURE, _target),
    (be.InterruptedRunError, EXIT_INTERRUPTED, _aborted),
    (be.SweepInterrupted, EXIT_INTERRUPTED, _plain),
    (be.WorkerStartError, EXIT_FAILURE, _workers),
    (be.RunAbortedError, EXIT_FAILURE, _aborted),
    (be.StoreReadOnlyError, EXIT_USAGE, _plain),
    (be.UnknownIdError, EXIT_USAGE, _plain),
    (be.StoreError, EXIT_FAILURE, _plain),
    (se.GatedModelError, EXIT_USAGE, _plain),
    (se.PortInUseError, EXIT_USAGE, _start),
    (se.ServerStartError, EXIT_FAILURE, _start),
    (se.ServerDiedError, EXIT_FAILURE, _died),
    (se.EngineNotFound, EXIT_USAGE, _plain),
    (se.ModelDoesNotFit, EXIT_USAGE, _plain),
    (se.InvalidServeOption, EXIT_USAGE, _option),
    (se.ServeError, EXIT_FAILURE, _plain),
    (qe.UnknownMethod, EXIT_USAGE, _plain),
    (qe.UnsupportedQuantization, EXIT_USAGE, _plain),
    (qe.OutputExists, EXIT_USAGE, _plain),
    (qe.SourceNotFound, EXIT_USAGE, _plain),
    (qe.QuantToolNotFound, EXIT_USAGE, _plain),
    (qe.NotEnoughDisk, EXIT_FAILURE, _plain),
    (qe.QuantizeFailed, EXIT_FAILURE, _quantize_failed),
    (qe.QuantizeError, EXIT_FAILURE, _plain),
    (be.LlmbenchError, EXIT_FAILURE, _plain),
]


def describe(exc: BaseException) -> tuple[int, str] | None:
    """Return (exit code, message) for a known error, or None for a bug."""
    for kind, code, render in TABLE:
        if isinstance(exc, kind):
            return code, render(exc)
    return None
