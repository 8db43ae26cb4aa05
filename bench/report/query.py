"""Read what a report needs from the results store: runs by selection, and aggregates computed in SQL.

Runs come through `Store` (its id resolution and status rules); per-request and per-item figures are
aggregated by SQLite on a second, read-only connection to the same file, so a report over a million stored
requests never builds a million Python objects: sums and histograms are GROUP BYs, and only samples (ITL
gaps of a few hundred requests, the verdicts of the chosen accuracy runs) come back as rows.
"""

from __future__ import annotations

import difflib
import itertools
import sqlite3
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cost import Usage
from bench.errors import StoreError, UnknownNameError
from bench.records import REFERENCE_BYTES_PER_TOKEN, ItemRecord
from bench.store import RunInfo, Store

_MEASURED_OK = "run_id = ? AND status = 'ok' AND warmup = 0"


def select_runs(
    store: Store, run_ids: Sequence[str] = (), *, last: int | None = None, sweep: str | None = None
) -> list[RunInfo]:
    """The runs a report covers: the given ids, the last N, one sweep's, or (by default) every run."""
    if run_ids:
        return [resolve_run(store, r) for r in dict.fromkeys(run_ids)]
    if sweep is not None:
        return store.list_runs(sweep_id=store.get_sweep(sweep).id, limit=None)
    return store.list_runs(limit=last)


def resolve_run(store: Store, run_id: str) -> RunInfo:
    """One run by id or prefix; an unknown id raises UnknownNameError listing the closest stored ids."""
    try:
        return store.get_run(run_id)
    except StoreError as exc:
        if "ambiguous" in str(exc):
            raise
        ids = [r.id for r in store.list_runs(limit=None)]
        key = run_id.strip().lower()
        prefixes = {i[: max(len(key), 8)]: i for i in ids}
        close = difflib.get_close_matches(key, list(prefixes), n=4, cutoff=0.5)
        error = UnknownNameError(run_id, "run id", [prefixes[c][:12] for c in close])
        if not close:
            error.fix = (
                f"no stored run id is close; see `llmbench runs list` ({len(ids)} runs in {store.path})"
            )
        raise error from exc


