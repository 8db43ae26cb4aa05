"""The CLI tried as a new user would: every mistake and every broken server gets the right exit code and a
message that names the file, key or flag and the fix; no traceback; nothing measured is lost; no key leaks.

In-process (the console script's own `main`) against real servers on loopback: the mock, a plain
`python -m http.server`, and a server that accepts connections and never answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from documents import accuracy_profile, load_profile, point, provenance, target
from pydantic import SecretStr
from test_serving import run_cli

from bench.store import Store
from serve.mock.server import running_mock
from serve.specs import LatencyModel, MockSpec

KEY = "s3cret-key-value-42"
OVERLAY = """\
schema: llmbench.models/1
mock:
  broken-mock:
    provider: openai
    model: broken
    latency: {ttft_ms: 1, itl_ms: 1, error_rate_500: 1.0}
  flaky-mock:
    provider: openai
    model: flaky
    latency: {ttft_ms: 1, itl_ms: 1, error_rate_500: 0.5, seed: 3}
"""


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(OVERLAY, encoding="utf-8")
    return path


@pytest.fixture
def store_path(hermetic_env: Path) -> Path:
    return hermetic_env / "results.sqlite"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run_cli(list(argv))
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    return code, out.out, out.err


# --- 1. accuracy against a server that answers 500 ------------------------------------------------------


def test_accuracy_whose_every_item_failed_is_a_failed_run_with_the_breakdown(
    models_file: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        capsys, "--models-file", str(models_file), "bench", "accuracy",
        "--target", "broken-mock", "--suite", "builtin:tiny-skills", "--limit", "1",
    )  # fmt: skip
    assert code == 1, err
    assert "4 × http_500 HTTP 500: server_error: The server had an error" in out
    assert "broken-mock on builtin:tiny-skills: every item failed; see the error breakdown" in err
    assert "(marked failed)" in err
    with Store.open(store_path, create=False) as store:
        (run,) = store.list_runs("accuracy")
        assert run.status == "failed" and run.error is not None
        assert run.error.startswith("4 of 4 items failed; first: http_500: server_error:")
        assert len(store.load_items(run.id)) == 4  # every item kept
        assert run.accuracy_summary is not None and run.accuracy_summary.error_details[0].http_status == 500


def test_accuracy_with_some_failed_items_says_how_many_and_the_first_error(
    models_file: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        capsys, "--models-file", str(models_file), "bench", "accuracy",
        "--target", "flaky-mock", "--suite", "builtin:tiny-skills", "--limit", "2",
    )  # fmt: skip
    assert code == 0, err
    match = re.search(r"warning: (\d+) of 8 items failed and are counted apart", err)
    assert match and 0 < int(match[1]) < 8, err
    assert "first error: http_500: server_error:" in err
    assert f"{match[1]} × http_500 HTTP 500" in out
    with Store.open(store_path, create=False) as store:
        (run,) = store.list_runs("accuracy")
        assert run.status == "complete"


# --- 3. sweep files validated whole ---------------------------------------------------------------------

BAD_SWEEP = """\
schema: llmbench.sweep/1
name: bad
targets: [{name: mock-mini}]
loads:
  - {profile: concurrent, concurrency: -4, requests: 4}
  - {profile: constant, rate: 0, requests: 4}
  - {profile: synchronous, concurrency: 4, requests: 4}
  - {profile: concurrent, concurrency: 2, input_tokens: "normal:5"}
suites:
  - {suite: "builtin:tiny-skils", limit: 2}
  - {suite: "lm-eval:gsm8k,not a task"}
  - {suite: "builtin:tiny-skills", judge: no-such-judge}
