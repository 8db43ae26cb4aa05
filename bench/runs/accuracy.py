"""One accuracy run end to end: resolve the target, check it, ask and score, store items as they complete.

`run_accuracy(spec, registry, settings)` is what `llmbench bench accuracy` calls; `diff_runs` is what
`llmbench bench diff` calls. The asking and scoring is bench.accuracy's SuiteRunner (or lm-eval through
the recording proxy, bench.runs.lmeval) with a client made here; each item is priced here at the target's
prices and written to the store as it is scored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Literal

from bench.accuracy.documents import AccuracyRunProfile, AccuracySummary
from bench.accuracy.judge import JUDGE_TEMPLATES_SHA, Judge, template_hash
from bench.accuracy.judge_cache import JudgeCache
from bench.accuracy.logprobs import EXTRA_KEY as LOGPROBS_KEY
from bench.accuracy.runner import ITEM_TEMPLATE, SuiteRunner
from bench.accuracy.spec import AccuracyResult, AccuracySpec
from bench.accuracy.suite import Suite, load_suite
from bench.accuracy.summary import RunDiff, diff_items, summarize
from bench.clients import make_client
from bench.errors import InterruptedRunError, UsageError
from bench.prompts.templates import load_template
from bench.records import ItemRecord
from bench.registry import ApiEndpoint, MockEndpoint, Prices, Registry
from bench.runs.lmeval import run_lmeval_tasks
from bench.runs.opening import check_hardware, check_target, client_config, opened, run_provenance
from bench.runs.pricing import priced_item, token_cost
from bench.runs.targets import Target, resolve_target
from bench.settings import Settings
from bench.store import RunStatus, Store

Progress = Callable[[int, int], None]  # (items done, items in the run)
NO_PRICE_NOTE = "self-hosted target: no per-token price (cost_usd is null; see the report's $/hour cost)"


def target_prices(target: Target, registry: Registry) -> Prices | None:
    """Registry prices of an API or mock entry; None for self-hosted and bare-URL targets."""
    if target.kind not in ("api", "mock"):
        return None
    _, entry = registry.get(target.name)
    return entry.prices if isinstance(entry, ApiEndpoint | MockEndpoint) else None


def mock_answers(target: Target, registry: Registry) -> dict[str, Any] | None:
    """A mock entry's answer configuration (its accuracy is configured, not measured); None otherwise."""
    if target.kind != "mock":
        return None
    _, entry = registry.get(target.name)
    return entry.answers.model_dump(mode="json") if isinstance(entry, MockEndpoint) else None


def _store_path(spec: AccuracySpec, settings: Settings) -> Path:
    return spec.store if spec.store is not None else settings.results_path


