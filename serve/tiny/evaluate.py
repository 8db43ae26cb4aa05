"""Exact-match accuracy of a checkpoint on chat questions, by greedy batched generation in transformers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict

from serve.errors import ModelBuildError
from serve.tiny._hf import hf_progress_off, transformers_module


class ExactScores(TypedDict):
    """Exact-match accuracy (0..1) overall and per area, with item counts."""

    overall: float
    n: int
    per_area: dict[str, float]
    n_per_area: dict[str, int]


def evaluate_exact(
    model_dir: Path,
    items: Sequence[Mapping[str, str]],
    *,
    max_new_tokens: int = 16,
    batch_size: int = 32,
) -> ExactScores:
    """Greedy-generate an answer to each item's prompt (ChatML) and score it against its reference."""
    try:
        import torch

        hf = transformers_module()
    except ImportError as exc:
        raise ModelBuildError("evaluating a model needs the hf extra: pip install 'llmbench[hf]'") from exc
    try:
        tokenizer = hf.AutoTokenizer.from_pretrained(str(model_dir))
        with hf_progress_off():
            model = hf.AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelBuildError(f"cannot load the model in {model_dir}: {exc}") from exc
    tokenizer.padding_side = "left"  # batched generation needs the prompts aligned on the right
    model.eval()
    correct: dict[str, int] = {}
    total: dict[str, int] = {}
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        prompts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": item["prompt"]}], tokenize=False, add_generation_prompt=True
            )
            for item in chunk
        ]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        answers = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for item, answer in zip(chunk, answers, strict=True):
            area = item.get("area", "all")
            total[area] = total.get(area, 0) + 1
            correct[area] = correct.get(area, 0) + int(answer.strip() == item["reference"].strip())
    n = sum(total.values())
    return ExactScores(
        overall=sum(correct.values()) / n if n else 0.0,
        n=n,
        per_area={area: correct[area] / total[area] for area in total},
        n_per_area=dict(total),
    )
