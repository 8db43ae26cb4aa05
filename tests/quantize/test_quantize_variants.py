"""The registry side of `llmbench quantize`: variant names, --dry-run and --out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from fixtures_quant import fake_checkpoint, home_with_tiny_skills

from bench.cli import main
from bench.errors import ConfigError, UsageError
from bench.registry import load_registry
from bench.settings import Settings, user_models_file
from bench.variants import QuantizeRequest, plan_variant, variant_target
from quantize import get_method


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_variant_the_registry_declares_is_reused(hermetic_env: Path) -> None:
    registry = load_registry()
    target = variant_target(registry, Settings.from_env(), "llama-3.1-8b-instruct", get_method("nf4"))
    assert (target.entry_name, target.variant, target.declared) == (
        "llama-3.1-8b-instruct-nf4",
        "bnb-nf4",
        True,
    )
    assert target.folder == hermetic_env / "models" / "llama-3.1-8b-instruct-nf4"
    fresh = variant_target(registry, Settings.from_env(), "tiny-skills", get_method("w4a16"))
    assert (fresh.entry_name, fresh.label, fresh.declared) == (
        "tiny-skills-w4a16",
        "tiny-skills:w4a16",
        False,
    )


def test_quantizing_a_variant_or_an_unpulled_model_is_refused() -> None:
    registry, settings = load_registry(), Settings.from_env()
    with pytest.raises(UsageError, match=r"already a variant of llama-3\.1-8b-instruct"):
        plan_variant(QuantizeRequest(name="llama-3.1-8b-instruct:fp8", method="int8"), registry, settings)
    with pytest.raises(ConfigError, match="not in the local model cache") as info:
        plan_variant(QuantizeRequest(name="qwen2.5-7b-instruct", method="int8"), registry, settings)
    assert info.value.fix == "run `llmbench pull qwen2.5-7b-instruct` first"


def test_dry_run_prints_the_plan_and_writes_nothing(
    hermetic_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_checkpoint(hermetic_env / "models" / "tiny-skills")
    before = sorted(os.listdir(hermetic_env / "models"))
    code, out, err = run_cli(["quantize", "tiny-skills", "--method", "int8", "--dry-run"], capsys)
    assert code == 0, err
    assert "dry run: nothing is written" in out
    assert "method: int8 (bitsandbytes LLM.int8() weights) with bitsandbytes on cpu" in out
    assert f"output: {hermetic_env / 'models' / 'tiny-skills-int8'}" in out
    assert f"registry: adds tiny-skills-int8 (tiny-skills:int8) to {user_models_file()}" in out
    assert "serves here with: hf" in out
    assert sorted(os.listdir(hermetic_env / "models")) == before and not user_models_file().exists()


def test_cli_errors_are_usage_errors_with_the_fix(
    hermetic_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_checkpoint(hermetic_env / "models" / "tiny-skills")
    code, _, err = run_cli(["quantize", "tiny-skills", "--method", "q4"], capsys)
    assert (
        code == 2 and "valid methods: nf4, int8, fp8-dynamic, w8a8, w4a16" in err and "Traceback" not in err
    )
    (hermetic_env / "models" / "tiny-skills-int8").mkdir()
    code, _, err = run_cli(["quantize", "tiny-skills", "--method", "int8"], capsys)
    assert code == 2 and "already exists; pass --force" in err
    code, _, err = run_cli(["quantize", "tiny-skills", "--method", "nf4", "--device", "cuda"], capsys)
    assert code == 2 and "no NVIDIA GPU here" in err


@pytest.mark.slow
def test_quantize_to_another_folder_links_registers_and_serves(
    hermetic_env: Path, tiny_skills_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home_with_tiny_skills(hermetic_env, tiny_skills_dir)
    out_dir = tmp_path / "elsewhere" / "int8"
    code, out, err = run_cli(["quantize", "tiny-skills", "--method", "int8", "--out", str(out_dir)], capsys)
    assert code == 0, err
    assert f"checkpoint: {out_dir}" in out and "serve it: llmbench serve tiny-skills:int8" in out
    link = hermetic_env / "models" / "tiny-skills-int8"
    assert link.is_symlink() and link.resolve() == out_dir.resolve()
    entry = yaml.safe_load(user_models_file().read_text())["local"]["tiny-skills-int8"]
    assert entry["derived_from"] == "tiny-skills" and entry["variant"] == "int8"
    assert entry["quantization"] == {"method": "bnb-int8", "source": "llmbench"}
    code, out, err = run_cli(["serve", "tiny-skills:int8", "--dry-run"], capsys)
    assert code == 0, err
    assert "backend: hf" in out and f"model folder: {link} (local folder)" in out
    assert '"quantization": "bnb-int8"' in out


def test_a_pulled_hub_model_is_quantized_from_its_snapshot_at_its_revision(
    hermetic_env: Path, tmp_path: Path
) -> None:
    from serve.pull import MANIFEST, PullResult

    sha = "c" * 40
    snapshot = fake_checkpoint(tmp_path / "hub" / "snapshots" / sha)
    folder = hermetic_env / "models" / "hubby"
    folder.mkdir(parents=True)
    pulled = PullResult(
        name="hubby", repo="org/hubby", revision=sha, path=snapshot, files=[], bytes=1, source="hub"
    )
    (folder / MANIFEST).write_text(pulled.model_dump_json(), encoding="utf-8")
    overlay = tmp_path / "models.yaml"
    entry = {
        "repo": "org/hubby",
        "revision": sha,
        "license": "mit",
        "context": {"native": 256, "served": 256},
    }
    overlay.write_text(yaml.safe_dump({"schema": "llmbench.models/1", "local": {"hubby": entry}}))
    planned = plan_variant(
        QuantizeRequest(name="hubby", method="int8"), load_registry([overlay]), Settings.from_env()
    )
    assert planned.plan is not None
    source = planned.plan.spec.source
    assert (source.repo, source.revision, source.path) == ("org/hubby", sha, snapshot)
    assert planned.out_dir == hermetic_env / "models" / "hubby-int8"
