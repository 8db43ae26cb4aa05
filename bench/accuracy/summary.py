"""Fold scored items into the accuracy summary (the `llmbench.accuracy/1` JSON) and compare two runs.

Pure functions over stored items, so any summary can be recomputed from the store. Items whose request
failed (status 'error') are counted apart as `failed`: neither right nor wrong. Items scored without a
right/wrong verdict (embedding similarity, advisory) are counted as `unscored`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.accuracy.documents import AccuracySummary
from bench.records import ItemRecord
from bench.stats import PairedComparison, paired_compare, wilson

SCHEMA = "llmbench.accuracy/1"


def _group(items: Sequence[ItemRecord]) -> dict[str, Any]:
    scored = [i for i in items if i.status == "ok" and i.correct is not None]
    prop = wilson(sum(bool(i.correct) for i in scored), len(scored))
    return {
        "score": prop.score,
        "n": prop.n,
        "correct": prop.correct,
        "ci95": None if prop.ci95 is None else list(prop.ci95),
        "failed": sum(i.status == "error" for i in items),
        "unscored": sum(i.status == "ok" and i.correct is None for i in items),
    }


def _sum(values: Iterable[int | float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) if got else None


def summarize(
    items: Sequence[ItemRecord],
    *,
    suite: str,
    target: str,
    run_id: str | None,
    cost_note: str | None = None,
    judge: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> AccuracySummary:
    """The accuracy summary (llmbench.accuracy/1): overall and per-area score with 95% Wilson CI, tokens,
    cost, failures; `extra` sets further fields of AccuracySummary (lm-eval's)."""
    overall = _group(items)
    areas = sorted({i.area or "-" for i in items})
    latencies = sorted(i.latency_ms for i in items if i.latency_ms is not None)
    input_tokens = _sum(i.input_tokens for i in items)
    output_tokens = _sum(i.output_tokens for i in items)
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "suite": suite,
        "target": target,
        "score": overall["score"],
        "ci95": overall["ci95"],
        "n": overall["n"],
        "correct": overall["correct"],
        "areas": {a: _group([i for i in items if (i.area or "-") == a]) for a in areas},
        "tokens": {
            "input": None if input_tokens is None else int(input_tokens),
            "output": None if output_tokens is None else int(output_tokens),
        },
        "cost_usd": _sum(i.cost_usd for i in items),
        "failed": overall["failed"],
        "error_details": error_details(item_failure(i) for i in items if i.status == "error"),
        "unscored": overall["unscored"],
        "items": len(items),
        "latency_ms": {
            "mean": sum(latencies) / len(latencies) if latencies else None,
            "p50": latencies[len(latencies) // 2] if latencies else None,
            "max": latencies[-1] if latencies else None,
        },
        "run_id": run_id,
    }
    if cost_note:
        out["cost_note"] = cost_note
    if judge is not None:
        out["judge"] = dict(judge)
    if extra:
        out.update(extra)
    return AccuracySummary.from_json(out)


Failure = tuple[str, int | None, str]  # (error kind, HTTP status, message)
MESSAGE_CHARS = 300  # of a failure's first message, in the summary


def item_failure(item: ItemRecord) -> Failure:
    """Why an item's request failed: its error kind (http_500, timeout, judge…), HTTP status and message."""
    text = item.error_text or ""
    head, sep, rest = text.partition(": ")
    kind = item.extra.get("error_kind") or (head if sep and " " not in head else "error")
    message = rest if sep and head == kind else text
    status = item.extra.get("http_status")
    return str(kind), status if isinstance(status, int) and status >= 400 else None, message


def error_details(failures: Iterable[Failure]) -> list[dict[str, Any]]:
    """Failures grouped by kind, most frequent first: count, HTTP status and the first message of each."""
    counts: Counter[str] = Counter()
    first: dict[str, Failure] = {}
    for failure in failures:
        counts[failure[0]] += 1
        first.setdefault(failure[0], failure)
    return [
        {
            "kind": kind,
            "count": count,
            "http_status": first[kind][1],
            "first_message": first[kind][2][:MESSAGE_CHARS],
        }
        for kind, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


@dataclass(frozen=True)
class RunDiff:
    """Two runs compared on the items both scored, overall and per area."""

    a_id: str
    b_id: str
    overall: PairedComparison
    areas: dict[str, PairedComparison]
    a_failed: int
    b_failed: int
    only_a: int  # items scored in A only (not paired)
    only_b: int
    same_suite: bool

    def to_json(self) -> dict[str, Any]:
        def one(c: PairedComparison) -> dict[str, Any]:
            return {
                "n": c.n,
                "a_score": c.a_score,
                "b_score": c.b_score,
                "diff_points": c.diff_points,
                "ci95_points": list(c.ci95_points),
                "a_only_correct": c.a_only,
                "b_only_correct": c.b_only,
                "p_value": c.p_value,
            }

        return {
            "schema": "llmbench.accuracy-diff/1",
            "a": self.a_id,
            "b": self.b_id,
            **one(self.overall),
            "sentence": self.overall.sentence(),
            "areas": {k: one(v) for k, v in self.areas.items()},
            "failed": {"a": self.a_failed, "b": self.b_failed},
            "unpaired": {"a": self.only_a, "b": self.only_b},
            "same_suite": self.same_suite,
        }


def _verdicts(items: Sequence[ItemRecord]) -> dict[str, tuple[str, bool]]:
    """item id (with its repeat) → (area, correct) for items scored right or wrong."""
    out: dict[str, tuple[str, bool]] = {}
    for i in items:
        if i.status == "ok" and i.correct is not None:
            key = i.item_id if i.repeat == 0 else f"{i.item_id}#{i.repeat}"
            out[key] = (i.area or "-", bool(i.correct))
    return out


def diff_items(
    a_id: str, a: Sequence[ItemRecord], b_id: str, b: Sequence[ItemRecord], *, same_suite: bool = True
) -> RunDiff:
    """Paired comparison of B against A (Newcombe's paired score CI of B−A in points, exact McNemar)."""
    va, vb = _verdicts(a), _verdicts(b)
    overall = paired_compare({k: v[1] for k, v in va.items()}, {k: v[1] for k, v in vb.items()})
    areas: dict[str, PairedComparison] = {}
    for area in sorted({v[0] for k, v in va.items() if k in vb}):
        pa = {k: v[1] for k, v in va.items() if v[0] == area and k in vb}
        pb = {k: v[1] for k, v in vb.items() if k in pa}
        areas[area] = paired_compare(pa, pb)
    return RunDiff(
        a_id=a_id,
        b_id=b_id,
        overall=overall,
        areas=areas,
        a_failed=sum(i.status == "error" for i in a),
        b_failed=sum(i.status == "error" for i in b),
        only_a=len(set(va) - set(vb)),
        only_b=len(set(vb) - set(va)),
        same_suite=same_suite,
    )
