"""Continuous batching over a transformers causal LM, run by one engine thread.

The running batch keeps one left-padded KV cache: rows are requests, a 2D attention mask marks the padding
and each row carries its own position id, exactly the layout `generate()` uses for a left-padded batch, so
greedy output matches `generate(do_sample=False)`. New requests are prefilled together and joined to the
batch before the next decoding step (both caches are left-padded to the longer one); finished rows leave the
batch and all-padding columns on the left are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from serve.errors import ServerStartError
from serve.hf.sequence import (
    Event,
    Failed,
    Finished,
    FinishReason,
    IncrementalDetokenizer,
    Outbox,
    PromptLogprobs,
    SamplingParams,
    SequenceState,
    TokenLogprob,
)

log = logging.getLogger(__name__)


@dataclass
class EngineStats:
    """Counters read by /metrics (written by the engine thread only)."""

    running: int = 0
    waiting: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    finished: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class _Batch:
    """The running batch: a left-padded KV cache, its mask [rows, cols] and each row's next position."""

    cache: DynamicCache
    mask: torch.Tensor
    pos: torch.Tensor
    rows: list[SequenceState]

    def layers(self) -> list[DynamicLayer]:
        # HfEngine checked at start that every layer of this model's cache is a plain DynamicLayer.
        return cast(list[DynamicLayer], list(self.cache.layers))

    def select(self, keep: list[int]) -> None:
        """Keep only these rows, then drop leading columns that are padding in every row."""
        idx = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        mask = self.mask.index_select(0, idx)
        lead = int((mask.sum(0) > 0).int().argmax())
        self.mask = mask[:, lead:]
        self.pos = self.pos.index_select(0, idx)
        for layer in self.layers():
            assert layer.keys is not None and layer.values is not None
            layer.keys = layer.keys.index_select(0, idx)[:, :, lead:]
            layer.values = layer.values.index_select(0, idx)[:, :, lead:]
        self.rows = [self.rows[i] for i in keep]

    def extend(self, other: _Batch) -> None:
        """Append other's rows, left-padding whichever cache is shorter."""
        cols = max(self.mask.shape[1], other.mask.shape[1])

        def pad(t: torch.Tensor, dim_from_end: int) -> torch.Tensor:
            missing = cols - t.shape[-dim_from_end]
            if missing == 0:
                return t
            spec = [0, 0] * (dim_from_end - 1) + [missing, 0]
            return torch.nn.functional.pad(t, spec)

        self.mask = torch.cat([pad(self.mask, 1), pad(other.mask, 1)])
        self.pos = torch.cat([self.pos, other.pos])
        for mine, theirs in zip(self.layers(), other.layers(), strict=True):
            assert mine.keys is not None and mine.values is not None
            assert theirs.keys is not None and theirs.values is not None
            mine.keys = torch.cat([pad(mine.keys, 2), pad(theirs.keys, 2)])
            mine.values = torch.cat([pad(mine.values, 2), pad(theirs.values, 2)])
        self.rows += other.rows


def cache_kwarg(model: Any) -> str:
    """The name `model.forward` takes the KV cache by: `cache` (transformers ≥ 5.24) or `past_key_values`.

    transformers 5.24 renamed the argument and warns (FutureWarning, removal in 5.40) on the old name;
    older releases know only `past_key_values`. The signature tells which, without a version table.
    """
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _deliver(items: list[tuple[asyncio.Queue[Event], Event]]) -> None:
    for queue, event in items:
        queue.put_nowait(event)


