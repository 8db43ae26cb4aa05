"""The tiny trained model served by real vLLM, scored per area by `llmbench bench accuracy` (subprocess)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_vllm import LLMBENCH, REPO, cli_env, free_port, require_vllm, start_cli_server, stop_cli_server


def llmbench(*args: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LLMBENCH, *args], cwd=REPO, env=cli_env(home), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_skills_vllm(tmp_path_factory: pytest.TempPathFactory, tiny_skills_dir: Path) -> Iterator[str]:
    """`llmbench serve tiny-skills --backend vllm` on a free port; yields its /v1 base URL."""
    require_vllm()
    home = tmp_path_factory.mktemp("vllm-skills-home")
    (home / "models").mkdir()
    (home / "models" / "tiny-skills").symlink_to(tiny_skills_dir.resolve())
    port = free_port()
    proc, _line, output = start_cli_server(["tiny-skills", "--backend", "vllm", "--port", str(port)], home)
    yield f"http://127.0.0.1:{port}/v1"
    _code, left = stop_cli_server(proc)
    assert not left, f"processes left after SIGINT: {left}\n" + "\n".join(output[-20:])


@pytest.mark.vllm
@pytest.mark.slow
def test_tiny_skills_on_vllm_is_scored_per_area(tiny_skills_vllm: str, tmp_path: Path) -> None:
    out = tmp_path / "acc.json"
    done = llmbench(
        "bench", "accuracy", "--target", tiny_skills_vllm, "--suite", "builtin:tiny-skills",
        "--concurrency", "16", "--out", str(out), home=tmp_path / "home",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    s = json.loads(out.read_text())
    assert s["schema"] == "llmbench.accuracy/1" and s["failed"] == 0
    assert {a: v["n"] for a, v in s["areas"].items()} == {
        "arithmetic": 100,
        "comparison": 100,
        "lookup": 100,
        "string": 100,
    }
    # The trained model answers: far above zero overall (its quality is the model's own tests' concern).
    assert 0.25 < s["score"] <= 1.0, s["areas"]
    assert all(
        0.0 <= v["score"] <= 1.0 and v["ci95"][0] <= v["score"] <= v["ci95"][1] for v in s["areas"].values()
    )
    assert s["tokens"]["input"] > 0 and s["tokens"]["output"] > 0
    assert s["cost_usd"] is None and "no per-token price" in s["cost_note"]  # self-hosted
    for area in s["areas"]:
        assert area in done.stdout  # the table shows every area