def run_accuracy(
    spec: AccuracySpec, registry: Registry, settings: Settings, progress: Progress | None = None
) -> AccuracyResult:
    """Run a suite or lm-eval tasks against the target; items go to the store as they are scored."""
    tasks = spec.lm_eval_tasks
    suite = None if tasks is not None else load_suite(spec.suite).limit(spec.limit)
    template = None if spec.template is None else load_template(spec.template)
    if template is not None:
        if suite is None:
            raise UsageError(
                "a prompt template renders suite items; lm-eval tasks bring their own", flag="--template"
            )
        suite = suite.rendered(template)
    api = spec.api
    if tasks is not None and api is None:
        # Multiple choice needs completions (echo + logprobs), which local servers have and APIs lack.
        api = "openai-completions" if not _is_api(spec.target, registry) else "openai-chat"
    target = resolve_target(
        spec.target,
        registry,
        settings,
        url=spec.url,
        model=spec.model,
        api=api,
        tokenizer=spec.tokenizer,
        api_key_env=spec.api_key_env,
    )
    if tasks is not None and target.api == "anthropic":
        raise UsageError("lm-eval tasks run over OpenAI-style APIs; pass --api openai-chat", flag="--api")
    check_hardware(registry, spec.hardware)
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(opened(target, settings, spec.server_kind))
        judge_target = None
        if spec.judge is not None:
            judge_target = stack.enter_context(
                opened(resolve_target(spec.judge, registry, settings), settings)
            )
        asyncio.run(check_target(target, spec.timeout_s))
        if judge_target is not None:
            asyncio.run(check_target(judge_target, spec.timeout_s))
        store = stack.enter_context(Store.open(_store_path(spec, settings)))
        store.check_writable()  # before the first request, not at the first item
        prices = target_prices(target, registry)
        templates = {"item": template_hash(ITEM_TEMPLATE), "judge": JUDGE_TEMPLATES_SHA}
        profile = AccuracyRunProfile.model_validate(
            {
                **spec.model_dump(mode="json"),
                "api": target.api,
                "templates": templates,
                "prompt": template.ref() if template is not None else None,
                **(
                    {
                        "suite_sha256": suite.sha256,
                        "items": len(suite.items),
                        "suite_version": suite.version,
                        "regression_area": suite.regression_area,
                    }
                    if suite is not None
                    else {}
                ),
            }
        )
        prompt = profile.prompt.to_json() if profile.prompt is not None else None
        extra = {"suite": spec.suite, "suite_sha256": profile.suite_sha256, "prompt": prompt}
        provenance = run_provenance(target, registry, hardware=spec.hardware, extra=extra)
        answers = mock_answers(target, registry)
        if answers is not None:
            provenance["mock_answers"] = answers  # the report marks this accuracy as simulated
        run_id = store.start_run(
            "accuracy",
            target.to_json(),
            profile.to_json(),
            provenance,
            sweep_id=spec.sweep_id,
            point_id=spec.point_id,
        )
        base = {
            "suite": suite.name if suite else spec.suite,
            "target": target.name,
            "run_id": run_id,
            "cost_note": None if prices else NO_PRICE_NOTE,
        }
        if suite is not None:
            judge_prices = target_prices(judge_target, registry) if judge_target else None
            return _run_suite(
                spec,
                suite,
                target,
                judge_target,
                judge_prices,
                prices,
                store,
                run_id,
                base,
                settings,
                progress,
            )
        return run_lmeval_tasks(spec, tasks or (), target, prices, store, run_id, base)


def _is_api(name: str, registry: Registry) -> bool:
    if name.startswith(("http://", "https://")):
        return False
    kind, _ = registry.get(name)
    return kind in ("api", "mock")


@contextlib.contextmanager
def _interrupts(
    store: Store, run_id: str, kept: Callable[[], list[ItemRecord]], summary: Callable[[], AccuracySummary]
) -> Iterator[None]:
    """Close the run as partial on Ctrl-C (InterruptedRunError) and as failed/partial on any other error."""
    try:
        yield
    except KeyboardInterrupt as exc:
        store.finish_run(run_id, "partial", summary(), "interrupted")
        raise InterruptedRunError("accuracy run interrupted", run_id=run_id, kept=len(kept())) from exc
    except BaseException as exc:
        status: RunStatus = "partial" if kept() else "failed"
        store.finish_run(run_id, status, summary() if kept() else None, f"{type(exc).__name__}: {exc}")
        raise


