"""`build_card`: a Markdown system card for one model variant (or API) from the registry and the store.

It covers the model and its source revision, license, quantization and serving setup; speed and cost at the
operating point; accuracy per area with CIs; known failure modes with examples from the failed items; and
intended use and limitations from a user-supplied file. Every measured number names the stored run it
comes from; a missing one says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.registry import ApiEndpoint, Entry, LocalModel, MockEndpoint
from bench.report.cells import money_units, simulated
from bench.report.figures import Row, compute_row
from bench.report.options import Pricing, group_options, target_name
from bench.report.query import StoreReader
from bench.report.value import Per, Value, show
from bench.store import RunInfo, Store

EXAMPLES_PER_AREA = 3
MAX_EXAMPLE_CHARS = 160


@dataclass(frozen=True)
class CardInput:
    """What the CLI resolved: the registry name and entry, and the user's intended-use text."""

    name: str
    kind: str  # local | api | mock
    entry: Entry
    intended_use: str | None = None
    use_source: str | None = None


def _cite(value: Value, kind: str, run: RunInfo | None) -> str:
    text = show(value, kind)
    return f"{text} (run `{run.id[:12]}`)" if value.known and run is not None else text


def _money(value: Value, per: Per, run: RunInfo | None = None) -> str:
    """'$0.257 per 1k correct answers' (citing `run`), or 'n/a: reason (per …)'."""
    if not value.known:
        return f"{show(value)} ({per.phrase})"
    return f"{show(value, 'usd', per)} {per.phrase}" + (f" (run `{run.id[:12]}`)" if run else "")


def _short(text: str | None) -> str:
    one = " ".join((text or "").split())
    return (one[:MAX_EXAMPLE_CHARS] + "…") if len(one) > MAX_EXAMPLE_CHARS else one or "(empty)"


def _model_section(card: CardInput) -> list[str]:
    e = card.entry
    lines = ["## Model", ""]
    if isinstance(e, LocalModel):
        source = (
            f"builtin `{e.builtin}` (built offline, deterministic from its seed)"
            if e.builtin
            else f"`{e.repo}`"
        )
        revision = (
            "built"
            if e.builtin
            else (f"`{e.revision}`" if e.revision else "unpinned (no revision in models.yaml)")
        )
        quant = "none" if e.quantization is None else f"{e.quantization.method} ({e.quantization.source})"
        derived = f" · variant `{e.variant}` of `{e.derived_from}`" if e.derived_from else ""
        lines += [
            f"- Source: {source} · revision {revision}{derived}",
            f"- Family: {e.family or '-'} · parameters: {f'{e.params_b:g} B' if e.params_b else '-'} · "
            f"license: {e.license}{' (gated)' if e.gated else ''}",
            f"- Context: {e.context.served:,} tokens served of {e.context.native:,} native",
            f"- Quantization: {quant}",
            f"- Serving: chat template `{e.chat_template}`, generation config `{e.generation_config}`"
            + (f", vLLM args `{e.vllm_args}`" if e.vllm_args else ""),
        ]
        if e.notes:
            lines.append(f"- Notes: {e.notes}")
    elif isinstance(e, ApiEndpoint | MockEndpoint):
        lines.append(
            f"- {'Simulated ' if isinstance(e, MockEndpoint) else ''}API: {e.provider} model `{e.model}`"
        )
        if e.prices is not None:
            p = e.prices
            lines.append(
                f"- Prices per 1M tokens: input ${p.input_per_1m:g}, output ${p.output_per_1m:g}"
                + (f", cache read ${p.cached_input_per_1m:g}" if p.cached_input_per_1m is not None else "")
                + (f", cache write ${p.cache_write_per_1m:g}" if p.cache_write_per_1m is not None else "")
                + (f" (1 hour ${p.cache_write_1h_per_1m:g})" if p.cache_write_1h_per_1m is not None else "")
                + f" (as of {p.as_of}, {p.source})"
            )
        if e.notes:
            lines.append(f"- Notes: {e.notes}")
    return lines


def _serving(row: Row) -> list[str]:
    run = row.option.op.run or row.option.op.display
    if run is None:
        return []
    p = run.provenance
    lines = [f"- Engine: {p.engine.name or '-'} {p.engine.version or ''} (run `{run.id[:12]}`)".rstrip()]
    if p.engine_args:
        lines.append(f"- Engine arguments: `{p.engine_args}`")
    if row.hardware is not None:
        hw = row.hardware
        lines.append(
            f"- Hardware: {row.option.hardware} = {hw.label} at ${hw.usd_per_hour:g}/hour "
            f"({hw.provider or 'price'} as of {hw.as_of})"
        )
    return lines


