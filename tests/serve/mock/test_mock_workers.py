"""`serve --backend mock --workers N`: several mock processes on one port, one set of counters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from waits import wait_for

from bench.errors import UsageError
from bench.serving.checks import check_backend_flags
from bench.serving.plan import ServeOptions
from serve.mock.metrics import MockStats
from serve.mock.workers import add_stats

MODEL = "reuse-mock"
SERVE = """
import sys
from serve.mock.launch import serve_mock
from serve.specs import MockSpec
spec = MockSpec(model=sys.argv[1], port=0, strict=False, workers=int(sys.argv[2]))
serve_mock(spec, lambda url: print("URL", url, flush=True))
"""


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:  # a new connection each time
        body: bytes = resp.read()
        return body


def chat(url: str) -> None:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    request = urllib.request.Request(
        url + "/v1/chat/completions", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def successes(url: str) -> float:
    text = get(url + "/metrics").decode()
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("vllm:request_success_total{")
    )


@pytest.fixture
def two_workers() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, MODEL, "2"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line and line[0] == "URL", f"the server did not start (exit {proc.poll()})"
        yield line[1], proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_two_workers_answer_on_one_port_and_count_as_one_server(
    two_workers: tuple[str, subprocess.Popen[str]],
) -> None:
    url, proc = two_workers
    pids: set[int] = set()

    def both_answered() -> bool:
        info = json.loads(get(url + "/llmbench/info"))
        assert info["process"]["workers"] == 2
        pids.add(info["process"]["pid"])
        return len(pids) == 2

    wait_for(
        both_answered, timeout=20, what="both mock workers answered", every=0.02
    )  # the kernel spreads new connections over the two listeners
    assert proc.pid not in pids  # the parent only manages; the workers answer
    for _ in range(20):
        chat(url)
    wait_for(
        lambda: successes(url) == 20.0, timeout=20, what="/metrics sums 20 successes", every=0.02
    )  # whichever worker answers /metrics sums them all
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(lambda: all(gone(pid) for pid in pids), timeout=20, what="every mock worker exited", every=0.02)


def test_counters_add_up_field_by_field() -> None:
    a, b = MockStats(ok=2, prompt_tokens=10), MockStats(ok=3, prompt_tokens=5, running=1)
    a.finished["stop"] = 1
    b.finished["length"] = 2
    a.ttft.observe(0.003)
    b.ttft.observe(0.3)
    total = MockStats()
    add_stats(total, a)
    add_stats(total, b)
    assert (total.ok, total.prompt_tokens, total.running) == (5, 15, 1)
    assert total.finished == {"stop": 1, "length": 2}
    assert total.ttft.count == 2 and sum(total.ttft.counts) == 2


def test_workers_is_a_mock_backend_flag() -> None:
    check_backend_flags(ServeOptions(backend="mock", workers=4), "mock", "cpu")
    with pytest.raises(UsageError, match="--workers does not apply"):
        check_backend_flags(ServeOptions(backend="hf", workers=4), "hf", "cpu")
