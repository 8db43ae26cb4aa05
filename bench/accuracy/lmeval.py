"""lm-eval tasks against an endpoint, through the recording proxy, with per-sample items kept.

`local-completions` (generate_until and loglikelihood/multiple-choice; needs echo+logprobs from the server)
serves local models; `local-chat-completions` (generate_until only) serves chat and API models. Runs are
offline-safe: a local tokenizer path is always passed with `tokenizer_backend=huggingface`. lm-eval records
no tokens, latency or cost; the proxy in front of the endpoint does, and each request is matched back to the
sample that sent it by its prompt text.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.accuracy.lmeval_match import Matched, attribute
from bench.accuracy.proxy import ProxyCall
from bench.errors import ConfigError, LlmbenchError, TargetError, UsageError
from bench.records import ItemRecord

LmEvalApi = Literal["openai-chat", "openai-completions"]
MODEL_FOR_API: dict[str, str] = {
    "openai-chat": "local-chat-completions",
    "openai-completions": "local-completions",
}
ENDPOINT_FOR_API: dict[str, str] = {"openai-chat": "/chat/completions", "openai-completions": "/completions"}


@dataclass(frozen=True)
class LmEvalSpec:
    """One lm-eval run: tasks, the endpoint (already the proxy's base URL) and how to ask it."""

    tasks: tuple[str, ...]
    base_url: str  # .../v1
    model: str
    api: LmEvalApi = "openai-completions"
    tokenizer: str | None = None  # local folder; required for completions
    include_path: Path | None = None  # a folder of YAML tasks
    limit: int | None = None  # samples per task
    concurrency: int = 8
    apply_chat_template: bool | None = None  # None: True for chat, False for completions
    max_length: int | None = None  # context window for loglikelihood truncation (tokens)
    max_retries: int = 3
    headers: dict[str, str] | None = None  # sent with every request (the recording proxy's token)

    def model_name(self) -> str:
        return MODEL_FOR_API[self.api]

    def model_args(self) -> dict[str, Any]:
        """lm-eval's model_args (the same dict runs the lm-eval CLI with `--model_args`)."""
        args: dict[str, Any] = {
            "model": self.model,
            "base_url": self.base_url.rstrip("/") + ENDPOINT_FOR_API[self.api],
            "num_concurrent": self.concurrency,
            "max_retries": self.max_retries,
        }
        if self.tokenizer is not None:
            args["tokenizer"] = self.tokenizer
            args["tokenizer_backend"] = "huggingface"
        elif self.api == "openai-completions":
            raise UsageError(
                "lm-eval over completions needs a local tokenizer (offline, it cannot look one up on the "
                "hub); pass --tokenizer PATH",
                flag="--tokenizer",
            )
        else:
            args["tokenizer_backend"] = "none"
        if self.max_length is not None:
            args["max_length"] = self.max_length
        if self.headers:
            args["header"] = dict(self.headers)  # lm-eval's API models send it instead of their own
        return args

    def chat_template(self) -> bool:
        return self.api == "openai-chat" if self.apply_chat_template is None else self.apply_chat_template


@dataclass(frozen=True)
class TaskScore:
    """lm-eval's own number for one task: the primary metric, its filter, value and stderr."""

    task: str
    metric: str
    filter: str
    value: float
    stderr: float | None
    n: int
    config_sha256: str  # hash of the task's resolved config (its prompt template included)


@dataclass
class LmEvalOutcome:
    """What a run produced: lm-eval's scores, one item per sample (unpriced), lm-eval's raw results, and
    the recorded requests matched to each item (for the caller that knows the prices)."""

    scores: dict[str, TaskScore]
    items: list[ItemRecord]
    raw: dict[str, Any] = field(repr=False)
    matched: Matched = field(default_factory=dict, repr=False)


def task_manager(include_path: Path | None) -> Any:
    """lm-eval's TaskManager over the installed tasks plus an optional folder of YAML tasks."""
    from lm_eval.tasks import TaskManager

    if include_path is not None and not include_path.is_dir():
        raise ConfigError(f"lm-eval task folder not found: {include_path}", file=str(include_path))
    return TaskManager(include_path=str(include_path) if include_path is not None else None)


def check_tasks(manager: Any, tasks: Sequence[str]) -> None:
    """ConfigError naming unknown tasks, with close matches, before any request is sent."""
    known = set(manager.all_tasks)
    missing = [t for t in tasks if t not in known]
    if missing:
        hints = {t: difflib.get_close_matches(t, known, n=3) for t in missing}
        shown = "; ".join(f"{t} (did you mean {', '.join(h)}?)" if h else t for t, h in hints.items())
        raise ConfigError(
            f"unknown lm-eval task(s): {shown}",
            key=",".join(missing),
            fix="list tasks with `lm_eval ls tasks`, or pass a folder of task YAML files with --tasks-dir",
        )


def run_lmeval(
    spec: LmEvalSpec,
    calls: Sequence[ProxyCall] | None = None,
    manager: Any = None,
) -> LmEvalOutcome:
    """Run the tasks with `lm_eval.simple_evaluate`; lm-eval's failures become bench errors (chained)."""
    import lm_eval

    manager = manager if manager is not None else task_manager(spec.include_path)
    check_tasks(manager, spec.tasks)
    try:
        raw = lm_eval.simple_evaluate(
            model=spec.model_name(),
            model_args=spec.model_args(),
            tasks=list(spec.tasks),
            task_manager=manager,
            limit=spec.limit,
            log_samples=True,
            apply_chat_template=spec.chat_template(),
            bootstrap_iters=0,
        )
    except LlmbenchError:
        raise
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise TargetError(
            f"lm-eval could not reach the endpoint: {exc}", url=spec.base_url, model=spec.model
        ) from exc
    except Exception as exc:  # lm-eval raises bare exceptions of many kinds; name the stage that failed
        raise LlmbenchError(f"lm-eval failed: {type(exc).__name__}: {exc}") from exc
    if raw is None:
        raise LlmbenchError("lm-eval returned no results (it ran on a non-zero rank?)")
    scores = {task: _task_score(task, raw) for task in spec.tasks}
    items = [item for task in spec.tasks for item in _items(task, raw, scores[task])]
    matched: Matched = {}
    if calls is not None:
        items, matched = attribute(items, raw, calls, spec.tokenizer, chat=spec.api == "openai-chat")
    return LmEvalOutcome(scores, items, raw, matched)


def _primary(config: dict[str, Any]) -> tuple[str, str]:
    metrics = config.get("metric_list") or [{"metric": "acc"}]
    metric = str(metrics[0]["metric"])
    filters = config.get("filter_list") or []
    return metric, str(filters[0]["name"]) if filters else "none"


def _task_score(task: str, raw: dict[str, Any]) -> TaskScore:
    config = raw["configs"][task]
    metric, filt = _primary(config)
    result = raw["results"][task]
    value = result.get(f"{metric},{filt}")
    if value is None:
        raise LlmbenchError(f"lm-eval reported no {metric},{filt} for task {task}: {sorted(result)}")
    stderr = result.get(f"{metric}_stderr,{filt}")
    sha = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    return TaskScore(
        task=task,
        metric=metric,
        filter=filt,
        value=float(value),
        stderr=float(stderr) if isinstance(stderr, int | float) and math.isfinite(stderr) else None,
        n=int(raw.get("n-samples", {}).get(task, {}).get("effective", len(raw["samples"][task]))),
        config_sha256=sha,
    )


def _items(task: str, raw: dict[str, Any], score: TaskScore) -> list[ItemRecord]:
    out = []
    for sample in raw["samples"][task]:
        if sample.get("filter", "none") != score.filter:
            continue
        value = float(sample[score.metric])
        binary = value in (0.0, 1.0)
        resps = sample.get("filtered_resps")
        output = (
            resps[0]
            if isinstance(resps, list) and resps and isinstance(resps[0], str)
            else json.dumps(resps, default=str)
        )
        out.append(
            ItemRecord(
                item_id=f"{task}/{sample['doc_id']}",
                status="ok",
                area=task,
                score=value,
                correct=bool(value) if binary else None,
                output=output,
                reference=str(sample.get("target")),
                extra={
                    "metric": score.metric,
                    "filter": score.filter,
                    "doc_hash": sample.get("doc_hash"),
                    "prompt_hash": sample.get("prompt_hash"),
                },
            )
        )
    return out
