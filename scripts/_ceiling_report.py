"""The tables scripts/bench-client-ceiling prints: per-client figures, ratios, equal work, the targets.

Every figure comes from the runs' dicts (the server's counters over each run's steady part, the client
tree's CPU); the median of the repeats is shown. Stdlib only, like the script.
"""

from __future__ import annotations

import statistics
from typing import Any

from _ceiling_clients import Workload

STEADY = (0.10, 0.90)  # the share of a run's requests between which its rate is measured
PER_CORE_TARGETS = {"vllm": 3.0, "aiperf": 1.0}  # llmbench's req/s per client core, as a multiple of theirs
FLOOR_TARGET = 1.5  # the llmbench CLI's CPU per request, at most this multiple of the floor's
ANCHORS = ("vllm", "guidellm", "aiperf")
EQUAL_WORK = 0.01  # prompt tokens per request may differ by this share between clients


# --- report -------------------------------------------------------------------------------------------

# (header, width, format): the table's columns after the client name.
COLUMNS = (
    ("req/s", 8, ",.0f"),
    ("out tok/s", 11, ",.0f"),
    ("own req/s", 11, ",.0f"),
    ("in/out tok", 12, ""),
    ("CPU ms/req", 12, ".2f"),
    ("cores", 7, ".2f"),
    ("req/s/core", 11, ",.0f"),
    ("srv cores", 10, ".2f"),
    ("start s", 9, ".1f"),
    ("x vLLM", 8, ".2f"),
    ("x GuideLLM", 11, ".2f"),
    ("x AIPerf", 9, ".2f"),
    ("CPU x floor", 12, ".2f"),
)


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if isinstance(r.get(key), float | int)]
    return statistics.median(values) if values else None


def _reported(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r["reported"][key] for r in runs if "reported" in r]
    return statistics.median(values) if values else None


def _row(name: str, rs: list[dict[str, Any]], med: dict[str, float | None], floor_cpu: float | None) -> str:
    mine = med[name]
    tokens_in, tokens_out = _median(rs, "prompt_per_req"), _median(rs, "out_per_req")
    values: list[float | str | None] = [
        mine,
        _median(rs, "tok_s"),
        _reported(rs, "req_s"),
        f"{tokens_in:.0f}/{tokens_out:.0f}" if tokens_in is not None and tokens_out is not None else None,
        _median(rs, "cpu_ms_per_req"),
        _median(rs, "client_cores"),
        _median(rs, "per_core"),
        _median(rs, "server_cores"),
        _median(rs, "startup_s"),
    ]
    for anchor in ANCHORS:
        base = med.get(anchor)
        values.append(mine / base if mine and base else None)
    cpu = _median(rs, "cpu_ms_per_req")
    values.append(cpu / floor_cpu if cpu and floor_cpu else None)
    line = f"{name:<13}"
    for (_, width, fmt), value in zip(COLUMNS, values, strict=True):
        text = "-" if value is None else value if isinstance(value, str) else format(value, fmt)
        line += f"{text:>{width}}"
    fails = sum(1 for r in rs if r.get("rc") != 0 or "error" in r)
    return line + (f"  ({fails} of {len(rs)} runs failed)" if fails else "")


def report(results: list[dict[str, Any]], names: list[str], w: Workload, repeats: int) -> bool:
    """Print one table per concurrency and the target verdicts; True when the llmbench CLI met them all."""
    met = True
    for conc in sorted({r["concurrency"] for r in results}):
        rows = {n: [r for r in results if r["client"] == n and r["concurrency"] == conc] for n in names}
        med = {n: _median(rs, "req_s") for n, rs in rows.items()}
        cap = {n: _median(rs, "per_core") for n, rs in rows.items()}
        floor_cpu = _median(rows.get("floor", []), "cpu_ms_per_req")
        print()
        print(
            f"concurrency {conc}: {w.requests} requests x {w.input_tokens} in / {w.output_tokens} out, "
            f"median of {repeats}; rates counted by the server over {STEADY[0]:.0%}-{STEADY[1]:.0%} of "
            "each run"
        )
        print(f"{'client':<13}" + "".join(f"{h:>{width}}" for h, width, _ in COLUMNS))
        for name in names:
            print(_row(name, rows[name], med, floor_cpu))
        per_run = "  ".join(
            f"{n}: " + "/".join(f"{r['req_s']:.0f}" if "req_s" in r else "x" for r in rows[n]) for n in names
        )
        print(f"each run (req/s)  {per_run}")
        print(equal_work(rows))
        for name in ("llmbench", "llmbench-lib"):
            if med.get(name) is None:
                continue
            met &= verdicts(name, med, cap, floor_cpu, _median(rows[name], "cpu_ms_per_req"))
    return met


def equal_work(rows: dict[str, list[dict[str, Any]]]) -> str:
    """Whether the server counted the same prompt and output tokens per request for every client."""
    counted = {n: (_median(rs, "prompt_per_req"), _median(rs, "out_per_req")) for n, rs in rows.items()}
    known = {n: c for n, c in counted.items() if c[0] is not None and c[1] is not None}
    if not known:
        return "equal work: unknown (no steady window)"
    shown = ", ".join(f"{n} {p:.1f}/{o:.1f}" for n, (p, o) in known.items())
    prompts = [p for p, _ in known.values() if p is not None]
    outs = [o for _, o in known.values() if o is not None]
    same = max(prompts) <= min(prompts) * (1 + EQUAL_WORK) and max(outs) <= min(outs) * (1 + EQUAL_WORK)
    verdict = "equal work" if same else "UNEQUAL WORK: the ratios compare unlike requests"
    return f"{verdict} (prompt/output tokens per request as the server counted them: {shown})"


def verdicts(
    name: str,
    med: dict[str, float | None],
    cap: dict[str, float | None],
    floor_cpu: float | None,
    own_cpu: float | None,
) -> bool:
    """Print llmbench's ratios to each anchor (req/s and per client core) and the targets; True if met."""
    met = True
    mine, own_cap = med[name], cap.get(name)
    for anchor in ANCHORS:
        base, base_cap = med.get(anchor), cap.get(anchor)
        if not base or not mine:
            continue
        line = f"ratio   {name} vs {anchor}: {mine / base:.2f}x req/s"
        if base_cap and own_cap:
            per_core = own_cap / base_cap
            line += f", {per_core:.2f}x per client core"
            want = PER_CORE_TARGETS.get(anchor)
            if want is not None:
                ok = per_core >= want if want > 1 else per_core > want
                line += f" (want {'>=' if want > 1 else '>'} {want:g}x) {'MET' if ok else 'NOT MET'}"
                met &= ok or name != "llmbench"
        print(line)
    if floor_cpu and own_cpu:
        times = own_cpu / floor_cpu
        ok = times <= FLOOR_TARGET
        print(
            f"floor   {name}: {own_cpu:.3f} ms CPU per request = {times:.2f}x the floor's {floor_cpu:.3f} ms "
            f"(want <= {FLOOR_TARGET}x) {'MET' if ok else 'NOT MET'}"
        )
        met &= ok or name != "llmbench"
    return met
