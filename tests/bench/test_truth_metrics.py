"""Caveats computed from records: coalesced reads, unknown counts in the table, an empty accuracy run."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from test_metrics import rec

from bench.accuracy.summary import summarize as summarize_items
from bench.cli._live import notes_lines, runs_table
from bench.loadgen.results import RunResult
from bench.metrics import summarize
from bench.records import ItemRecord, Status
from bench.runs import LoadResult
from bench.runs.targets import Target


def test_events_read_together_are_counted_and_flag_the_run_when_material() -> None:
    # 10 requests of 11 chunks; in half of them the last five chunks came in one socket read.
    records = []
    for i in range(10):
        chunks = [0.1 + 0.01 * k for k in range(11)]
        if i % 2:
            chunks[6:] = [chunks[6]] * 5
        records.append(rec(i, 0.0, chunks, 0.3, tokens=11))
    s = summarize(records)
    assert s.coalesced_gaps == 5 * 4 and s.itl_ms.count == 100
    assert s.coalesced_share == 0.2
    (flag,) = [f for f in s.flags if f.kind == "coalesced_reads"]
    assert "20% of ITL gaps are 0 ms" in flag.detail
    assert s.to_json()["coalesced"] == {"gaps": 20, "of": 100, "share": 0.2}
    clean = summarize([rec(i, 0.0, [0.1 + 0.01 * k for k in range(11)], 0.3, tokens=11) for i in range(10)])
    assert clean.coalesced_gaps == 0 and not any(f.kind == "coalesced_reads" for f in clean.flags)


def _result(summary_records: list[object]) -> LoadResult:
    s = summarize(summary_records)  # type: ignore[arg-type]
    run = RunResult("r1", "concurrent 4", {}, s, "complete", "complete", None, 0, 0, 4, 0.0)
    target = Target(name="t", kind="url", url="http://x/v1", api="openai-chat", model="m")
    return LoadResult(target=target, store_path=Path("x.sqlite"), runs=[run])


def test_the_table_says_unknown_for_unknown_throughput_and_shows_cut_off_and_errors() -> None:
    records = [
        rec(1, 0.0, [0.1, 0.2], 1.0, tokens=None, tokens_from="none"),
        rec(2, 0.0, [0.1, 0.2], 1.0, tokens=4),
        rec(3, 0.0, [], 0.5, tokens=None, status=Status.CANCELLED),
        rec(4, 0.0, [], 0.2, tokens=None, status=Status.ERROR, error_kind="http_429"),
    ]
    result = _result(records)
    console = Console(width=200, record=True)
    console.print(runs_table(result, 200))
    text = console.export_text()
    assert "unknown" in text and "cut_off" in text and "tokens_unknown" in text and "errors" in text
    notes = "\n".join(notes_lines(result))
    assert "1 × http_429" in notes and "lower bounds" in notes and "no output token count" in notes


def test_an_accuracy_run_with_nothing_scored_has_no_score() -> None:
    failed = [ItemRecord(item_id=f"i{k}", status="error", area="a", error_text="boom") for k in range(3)]
    out = summarize_items(failed, suite="s", target="t", run_id=None)
    assert out.score is None and out.ci95 is None and out.n == 0 and out.failed == 3
    assert out.areas["a"].score is None
