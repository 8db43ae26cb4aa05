"""sweep.yaml: every error listed at once (file, key, fix), the matrix, stable point ids, the budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.accuracy.spec import AccuracySpec, SuiteOptions
from bench.errors import ConfigError
from bench.loadgen.spec import LoadOptions, LoadSpec
from bench.registry import Registry
from bench.sweep.driver import check_budget, plan_lines
from bench.sweep.plan import expand
from bench.sweep.spec import LoadStep, SuiteStep, load_options, read_sweep_file

OVERLAY = """\
schema: llmbench.models/1
local:
  tiny:
    builtin: tiny-random
    license: apache-2.0
    context: {native: 2048, served: 512}
api:
  paid:
    provider: openai
    base_url: https://api.example.com/v1
    model: paid-model
    api_key_env: PAID_KEY
    prices: {input_per_1m: 10.0, output_per_1m: 30.0, as_of: 2026-11-01, source: test}
"""


@pytest.fixture
def models_overlay() -> str:
    return OVERLAY


def sweep_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_error_of_the_file_is_listed_with_file_key_and_fix(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        """
schema: llmbench.sweep/1
name: bad
targets:
  - {name: tiny, varaints: [base]}
loads:
  - {profile: concurent, requests: 0}
suites:
  - {suite: "builtin:tiny-skills", limt: 5}
""",
    )
    with pytest.raises(ConfigError) as err:
        read_sweep_file(path)
    text = str(err.value)
    assert text.startswith("4 problems:")
    assert f"{path}: targets[0].varaints: unknown key 'varaints'; did you mean 'variants'?" in text
    assert f"{path}: loads[0].profile:" in text and "'concurent'" in text
    assert f"{path}: loads[0].requests:" in text
    assert f"{path}: suites[0].limt: unknown key 'limt'; did you mean 'limit'?" in text


def test_registry_problems_are_listed_together_before_anything_starts(
    tmp_path: Path, registry: Registry
) -> None:
    path = sweep_file(
        tmp_path,
        """
schema: llmbench.sweep/1
name: bad-names
targets:
  - {name: tinyy}
  - {name: tiny, variants: [base, nope], hardware: no-such-box}
  - {name: paid, engine_args: {max-num-seqs: [1, 2]}}
loads: [{profile: synchronous, requests: 2}]
""",
    )
    with pytest.raises(ConfigError) as err:
        expand(read_sweep_file(path), registry, env={})
    text = str(err.value)
    assert "targets[0].name: unknown registry entry 'tinyy'" in text and "did you mean: tiny" in text
    assert "targets[1].hardware: unknown hardware profile 'no-such-box'" in text
    assert "targets[1].variants: unknown model variant 'tiny:nope'" in text
    assert "targets[2]: variants and engine args apply to local targets" in text
    assert "targets[2]: paid needs an API key: set the environment variable PAID_KEY" in text


def test_matrix_expands_cartesian_and_linked_with_stable_ids(tmp_path: Path, registry: Registry) -> None:
    text = """
schema: llmbench.sweep/1
name: matrix
slo: ttft_ms=500
targets:
  - name: tiny
    variants: [base, {quantize: nf4, backend: hf}]
    engine_args: {max-num-seqs: [16, 64], enforce-eager: true}
    linked:
      - {max-model-len: 256, max-num-batched-tokens: 256}
      - {max-model-len: 512, max-num-batched-tokens: 512}
  - name: paid
loads: [{profile: goodput, requests: 10}]
"""
    sweep = read_sweep_file(sweep_file(tmp_path, text))
    plan = expand(sweep, registry, env={"PAID_KEY": "k"})
    local = [p for p in plan.points if p.kind == "local"]
    assert len(local) == 2 * 2 * 2 and len(plan.points) == 9
    args = {(p.variant, p.engine_args["max-num-seqs"], p.engine_args["max-model-len"]) for p in local}
    assert len(args) == 8
    assert all(p.engine_args["max-num-batched-tokens"] == p.engine_args["max-model-len"] for p in local)
    nf4 = [p for p in local if p.variant == "nf4"]
    assert all(p.backend == "hf" and p.quantize == {"method": "nf4", "group_size": None} for p in nf4)
    assert all(p.loads[0]["slo"] == "ttft_ms=500" for p in plan.points)  # the top-level SLO reaches loads
    again = expand(read_sweep_file(sweep_file(tmp_path, text)), registry, env={"PAID_KEY": "k"})
    assert [p.point_id for p in again.points] == [p.point_id for p in plan.points]  # stable for --resume
    assert len({p.point_id for p in plan.points}) == 9
    assert [p.label for p in plan.only("tiny:nf4*")] == [p.label for p in nf4]
    lines = plan_lines(plan)
    assert lines[0] == "sweep matrix: 9 points" and "estimate (rough)" in lines[-1]


def test_a_sweep_whose_api_estimate_is_above_the_cap_is_refused(tmp_path: Path, registry: Registry) -> None:
    text = """
schema: llmbench.sweep/1
name: pricey
max_usd: 0.01
targets: [{name: paid}]
loads: [{profile: concurrent, concurrency: 4, requests: 500, input_tokens: 1000, output_tokens: 500}]
"""
    sweep = read_sweep_file(sweep_file(tmp_path, text))
    plan = expand(sweep, registry, env={"PAID_KEY": "k"})
    assert plan.estimate_usd > 0.01
    with pytest.raises(ConfigError, match="above max_usd"):
        check_budget(sweep, plan)


def test_the_spend_estimate_by_hand(tmp_path: Path, registry: Registry) -> None:
    # One parser for lengths (normal:512:64 is a mean of 512, not 64), bench accuracy's own output budget
    # (256 tokens) for a suite that sets none, and bench.cost's price formula ($10 in, $30 out per 1M).
    text = """