class StoreReader:
    """A read-only connection for aggregates over the requests and items tables."""

    def __init__(self, path: Path) -> None:
        try:
            self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read results store {path}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read results store: {exc}") from exc

    # load runs ------------------------------------------------------------------------------------

    def request_usage(self, run_id: str) -> tuple[Usage, int]:
        """Billed usage summed over a run's measured successful requests, and their count: cache reads and
        cache writes (both parts of input_tokens) apart, reasoning inside output (bench.cost.from_record)."""
        row = self._all(
            "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),"
            " COALESCE(SUM(MIN(COALESCE(cached_input_tokens, 0), COALESCE(input_tokens, 0))), 0),"
            " COALESCE(SUM(MIN(COALESCE(cache_write_tokens, 0), COALESCE(input_tokens, 0)"
            " - MIN(COALESCE(cached_input_tokens, 0), COALESCE(input_tokens, 0)))), 0),"
            f" COALESCE(SUM(reasoning_tokens), 0) FROM requests WHERE {_MEASURED_OK}",
            (run_id,),
        )[0]
        n, inp, out, cached, written, reasoning = (int(v) for v in row)
        usage = Usage(
            fresh_input=inp - cached - written,
            cache_read=cached,
            cache_write=written,
            output=out,
            reasoning=reasoning,
        )
        return usage, n

    def cache_counts(self, run_id: str) -> tuple[int, int, int, int, int]:
        """Over a run's measured successful requests: (requests, those whose server reported cached prompt
        tokens, their prompt tokens, their cached prompt tokens, cache writes of all), tokens as reported."""
        row = self._all(
            "SELECT COUNT(*), COUNT(cached_input_tokens),"
            " COALESCE(SUM(CASE WHEN cached_input_tokens IS NOT NULL THEN input_tokens END), 0),"
            " COALESCE(SUM(MIN(cached_input_tokens, COALESCE(input_tokens, 0))), 0),"
            f" COALESCE(SUM(cache_write_tokens), 0) FROM requests WHERE {_MEASURED_OK}",
            (run_id,),
        )[0]
        n, reported, prompt, cached, written = (int(v) for v in row)
        return n, reported, prompt, cached, written

    def ttft_histogram(self, run_id: str, lo_ms: float, hi_ms: float, bins: int) -> list[int]:
        """Counts of TTFT (ms) in `bins` equal bins over [lo, hi] for measured successful requests."""
        width = (hi_ms - lo_ms) / bins if hi_ms > lo_ms else 1.0
        rows = self._all(
            "SELECT MIN(?, MAX(0, CAST(((first_token_s - start_s) * 1000.0 - ?) / ? AS INTEGER))) AS b,"
            f" COUNT(*) FROM requests WHERE {_MEASURED_OK} AND first_token_s IS NOT NULL GROUP BY b",
            (bins - 1, lo_ms, width, run_id),
        )
        counts = [0] * bins
        for b, n in rows:
            counts[int(b)] += int(n)
        return counts

    def latencies_ms(self, run_id: str, metric: str) -> array[float]:
        """One latency per measured successful request: 'ttft', 'e2e' or 'tpot' (ms), in stored order."""
        expr = {
            "ttft": "(first_token_s - start_s) * 1000.0",
            "e2e": "(end_s - start_s) * 1000.0",
            "tpot": "(end_s - first_token_s) * 1000.0 / (output_tokens - 1)",
        }[metric]
        extra = {"ttft": " AND first_token_s IS NOT NULL", "e2e": ""}.get(
            metric, " AND first_token_s IS NOT NULL AND output_tokens > 1"
        )
        cur = self._conn.execute(f"SELECT {expr} FROM requests WHERE {_MEASURED_OK}{extra}", (run_id,))
        out = array("d")
        while rows := cur.fetchmany(65536):
            out.extend(r[0] for r in rows)
        return out

    def itl_sample_ms(self, run_id: str, max_requests: int = 400) -> tuple[array[float], int]:
        """Pooled inter-token gaps (ms) of up to `max_requests` measured requests spread over the run."""
        total = int(self._all(f"SELECT COUNT(*) FROM requests WHERE {_MEASURED_OK}", (run_id,))[0][0])
        step = max(1, total // max_requests)
        rows = self._all(
            "SELECT token_chunk_s FROM (SELECT token_chunk_s, ROW_NUMBER() OVER (ORDER BY rowid) AS k"
            f" FROM requests WHERE {_MEASURED_OK}) WHERE k % ? = 0 LIMIT ?",
            (run_id, step, max_requests),
        )
        gaps = array("d")
        for (blob,) in rows:
            times = array("d")
            times.frombytes(blob)
            gaps.extend((b - a) * 1000.0 for a, b in itertools.pairwise(times))
        return gaps, len(rows)

    # accuracy runs --------------------------------------------------------------------------------

    def verdicts(self, run_id: str) -> list[ItemRecord]:
        """The scored items of an accuracy run, with only what a paired comparison reads."""
        rows = self._all(
            "SELECT item_id, status, area, repeat, correct FROM items WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        )
        return [
            ItemRecord(item_id=i, status=s, area=a, repeat=r, correct=None if c is None else bool(c))
            for i, s, a, r, c in rows
        ]

    def item_rows(self, run_id: str) -> list[tuple[Any, ...]]:
        """(item_id, repeat, correct, input, output, cache reads, cache writes) of the items scored."""
        return self._all(
            "SELECT item_id, repeat, correct, input_tokens, output_tokens,"
            " json_extract(extra, '$.cached_input_tokens'), json_extract(extra, '$.cache_write_tokens')"
            " FROM items WHERE run_id = ? AND status = 'ok' AND correct IS NOT NULL ORDER BY rowid",
            (run_id,),
        )

    def item_usage(self, run_id: str) -> tuple[Usage, int, bool]:
        """Billed usage summed over an accuracy run's answered items, their count, and whether every
        answered item had a token count."""
        row = self._all(
            "SELECT COUNT(*), SUM(input_tokens IS NULL OR output_tokens IS NULL),"
            " COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),"
            " COALESCE(SUM(json_extract(extra, '$.cached_input_tokens')), 0),"
            " COALESCE(SUM(json_extract(extra, '$.cache_write_tokens')), 0)"
            " FROM items WHERE run_id = ? AND status = 'ok'",
            (run_id,),
        )[0]
        n, missing, inp, out, cached, written = (int(v or 0) for v in row)
        cached = min(cached, inp)
        written = min(written, inp - cached)
        usage = Usage(fresh_input=inp - cached - written, cache_read=cached, cache_write=written, output=out)
        return usage, n, n > 0 and missing == 0

    def item_reference_tokens(self, run_id: str) -> tuple[int, int, bool]:
        """An accuracy run's answered items' prompt and answer text in reference tokens (⌈bytes ÷ 4⌉ each,
        bench.records.reference_tokens), and whether every answered item recorded its text's bytes."""
        row = self._all(
            "SELECT COUNT(*), SUM(json_extract(extra, '$.input_bytes') IS NULL"
            " OR json_extract(extra, '$.output_bytes') IS NULL),"
            f" COALESCE(SUM((json_extract(extra, '$.input_bytes') + {REFERENCE_BYTES_PER_TOKEN - 1})"
            f" / {REFERENCE_BYTES_PER_TOKEN}), 0),"
            f" COALESCE(SUM((json_extract(extra, '$.output_bytes') + {REFERENCE_BYTES_PER_TOKEN - 1})"
            f" / {REFERENCE_BYTES_PER_TOKEN}), 0)"
            " FROM items WHERE run_id = ? AND status = 'ok'",
            (run_id,),
        )[0]
        n, missing, ref_in, ref_out = (int(v or 0) for v in row)
        return ref_in, ref_out, n > 0 and missing == 0

    def failed_items(self, run_id: str, limit: int = 3) -> dict[str, list[dict[str, Any]]]:
        """Up to `limit` wrong or failed items per area: id, output, reference, error."""
        rows = self._all(
            "SELECT area, item_id, output, reference, error_text, status FROM ("
            " SELECT *, ROW_NUMBER() OVER (PARTITION BY area ORDER BY rowid) AS k FROM items"
            " WHERE run_id = ? AND (status = 'error' OR correct = 0)) WHERE k <= ? ORDER BY area, k",
            (run_id, limit),
        )
        out: dict[str, list[dict[str, Any]]] = {}
        for area, item_id, output, reference, error, status in rows:
            out.setdefault(area or "-", []).append(
                {"id": item_id, "output": output, "reference": reference, "error": error, "status": status}
            )
        return out

    def failure_counts(self, run_id: str) -> dict[str, tuple[int, int, int]]:
        """Per area: (wrong, failed, scored) item counts."""
        rows = self._all(
            "SELECT COALESCE(area, '-'), SUM(correct = 0), SUM(status = 'error'),"
            " SUM(correct IS NOT NULL) FROM items WHERE run_id = ? GROUP BY 1 ORDER BY 1",
            (run_id,),
        )
        return {a: (int(w or 0), int(f or 0), int(n or 0)) for a, w, f, n in rows}
