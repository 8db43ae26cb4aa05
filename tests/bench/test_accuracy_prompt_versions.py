"""`bench accuracy --logprobs` and `--template` end to end against a real loopback server that records what
it was sent: items keep their logprob summary, prompts go out rendered through the template, and the run
stores the template's name, version and hash (and the suite's version, from its manifest)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.accuracy.logprobs import EXTRA_KEY, LogprobSummary
from bench.cli import main
from bench.prompts.templates import load_template
from bench.store import Store

TEMPLATE = """\
schema: llmbench.prompt/1
name: terse
version: 2
system: You answer with the number only. Product {{product}}.
user: "Q: {{question}}"
defaults: {product: Acme}
"""


class FakeOpenAI(BaseHTTPRequestHandler):
    """Serves model 'm': every chat answer is '4' in two chunks, with logprobs −0.1 and −0.5 when asked
    (and `logprobs: null` otherwise, as OpenAI-style servers send); it counts one prompt token per character
    of the messages' text."""

    bodies: list[dict[str, Any]]

    def log_message(self, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        data = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        asked = bool(body.get("logprobs"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for text, lp in (("4", -0.1), ("", -0.5)):
            logprobs = {"content": [{"token": text, "logprob": lp, "top_logprobs": []}]} if asked else None
            choice = {"index": 0, "delta": {"content": text}, "logprobs": logprobs, "finish_reason": None}
            self.wfile.write(b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n")
        chars = sum(len(m["content"]) for m in body.get("messages", []))  # one 'token' per character
        usage = {"choices": [], "usage": {"prompt_tokens": chars, "completion_tokens": 2}}
        self.wfile.write(b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    handler = type("Handler", (FakeOpenAI,), {"bodies": bodies})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", bodies
    finally:
        httpd.shutdown()
        httpd.server_close()


def suite_file(tmp_path: Path, *lines: dict[str, Any]) -> Path:
    path = tmp_path / "mini.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


ITEMS = (
    {"id": "a", "area": "math", "prompt": "2+2?", "reference": "4"},
    {"id": "b", "area": "math", "vars": {"question": "1+3?", "product": "Zed"}, "reference": "4"},
)


def llmbench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def accuracy(url: str, suite: Path, db: Path, *extra: str) -> list[str]:
    return ["bench", "accuracy", "--target", url, "--suite", str(suite), "--server-kind", "generic",
            "--store", str(db), "--concurrency", "1", "--json", *extra]  # fmt: skip


def test_logprobs_are_asked_for_and_kept_as_a_summary(
    server: tuple[str, list[dict[str, Any]]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, bodies = server
    suite = suite_file(tmp_path, ITEMS[0])
    db = tmp_path / "r.sqlite"
    code, out, err = llmbench(capsys, *accuracy(url, suite, db, "--logprobs"))
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    assert bodies[-1]["logprobs"] is True and "top_logprobs" not in bodies[-1]
    with Store.open(db) as store:
        run = store.get_run(run_id)
        (item,) = store.load_items(run_id)
    assert run.accuracy_profile.logprobs is True
    # Two tokens, −0.1 and −0.5: min −0.5; p10 = −0.5 + 0.1·0.4 = −0.46 (linear interpolation); mean −0.3.
    summary = LogprobSummary.model_validate(item.extra[EXTRA_KEY])
    assert (summary.n, summary.min, summary.p10, summary.mean) == (2, -0.5, -0.46, -0.3)
    # Not asked: nothing sent, nothing kept.
    code, out, err = llmbench(capsys, *accuracy(url, suite, db))
    assert code == 0, err
    assert "logprobs" not in bodies[-1]
    with Store.open(db) as store:
        (item,) = store.load_items(json.loads(out)["run_id"])
    assert EXTRA_KEY not in item.extra


def test_a_server_that_returns_no_logprobs_is_said_to(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    server: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = server
    suite = suite_file(tmp_path, ITEMS[0])

    def never(self: FakeOpenAI) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        body.pop("logprobs", None)
        self.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunk = {"choices": [{"index": 0, "delta": {"content": "4"}, "finish_reason": None}]}
        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n")

    monkeypatch.setattr(FakeOpenAI, "do_POST", never)  # a server that ignores the question
    code, _, err = llmbench(capsys, *accuracy(url, suite, tmp_path / "r.sqlite", "--logprobs"))
    assert code == 0, err
    assert "--logprobs asked, but the server returned no token logprobs" in err


def test_items_are_rendered_through_the_template_and_the_run_records_it(
    server: tuple[str, list[dict[str, Any]]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, bodies = server
    template = tmp_path / "terse.prompt.yaml"
    template.write_text(TEMPLATE, encoding="utf-8")
    suite = suite_file(tmp_path, *ITEMS)
    db = tmp_path / "r.sqlite"
    code, out, err = llmbench(capsys, *accuracy(url, suite, db, "--template", str(template)))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["score"] == 1.0
    sent = sorted((b["messages"] for b in bodies[-2:]), key=lambda m: m[1]["content"])
    assert sent == [
        [{"role": "system", "content": "You answer with the number only. Product Zed."},
         {"role": "user", "content": "Q: 1+3?"}],
        [{"role": "system", "content": "You answer with the number only. Product Acme."},
         {"role": "user", "content": "Q: 2+2?"}],
    ]  # fmt: skip
    with Store.open(db) as store:
        profile = store.get_run(doc["run_id"]).accuracy_profile
    ref = load_template(template).ref()
    assert profile.prompt == ref and (ref.name, ref.version) == ("terse", "2") and len(ref.sha256) == 64
    assert profile.template == template
    assert profile.suite_version is None and profile.regression_area is None  # no manifest beside it


def test_template_errors_exit_2_and_say_what_to_do(
    server: tuple[str, list[dict[str, Any]]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = server
    db = tmp_path / "r.sqlite"
    only_vars = suite_file(tmp_path, ITEMS[1])
    code, _, err = llmbench(capsys, *accuracy(url, only_vars, db))
    assert code == 2 and "give only template variables" in err and "--template" in err
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE, encoding="utf-8")
    chat = suite_file(
        tmp_path, {"id": "c", "area": "x", "messages": [{"role": "user", "content": "hi"}], "reference": "4"}
    )
    code, _, err = llmbench(capsys, *accuracy(url, chat, db, "--template", str(template)))
    assert code == 2 and "item 'c' gives chat messages" in err
    code, _, err = llmbench(capsys, *accuracy(url, chat, db, "--template", str(tmp_path / "nope.yaml")))
    assert code == 2 and "no prompt template at" in err


def test_compare_puts_two_prompt_versions_side_by_side(
    server: tuple[str, list[dict[str, Any]]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same suite through version 2 (BASE) and version 3 (NEW), whose system prompt is 8 characters
    longer (', please'): compare names both versions, pairs the accuracy, and shows the input tokens per item
    each sent: +8 on every item (the server counts a token per character), +8 on the mean."""
    url, _ = server
    suite = suite_file(tmp_path, *ITEMS)
    v2, v3 = tmp_path / "v2.yaml", tmp_path / "v3.yaml"
    v2.write_text(TEMPLATE, encoding="utf-8")
    v3.write_text(
        TEMPLATE.replace("version: 2", "version: 3").replace("number only.", "number only, please.")
    )
    db = tmp_path / "r.sqlite"
    ids = []
    for template in (v2, v3):
        code, out, err = llmbench(capsys, *accuracy(url, suite, db, "--template", str(template)))
        assert code == 0, err
        ids.append(json.loads(out)["run_id"])
    code, out, err = llmbench(capsys, "compare", ids[0], ids[1], "--store", str(db), "--json")
    assert code == 0, err
    doc = json.loads(out)
    base, new = load_template(v2).ref().label, load_template(v3).ref().label
    assert doc["prompts"] == [base, new] and base.startswith("terse@2 (") and new.startswith("terse@3 (")
    metrics = {d["metric"]: d for d in doc["deltas"]}
    assert metrics["accuracy"]["base"] == metrics["accuracy"]["new"] == 100.0
    tokens = metrics["input_tokens"]
    # Item a: system 'You answer with the number only. Product Acme.' (46) + 'Q: 2+2?' (7) = 53; item b: the
    # same system with 'Zed' (45) + 'Q: 1+3?' (7) = 52: mean 52.5, then 60.5 through version 3.
    assert (tokens["base"], tokens["new"], tokens["change"]) == (52.5, 60.5, 8.0)
    assert tokens["ci"] == [8.0, 8.0] and tokens["significant"] is True  # +8 on every item: no spread
    code, out, _ = llmbench(capsys, "compare", ids[0], ids[1], "--store", str(db))
    assert f"prompt versions: BASE {base}  |  NEW {new}" in " ".join(out.split("\n"))
