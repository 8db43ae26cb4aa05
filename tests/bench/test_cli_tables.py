"""Terminal tables hide nothing: no cell cut to an ellipsis, left-out columns named, a cut list says so, rates
with units, and flags named by their stored kind (as the report names them)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from documents import load_profile, provenance, target
from rich.console import Console

from bench.cli._context import AppContext
from bench.cli._live import flag_marks, runs_table
from bench.cli.compare import delta_cells
from bench.cli.runs import runs
from bench.loadgen.results import RunResult
from bench.metrics import summarize
from bench.records import RequestRecord, Status
from bench.report.compare import Delta
from bench.runs import LoadResult
from bench.runs.targets import Target
from bench.settings import Settings
from bench.store import Store

LONG_LABEL = "goodput @ concurrent 64 on tiny-skills:w8a8 with a prompt file of 2,048-token questions"


def _result() -> LoadResult:
    records = [
        RequestRecord(i, Status.OK, 0.0, i * 0.1, i * 0.1 + 0.05, first_token_s=i * 0.1 + 0.01,
                      token_chunk_s=[i * 0.1 + 0.01, i * 0.1 + 0.05], output_tokens=2)
        for i in range(5)
    ]  # fmt: skip
    summary = summarize(records, fixed_length=False)
    run = RunResult("abcdef0123456789", LONG_LABEL, {"kind": "goodput"}, summary, "complete", "complete",
                    None, 5, 0, 2, 0.1)  # fmt: skip
    target = Target(name="t", kind="url", url="http://x/v1", api="openai-chat", model="m")
    return LoadResult(target=target, store_path=Path("s.sqlite"), runs=[run])


def _render(renderable: object, width: int) -> str:
    console = Console(width=width, record=True)
    console.print(renderable)
    return console.export_text()


def test_the_load_table_names_the_columns_it_leaves_out() -> None:
    # Before: at 100 columns "TTFT p99", "e2e p50" and "run" vanished without a word.
    text = _render(runs_table(_result(), 100), 100)
    assert "left out at 100 columns: TTFT p99, e2e p50, run" in " ".join(text.split())
    wide = _render(runs_table(_result(), 160), 160)
    assert "left out" not in wide and "abcdef01" in wide


def test_a_long_profile_label_folds_instead_of_being_cut() -> None:
    # Before: the profile column was no_wrap, so at 80 columns the label ended in "…".
    text = _render(runs_table(_result(), 80), 80)
    assert "…" not in text
    assert "2,048-token" in text and "questions" in text  # the end of the label is there


def test_flags_are_named_by_their_stored_kind() -> None:
    # Before: the terminal said "len-not-fixed" where the report and the JSON say "unfixed_length".
    marks = flag_marks(_result().runs[0]).split(" · ")
    assert marks[:2] == ["complete", "unfixed_length"] and "len-not-fixed" not in marks


def _store_with_runs(path: Path, n: int) -> None:
    names = ["claude-opus-4-1-20250805", "claude-opus-4-5-20251101"]
    with Store.open(path) as store:
        for i in range(n):
            tgt = target(names[i % 2], "api", api="anthropic", url="https://api.anthropic.com/v1")
            profile = load_profile("concurrent", concurrency=i + 1, label=f"concurrent {i + 1}")
            run_id = store.start_run("load", tgt, profile, provenance())
            store.finish_run(run_id, "complete", None)


def test_runs_list_says_when_it_cuts_and_never_cuts_a_name_in_a_pipe(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "r.sqlite"
    _store_with_runs(path, 25)
    app = AppContext(settings)
    shown = CliRunner().invoke(runs, ["list", "--store", str(path)], obj=app, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    # Before: 20 rows and nothing said; both names read "claude-o…" at 80 columns.
    assert "showing the newest 20 of 25 runs; --limit N or --all for more" in shown.output
    assert "claude-opus-4-1-20250805" in shown.output and "claude-opus-4-5-20251101" in shown.output
    assert "…" not in shown.output
    every = CliRunner().invoke(runs, ["list", "--all", "--store", str(path)], obj=app, catch_exceptions=False)
    assert every.output.count("claude-opus-4-") == 25 and "showing" not in every.output


def test_compare_prints_rates_and_money_with_units() -> None:
    # Before: "9.66" and "10.2" (unit "/s" dropped), "$0.000257" and "$0.0144" in one row, "+0.54".
    rate = Delta("goodput_rps", "req/s", 9.65987, 10.2, 10.2 - 9.65987, 10.2 / 9.65987 - 1)
    assert delta_cells(rate)[:4] == ["goodput_rps", "9.66 req/s", "10.2 req/s", "+0.540 req/s (+5.6%)"]
    cost = Delta("cost_per_correct", "usd", 2.57e-4, 0.0144, 0.0144 - 2.57e-4, 0.0144 / 2.57e-4 - 1,
                 ci=(0.01, 0.02), ci_rel=(1.0, 2.0), significant=True)  # fmt: skip
    cells = delta_cells(cost)
    assert cells[1:3] == ["$0.257 /1k correct", "$14.4 /1k correct"]
    assert (
        cells[3].startswith("+$14.1 /1k correct") and cells[4] == "[+$10.0 /1k correct, +$20.0 /1k correct]"
    )
    latency = Delta("ttft_p95", "ms", 359.65, 500.0, 140.35, 0.39, ci=(-10.0, 300.0), significant=False)
    assert delta_cells(latency)[1:5] == ["360 ms", "500 ms", "+140 ms (+39.0%)", "[-10.0 ms, +300 ms]"]
    accuracy = Delta("accuracy", "pts", 72.0, 70.8, -1.2, None, ci=(-2.5, 0.0), p_value=0.06)
    assert delta_cells(accuracy)[1:4] == ["72.0%", "70.8%", "-1.20 pts"]
