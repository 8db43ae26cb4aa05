"""Training loop of tiny-skills: a few thousand AdamW steps on fresh synthetic questions, on CPU.

The weights depend on the seed, the step count and the numerical code paths torch and MKL take (the data
comes from a seeded Python RNG, the initialisation from a seeded torch RNG forked from the caller's), never
on wall time. The code paths differ between CPUs unless pinned: build.py trains in serve.tiny.pinned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from tokenizers import Tokenizer

from serve.tiny.recipe import TrainSettings
from serve.tiny.skills_data import SkillSampler
from serve.tiny.tokenizer import IM_END, PAD_TOKEN, chatml_prompt, token_id

_IGNORE = -100  # label value the loss skips


@dataclass(frozen=True)
class TrainReport:
    """What a training run did: steps, loss over the last steps, wall time in seconds."""

    steps: int
    final_loss: float
    seconds: float


def lr_factor(step: int, settings: TrainSettings) -> float:
    """Linear warm-up, then cosine from 1 down to final_lr_frac at the last step."""
    warmup = max(1, round(settings.steps * settings.warmup_frac))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, settings.steps - warmup)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return settings.final_lr_frac + (1.0 - settings.final_lr_frac) * cosine


def _encode_batch(tok: Tokenizer, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, ...]:
    """Right-padded ids, attention mask and labels that score only the answer and its EOS."""
    eos, pad = token_id(tok, IM_END), token_id(tok, PAD_TOKEN)
    prompts = tok.encode_batch([chatml_prompt(p) for p, _ in pairs])
    answers = tok.encode_batch([a for _, a in pairs])
    rows: list[tuple[list[int], list[int]]] = []
    for prompt, answer in zip(prompts, answers, strict=True):
        target = [*answer.ids, eos]
        rows.append(([*prompt.ids, *target], [_IGNORE] * len(prompt.ids) + target))
    width = max(len(ids) for ids, _ in rows)
    ids_t = torch.full((len(rows), width), pad, dtype=torch.long)
    mask_t = torch.zeros((len(rows), width), dtype=torch.long)
    labels_t = torch.full((len(rows), width), _IGNORE, dtype=torch.long)
    for i, (ids, labels) in enumerate(rows):
        ids_t[i, : len(ids)] = torch.tensor(ids)
        mask_t[i, : len(ids)] = 1
        labels_t[i, : len(labels)] = torch.tensor(labels)
    return ids_t, mask_t, labels_t


def train_skills(
    model: Any,
    tok: Tokenizer,
    held_out: Iterable[str],
    *,
    seed: int,
    settings: TrainSettings,
    progress: Callable[[str], None] | None = None,
) -> TrainReport:
    """Train `model` in place on fresh questions (never the held-out prompts) for settings.steps steps."""
    sampler = SkillSampler(seed, held_out)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "norm" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=settings.betas,
        fused=True,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, settings))
    # One thread: the ops of a 0.3M-parameter model are too small to split, and two OpenMP threads on a
    # busy machine spin at barriers (measured 10x slower than one). The result does not depend on it.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _loop(model, tok, sampler, optimizer, schedule, settings, progress)
    finally:
        torch.set_num_threads(threads)


def _answer_loss(model: Any, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the answer tokens only, with logits computed for those positions alone.

    The batch is right-padded, so under causal attention no real token sees the padding: no attention
    mask is needed (and without one, attention takes its plain causal path).
    """
    hidden = model.model(input_ids=ids, use_cache=False).last_hidden_state[:, :-1]
    targets = labels[:, 1:]
    keep = targets != _IGNORE
    logits = model.lm_head(hidden[keep])
    return torch.nn.functional.cross_entropy(logits, targets[keep])


def _loop(
    model: Any,
    tok: Tokenizer,
    sampler: SkillSampler,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    settings: TrainSettings,
    progress: Callable[[str], None] | None,
) -> TrainReport:
    """The optimisation loop proper (see train_skills)."""
    model.train()
    recent: list[float] = []
    start = time.perf_counter()
    for step in range(settings.steps):
        batch = sampler.batch(settings.batch_size)
        ids, _mask, labels = _encode_batch(tok, [(q.prompt, q.answer) for q in batch])
        loss: Any = _answer_loss(model, ids, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
        optimizer.step()
        schedule.step()
        recent = [*recent[-49:], float(loss.detach())]
        if progress is not None and ((step + 1) % settings.log_every == 0 or step + 1 == settings.steps):
            progress(f"step {step + 1}/{settings.steps} loss {sum(recent) / len(recent):.4f}")
    model.eval()
    return TrainReport(
        steps=settings.steps,
        final_loss=sum(recent) / max(1, len(recent)),
        seconds=time.perf_counter() - start,
    )
