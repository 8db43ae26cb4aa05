"""Build the builtin tiny models (`tiny-random`, `tiny-skills`) into a folder, offline and reproducibly.

A build goes into a hidden sibling folder and is renamed into place only when complete, with a
`llmbench-build.json` manifest written last (sha256 of the files, the numerical setup, and for tiny-skills
its exact-match scores per area on the held-out questions); a folder holding a complete build of the same
builder version, recipe and seed is reused as it is. tiny-skills trains in a pinned subprocess
(serve.tiny.pinned) so that every x86-64 CPU with AVX2 reaches the same weights; serve.tiny.reference says
whether a build matches the canonical one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from serve.errors import ModelBuildError
from serve.tiny._hf import hf_progress_off, transformers_module
from serve.tiny.pinned import numerics, run_pinned
from serve.tiny.recipe import (
    RANDOM_ARCH,
    RANDOM_VOCAB,
    SKILLS_ARCH,
    SKILLS_TRAIN,
    Arch,
    recipe_fingerprint,
)

Generator = Literal["tiny-random", "tiny-skills"]
GENERATORS: tuple[str, ...] = get_args(Generator)
MANIFEST = "llmbench-build.json"
# Bump when a change to this package changes the files a build writes: older builds are then rebuilt.
# 2: tiny-skills trains in a pinned subprocess, on the answer tokens only, and records its scores.
BUILDER_VERSION = 2
_HASH_CHUNK = 1 << 20  # bytes read at a time when hashing


@dataclass(frozen=True)
class BuildResult:
    """A finished build: its folder, parameter count, size on disk (bytes), build time (s) and hash."""

    generator: str
    path: Path
    seed: int
    params: int
    bytes: int
    seconds: float
    sha256: str  # over every file of the folder but the manifest, names included
    builder_version: int = BUILDER_VERSION
    train_steps: int | None = None
    train_loss: float | None = None  # mean loss over the last training steps (tiny-skills)
    # tiny-skills: exact match on the held-out questions (overall, n, per_area, n_per_area)
    scores: dict[str, Any] | None = None
    numerics: dict[str, Any] | None = None  # torch's CPU kernel set, pinning variables, versions
    reused: bool = False  # True when an existing complete build was returned


def content_sha256(folder: Path) -> str:
    """sha256 over the names and bytes of every file in `folder` except the build manifest."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name != MANIFEST):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(_HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _reusable(dest: Path, generator: str, seed: int, steps: int | None) -> BuildResult | None:
    """The build already in `dest` when it is complete, current and of the same generator and seed."""
    data = _read_manifest(dest)
    if data is None or (data.get("generator"), data.get("seed")) != (generator, seed):
        return None
    current = (BUILDER_VERSION, recipe_fingerprint(generator, steps))
    if (data.get("builder_version"), data.get("recipe")) != current:
        return None
    # A file edited or lost since the build makes it stale, not reusable.
    if content_sha256(dest) != data.get("sha256"):
        return None
    fields = {k: v for k, v in data.items() if k in BuildResult.__dataclass_fields__}
    return BuildResult(**{**fields, "path": dest, "reused": True})


def _save_model_config(model: Any, folder: Path, eos_id: int, pad_id: int) -> None:
    """Save weights, config and a generation config that sets EOS and padding but no sampling."""
    model.generation_config = transformers_module().GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)
    with hf_progress_off():
        model.save_pretrained(str(folder))


