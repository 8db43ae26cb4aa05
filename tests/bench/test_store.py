"""The SQLite results store: exact round trips, run lifecycle, killed runs, migrations, bad files."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest
from documents import accuracy_profile, load_profile, provenance, target

from bench.errors import StoreError
from bench.metrics import summarize
from bench.records import RequestRecord, Status
from bench.store import MIGRATIONS, ItemRecord, Migration, ServerSample, Store, rebase

ORIGIN = 81234.567891  # an absolute perf_counter origin
REPO = Path(__file__).resolve().parents[2]
TARGET = target("mock")


def records() -> list[RequestRecord]:
    t = ORIGIN
    return [
        RequestRecord(
            request_id=0,
            status=Status.OK,
            scheduled_s=t + 0.1,
            start_s=t + 0.1003,
            end_s=t + 0.9,
            first_byte_s=t + 0.2,
            first_token_s=t + 0.21,
            first_content_s=t + 0.3,
            token_chunk_s=[t + 0.21, t + 0.25, t + 0.3, t + 0.35],
            input_tokens=128,
            output_tokens=7,
            reasoning_tokens=2,
            cached_input_tokens=64,
            cache_write_tokens=32,
            tokens_from="usage",
            http_status=200,
            output_text="héllo wörld ✓",
            reasoning_text="think",
            warmup=True,
        ),
        RequestRecord(
            request_id=1,
            status=Status.OK,
            scheduled_s=t + 1.0,
            start_s=t + 1.0,
            end_s=t + 1.5,
            first_token_s=t + 1.1,
            token_chunk_s=[t + 1.1, t + 1.2],
            output_tokens=2,
            tokens_from="tokenizer",
        ),
        RequestRecord(
            request_id=2,
            status=Status.ERROR,
            scheduled_s=t + 1.2,
            start_s=t + 1.21,
            end_s=t + 1.3,
            http_status=429,
            error_kind="http_429",
            error_text="rate limited",
        ),
        RequestRecord(
            request_id=3,
            status=Status.TIMEOUT,
            scheduled_s=t + 1.3,
            start_s=t + 1.3,
            end_s=t + 31.3,
            error_kind="timeout",
            error_text="no byte in 30 s",
        ),
    ]


def new_run(store: Store, **fields: str) -> str:
    return store.start_run(
        "load", TARGET.model_copy(update=fields), load_profile("concurrent", concurrency=4), provenance()
    )


def test_records_round_trip_exactly(tmp_path: Path) -> None:
    with Store.open(tmp_path / "r.sqlite") as store:
        run = new_run(store)
        for r in records():
            store.add_request(run, r, ORIGIN)
    with Store.open(tmp_path / "r.sqlite") as store:
        loaded = store.load_records(run)
    assert loaded == [rebase(r, ORIGIN) for r in records()]
    assert loaded[0].start_s == pytest.approx(0.1003)
    assert loaded[2].status is Status.ERROR and loaded[0].warmup is True


def test_summary_recomputed_from_stored_records(tmp_path: Path) -> None:
    with Store.open(tmp_path / "r.sqlite") as store:
        run = new_run(store)
        store.add_requests(run, records(), ORIGIN)
        loaded = store.load_records(run)
    before, after = summarize(records()).to_json(), summarize(loaded).to_json()
    assert after["requests"] == before["requests"]
    assert after["ttft_ms"]["p50"] == pytest.approx(before["ttft_ms"]["p50"], abs=1e-6)
    assert after["requests_per_s"] == pytest.approx(before["requests_per_s"], rel=1e-9)


def test_run_lifecycle_and_secret_redaction(tmp_path: Path) -> None:
    with Store.open(tmp_path / "r.sqlite") as store:
        # Secret-named keys are redacted wherever they appear in a stored document (here in the free-form
        # `extra` of the provenance, as a load spec with headers would put them).
        secrets = {"api_key": "sk-secret", "headers": {"Authorization": "Bearer sk-secret", "X-Trace": "1"}}
        target_ = TARGET.model_copy(update={"api_key_env": "OPENAI_API_KEY"})
        profile = load_profile("constant", rate=2.0)
        run = store.start_run("load", target_, profile, provenance(extra=secrets), group_id="g1")
        info = store.get_run(run)
        assert (info.status, info.kind, info.ended_at, info.group_id) == ("running", "load", None, "g1")
        assert info.started_at.endswith("Z")
        store.add_request(run, records()[1], ORIGIN)
        summary = summarize([rebase(records()[1], ORIGIN)])
        store.finish_run(run, "complete", summary)
        info = store.get_run(run[:10])
        text = (tmp_path / "r.sqlite").read_bytes() + (tmp_path / "r.sqlite-wal").read_bytes()
    assert info.status == "complete" and info.ended_at is not None
    assert info.summary == summary  # read back as the RunSummary it was
    assert info.profile == profile
    assert info.n_requests == 1 and info.n_items == 0
    assert info.target.api_key_env == "OPENAI_API_KEY"
    assert info.provenance.extra == {"api_key": "***", "headers": {"Authorization": "***", "X-Trace": "1"}}
    assert b"sk-secret" not in text


def test_list_runs_newest_first_by_kind(tmp_path: Path) -> None:
    with Store.open(tmp_path / "r.sqlite") as store:
        first = new_run(store)
        acc = store.start_run("accuracy", TARGET, accuracy_profile("builtin:tiny"), provenance())
        last = new_run(store)
        assert [r.id for r in store.list_runs()] == [last, acc, first]
        assert [r.id for r in store.list_runs("load")] == [last, first]
        assert [r.id for r in store.list_runs(limit=1)] == [last]
        with pytest.raises(ValueError):
            store.start_run("chat", TARGET, accuracy_profile(), provenance())  # type: ignore[arg-type]


def test_unknown_and_ambiguous_run_ids(tmp_path: Path) -> None:
    with Store.open(tmp_path / "r.sqlite") as store:
        ids = [new_run(store) for _ in range(17)]  # 17 ids, 16 hex digits: two share a first digit
        firsts = [i[0] for i in ids]
        shared = next(c for c in firsts if firsts.count(c) > 1)
        with pytest.raises(StoreError, match="ambiguous"):
            store.get_run(shared)
        with pytest.raises(StoreError, match="no run matches 'nothere'"):
            store.get_run("nothere")
        with pytest.raises(StoreError, match="no run"):
            store.finish_run("f" * 32, "complete", None)
        with pytest.raises(ValueError):
            store.finish_run(ids[0], "running", None)
        assert store.get_run(ids[3].upper()).id == ids[3]
        with pytest.raises(StoreError, match="FOREIGN KEY"):
            store.add_request("f" * 32, records()[1], ORIGIN)
        with pytest.raises(StoreError):
            store.add_requests("f" * 32, records(), ORIGIN)
        store.add_requests(ids[0], records(), ORIGIN)  # the failed batches left nothing behind
        assert store._conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 4


def test_items_and_server_samples_round_trip(tmp_path: Path) -> None:
    items = [
        ItemRecord(
            "q1",
            "ok",
            area="math",
            score=1.0,
            correct=True,
            output="4",
            reference="4",
            input_tokens=12,
            output_tokens=1,
            latency_ms=35.5,
            cost_usd=0.0001,
            judge={"verdict": "pass", "cost_usd": 0.01},
        ),
        ItemRecord("q2", "error", area="math", repeat=1, error_text="http_500", extra={"scorer": "exact"}),
        ItemRecord("q3", "ok", area="json", score=0.5, correct=None),
    ]
    samples = [
        ServerSample(ORIGIN + 1.0, "vllm:num_requests_running", {"model_name": "m"}, 3.0),
        ServerSample(ORIGIN + 2.0, "vllm:num_requests_running", {"model_name": "m"}, 5.0),
        ServerSample(ORIGIN + 1.5, "vllm:gpu_cache_usage_perc", {}, 0.25),
    ]
    with Store.open(tmp_path / "r.sqlite") as store:
        run = store.start_run("accuracy", TARGET, accuracy_profile(), provenance())
        store.add_item(run, items[0])
        store.add_items(run, items[1:])
        store.add_server_samples(run, samples, ORIGIN)
        assert store.load_items(run) == items
        got = store.load_server_samples(run)
        assert [s.t_s for s in got] == pytest.approx([1.0, 1.5, 2.0])
        assert [(s.name, s.value) for s in got] == [
            ("vllm:num_requests_running", 3.0),
            ("vllm:gpu_cache_usage_perc", 0.25),
            ("vllm:num_requests_running", 5.0),
        ]
        assert got[0].labels == {"model_name": "m"}
        assert len(store.load_server_samples(run, "vllm:gpu_cache_usage_perc")) == 1
        assert store.get_run(run).n_items == 3
        store.delete_run(run)
        assert store.list_runs() == []
        assert store._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0


def test_batched_commits_are_flushed_on_flush_and_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"

    def stored() -> int:
        with closing(sqlite3.connect(path)) as other:
            return int(other.execute("SELECT COUNT(*) FROM requests").fetchone()[0])

    with pytest.raises(KeyboardInterrupt), Store.open(path, commit_interval_s=3600) as store:
        run = new_run(store)
        store.add_requests(run, records(), ORIGIN)
        assert stored() == 0  # still in the open transaction
        store.flush()
        assert stored() == 4
        store.add_request(run, records()[1], ORIGIN)
        raise KeyboardInterrupt
    assert stored() == 5  # closing on Ctrl-C committed the last record


def test_records_are_committed_as_they_arrive(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with Store.open(path) as store:
        run = new_run(store)
        store.add_request(run, records()[0], ORIGIN)
        with closing(sqlite3.connect(path)) as other:  # another reader sees it before any flush or close
            assert other.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_killed_run_is_reported_partial_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    script = textwrap.dedent(
        f"""
        import os, signal
        from bench.records import RequestRecord, Status
        from bench.store import Store
        store = Store.open({str(path)!r})
        import sys
        sys.path.insert(0, "tests")
        from documents import load_profile, provenance, target
        run = store.start_run("load", target("x"), load_profile(), provenance())
        for i in range(3):
            store.add_request(run, RequestRecord(i, Status.OK, 1.0 + i, 1.0 + i, 2.0 + i), 1.0)
        print(run, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -9, done.stderr
    run = done.stdout.strip()
    with Store.open(path) as store:
        info = store.get_run(run)
        assert (info.status, info.stored_status) == ("partial", "running")
        assert [r.status for r in store.list_runs()] == ["partial"]
        assert [r.start_s for r in store.load_records(run)] == [0.0, 1.0, 2.0]
        store.finish_run(run, "partial", None, "killed")
        assert store.get_run(run).stored_status == "partial"
        live = new_run(store)  # this process is alive: its run stays 'running'
        assert store.get_run(live).status == "running"


# migrations -----------------------------------------------------------------------------------------


def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with Store.open(path) as store:
        assert store.applied == [m.name for m in MIGRATIONS]
    with Store.open(path) as store:
        assert store.applied == []
        names = [r[0] for r in store._conn.execute("SELECT name FROM _migrations")]
    assert names == [m.name for m in MIGRATIONS]


def test_new_migration_is_applied_to_an_old_store(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with Store.open(path) as store:
        run = new_run(store)
    newer = (*MIGRATIONS, Migration("m999_tags", ("ALTER TABLE runs ADD COLUMN tags TEXT",)))
    with Store.open(path, migrations=newer) as store:
        assert store.applied == ["m999_tags"]
        assert store.get_run(run).id == run  # old data kept
        store._conn.execute("UPDATE runs SET tags = 'a'")
    with Store.open(path, migrations=newer) as store:
        assert store.applied == []
    # the older code refuses a store that a newer llmbench migrated
    with pytest.raises(StoreError, match="newer llmbench") as info:
        Store.open(path)
    assert str(path) in str(info.value)


def test_failed_migration_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    bad = (*MIGRATIONS, Migration("m999_bad", ("CREATE TABLE t (x)", "NOT SQL")))
    with pytest.raises(StoreError):
        Store.open(path, migrations=bad)
    with Store.open(path) as store:
        tables = {r[0] for r in store._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "t" not in tables


def test_shipped_migrations_are_never_edited() -> None:
    # Add a new migration instead of editing one; then add its digest here.
    shipped = {
        "m001_initial": "b6f29ad9",
        "m002_sweeps_documents": "2beed59e",
        "m003_cache_writes": "c98c49bd",
        "m004_text_bytes": "cf5c7ab1",
        "m005_session_turns": "a05ebaf6",
    }
    for m in MIGRATIONS:
        digest = hashlib.sha256("\n".join(m.statements).encode()).hexdigest()[:8]
        assert shipped.get(m.name) == digest, f"{m.name} changed or is not pinned (digest {digest})"


# bad files ------------------------------------------------------------------------------------------


def test_not_a_database_is_a_store_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"this is a text file, not sqlite\n" * 100)
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert str(path) in str(info.value) and "another path" in str(info.value)


def test_directory_and_unwritable_paths_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        Store.open(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        Store.open(blocker / "sub" / "r.sqlite")  # parent is a file
    assert str(blocker) in str(info.value)


def test_creates_missing_parent_folders(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a" / "b" / "results.sqlite") as store:
        new_run(store)
    assert (tmp_path / "a" / "b" / "results.sqlite").exists()