def _run_suite(
    spec: AccuracySpec,
    suite: Suite,
    target: Target,
    judge_target: Target | None,
    judge_prices: Prices | None,
    prices: Prices | None,
    store: Store,
    run_id: str,
    base: dict[str, Any],
    settings: Settings,
    progress: Progress | None,
) -> AccuracyResult:
    items: list[ItemRecord] = []
    total = len(suite.items)

    def on_item(item: ItemRecord) -> None:
        item = priced_item(item, prices)
        store.add_item(run_id, item)  # written as it completes: an interrupted run keeps it
        items.append(item)
        if progress is not None:
            progress(len(items), total)

    judge_usage: dict[str, Any] | None = None

    def summary() -> AccuracySummary:
        return summarize(items, judge=judge_usage, **base)

    async def go() -> None:
        nonlocal judge_usage
        async with contextlib.AsyncExitStack() as stack:
            config = client_config(target, spec.timeout_s)
            if spec.logprobs:  # each token's logprob, no alternatives: the cascade's confidence signal
                config = dataclasses.replace(config, logprobs=0)
            client = await stack.enter_async_context(make_client(target.api, config))
            judge = None
            if judge_target is not None:
                judge_client = await stack.enter_async_context(
                    make_client(judge_target.api, client_config(judge_target, spec.timeout_s))
                )
                cache = stack.enter_context(JudgeCache(settings.home / "judge-cache.sqlite"))

                def cost(tin: int | None, tout: int | None) -> float | None:
                    return token_cost(judge_prices, tin, tout)

                judge = Judge(judge_client, f"{judge_target.url}|{judge_target.model}", cache, cost)
            runner = SuiteRunner(
                client, spec.concurrency, spec.max_tokens, judge=judge, similarity=spec.similarity
            )
            try:
                await _until_ctrl_c(runner.run(suite, on_item), interrupted)
            finally:
                if judge is not None:
                    judge_usage = judge.usage.to_json()

    interrupted: list[bool] = []
    if progress is not None:
        progress(0, total)
    with _interrupts(store, run_id, lambda: items, summary):
        asyncio.run(go())
        if interrupted:  # decided by the flag, not by whether the task's cancellation came through
            raise KeyboardInterrupt
    result = summary()
    status, reason = finished_status(result)
    store.finish_run(run_id, status, result, reason)
    with_logprobs = sum(LOGPROBS_KEY in i.extra for i in items) if spec.logprobs else None
    return AccuracyResult(run_id, status, result, with_logprobs)


def finished_status(summary: AccuracySummary) -> tuple[Literal["complete", "failed"], str | None]:
    """'failed' when every item failed (the first error as the reason), else 'complete'."""
    failed, items = summary.failed, summary.items
    if not failed:
        return "complete", None
    first = summary.error_details[0] if summary.error_details else None
    why = "unknown" if first is None else f"{first.kind}: {first.first_message}"
    reason = f"{failed} of {items} items failed; first: {why}"
    return ("failed", reason) if failed == items else ("complete", None)


async def _until_ctrl_c(work: Coroutine[Any, Any, Any], interrupted: list[bool]) -> None:
    """Run `work`; a Ctrl-C (SIGINT) stops it and is recorded in `interrupted` (main thread only)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    if threading.current_thread() is not threading.main_thread():
        await task
        return

    def on_sigint() -> None:
        interrupted.append(True)
        task.cancel()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C stops at once

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        await task
    except asyncio.CancelledError:
        if not interrupted:
            raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def diff_runs(store_path: Path, run_a: str, run_b: str) -> RunDiff:
    """Paired comparison of two stored accuracy runs (ids or unique prefixes) on their common items."""
    with Store.open(store_path, create=False) as store:
        a, b = store.get_run(run_a), store.get_run(run_b)
        for run, flag in ((a, "RUN_A"), (b, "RUN_B")):
            if run.kind != "accuracy":
                raise UsageError(f"run {run.id[:12]} is a {run.kind} run, not an accuracy run", flag=flag)
        pa, pb = a.accuracy_profile, b.accuracy_profile
        same = (pa.suite_sha256 or pa.suite) == (pb.suite_sha256 or pb.suite)
        items_a, items_b = store.load_items(a.id), store.load_items(b.id)
    if not items_a or not items_b:
        empty = a if not items_a else b
        raise UsageError(f"run {empty.id[:12]} has no scored items", flag="RUN_A" if empty is a else "RUN_B")
    try:
        return diff_items(a.id, items_a, b.id, items_b, same_suite=same)
    except ValueError as exc:
        raise UsageError(f"{exc}: were they run on the same suite?", flag="RUN_B") from exc
