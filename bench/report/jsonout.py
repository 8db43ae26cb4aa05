"""The `llmbench.report/1` JSON: every figure of the report with its n/a reason, for machines."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bench.registry import Registry, split_name
from bench.report.build import SCHEMA, Report
from bench.report.cells import cost_definitions, simulated
from bench.report.figures import Row
from bench.report.options import Pricing
from bench.report.value import Value
from bench.report.workloads import WorkloadAnswer, answer_change, cache_json


def pricing_from_registry(registry: Registry) -> Pricing:
    """Prices and providers of every API and mock entry, and every hardware profile."""
    prices: dict[str, Any] = {}
    providers: dict[str, str] = {}
    for name, entry in registry.data.api.items():
        prices[name], providers[name] = entry.prices, entry.provider
    for name, mock in registry.data.mock.items():
        providers[name] = mock.provider
        if mock.prices is not None:
            prices[name] = mock.prices
    return Pricing(prices=prices, providers=providers, hardware=dict(registry.data.hardware))


def _v(value: Value) -> dict[str, Any]:
    return value.to_json()


def row_json(row: Row) -> dict[str, Any]:
    o = row.option
    model, variant = split_name(o.name)
    why = simulated(o)
    return {
        "key": row.key,
        "name": o.name,
        "model": model,
        "variant": variant,
        "kind": o.kind,
        "simulated": why is not None,
        "hardware": o.hardware,
        "hardware_label": None if row.hardware is None else row.hardware.label,
        "measured_on": None if o.machine is None else o.machine.to_json(),
        "operating_point": o.op.to_json(),
        "accuracy": {
            **_v(row.accuracy),
            "ci95": None if row.ci95 is None else list(row.ci95),
            "n": row.n_items,
            "correct": row.correct,
            "simulated_by": why,
            "run_id": None if o.accuracy_run is None else o.accuracy_run.id,
            "areas": {a: v.to_json() for a, v in row.areas.items()},
        },
        "latency_ms": {
            "ttft_p50": _v(row.ttft_p50),
            "ttft_p95": _v(row.ttft_p95),
            "tpot_p50": _v(row.tpot_p50),
        },
        "output_tokens_per_s": {
            **_v(row.output_tok_s),
            "unit": "reference tokens" if row.own_per_ref is not None else "model tokens",
            "ci95": None if row.output_tok_s_ci95 is None else list(row.output_tok_s_ci95),
        },
        "output_model_tokens_per_s": _v(row.output_tok_s_model),
        "goodput_requests_per_s": _v(row.goodput_rps),
        "slo_attainment": _v(row.attainment),
        "cost": {
            "basis": row.basis,
            "utilization": row.utilization,
            "usd_per_hour": _v(row.usd_per_hour),
            "usd_per_1m_output": _v(row.usd_per_1m_output),
            "usd_per_1m_output_allocation": _v(row.usd_per_1m_output_allocation),
            "usd_per_1m_output_uncached": _v(row.usd_per_1m_output_uncached),
            "cache_not_reported": row.cache_not_reported,
            "usd_per_1m_blended": _v(row.usd_per_1m_blended),
            "usd_per_1k_requests": _v(row.usd_per_1k_requests),
            "usd_per_correct": _v(row.usd_per_correct),
            "input_per_output_token": row.mix,
            "own_tokens_per_reference_token": None if row.own_per_ref is None else list(row.own_per_ref),
            "list_usd_per_1m_output": _v(row.list_usd_per_1m_output),
            "capped": row.capped,
            "workload": row.workload,
            "prices": None if row.prices is None else row.prices.model_dump(mode="json"),
        },
        "cache": cache_json(row.cache),
        "flags": [f.to_json() for f in o.flags],
        "load_run_ids": [r.id for r in o.load_runs],
        "accuracy_run_ids": [r.id for r in o.accuracy_runs],
    }


def answer_json(answer: WorkloadAnswer) -> dict[str, Any]:
    """One workload's judgement: its recommendation, every option's figures on it, its break-evens."""
    return {
        "workload": answer.workload.to_json(),
        "load_runs": answer.load_runs,
        "designed_reuse": answer.designed_reuse,
        "headline": answer.headline.to_json(),
        "leaderboard": [row_json(r) for r in answer.rows],
        "break_even": [b.to_json() for b in answer.break_evens],
    }


def report_json(report: Report) -> dict[str, Any]:
    """The whole report as plain JSON data."""
    return {
        "schema": SCHEMA,
        "generated_at": report.generated_at,
        "store": report.store,
        "selection": report.spec.selection(),
        "runs": report.n_runs,
        "spec": report.spec.model_dump(mode="json"),
        "suite": None
        if report.suite is None
        else {"suite": report.suite.suite, "sha256": report.suite.sha256},
        "slo": report.slo,
        "headline": report.headline.to_json(),
        "leaderboard": [row_json(r) for r in report.rows],
        "pareto_frontier": report.downgrade.frontier,
        "downgrade": report.downgrade.to_json(),
        "break_even": [b.to_json() for b in report.break_evens],
        "recovery": report.recovery.to_json(),
        "curves": {k: [asdict(p) for p in v] for k, v in report.curves.items()},
        "histograms": [asdict(h) for h in report.histograms],
        "provenance": report.provenance,
        "notes": report.notes,
        "repeats": [r.to_json() for r in report.repeats],
        "workload": report.workload,
        "by_workload": [answer_json(a) for a in report.answers],
        "answer_change": answer_change(report.answers),
        "blended_mix": report.mix,
        "cost_definitions": cost_definitions(report.workload, report.mix),
        "levers": None if report.levers is None else asdict(report.levers),
    }
