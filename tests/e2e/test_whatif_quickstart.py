"""The what-ifs on a quickstart-shaped sweep, as the README runs them: the trained tiny model (served by the
transformers backend, which returns token logprobs) and a mock commercial API, measured at an operating
point and scored on the same items with --logprobs; then `whatif route` between them (the tiny model priced
at its operating point, as the report costs it), `whatif cache` over the shipped support log (paraphrases
and near-duplicates of opposite meaning) and over the tiny model's stored load run, and the report's levers
section."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fixtures_vllm import LLMBENCH, REPO, cli_env
from waits import no_strays

from bench.store import Store

pytestmark = pytest.mark.slow
LOG = REPO / "examples" / "whatif" / "support-log.jsonl"
SWEEP = """
schema: llmbench.sweep/1
name: quickstart-levers
slo: ttft_ms=5000,tpot_ms=500
hardware: cpu-2vcpu
max_usd: 0
targets:
  - {name: tiny-skills, backend: hf}
  - {name: mock-frontier}
loads:
  - {profile: goodput, concurrency: 2, requests: 12, attainment: 0.9, input_tokens: 16, output_tokens: 8,
     max_load: 4, search_steps: 0, warmup: 1}
suites:
  - {suite: "builtin:tiny-skills", limit: 10, concurrency: 4, max_tokens: 16, logprobs: true}
"""


def llmbench(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LLMBENCH, *args], cwd=REPO, env=cli_env(home), capture_output=True, text=True, timeout=timeout
    )


def test_whatif_route_and_cache_on_a_quickstart_sweep(tmp_path: Path, tiny_skills_dir: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny-skills").symlink_to(tiny_skills_dir.resolve())
    file = tmp_path / "sweep.yaml"
    file.write_text(SWEEP, encoding="utf-8")
    report = tmp_path / "report.html"
    done = llmbench(tmp_path, "sweep", str(file), "--report", str(report))
    assert done.returncode == 0, done.stderr
    with Store.open(tmp_path / "results.sqlite") as store:
        runs = store.list_runs(limit=None)
        tiny = next(r for r in runs if r.kind == "accuracy" and r.target.name == "tiny-skills")
        api = next(r for r in runs if r.kind == "accuracy" and r.target.name == "mock-frontier")
        tiny_load = next(r for r in runs if r.kind == "load" and r.target.name == "tiny-skills"
                         and r.load_profile.kind == "goodput")  # fmt: skip
        assert tiny.accuracy_profile.logprobs
        assert all("logprobs" in i.extra for i in store.load_items(tiny.id) if i.status == "ok")

    route = llmbench(tmp_path, "whatif", "route", tiny.id[:8], api.id[:8], "--max-drop", "5")
    assert route.returncode == 0, route.stderr
    out = route.stdout
    assert "40 shared items; cheap = tiny-skills, strong = mock-frontier" in out
    assert "cascade:logprob(p10)" in out and "APGR" in out and "oracle" in out
    assert "note: tiny-skills (" in out and "/1M reference tokens: its operating point on cpu-2vcpu" in out
    as_json = llmbench(tmp_path, "whatif", "route", tiny.id[:8], api.id[:8], "--json")
    doc = json.loads(as_json.stdout)
    assert all(o["cost_usd"] is not None for o in doc["options"])  # both sides priced

    cache = llmbench(tmp_path, "whatif", "cache", "--log", str(LOG), "--thresholds", "0.85,0.9,0.95")
    assert cache.returncode == 0, cache.stderr
    flat = " ".join(cache.stdout.split())
    assert "20 requests; fill on the first 10, measured on the last 10" in flat
    assert "semantic ≥ 0.9" in flat and "false hit at ≥ 0.9:" in flat
    replay = llmbench(tmp_path, "whatif", "cache", "--run", tiny_load.id[:8], "--no-semantic")
    assert replay.returncode == 0, replay.stderr
    assert "exact" in replay.stdout and "measured" in replay.stdout

    page = report.read_text(encoding="utf-8")
    assert 'id="levers"' in page and "cascade:logprob(p10)" in page
    no_strays(tmp_path)
