"""A tiny-model build is compared with the canonical build: `llmbench pull` prints its sha256 and
held-out scores, and warns (areas, reference values, CPU capability) when they differ from the reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from serve.tiny.build import BUILDER_VERSION, MANIFEST, content_sha256
from serve.tiny.pinned import PINNED_CAPABILITY, PINNED_ENV
from serve.tiny.recipe import recipe_fingerprint
from serve.tiny.reference import Reference, ReferenceCheck, check_build, load_references
from serve.tiny.skills_data import AREAS

REF = Reference(
    generator="tiny-skills", seed=0, builder_version=BUILDER_VERSION, recipe="r1", sha256="a" * 64,
    per_area={"arithmetic": 0.43, "comparison": 0.96, "lookup": 0.67, "string": 0.99}, overall=0.7625,
    cpu_capability="AVX2", built_on="Intel Xeon (AVX-512)",
)  # fmt: skip


def scores(per_area: dict[str, float]) -> dict[str, object]:
    return {"overall": sum(per_area.values()) / 4, "n": 400, "per_area": per_area, "n_per_area": {}}


def check(
    sha256: str, per_area: dict[str, float], capability: str = "AVX2", recipe: str = "r1"
) -> ReferenceCheck:
    return check_build(
        "tiny-skills", seed=0, builder_version=BUILDER_VERSION, recipe=recipe, sha256=sha256,
        scores=scores(per_area), numerics={"cpu_capability": capability}, references={"tiny-skills": REF},
    )  # fmt: skip


def test_a_build_that_matches_gets_no_warning() -> None:
    got = check("a" * 64, dict(REF.per_area))
    assert got.matches and got.warning_lines() == []


def test_a_build_that_differs_names_the_areas_the_reference_values_and_the_capability() -> None:
    got = check("b" * 64, {**REF.per_area, "arithmetic": 0.68, "lookup": 0.5}, capability="AVX512")
    lines = got.warning_lines()
    assert not got.matches
    assert lines[0].startswith("this tiny-skills build differs from the reference build (seed 0")
    assert f"sha256 {'b' * 64} here, {'a' * 64} in the reference" in lines
    assert "arithmetic: 0.680 here, 0.430 in the reference" in lines
    assert "lookup: 0.500 here, 0.670 in the reference" in lines
    assert not any(line.startswith(("string", "comparison")) for line in lines)
    assert (
        lines[-1]
        == "built with torch CPU capability AVX512; the reference: AVX2, built on Intel Xeon (AVX-512)"
    )


def test_same_weights_with_other_scores_still_warn_and_another_recipe_has_no_reference() -> None:
    assert check("a" * 64, {**REF.per_area, "string": 1.0}).warning_lines()[1:2] == [
        "string: 1.000 here, 0.990 in the reference"
    ]
    other = check("b" * 64, {}, recipe="r2")
    assert other.reference is None and not other.matches and other.warning_lines() == []


def test_the_shipped_reference_is_for_the_current_recipe() -> None:
    refs = load_references()
    skills, random = refs["tiny-skills"], refs["tiny-random"]
    for ref in (skills, random):
        assert (ref.seed, ref.builder_version) == (0, BUILDER_VERSION)
        assert ref.recipe == recipe_fingerprint(ref.generator), (
            f"rebuild and update the {ref.generator} reference"
        )
        assert len(ref.sha256) == 64
    assert set(skills.per_area) == set(AREAS) and skills.cpu_capability == PINNED_CAPABILITY
    assert skills.overall == pytest.approx(sum(skills.per_area.values()) / len(AREAS))


def fake_build(folder: Path, per_area: dict[str, float], capability: str) -> str:
    """A folder that `build_builtin` reuses as a complete current tiny-skills build (its files are fakes)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"not the reference weights")
    sha = content_sha256(folder)
    manifest = {
        "generator": "tiny-skills", "seed": 0, "params": 279296, "bytes": 27, "seconds": 100.0, "sha256": sha,
        "builder_version": BUILDER_VERSION, "recipe": recipe_fingerprint("tiny-skills"), "train_steps": 1,
        "train_loss": 0.1, "scores": scores(per_area),
        "numerics": {"cpu_capability": capability, "env": dict(PINNED_ENV)},
    }  # fmt: skip
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return sha


def test_pull_prints_the_sha_and_scores_and_warns_on_stderr(
    hermetic_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = load_references()["tiny-skills"]
    per_area = {**ref.per_area, "arithmetic": ref.per_area["arithmetic"] + 0.25}
    sha = fake_build(hermetic_env / "models" / "tiny-skills", per_area, "AVX2")
    assert main(["pull", "tiny-skills"]) in (0, None)
    out, err = capsys.readouterr()
    assert f"build: sha256 {sha} (seed 0, reused, torch CPU capability AVX2)" in out
    assert "held-out exact match (400 items): overall" in out
    assert f"arithmetic {per_area['arithmetic']:.3f}" in out
    assert "warning: this tiny-skills build differs from the reference build" in err
    assert f"  sha256 {sha} here, {ref.sha256} in the reference" in err
    expected = (
        f"  arithmetic: {per_area['arithmetic']:.3f} here, {ref.per_area['arithmetic']:.3f} in the reference"
    )
    assert expected in err
    assert "  built with torch CPU capability AVX2; the reference: AVX2, built on" in err
    assert "lookup:" not in err


def test_pull_json_carries_the_build_and_its_reference(
    hermetic_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = load_references()["tiny-skills"]
    sha = fake_build(hermetic_env / "models" / "tiny-skills", dict(ref.per_area), "AVX512")
    main(["pull", "tiny-skills", "--json"])
    build = json.loads(capsys.readouterr().out)["build"]
    assert build["sha256"] == sha and build["reference_sha256"] == ref.sha256
    assert build["per_area"] == ref.per_area and build["reference_per_area"] == ref.per_area
    assert build["matches_reference"] is False and build["cpu_capability"] == "AVX512"
    assert build["warnings"][1] == f"sha256 {sha} here, {ref.sha256} in the reference"