class HfEngine:
    """Runs generation for many requests at once in a background thread; thread-safe submit/abort."""

    def __init__(
        self, model: Any, tokenizer: Any, *, max_batch_size: int, max_model_len: int, seed: int = 0
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.max_model_len = max_model_len
        self.stats = EngineStats()
        self.device = model.device
        self._cache_kw = cache_kwarg(model)
        layers = DynamicCache(config=model.config).layers
        if not layers or any(type(layer) is not DynamicLayer for layer in layers):
            raise ServerStartError(
                "the hf backend batches full-attention caches only; this model uses sliding-window or "
                "other cache layers (serve it with vLLM)"
            )
        eos = model.generation_config.eos_token_id
        eos_list = eos if isinstance(eos, list) else [eos]
        if tokenizer.eos_token_id is not None:
            eos_list.append(tokenizer.eos_token_id)
        self.eos_ids = frozenset(int(e) for e in eos_list if e is not None)
        pad = tokenizer.pad_token_id
        self._pad_id = int(pad if pad is not None else min(self.eos_ids, default=0))
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", False):
            # The Rust decoder directly: same text as tokenizer.decode for these tokenizers, several x faster.
            self._decode_fn = lambda ids: str(backend.decode(ids, skip_special_tokens=True))
        else:
            self._decode_fn = lambda ids: str(tokenizer.decode(ids, skip_special_tokens=True))
        self._rng = random.Random(seed)
        self._cv = threading.Condition()
        self._waiting: deque[SequenceState] = deque()
        self._aborted: set[int] = set()
        self._next_rid = 0
        self._stopping = False
        self._batch: _Batch | None = None
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue[Event], Event]]] = {}
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start the engine thread."""
        self._thread = threading.Thread(target=self._run, name="hf-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the engine thread; unfinished requests get a Failed event."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        """True while the engine thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, prompt_ids: Sequence[int], params: SamplingParams, outbox: Outbox) -> int:
        """Queue a request; its events arrive on outbox.queue. Returns the id to abort it with."""
        generator = None
        if params.temperature > 0:
            seed = params.seed if params.seed is not None else self._rng.getrandbits(63)
            generator = torch.Generator(device=self.device).manual_seed(seed)
        with self._cv:
            rid = self._next_rid
            self._next_rid += 1
            seq = SequenceState(
                rid=rid,
                prompt_ids=list(prompt_ids),
                params=params,
                outbox=outbox,
                detok=IncrementalDetokenizer(self._decode_fn, prompt_ids),
                eos_ids=self.eos_ids,
                generator=generator,
            )
            self._waiting.append(seq)
            self.stats.waiting = len(self._waiting)
            self._cv.notify()
        return rid

    def abort(self, rid: int) -> None:
        """Drop a request (its client went away); it leaves the batch at the next step."""
        with self._cv:
            still_waiting = [s for s in self._waiting if s.rid == rid]
            if still_waiting:
                self._waiting.remove(still_waiting[0])
                self.stats.finished["abort"] += 1
            else:
                self._aborted.add(rid)
            self._cv.notify()

    # ---- engine thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cv:
                    while not (self._stopping or self._waiting or self._batch):
                        self._cv.wait()
                    if self._stopping:
                        break
                    room = self.max_batch_size - (len(self._batch.rows) if self._batch else 0)
                    admitted = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
                    aborted, self._aborted = self._aborted, set()
                    self.stats.waiting = len(self._waiting)
                self._step([s for s in admitted if s.rid not in aborted], aborted)
                self._flush()
        except BaseException as exc:  # the server reports a dead engine on /health and to serve_hf
            self.error = exc
            log.exception("hf engine thread died")
            raise
        finally:
            leftover = list(self._waiting) + (self._batch.rows if self._batch else [])
            for seq in leftover:
                self._emit(seq, Failed("the server is shutting down"))
            self._batch = None
            self.stats.running = 0
            self._flush()

    def _step(self, admitted: list[SequenceState], aborted: set[int]) -> None:
        batch = self._batch
        try:
            if batch is not None and aborted:
                keep = [i for i, s in enumerate(batch.rows) if s.rid not in aborted]
                for s in batch.rows:
                    if s.rid in aborted:
                        self.stats.finished["abort"] += 1
                self._keep(keep)
            with torch.inference_mode():
                # Echo requests need logits at every prompt position: prefill them apart so the others
                # keep only the last position's logits (vocab x prompt length floats otherwise).
                plain = [s for s in admitted if s.params.prompt_logprobs is None]
                echo = [s for s in admitted if s.params.prompt_logprobs is not None]
                for group in (plain, echo):
                    if group:
                        self._prefill(group)
                if self._batch is not None:
                    self._decode()
        except Exception as exc:  # a failed forward pass fails its requests, not the server
            log.exception("hf engine step failed")
            rows = self._batch.rows if self._batch else []
            for seq in {id(s): s for s in [*rows, *admitted]}.values():
                if seq.finish_reason is None:
                    self._emit(seq, Failed(f"generation failed: {exc}"))
            self._batch = None
        self.stats.running = len(self._batch.rows) if self._batch else 0

    def _keep(self, keep: list[int]) -> None:
        assert self._batch is not None
        if not keep:
            self._batch = None
        elif len(keep) < len(self._batch.rows):
            self._batch.select(keep)

    def _prefill(self, seqs: list[SequenceState]) -> None:
        width = max(len(s.prompt_ids) for s in seqs)
        ids = torch.full((len(seqs), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s.prompt_ids) :] = torch.tensor(s.prompt_ids)
            mask[i, width - len(s.prompt_ids) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        want_prompt = any(s.params.prompt_logprobs is not None for s in seqs)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            **{self._cache_kw: cache},
            use_cache=True,
            logits_to_keep=0 if want_prompt else 1,
        )
        logits = out.logits
        for i, s in enumerate(seqs):
            self.stats.prompt_tokens += len(s.prompt_ids)
            if s.params.prompt_logprobs is not None:
                self._emit(s, self._prompt_logprobs(s, logits[i, width - len(s.prompt_ids) :]))
        generating = [i for i, s in enumerate(seqs) if s.params.max_tokens > 0]
        for s in seqs:
            if s.params.max_tokens == 0:
                s.finish_reason = "length"
                self._finish(s)
        if not generating:
            return
        last = logits[generating, -1, :].float()
        keep = self._sample_and_append([seqs[i] for i in generating], last)
        rows = [generating[k] for k in keep]
        if not rows:
            return
        new = _Batch(cache, mask, mask.sum(-1), [seqs[i] for i in range(len(seqs))])
        new.select(rows)
        if self._batch is None:
            self._batch = new
        else:
            self._batch.extend(new)

    def _decode(self) -> None:
        batch = self._batch
        assert batch is not None
        ids = torch.tensor([[s.next_token] for s in batch.rows], dtype=torch.long, device=self.device)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch.rows), 1))], dim=1)
        out = self.model(
            input_ids=ids,
            attention_mask=batch.mask,
            position_ids=batch.pos[:, None],
            **{self._cache_kw: batch.cache},
            use_cache=True,
            logits_to_keep=1,
        )
        batch.pos = batch.pos + 1
        keep = self._sample_and_append(batch.rows, out.logits[:, -1, :].float())
        self._keep(keep)

    def _sample_and_append(self, seqs: list[SequenceState], logits: torch.Tensor) -> list[int]:
        """Pick the next token of each row (logits [rows, vocab], float32); return the rows still running."""
        raw = logits
        blocked = [i for i, s in enumerate(seqs) if s.blocks_eos]
        if blocked and self.eos_ids:
            logits = logits.clone()
            logits[torch.tensor(blocked)[:, None], torch.tensor(sorted(self.eos_ids))[None, :]] = -float(
                "inf"
            )
        tokens = logits.argmax(-1).tolist()
        for i, s in enumerate(seqs):
            if s.params.temperature > 0:
                tokens[i] = _sample(logits[i], s.params, s.generator)
        wants = [i for i, s in enumerate(seqs) if s.params.logprobs is not None]
        logprobs: dict[int, TokenLogprob] = {}
        if wants:
            lsm = torch.log_softmax(raw[wants], dim=-1)
            for j, i in enumerate(wants):
                k = seqs[i].params.logprobs or 0
                logprobs[i] = _token_logprob(lsm[j], tokens[i], k)
        keep = []
        for i, s in enumerate(seqs):
            delta = s.append(tokens[i], logprobs.get(i))
            self.stats.generation_tokens += 1
            self._emit(s, delta)
            if s.finish_reason is None:
                keep.append(i)
            else:
                self._finish(s)
        return keep

    def _prompt_logprobs(self, seq: SequenceState, logits: torch.Tensor) -> PromptLogprobs:
        """Logprobs of each prompt token given the ones before it (logits [prompt_len, vocab])."""
        lsm = torch.log_softmax(logits[:-1].float(), dim=-1)
        k = seq.params.prompt_logprobs or 0
        ids = seq.prompt_ids
        entries: list[TokenLogprob | None] = [None]
        entries += [_token_logprob(lsm[j], ids[j + 1], k) for j in range(len(ids) - 1)]
        return PromptLogprobs(tuple(entries))

    def _finish(self, seq: SequenceState) -> None:
        reason: FinishReason = seq.finish_reason or "stop"
        self.stats.finished[reason] += 1
        self._emit(seq, Finished(reason, len(seq.prompt_ids), len(seq.output_ids)))

    def _emit(self, seq: SequenceState, event: Event) -> None:
        self._pending.setdefault(seq.outbox.loop, []).append((seq.outbox.queue, event))

    def _flush(self) -> None:
        """Hand this step's events to each event loop in one call (one wake-up per loop, not per token)."""
        pending, self._pending = self._pending, {}
        for loop, items in pending.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: its clients are gone
                loop.call_soon_threadsafe(_deliver, items)


def _sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> int:
    """Sample one token from logits [vocab] with temperature and nucleus (top-p) filtering."""
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        cum = sorted_probs.cumsum(-1)
        sorted_probs[(cum - sorted_probs) > params.top_p] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator).item())


def _token_logprob(lsm: torch.Tensor, token_id: int, k: int) -> TokenLogprob:
    top: tuple[tuple[int, float], ...] = ()
    if k > 0:
        values, indices = lsm.topk(k)
        top = tuple(zip(indices.tolist(), values.tolist(), strict=True))
    return TokenLogprob(token_id, float(lsm[token_id]), top)