schema: llmbench.sweep/1
name: by-hand
targets: [{name: paid}]
loads: [{profile: concurrent, concurrency: 4, requests: 100, warmup: 2, input_tokens: "normal:512:64",
         output_tokens: "16"}]
suites: [{suite: "builtin:tiny-skills", limit: 10}]
"""
    plan = expand(read_sweep_file(sweep_file(tmp_path, text)), registry, env={"PAID_KEY": "k"})
    (point,) = plan.points
    load = 102 * (512 * 10 + 16 * 30) / 1e6  # 100 + 2 warm-up requests
    suite = 40 * (60 * 10 + 256 * 30) / 1e6  # 10 items × 4 areas, 60 prompt tokens each
    assert point.estimate_usd == pytest.approx(load + suite)


def test_goodput_probes_are_estimated_at_the_length_they_run(tmp_path: Path, registry: Registry) -> None:
    # From 4 doubling to the ceiling 16 (4, 8, 16), one bisection, then the final run at the ceiling: each
    # probe sends at least 4 requests per slot, so 40 requests become 40, 40, 64, 64, 64 (+2 warm-up each).
    text = """
schema: llmbench.sweep/1
name: probes
targets: [{name: paid}]
loads: [{profile: goodput, concurrency: 4, max_load: 16, search_steps: 1, requests: 40, warmup: 2,
         slo: "ttft_ms=500", input_tokens: "10", output_tokens: "10"}]
"""
    plan = expand(read_sweep_file(sweep_file(tmp_path, text)), registry, env={"PAID_KEY": "k"})
    requests = 40 + 40 + 64 + 64 + 64 + 5 * 2
    assert plan.points[0].estimate_usd == pytest.approx(requests * (10 * 10 + 10 * 30) / 1e6)


def test_a_sweep_step_is_the_commands_own_options_with_the_same_defaults() -> None:
    def defaults(model: type[LoadOptions | SuiteOptions]) -> dict[str, object]:
        return {name: f.get_default(call_default_factory=True) for name, f in model.model_fields.items()}

    # a load step's template is `bench load --template` (run_load's argument, not a LoadOptions field)
    assert defaults(LoadStep) == {**defaults(LoadOptions), "template": None}
    assert set(LoadSpec.model_fields) - set(LoadStep.model_fields) == {
        "target", "url", "model", "api", "tokenizer", "headers", "store", "server_metrics_every_s",
        "server_kind", "hardware", "sweep_id", "point_id",
    }  # fmt: skip
    assert {k: v for k, v in defaults(LoadSpec).items() if k in LoadStep.model_fields} == defaults(
        LoadOptions
    )
    assert defaults(SuiteStep) == defaults(SuiteOptions)
    assert {k: v for k, v in defaults(AccuracySpec).items() if k in SuiteStep.model_fields} == defaults(
        SuiteStep
    )
    assert LoadStep().profile == LoadSpec(target="x").profile == "synchronous"


def test_a_load_step_stored_by_an_earlier_version_reads_the_same() -> None:
    # Points stored before the step was the CLI's own model: warm-up as a count, None for defaults.
    old = {"profile": "goodput", "concurrency": [4], "rate": None, "requests": 40, "duration_s": None,
           "warmup": 2, "input_tokens": "32", "output_tokens": "16", "dataset": None, "slo": "ttft_ms=500",
           "attainment": 0.9, "search": None, "max_load": 64.0, "search_steps": None, "max_error_rate": None,
           "timeout_s": None, "seed": 0}  # fmt: skip
    spec = LoadSpec.from_options(**load_options(old), target="x")
    assert spec.warmup.requests == 2 and spec.search_steps == 3 and spec.timeout_s == 600.0
    assert LoadStep.model_validate(old) == LoadStep.model_validate(LoadStep.model_validate(old).model_dump())


def test_prompt_versions_are_a_matrix_axis(tmp_path: Path, registry: Registry) -> None:
    """`templates:` runs every load and suite without a template of its own once per template; a step that
    names its own keeps it; a template that does not load is an error naming its key."""
    for version in (1, 2):
        (tmp_path / f"v{version}.yaml").write_text(
            f"schema: llmbench.prompt/1\nname: p\nversion: {version}\nuser: 'Q: {{{{q}}}}'\n",
            encoding="utf-8",
        )
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    text = f"""
schema: llmbench.sweep/1
name: prompts
targets: [{{name: paid}}]
templates: [{v1}, {v2}]
loads:
  - {{requests: 4, output_tokens: 4}}
  - {{requests: 4, output_tokens: 4, template: {v2}}}
suites:
  - {{suite: "builtin:tiny-skills", limit: 2}}
"""
    sweep = read_sweep_file(sweep_file(tmp_path, text))
    (point,) = expand(sweep, registry, env={"PAID_KEY": "k"}).points
    assert [step.get("template") for step in point.loads] == [str(v1), str(v2), str(v2)]
    assert [step["template"] for step in point.suites] == [str(v1), str(v2)]
    assert "template" not in load_options(point.loads[0])  # bench load's options, the template apart
    plain = read_sweep_file(sweep_file(tmp_path, text.replace(f"templates: [{v1}, {v2}]", "")))
    (other,) = expand(plain, registry, env={"PAID_KEY": "k"}).points
    assert other.point_id != point.point_id and len(other.suites) == 1
    with pytest.raises(ConfigError) as err:
        read_sweep_file(sweep_file(tmp_path, text.replace(f"{v2}]", f"{tmp_path / 'missing.yaml'}]")))
    assert "templates" in str(err.value) and "no prompt template at" in str(err.value)