"""


def test_a_sweep_file_lists_every_error_with_file_key_and_fix_before_anything_is_served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(BAD_SWEEP, encoding="utf-8")
    code, out, err = cli(capsys, "sweep", str(path), "--dry-run")
    assert code == 2, out + err
    assert out == ""  # no estimate of a plan that cannot run
    assert "error: 6 problems:" in err
    for line in (
        f"{path}: loads[0].concurrency: must be ≥ 1 (got -4)",
        f"{path}: loads[1].rate: must be > 0 requests/s (got 0.0)",
        f"{path}: loads[2].concurrency: concurrency does not apply to the synchronous profile",
        f"{path}: loads[3].input_tokens: ",
        f"{path}: suites[0].suite: no builtin suite 'tiny-skils'; did you mean 'builtin:tiny-skills'?",
        f"{path}: suites[1].suite: 'not a task' is not an lm-eval task name",
    ):
        assert line in err, line
    assert "fix: fix the sweep file (every problem is listed)" in err
    # Once the file is whole, the registry names are checked, every one listed too.
    path.write_text(
        BAD_SWEEP.split("loads:")[0]
        + "loads: [{profile: concurrent, concurrency: 2, requests: 4}]\n"
        + "suites: [{suite: 'builtin:tiny-skills', judge: no-such-judge}]\n",
        encoding="utf-8",
    )
    code, out, err = cli(capsys, "sweep", str(path), "--dry-run")
    assert code == 2 and f"{path}: suites[0].judge: unknown registry entry 'no-such-judge'" in err


# --- 4. tracebacks instead of messages -----------------------------------------------------------------


@pytest.mark.parametrize("command", [["report", "--format", "md"], ["runs", "export", "--csv"]])
def test_an_unwritable_out_is_refused_with_the_path_and_the_fix(
    tmp_path: Path, store_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    Store.open(store_path).close()
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    code, _out, err = cli(capsys, *command, "--out", str(blocker / "out.txt"))
    assert code == 2, err
    assert f"invalid value for --out: cannot write {blocker / 'out.txt'}: {blocker} is a file" in err
    assert "give --out a file in a folder you can write to" in err


def latin1(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("latin-1"))
    return path


def test_a_suite_overlay_or_sweep_that_is_not_utf8_is_named_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = latin1(tmp_path / "s.jsonl", '{"id": "x", "area": "a", "prompt": "caf\xe9", "reference": "1"}\n')
    code, _, err = cli(capsys, "bench", "accuracy", "--target", "mock-mini", "--suite", str(suite))
    assert code == 2 and f"{suite}: line 1, column 40: the suite is not UTF-8 text (byte 0xe9)" in err
    assert f"fix: save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {suite}" in err
    overlay = latin1(tmp_path / "m.yaml", "schema: llmbench.models/1\n# r\xe9sum\xe9\n")
    code, _, err = cli(capsys, "--models-file", str(overlay), "models", "list")
    assert code == 2 and f"{overlay}: line 2, column 4: models file is not UTF-8 text" in err
    sweep = latin1(tmp_path / "w.yaml", "schema: llmbench.sweep/1\nname: caf\xe9\n")
    code, _, err = cli(capsys, "sweep", str(sweep), "--dry-run")
    assert code == 2 and f"{sweep}: line 2, column 10: the sweep file is not UTF-8 text" in err


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A valid store with one run, on read-only media (a read-only bind mount as root, else permissions)."""
    media = tmp_path / "media"
    media.mkdir()
    with Store.open(media / "results.sqlite") as store:
        run_id = store.start_run("accuracy", target("t"), accuracy_profile("s", target="t"), provenance())
        store.finish_run(
            run_id, "complete", {"suite": "s", "target": "t", "score": 1.0, "n": 1, "correct": 1}
        )
    if os.geteuid() != 0:
        (media / "results.sqlite").chmod(0o444)
        media.chmod(0o555)
        try:
            yield media / "results.sqlite", run_id
        finally:
            media.chmod(0o755)
            (media / "results.sqlite").chmod(0o644)
        return
    mount = tmp_path / "ro"
    mount.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(media), str(mount)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("running as root where mount is not allowed: no way to make read-only media here")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], check=True, capture_output=True)
        yield mount / "results.sqlite", run_id
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def test_a_store_on_read_only_media_is_read_and_a_write_says_where_to_go(
    read_only_store: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.errors import StoreReadOnlyError

    path, run_id = read_only_store
    with Store.open(path) as store:
        assert store.read_only is not None
        assert [r.id for r in store.list_runs()] == [run_id]
        with pytest.raises(StoreReadOnlyError, match="LLMBENCH_STORE"):
            store.start_run("load", target("t"), load_profile(), provenance())
    code, out, err = cli(capsys, "runs", "list", "--store", str(path), "--json")
    assert code == 0, err
    assert [r["id"] for r in json.loads(out)] == [run_id]
    code, out, err = cli(capsys, "runs", "show", run_id[:8], "--store", str(path))
    assert code == 0 and json.loads(out)["id"] == run_id
    code, out, err = cli(
        capsys, "bench", "accuracy", "--target", "mock-mini", "--suite", "builtin:tiny-skills",
        "--limit", "1", "--store", str(path),
    )  # fmt: skip
    assert code == 2, err
    assert f"results store {path} is read-only" in err and "not an llmbench store" not in err
    assert "export LLMBENCH_STORE=" in err and f"cp {path} " in err


# --- 5. errors that point nowhere -----------------------------------------------------------------------


def test_an_unknown_sweep_points_to_the_command_that_lists_sweeps(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(store_path) as store:
        sweep_id = store.start_sweep({"name": "s"}, [point("p1")], name="quick")
    code, _, err = cli(capsys, "report", "--sweep", "abc", "--format", "md")
    assert code == 2
    assert "no sweep matches 'abc'" in err and "`llmbench runs sweeps` lists the stored sweeps" in err
    assert "sweep --list" not in err
    code, out, err = cli(capsys, "runs", "sweeps")
    assert code == 0, err
    assert sweep_id[:12] in out and "quick" in out and "0/1" in out
    code, out, _ = cli(capsys, "runs", "sweeps", "--json")
    assert json.loads(out)[0]["id"] == sweep_id


@pytest.fixture
def web_server() -> Iterator[str]:
    """`python -m http.server` on a free port: something that answers HTTP, but is no LLM server."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"port (\d+)", line)
    assert match, line
    try:
        yield f"http://127.0.0.1:{match[1]}"
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


def test_a_url_that_is_not_an_llm_server_says_so_without_the_page(
    web_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "bench", "load", "--target", web_server, "--requests", "2")
    assert code == 2, err
    assert (
        f"{web_server}/v1 does not look like an OpenAI-compatible server "
        "(GET /v1/models answered 404 text/html)"
    ) in err
    assert "fix: give the base URL of an OpenAI-compatible server" in err
    assert "--model" not in err and "<" not in err
    code, _, err = cli(
        capsys, "bench", "accuracy", "--target", web_server, "--model", "m",
        "--suite", "builtin:tiny-skills", "--limit", "1",
    )  # fmt: skip
    assert code == 2, err
    assert "GET /v1/models answered 404 text/html; POST /v1/chat/completions answered 501 text/html" in err
    assert "<" not in err and "DOCTYPE" not in err


class _Hung(BaseHTTPRequestHandler):
    """Answers the identity probes (404) at once; never answers under /v1, or only /v1/models."""

    release: threading.Event
    models: bool

    def do_GET(self) -> None:
        if self.path == "/v1/models" and self.models:
            body = json.dumps({"object": "list", "data": [{"id": "m"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path.startswith("/v1/"):
            self.release.wait(30)
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        self.release.wait(30)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def hung_server(*, models: bool) -> Iterator[str]:
    release = threading.Event()
    handler = type("Handler", (_Hung,), {"release": release, "models": models})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


HINT = "no answer within 1 s: the server may be overloaded or hung; raise --timeout or check the server"


@pytest.mark.slow  # about 6.3 s: scripts/test runs it, scripts/check stays under a minute
@pytest.mark.parametrize("command", ["load", "accuracy"])
def test_a_hung_server_gets_a_hint_under_load_and_accuracy(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rest = ["--requests", "2"] if command == "load" else ["--suite", "builtin:tiny-skills", "--limit", "1"]
    with hung_server(models=False) as url:  # silent from the first request: the endpoint check says so
        code, _, err = cli(capsys, "bench", command, "--target", url, "--model", "m", "--timeout", "1", *rest)
    assert code == 1, err
    assert f"GET {url}/models: {HINT}" in err
    with hung_server(models=True) as url:  # lists its model, then never answers a request
        code, out, err = cli(
            capsys, "bench", command, "--target", url, "--model", "m", "--timeout", "1", *rest
        )
    assert code == 1, err
    assert f"timeout: {HINT}" in out and "every" in err


@pytest.mark.slow  # about 1.2 s: scripts/test runs it, scripts/check stays under a minute
def test_a_keyed_url_target_is_told_how_to_send_the_key_and_the_key_never_shows(
    store_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = MockSpec(model="keyed", port=0, latency=LatencyModel(ttft_ms=1, itl_ms=1), api_key=SecretStr(KEY))
    suite = ["--suite", "builtin:tiny-skills", "--limit", "1"]
    with running_mock(spec) as url:
        code, out, err = cli(capsys, "bench", "accuracy", "--target", url, *suite)
        assert code == 1, err
        assert "HTTP 401: the server wants an API key: pass --api-key-env VAR" in out
        assert "sent as `Authorization: Bearer <key>`" in out
        code, out, err = cli(capsys, "bench", "load", "--target", url, "--requests", "2")
        assert code == 1 and "pass --api-key-env VAR" in out
        monkeypatch.setenv("KEYED_MOCK_KEY", KEY)
        code, out, err = cli(
            capsys, "bench", "accuracy", "--target", url, *suite, "--api-key-env", "KEYED_MOCK_KEY"
        )
        assert code == 0, err
        assert KEY not in out + err
        code, out, err = cli(
            capsys, "bench", "load", "--target", url, "--requests", "2", "--api-key-env", "KEYED_MOCK_KEY"
        )
        assert code == 0, err
        assert KEY not in out + err
        monkeypatch.setenv("WRONG_KEY", "not-the-key")
        code, out, err = cli(
            capsys, "bench", "accuracy", "--target", url, *suite, "--api-key-env", "WRONG_KEY"
        )
        assert code == 1 and "check the key in the environment variable WRONG_KEY (is set" in out
        assert "not-the-key" not in out + err
        code, _, err = cli(capsys, "bench", "accuracy", "--target", url, *suite, "--api-key-env", "UNSET_VAR")
        assert code == 2 and "set the environment variable UNSET_VAR" in err
    for path in store_path.parent.glob("results.sqlite*"):
        assert KEY.encode() not in path.read_bytes() and b"not-the-key" not in path.read_bytes()
    with Store.open(store_path, create=False) as store:
        keyed = [r for r in store.list_runs() if r.status == "complete"]
        assert keyed and all(
            r.target.api_key_env == "KEYED_MOCK_KEY" or "Authorization" in r.target.headers for r in keyed
        )


# --- 2. serve --stop signals only what it started -------------------------------------------------------


def test_serve_stop_refuses_a_process_it_did_not_start(
    web_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = int(web_server.rsplit(":", 1)[1])
    (pid,) = {
        c.pid
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid
    }
    stranger = psutil.Process(pid)
    pid_file = tmp_path / "serve.pid"
    forged = {  # right pid and start time, a serve command line: still not that process's command line
        "pid": pid,
        "create_time": stranger.create_time(),
        "cmdline": [sys.executable, "-c", "from bench.cli import main; main()", "serve", "mock-openai"],
    }
    for content, reason in (
        (f"{pid}\n", "does not record the start time and command line"),
        (json.dumps({"pid": pid, "create_time": None, "cmdline": None}), "does not record the start time"),
        (json.dumps({**forged, "create_time": stranger.create_time() - 3600}), "the pid was reused"),
        (json.dumps(forged), "its command line is not the recorded server's"),
    ):
        pid_file.write_text(content, encoding="utf-8")
        code, _out, err = cli(capsys, "serve", "--stop", "--pid-file", str(pid_file))
        assert code == 2, err
        assert f"invalid value for --pid-file: refusing to stop pid {pid} from {pid_file}" in err
        assert reason in err and "Nothing was signalled" in err and f"`kill {pid}`" in err
        assert stranger.is_running() and stranger.status() != psutil.STATUS_ZOMBIE
        assert pid_file.exists()  # left for the user to look at