def _llama(arch: Arch, vocab: int, eos_id: int, pad_id: int) -> Any:
    hf = transformers_module()
    config = hf.LlamaConfig(
        vocab_size=vocab,
        hidden_size=arch.hidden,
        intermediate_size=arch.intermediate,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        num_key_value_heads=arch.heads,
        head_dim=arch.head_dim,
        max_position_embeddings=arch.max_positions,
        tie_word_embeddings=arch.tied,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    return hf.LlamaForCausalLM(config)


def _build_random(folder: Path, seed: int, say: Callable[[str], None], _steps: int | None) -> dict[str, Any]:
    import torch

    from serve.tiny import tokenizer as tk

    say(f"training a {RANDOM_VOCAB}-token BPE tokenizer on generated text")
    tok = tk.train_bpe_tokenizer(tk.local_corpus(seed), RANDOM_VOCAB)
    eos_id, pad_id = tk.token_id(tok, tk.IM_END), tk.token_id(tok, tk.PAD_TOKEN)
    say("initialising random weights")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _llama(RANDOM_ARCH, RANDOM_VOCAB, eos_id, pad_id)
    # bfloat16 halves the files; vLLM serves it in bfloat16 anyway.
    model = model.to(torch.bfloat16)
    say("saving")
    _save_model_config(model, folder, eos_id, pad_id)
    tk.save_tokenizer(tk.wrap_tokenizer(tok, RANDOM_ARCH.max_positions), folder)
    return {"params": sum(p.numel() for p in model.parameters())}


def _build_skills(folder: Path, seed: int, say: Callable[[str], None], steps: int | None) -> dict[str, Any]:
    import torch

    from serve.tiny.evaluate import evaluate_exact
    from serve.tiny.skills_data import SUITE_N_PER_AREA, SUITE_SEED, held_out_questions, skills_suite
    from serve.tiny.tokenizer import (
        IM_END,
        PAD_TOKEN,
        byte_tokenizer,
        save_tokenizer,
        token_id,
        wrap_tokenizer,
    )
    from serve.tiny.train import train_skills

    settings = replace(SKILLS_TRAIN, steps=steps) if steps else SKILLS_TRAIN
    tok = byte_tokenizer()
    eos_id, pad_id = token_id(tok, IM_END), token_id(tok, PAD_TOKEN)
    held_out = {q.prompt for q in held_out_questions(SUITE_N_PER_AREA, SUITE_SEED)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _llama(SKILLS_ARCH, tok.get_vocab_size(), eos_id, pad_id)
        params = sum(p.numel() for p in model.parameters())
        say(f"training {settings.steps} steps on {params:,} parameters")
        report = train_skills(model, tok, held_out, seed=seed, settings=settings, progress=say)
    say("saving")
    _save_model_config(model, folder, eos_id, pad_id)
    save_tokenizer(wrap_tokenizer(tok, SKILLS_ARCH.max_positions), folder)
    say(f"scoring {len(held_out)} held-out questions")
    scores = evaluate_exact(folder, skills_suite(SUITE_N_PER_AREA, SUITE_SEED))
    return {
        "params": params,
        "train_steps": report.steps,
        "train_loss": round(report.final_loss, 6),
        "scores": dict(scores),
    }


# (folder, seed, progress, training steps or None for the recipe's) -> what goes into the manifest
BUILDERS: dict[str, Callable[[Path, int, Callable[[str], None], int | None], dict[str, Any]]] = {
    "tiny-random": _build_random,
    "tiny-skills": _build_skills,
}
# Builders that run in a pinned subprocess (serve.tiny.pinned); tiny-random only initialises, in process:
# its weights are the same on every CPU with AVX2 (torch's DEFAULT kernels, without AVX2, draw others).
PINNED = frozenset({"tiny-skills"})


def _check_dest(dest: Path) -> None:
    """Refuse to replace a folder that is neither empty nor an earlier llmbench build."""
    if dest.is_file() or dest.is_symlink():
        raise ModelBuildError(f"{dest} exists and is not a folder; remove it or choose another destination")
    if dest.is_dir() and any(dest.iterdir()) and _read_manifest(dest) is None:
        raise ModelBuildError(
            f"{dest} already holds files that are not an llmbench build; "
            "remove it or choose another destination"
        )


def _move_into_place(tmp: Path, dest: Path) -> None:
    """Rename the finished `tmp` onto `dest`, moving an older build aside first."""
    old: Path | None = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_builtin(
    generator: Generator,
    dest: Path,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    steps: int | None = None,
) -> BuildResult:
    """Build the builtin model `generator` into `dest` (reusing a complete identical build there).

    `steps` overrides tiny-skills' training steps (a short build for tests); such a build is not the
    recipe's, and its manifest's recipe fingerprint says so.
    """
    if generator not in BUILDERS:
        raise ModelBuildError(
            f"unknown builtin generator {generator!r}; choose one of {', '.join(GENERATORS)}"
        )
    dest = Path(dest)
    say = progress or (lambda _msg: None)
    existing = _reusable(dest, generator, seed, steps)
    if existing is not None:
        say(f"reusing the complete {generator} build in {dest}")
        return existing
    _check_dest(dest)
    # Found, not imported: tiny-skills trains in a subprocess, and importing them here costs seconds.
    if any(importlib.util.find_spec(name) is None for name in ("torch", "transformers")):
        raise ModelBuildError(f"building {generator} needs the hf extra: pip install 'llmbench[hf]'")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    except OSError as exc:
        raise ModelBuildError(f"cannot create a build folder next to {dest}: {exc}") from exc
    try:
        start = time.perf_counter()
        try:
            if generator in PINNED:
                info = run_pinned(generator, tmp, seed, say, steps=steps)
            else:
                info = {**BUILDERS[generator](tmp, seed, say, steps), "numerics": numerics()}
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelBuildError(f"building {generator} failed: {exc}") from exc
        result = BuildResult(
            generator=generator,
            path=dest,
            seed=seed,
            bytes=_folder_bytes(tmp),
            seconds=round(time.perf_counter() - start, 3),
            sha256=content_sha256(tmp),
            **info,
        )
        manifest = {k: v for k, v in asdict(result).items() if k not in ("path", "reused")}
        manifest["recipe"] = recipe_fingerprint(generator, steps)
        # The manifest is written last: its presence marks the folder as complete.
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        try:
            _move_into_place(tmp, dest)
        except OSError as exc:
            raise ModelBuildError(f"cannot move the finished build into {dest}: {exc}") from exc
        say(
            f"built {generator} in {result.seconds:.1f} s: "
            f"{result.params:,} parameters, {result.bytes:,} bytes"
        )
        return result
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