def _speed_section(rows: Sequence[Row]) -> list[str]:
    lines = ["## Speed and cost at the operating point", ""]
    if not rows or not any(r.option.load_runs for r in rows):
        return [*lines, "n/a: no load run stored for this target."]
    units = money_units(rows)
    for row in rows:
        op = row.option.op
        run = op.run or op.display
        slo = ", ".join(f"{k}={v:g}" for k, v in (op.slo or {}).items())
        head = f"### {row.option.label}" if len(rows) > 1 else None
        if head:
            lines += [head, ""]
        lines += _serving(row)
        lines += [
            f"- Operating point: {op.note}" + (f" (SLO {slo})" if slo else ""),
            f"- TTFT p50 / p95: {show(row.ttft_p50, 'ms')} / {show(row.ttft_p95, 'ms')} ms; "
            f"TPOT p50: {show(row.tpot_p50, 'ms')} ms" + (f" (run `{run.id[:12]}`)" if run else ""),
            f"- Output tokens/s: {_cite(row.output_tok_s, 'number', op.run)}; goodput: "
            f"{show(row.goodput_rps)} req/s; SLO attainment: {show(row.attainment, 'pct')}",
            f"- Cost ({row.basis} basis): "
            f"{_money(row.usd_per_1m_output, units['usd_per_1m_output'], op.run)}, "
            f"{_money(row.usd_per_1m_blended, units['usd_per_1m_blended'])}, "
            f"{_money(row.usd_per_1k_requests, units['usd_per_1k_requests'])}, "
            f"{_money(row.usd_per_correct, units['usd_per_correct'])}"
            + (
                f" ({row.cache_not_reported}: billed as if nothing were cached)"
                if row.cache_not_reported
                else ""
            ),
        ]
        flags = sorted({f"{f.kind} (`{f.run_id[:8]}`)" for f in row.option.flags})
        if flags:
            lines.append(f"- Flags: {', '.join(flags)}")
        lines.append("")
    return lines


def _accuracy_section(row: Row | None, reader: StoreReader | None) -> list[str]:
    lines = ["## Accuracy", ""]
    run = None if row is None else row.option.accuracy_run
    if row is None or run is None or reader is None:
        reason = "no accuracy run stored for this target" if row is None else row.accuracy.reason
        return [*lines, f"n/a: {reason}.", "", "## Known failure modes", "", "n/a: no accuracy run."]
    suite = run.accuracy_profile.suite
    ci = row.ci95
    why = simulated(row.option)
    lines.append(
        f"Suite `{suite}` (run `{run.id[:12]}`, {row.n_items} items scored): "
        f"**{show(row.accuracy, 'pct')}**"
        + (f", 95% CI [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")
        + (f". **Simulated**: {why}, not a measurement of a model." if why else "")
    )
    lines += ["", "| area | accuracy | 95% CI | n | failed |", "|---|---|---|---|---|"]
    for area, a in sorted(row.areas.items()):
        ci_text = "-" if not a.ci95 else f"[{100 * a.ci95[0]:.1f}, {100 * a.ci95[1]:.1f}]"
        score = f"{100 * a.score:.1f}%" if a.n and a.score is not None else "n/a"
        lines.append(f"| {area} | {score} | {ci_text} | {a.n} | {a.failed} |")
    lines += ["", "## Known failure modes", ""]
    counts = reader.failure_counts(run.id)
    examples = reader.failed_items(run.id, EXAMPLES_PER_AREA)
    worst = sorted(counts.items(), key=lambda kv: -(kv[1][0] + kv[1][1]) / max(1, kv[1][2] + kv[1][1]))
    if not any(w + f for w, f, _ in counts.values()):
        return [*lines, f"No wrong or failed item in run `{run.id[:12]}`."]
    for area, (wrong, failed, scored) in worst:
        if not wrong and not failed:
            continue
        lines.append(
            f"- **{area}**: {wrong} of {scored} wrong" + (f", {failed} failed requests" if failed else "")
        )
        for ex in examples.get(area, []):
            if ex["status"] == "error":
                lines.append(f"  - `{ex['id']}`: request failed: {_short(ex['error'])}")
            else:
                said, wanted = _short(ex["output"]), _short(ex["reference"])
                lines.append(f"  - `{ex['id']}`: answered {said!r}, expected {wanted!r}")
    return lines


def build_card(card: CardInput, store_path: Path, pricing: Pricing, hardware: str | None = None) -> str:
    """The system card as Markdown."""
    runs: list[RunInfo] = []
    if store_path.is_file():
        with Store.open(store_path) as store:
            runs = [r for r in store.list_runs(limit=None) if target_name(r) == card.name]
    if hardware:
        pricing = Pricing(
            pricing.prices, pricing.providers, pricing.hardware, {**pricing.overrides, card.name: hardware}
        )
    lines = [f"# System card: {card.name}", ""]
    lines += [*_model_section(card), ""]
    if runs:
        with StoreReader(store_path) as reader:
            options, _, _ = group_options(runs, pricing)
            rows = [compute_row(o, pricing, reader) for o in options]
            lines += _speed_section(rows)
            lines += _accuracy_section(rows[0] if rows else None, reader)
    else:
        lines += _speed_section([]) + _accuracy_section(None, None)
    lines += ["", "## Intended use and limitations", ""]
    if card.intended_use:
        lines += [card.intended_use.strip(), "", f"(from {card.use_source})"]
    else:
        lines.append("Not stated: pass `--use FILE` with the intended use and the known limitations.")
    ids = ", ".join(f"`{r.id[:12]}`" for r in runs) or "none"
    lines += [
        "",
        "## Provenance",
        "",
        f"Built from the registry ({card.kind} entry `{card.name}`) and {len(runs)} stored runs: {ids}.",
    ]
    return "\n".join(lines).rstrip() + "\n"
