"""sweep.yaml's workloads: a matrix axis (every target × workload), checked whole, stored on each point, and
estimated from the workload's own traffic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bench.documents import SweepPoint
from bench.errors import ConfigError
from bench.registry import Registry
from bench.sweep.driver import plan_lines
from bench.sweep.plan import expand
from bench.sweep.spec import read_sweep_file
from bench.sweep.workloads import builtin_workloads_dir

OVERLAY = """\
schema: llmbench.models/1
local:
  tiny:
    builtin: tiny-random
    license: apache-2.0
    context: {native: 2048, served: 512}
mock:
  slow-mock:
    provider: openai
    model: slow
    latency: {ttft_ms: 100, ttft_per_prompt_token_ms: 0, itl_ms: 10, itl_jitter_ms: 0, capacity: 8}
    prices: {input_per_1m: 1.0, output_per_1m: 2.0, as_of: 2026-11-01, source: test}
"""

# Two sessions, one at a time, of 2 turns: a 10-token system prompt each, 8-token questions, 4-token answers,
# 3 s of thought before the second turn.
SESSIONS = """\
schema: llmbench.workload/1
kind: sessions
name: chats
sessions: 2
concurrent: 1
turns: 2
think_time_s: 3
user_tokens: 8
output_tokens: 4
system_tokens: 10
"""


@pytest.fixture
def models_overlay() -> str:
    return OVERLAY


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


SWEEP = """\
schema: llmbench.sweep/1
name: axis
slo: ttft_ms=500
targets:
  - {name: tiny, engine_args: {max-num-seqs: [16, 64]}}
  - {name: slow-mock}
loads: [{profile: concurrent, concurrency: 1, requests: 4, input_tokens: 32, output_tokens: 16}]
suites: [{suite: "builtin:tiny-skills", limit: 5}]
"""


def test_every_target_meets_every_workload_and_suites_run_once_per_configuration(
    tmp_path: Path, registry: Registry
) -> None:
    wl = write(tmp_path, "wl/chats.yaml", SESSIONS)
    text = SWEEP + "workloads:\n  - synthetic\n  - {file: wl/chats.yaml, targets: [slow-mock]}\n"
    plan = expand(read_sweep_file(write(tmp_path, "sweep.yaml", text)), registry)
    labels = [p.label for p in plan.points]
    assert labels == [
        "tiny [max-num-seqs=16] on synthetic",
        "tiny [max-num-seqs=64] on synthetic",
        "slow-mock on synthetic",
        "slow-mock on chats",
    ]
    chats = plan.points[-1]
    sha = hashlib.sha256(SESSIONS.encode()).hexdigest()
    assert (chats.workload, chats.workload_kind, chats.workload_sha256) == ("chats", "sessions", sha)
    assert chats.loads[0]["workload"] == str(wl.resolve())  # the path its load steps pass on, absolute
    assert "input_tokens" not in chats.loads[0] and "output_tokens" not in chats.loads[0]  # the file's own
    assert chats.suites == []  # the mock's suites ran at its first workload's point
    assert [len(p.suites) for p in plan.points[:3]] == [1, 1, 1]
    synthetic = plan.points[2]
    assert (synthetic.workload, synthetic.workload_kind, synthetic.workload_sha256) == (
        "synthetic", "synthetic", None)  # fmt: skip
    assert synthetic.loads[0]["workload"] is None
    stored = SweepPoint.from_json(chats.to_json())
    assert stored == chats
    # A synthetic point is the point it was before workloads existed: same id, same label.
    plain = expand(read_sweep_file(write(tmp_path, "plain.yaml", SWEEP)), registry)
    assert [p.point_id for p in plain.points] == [p.point_id for p in plan.points[:3]]
    assert [p.label for p in plain.points] == [
        "tiny [max-num-seqs=16]",
        "tiny [max-num-seqs=64]",
        "slow-mock",
    ]
    assert all(p.workload == "synthetic" for p in plain.points)
    # --dry-run lists the points under each workload.
    lines = plan_lines(plan)
    assert lines[0] == "sweep axis: 4 points (2 workloads × their targets)"
    assert lines[1].startswith("workload synthetic (synthetic): 3 points, ~")
    assert lines[5].startswith(f"workload chats (sessions, sha256 {sha[:12]}): 1 point, ~")
    assert "slow-mock on chats" in lines[6]
    assert plan_lines(plain)[0] == "sweep axis: 3 points"


def test_a_point_of_a_sessions_workload_is_estimated_from_its_own_traffic(
    tmp_path: Path, registry: Registry
) -> None:
    """Per session: turn 0 sends 10 + 8 = 18 tokens, turn 1 18 + 4 (the answer) + 8 = 30; two sessions send 4
    requests of mean 24 in, 4 out. One at a time: the pauses (3 s per session) add to 6 s, the 4 turns follow
    each other at (100 + 4 × 10) ms = 0.14 s each on the mock. Time: 2 s (mock start) + 6 + 4 × 0.14 = 8.56 s.
    Spend: 96 × $1.00 + 16 × $2.00 per 1M = $0.000128 (nothing assumed cached)."""
    write(tmp_path, "chats.yaml", SESSIONS)
    text = """\
