"""An lm-eval run as a stored accuracy run: the recording proxy, lm-eval, then its requests and items priced
and stored, and the run finished with its summary."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from bench.accuracy.lmeval import LmEvalSpec, run_lmeval, task_manager
from bench.accuracy.proxy import RecordingProxy
from bench.accuracy.spec import AccuracyResult, AccuracySpec
from bench.accuracy.summary import error_details, summarize
from bench.errors import InterruptedRunError
from bench.records import RequestRecord
from bench.registry import Prices
from bench.runs.pricing import request_cost, shared_cost
from bench.runs.targets import Target
from bench.store import Store


def proxy_headers(target: Target) -> dict[str, str]:
    """Headers the proxy adds upstream: the target's own, and the key (lm-eval never sees it)."""
    headers = dict(target.headers)
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    return headers


def run_lmeval_tasks(
    spec: AccuracySpec,
    tasks: tuple[str, ...],
    target: Target,
    prices: Prices | None,
    store: Store,
    run_id: str,
    base: dict[str, Any],
) -> AccuracyResult:
    """Run lm-eval through the proxy; store every request and every sample."""
    manager = task_manager(spec.tasks_dir)
    with RecordingProxy(target.url, proxy_headers(target)) as proxy:
        lm_spec = LmEvalSpec(
            tasks=tasks,
            base_url=proxy.base_url,
            model=target.model,
            api="openai-chat" if target.api == "openai-chat" else "openai-completions",
            tokenizer=target.tokenizer,
            include_path=spec.tasks_dir,
            limit=spec.limit,
            concurrency=spec.concurrency,
            apply_chat_template=spec.chat_template,
            headers=proxy.client_headers,
        )
        try:
            outcome = run_lmeval(lm_spec, proxy.calls, manager)
        except KeyboardInterrupt as exc:
            _store_requests(store, run_id, proxy)
            store.finish_run(run_id, "partial", None, "interrupted")
            raise InterruptedRunError("lm-eval run interrupted", run_id=run_id, kept=0) from exc
        except BaseException as exc:
            _store_requests(store, run_id, proxy)
            store.finish_run(run_id, "failed", None, f"{type(exc).__name__}: {exc}")
            raise
    records = _store_requests(store, run_id, proxy)
    items = [
        dataclasses.replace(i, cost_usd=shared_cost(outcome.matched[i.item_id], prices))
        if i.item_id in outcome.matched
        else i
        for i in outcome.items
    ]
    store.add_items(run_id, items)
    failed_requests = sum(not r.ok for r in records)
    in_tokens = [r.input_tokens for r in records if r.input_tokens is not None]
    out_tokens = [r.output_tokens for r in records if r.output_tokens is not None]
    costs = [request_cost(prices, r) for r in records]
    lm = {
        t: {
            "metric": s.metric,
            "filter": s.filter,
            "value": s.value,
            "stderr": s.stderr,
            "n": s.n,
            "config_sha256": s.config_sha256,
        }
        for t, s in outcome.scores.items()
    }
    # The endpoint-side totals cover every request, matched to a sample or not.
    extra: dict[str, Any] = {
        "lm_eval": lm,
        "tokens": {
            "input": sum(in_tokens) if in_tokens else None,
            "output": sum(out_tokens) if out_tokens else None,
        },
        "cost_usd": sum(c for c in costs if c is not None) if prices is not None else None,
        "requests": {"n": len(records), "failed": failed_requests},
        "templates": {t: s.config_sha256[:16] for t, s in outcome.scores.items()},
    }
    if failed_requests:  # lm-eval's requests go through the proxy: their failures are the ones to show
        extra["error_details"] = error_details(
            (r.error_kind or r.status.value, r.http_status, r.error_text or "") for r in records if not r.ok
        )
    summary = summarize(items, **base, extra=extra)
    status: Literal["complete", "failed"] = (
        "failed" if records and failed_requests == len(records) else "complete"
    )
    first = summary.error_details[0] if status == "failed" and summary.error_details else None
    reason = None if first is None else f"every request failed; first: {first.kind}: {first.first_message}"
    store.finish_run(run_id, status, summary, reason)
    return AccuracyResult(run_id, status, summary)


def _store_requests(store: Store, run_id: str, proxy: RecordingProxy) -> list[RequestRecord]:
    records = proxy.records()
    if records:
        store.add_requests(run_id, records, origin_s=min(r.start_s for r in records))
    return records
