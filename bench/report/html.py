"""The HTML report: one self-contained file (plotly.js inlined, no network), opens from file://."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jinja2

from bench import __version__
from bench.registry import split_name
from bench.report.analysis import BreakEvenRow, Step
from bench.report.build import Report
from bench.report.cells import (
    accuracy_text,
    cache_mark,
    cost_definitions,
    hardware_text,
    money_units,
    price_sources,
    search_trace,
    simulated,
    throughput_text,
)
from bench.report.figures import Row
from bench.report.flags import SERIOUS
from bench.report.levers_view import levers_html
from bench.report.markdown import (
    dominance_lines,
    mean_ci_text,
    one_line,
    option_flags,
    paired_text,
    saving_text,
    simulated_note,
)
from bench.report.value import Per, Value, fmt_tokens, fmt_usd, show
from bench.report.workloads import (
    ANSWER_COLUMNS,
    WorkloadAnswer,
    answer_change,
    answer_rows,
    break_even_lines,
    recommendation_text,
)

COLUMNS = (
    "option",
    "model",
    "variant",
    "hardware",
    "accuracy [95% CI]",
    "TTFT p50 ms",
    "TTFT p95 ms",
    "TPOT p50 ms",
    "output tok/s at op",
    "goodput req/s",
)  # fmt: skip  (then the money columns, in their units, and the flags)
PROVENANCE = (
    "run_id", "kind", "status", "started_at", "target", "profile", "engine", "model_repo",
    "model_revision", "quantization", "hardware", "llmbench", "git_sha", "sweep_id",
)  # fmt: skip


def _cell(value: Value, kind: str = "number", per: Per | None = None) -> dict[str, Any]:
    if value.value is None:
        return {"na": value.reason or "not measured", "num": True}
    return {"text": show(value, kind, per), "num": True, "note": value.note}


def _text(text: str | None) -> dict[str, Any]:
    return {"text": text or "-", "num": False}


def _row(report: Report, row: Row, units: dict[str, Per]) -> dict[str, Any]:
    o = row.option
    acc_text = accuracy_text(row, with_n=True)
    acc = _cell(row.accuracy) if acc_text is None else {"text": acc_text, "num": True, "note": simulated(o)}
    hw = hardware_text(row)
    css = "recommended" if row.key == report.headline.recommended else ""
    css = "runner-up" if row.key == report.headline.runner_up else css
    model, variant = split_name(o.name)
    return {
        "key": row.key,
        "css": css,
        "cells": [
            _text(row.key),
            _text(model),
            _text(variant),
            _text(hw),
            acc,
            _cell(row.ttft_p50, "ms"),
            _cell(row.ttft_p95, "ms"),
            _cell(row.tpot_p50, "ms"),
            _cell(row.output_tok_s)
            if row.output_tok_s_ci95 is None
            else {"text": throughput_text(row), "num": True, "note": row.output_tok_s.note},
            _cell(row.goodput_rps),
            *(
                _marked(_cell(getattr(row, name), "usd", unit), cache_mark(row, name))
                for name, unit in units.items()
            ),
            _cell(row.list_usd_per_1m_output, "usd") if o.kind == "api" else _text(None),
        ],
        "flags": [
            {"kind": f.kind, "detail": f"{f.run_id[:8]}: {f.detail}", "serious": f.kind in SERIOUS}
            for f in o.flags
        ],
    }


def _marked(cell: dict[str, Any], mark: str) -> dict[str, Any]:
    """A money cell with ' (cache not reported)' after its figure, where that applies."""
    return {**cell, "text": cell["text"] + mark} if mark and "text" in cell else cell


def _answer(answer: WorkloadAnswer) -> dict[str, Any]:
    w = answer.workload
    marks = {r.key: r.cache_not_reported for r in answer.rows}
    reuse = answer.designed_reuse
    return {
        "name": w.name,
        "about": f"{w.kind}"
        + (f", sha256 {w.sha256[:12]}" if w.sha256 else "")
        + f"; {answer.load_runs} load runs"
        + (f"; designed reuse {100 * reuse:.1f}%" if reuse is not None else ""),
        "recommendation": recommendation_text(answer),
        "rows": [[r[key] for _, key in ANSWER_COLUMNS] for r in answer_rows(answer)],
        "break_even": break_even_lines(answer, marks.get),
    }


def _charts(report: Report) -> tuple[list[dict[str, Any]], str]:
    from bench.report.charts import CHARTS  # plotly is imported only to draw

    shown: list[dict[str, Any]] = []
    data: dict[str, Any] = {}
    for chart_id, (title, build, why) in CHARTS.items():
        fig = build(report)
        if fig is None:
            shown.append({"id": chart_id, "title": title, "json": False, "na": why(report)})
        else:
            shown.append({"id": chart_id, "title": title, "json": True})
            data[chart_id] = json.loads(fig.to_json())
    # "</" would end the script element early.
    return shown, json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def _step(s: Step) -> dict[str, str]:
    return {
        "step": f"{s.stronger} → {s.cheaper}",
        "change": paired_text(s.paired),
        "saving": saving_text(s),
    }


def _break_even(b: BreakEvenRow, report: Report) -> dict[str, str]:
    be = b.result
    api = report.row(b.api)
    return {
        "selfhosted": b.selfhosted,
        "api": b.api,
        "price": fmt_usd(b.api_usd_per_1m_output)
        + ("" if api is None else cache_mark(api, "usd_per_1m_output_allocation")),
        "volume": fmt_tokens(be.volume) if be.volume is not None else f"never: {be.reason}",
        "utilization": f"{100 * be.utilization:.1f}%",
        "above": fmt_tokens(be.always_above) if be.always_above is not None else "-",
    }


def render_html(report: Report) -> str:
    """The report as one HTML page."""
    from plotly.offline import get_plotlyjs

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(
        resources.files("bench.report").joinpath("templates/report.html.j2").read_text(encoding="utf-8")
    )
    h = report.headline
    spec = report.spec
    charts, charts_json = _charts(report)
    units = money_units(report.rows)
    return template.render(
        plotly_js=get_plotlyjs(),
        generated_at=report.generated_at,
        n_runs=report.n_runs,
        selection=spec.selection(),
        store=report.store,
        version=__version__,
        headline={
            "recommended_line": one_line(report, h.recommended).replace("**", ""),
            "runner_up_line": one_line(report, h.runner_up).replace("**", "") if h.runner_up else None,
            "summary": h.summary,
            "excluded": list(h.reasons.items()),
        },
        suite=report.suite.label if report.suite else "none",
        slo=", ".join(f"{k}={v:g}" for k, v in (report.slo or {}).items()) or "none stored",
        attainment=report.attainment_label,
        max_drop=f"{spec.max_drop:g}",
        basis="allocation" if spec.utilization is None else f"utilization {spec.utilization:.0%}",
        columns=[*COLUMNS, *(u.heading for u in units.values()), "list $/1M out", "flags"],
        cost_definitions=cost_definitions(report.workload, report.mix),
        searches=[
            {"key": r.key, "capped": r.capped, "probes": t}
            for r in report.rows
            if (t := search_trace(r.option))
        ],
        rows=[_row(report, r, units) for r in report.rows],
        simulated_note=simulated_note(report),
        charts=charts,
        charts_json=charts_json,
        downgrade=[_step(s) for s in report.downgrade.steps],
        dominance=dominance_lines(report.downgrade),
        break_even=[_break_even(b, report) for b in report.break_evens],
        workload_name=report.answers[0].workload.name if report.answers else None,
        answer_change=answer_change(report.answers),
        answers=[_answer(a) for a in report.answers],
        answer_columns=[heading for heading, _ in ANSWER_COLUMNS],
        prices=price_sources(report.rows),
        flags=[
            {
                "option": key,
                "run": f.run_id[:8],
                "kind": f.kind,
                "detail": f.detail,
                "serious": f.kind in SERIOUS,
            }
            for key, f in option_flags(report)
        ],
        notes=report.notes,
        repeats=[
            {
                "point": r.point,
                "run": r.run,
                "n": r.n,
                "tok_s": mean_ci_text(r.step.output_tokens_per_s),
                "ttft": mean_ci_text(r.step.ttft_p50_ms),
                "goodput": mean_ci_text(r.step.goodput_requests_per_s),
            }
            for r in report.repeats
        ],
        levers=levers_html(report.levers),
        provenance_columns=PROVENANCE,
        provenance=[[p.get(c) for c in PROVENANCE] for p in report.provenance],
    )