schema: llmbench.sweep/1
name: estimate
targets: [{name: slow-mock}]
loads: [{profile: concurrent, concurrency: 1, requests: 40, input_tokens: 500, output_tokens: 500}]
workloads: [chats.yaml]
"""
    (point,) = expand(read_sweep_file(write(tmp_path, "sweep.yaml", text)), registry).points
    assert point.label == "slow-mock" and point.workload == "chats"
    assert point.estimate_s == pytest.approx(8.56)
    assert point.estimate_simulated_usd == pytest.approx(0.000128)


def test_bad_workload_entries_are_named_by_key_before_anything_starts(
    tmp_path: Path, registry: Registry
) -> None:
    write(tmp_path, "chats.yaml", SESSIONS)
    write(tmp_path, "broken.yaml", "schema: llmbench.workload/1\nkind: sessions\nsessions: 0\n")
    text = SWEEP.replace("loads: [", "loads: [{profile: synchronous, workload: chats.yaml}, ") + (
        "workloads:\n"
        "  - missing.yaml\n"
        "  - broken.yaml\n"
        "  - builtin:no-such\n"
        "  - {file: chats.yaml, targets: [nobody]}\n"
    )
    with pytest.raises(ConfigError) as err:
        read_sweep_file(write(tmp_path, "sweep.yaml", text))
    message = str(err.value)
    assert "workloads[0].file: workload file not found" in message
    assert "workloads[1].file:" in message and "sessions" in message
    assert (
        "workloads[2].file: unknown builtin workload 'no-such'; use one of: builtin:chat-over-docs" in message
    )
    fine = SWEEP + "workloads: [chats.yaml, {file: chats.yaml}]\n"
    with pytest.raises(ConfigError, match=r"workloads\[1\]\.name: two workloads are named 'chats'"):
        read_sweep_file(write(tmp_path, "twice.yaml", fine))
    unknown = SWEEP + "workloads: [{file: chats.yaml, targets: [nobody]}]\n"
    with pytest.raises(ConfigError, match=r"workloads\[0\]\.targets: 'nobody' is not a target of this sweep"):
        read_sweep_file(write(tmp_path, "unknown.yaml", unknown))
    variant = SWEEP + "workloads: [{file: chats.yaml, targets: ['tiny:nf4']}]\n"
    with pytest.raises(
        ConfigError, match=r"workloads\[0\]\.targets: tiny:nf4 is not a variant this sweep serves"
    ):
        expand(read_sweep_file(write(tmp_path, "variant.yaml", variant)), registry)
    base = SWEEP + "workloads: [synthetic, {file: chats.yaml, targets: ['tiny:base']}]\n"
    plan = expand(read_sweep_file(write(tmp_path, "base.yaml", base)), registry)
    assert [p.label for p in plan.points if p.workload == "chats"] == [
        "tiny [max-num-seqs=16] on chats",
        "tiny [max-num-seqs=64] on chats",
    ]
    on_step = SWEEP.replace("loads: [{", "loads: [{workload: chats.yaml, ").replace(
        ", input_tokens: 32, output_tokens: 16", ""
    )
    with pytest.raises(ConfigError, match=r"loads\[0\]\.workload: list workload files under the sweep's"):
        read_sweep_file(write(tmp_path, "step.yaml", on_step))


def test_the_quickstart_runs_its_second_workload_on_the_apis_and_the_bf16_tiny_model(
    registry: Registry,
) -> None:
    """The shipped quickstart: the builtin chat-over-docs workload, on the two mock APIs and tiny-skills' base
    (vLLM's prefix cache), not on its quantized variants."""
    path = Path(__file__).parents[2] / "examples" / "quickstart.yaml"
    sweep = read_sweep_file(path)
    assert [w.label for w in sweep.workloads] == ["synthetic", "chat-over-docs"]
    plan = expand(sweep, registry, check_keys=False)
    chats = [p for p in plan.points if p.workload == "chat-over-docs"]
    assert [p.serve_name for p in chats] == ["tiny-skills", "mock-frontier", "mock-mini"]
    assert chats[0].loads[0]["workload"] == str(builtin_workloads_dir() / "chat-over-docs.yaml")
    assert all(p.suites == [] for p in chats)
    assert len(plan.points) == 8
