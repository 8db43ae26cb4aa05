"""Builtin tiny models: tiny-random builds reproducibly; tiny-skills trains, pinned, into the reference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from serve.errors import ModelBuildError
from serve.tiny import (
    AREAS,
    BuildResult,
    build_builtin,
    content_sha256,
    evaluate_exact,
    skills_suite,
    suite_jsonl,
)
from serve.tiny.build import MANIFEST
from serve.tiny.pinned import PINNED_CAPABILITY, PINNED_ENV
from serve.tiny.recipe import recipe_fingerprint
from serve.tiny.reference import check_build

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[2]
SHIPPED_SUITE = REPO / "bench" / "suites" / "tiny-skills.jsonl"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_random(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    return build_builtin("tiny-random", tmp_path_factory.mktemp("random") / "tiny-random")


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


@pytest.mark.slow  # about 2.9 s: scripts/test runs it, scripts/check stays under a minute
def test_tiny_random_has_the_promised_shape(tiny_random: BuildResult) -> None:
    config = json.loads((tiny_random.path / "config.json").read_text())
    assert 15_000_000 <= tiny_random.params <= 25_000_000
    assert config["vocab_size"] == 8192
    assert config["head_dim"] in (32, 64, 80, 96, 128)
    assert config["hidden_size"] % 64 == 0 and config["intermediate_size"] % 64 == 0
    files = [p for p in tiny_random.path.iterdir() if p.name != MANIFEST]
    assert tiny_random.bytes == sum(p.stat().st_size for p in files)
    assert tiny_random.sha256 == content_sha256(tiny_random.path)
    generation = json.loads((tiny_random.path / "generation_config.json").read_text())
    assert generation.get("do_sample") in (None, False)
    assert generation["eos_token_id"] == config["eos_token_id"]


def test_tiny_random_tokenizer_is_chatml_with_left_padding(tiny_random: BuildResult) -> None:
    saved = json.loads((tiny_random.path / "tokenizer_config.json").read_text())
    assert saved["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "<|im_start|>" in saved["chat_template"]
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny_random.path))
    assert len(tok) == 8192
    assert tok.padding_side == "left"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    text = tok.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tok("The capital of France is Paris.")["input_ids"]
    assert 3 <= len(ids) <= 12  # a trained BPE, not one token per byte
    assert tok.decode(ids) == "The capital of France is Paris."


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_tiny_random_generates_in_transformers(tiny_random: BuildResult) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny_random.path))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_random.path))
    assert model.dtype == torch.bfloat16
    enc = tok(["Hello", "What is the capital of Peru?"], return_tensors="pt", padding=True)
    out = model.generate(
        **enc, max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id
    )
    assert out.shape == (2, enc["input_ids"].shape[1] + 8)


@pytest.mark.slow
def test_same_seed_gives_identical_weights_and_another_seed_differs(
    tiny_random: BuildResult, tmp_path: Path
) -> None:
    again = build_builtin("tiny-random", tmp_path / "again")
    other = build_builtin("tiny-random", tmp_path / "other", seed=1)
    weights = (tiny_random.path / "model.safetensors").read_bytes()
    assert (again.path / "model.safetensors").read_bytes() == weights
    assert again.sha256 == tiny_random.sha256
    assert other.sha256 != tiny_random.sha256


def test_a_complete_build_is_reused(tiny_random: BuildResult) -> None:
    messages: list[str] = []
    again = build_builtin("tiny-random", tiny_random.path, progress=messages.append)
    assert again.reused
    assert again.sha256 == tiny_random.sha256 and again.params == tiny_random.params
    assert any("reusing" in m for m in messages)


@pytest.mark.slow  # about 1.0 s: scripts/test runs it, scripts/check stays under a minute
def test_a_stale_build_is_replaced(tiny_random: BuildResult, tmp_path: Path) -> None:
    dest = tmp_path / "model"
    shutil.copytree(tiny_random.path, dest)
    manifest = json.loads((dest / MANIFEST).read_text())
    (dest / MANIFEST).write_text(json.dumps({**manifest, "builder_version": -1}))
    rebuilt = build_builtin("tiny-random", dest)
    assert not rebuilt.reused and rebuilt.sha256 == tiny_random.sha256
    assert _siblings(dest) == ["model"]


class _Interrupted(Exception):
    pass


def test_a_failed_build_leaves_no_folder(tmp_path: Path) -> None:
    dest = tmp_path / "model"

    def fail_on_save(message: str) -> None:
        if message == "saving":
            raise _Interrupted

    with pytest.raises(_Interrupted):
        build_builtin("tiny-random", dest, progress=fail_on_save)
    assert _siblings(dest) == []


def test_a_failed_rebuild_keeps_the_previous_build(tiny_random: BuildResult, tmp_path: Path) -> None:
    dest = tmp_path / "model"
    shutil.copytree(tiny_random.path, dest)

    def fail(message: str) -> None:
        if message == "saving":
            raise _Interrupted

    with pytest.raises(_Interrupted):
        build_builtin("tiny-random", dest, seed=5, progress=fail)
    assert _siblings(dest) == ["model"]
    assert content_sha256(dest) == tiny_random.sha256


def test_foreign_folder_and_unknown_generator_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ModelBuildError, match="not an llmbench build"):
        build_builtin("tiny-random", foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(ModelBuildError, match="unknown builtin generator"):
        build_builtin("tiny-huge", tmp_path / "x")  # type: ignore[arg-type]


def test_shipped_suite_equals_the_generator() -> None:
    items = skills_suite()
    assert SHIPPED_SUITE.read_text(encoding="utf-8") == suite_jsonl(items)
    assert len(items) == 400 and len({i["id"] for i in items}) == 400
    assert len({i["prompt"] for i in items}) == 400
    assert {i["area"] for i in items} == {"arithmetic", "lookup", "string", "comparison"}
    assert items[0].keys() == {"id", "area", "prompt", "reference", "scorer"}


def test_tiny_random_is_the_reference_build(tiny_random: BuildResult) -> None:
    # Initialisation only (in process): the same weights on every CPU with AVX2.
    got = check_build("tiny-random", seed=0, builder_version=tiny_random.builder_version,
                      recipe=recipe_fingerprint("tiny-random"), sha256=tiny_random.sha256, scores=None,
                      numerics=tiny_random.numerics)  # fmt: skip
    assert got.matches, got.warning_lines()
    manifest = json.loads((tiny_random.path / MANIFEST).read_text())
    assert manifest["numerics"]["cpu_capability"] == tiny_random.numerics["cpu_capability"]  # type: ignore[index]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 2 minutes of pinned training on idle cores; far more on a shared machine
def test_tiny_skills_is_the_reference_build(tiny_skills_build: BuildResult) -> None:
    """On any x86-64 CPU with AVX2 (AMD EPYC or Intel Xeon in CI): the canonical weights and scores."""
    tiny_skills = tiny_skills_build
    # What the build was, shown with any failed assertion (tests do not print).
    seen = (
        f"tiny-skills: {tiny_skills.params:,} params, {tiny_skills.seconds:.1f} s build, "
        f"{tiny_skills.train_steps} steps, loss {tiny_skills.train_loss}, sha256 {tiny_skills.sha256}"
    )
    manifest = json.loads((tiny_skills.path / MANIFEST).read_text())
    assert manifest["sha256"] == tiny_skills.sha256 == content_sha256(tiny_skills.path), seen
    scores = manifest["scores"]
    assert scores["n"] == 400 and scores["n_per_area"] == dict.fromkeys(AREAS, 100)
    assert set(scores["per_area"]) == set(AREAS)
    assert manifest["numerics"]["cpu_capability"] == PINNED_CAPABILITY
    assert manifest["numerics"]["env"] == dict(PINNED_ENV)
    got = check_build("tiny-skills", seed=0, builder_version=manifest["builder_version"],
                      recipe=manifest["recipe"], sha256=manifest["sha256"], scores=scores,
                      numerics=manifest["numerics"])  # fmt: skip
    assert got.matches, "\n".join([seen, *got.warning_lines()])
    # The same checkpoint scored in this process (torch's own kernels here): the same exact matches, give or
    # take an answer decided by a rounding-level margin.
    here = evaluate_exact(tiny_skills.path, skills_suite())
    assert abs(here["overall"] - scores["overall"]) <= 0.01, (here, scores)
