"""The hf backend's batching engine: greedy equality with generate(), joining mid-flight, stops, text."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from serve.hf.engine import HfEngine
from serve.hf.render import Collected, collect, events
from serve.hf.sequence import Delta, IncrementalDetokenizer, Outbox, SamplingParams, SequenceState
from serve.hf.server import HfServeSpec, load_engine
from serve.tiny import build_builtin

PROMPTS = [
    "the quick brown fox",
    "paris",
    "seven eleven tokyo lima rome and a very long tail of words to make this prompt longer than others",
    "cache layer weight",
    "héllo 東京 ünïcode",
    "measure latency",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_builtin("tiny-random", tmp_path_factory.mktemp("hf-engine") / "tiny-random", seed=0).path


@pytest.fixture(scope="module")
def engine(tiny_dir: Path) -> Iterator[HfEngine]:
    spec = HfServeSpec(model_dir=tiny_dir, served_model_name="tiny", dtype="float32", max_batch_size=8)
    eng = load_engine(spec)
    eng.start()
    yield eng
    eng.stop()


def _ids(engine: HfEngine, text: str) -> list[int]:
    return list(engine.tokenizer(text)["input_ids"])


def _generate(engine: HfEngine, ids: list[int], n: int) -> list[int]:
    out = engine.model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
    )
    return [int(t) for t in out[0, len(ids) :]]


def _greedy(n: int, **kw: Any) -> SamplingParams:
    return SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True, **kw)


@pytest.mark.slow  # about 4.8 s: scripts/test runs it, scripts/check stays under a minute
def test_greedy_alone_matches_generate(engine: HfEngine) -> None:
    for text in PROMPTS[:3]:
        ids = _ids(engine, text)
        result = asyncio.run(collect(engine, ids, _greedy(24)))
        assert result.token_ids == _generate(engine, ids, 24)
        assert result.finish is not None and result.finish.reason == "length"
        assert (result.finish.prompt_tokens, result.finish.completion_tokens) == (len(ids), 24)


@pytest.mark.slow  # several seconds: left to scripts/test, kept out of scripts/check
def test_greedy_batched_and_joining_mid_flight_matches_generate(engine: HfEngine) -> None:
    prompts = [_ids(engine, t) for t in PROMPTS]
    lengths = [40, 17, 30, 9, 33, 25]

    async def run() -> list[Collected]:
        first = [
            asyncio.create_task(collect(engine, p, _greedy(n)))
            for p, n in zip(prompts[:3], lengths, strict=False)
        ]
        # Wait until the first three are decoding, then add three more: they must join the running batch.
        seen = 0
        async for batch in events(engine, prompts[3], _greedy(lengths[3])):
            seen += sum(isinstance(e, Delta) for e in batch)
        assert seen == lengths[3]
        later = [
            asyncio.create_task(collect(engine, p, _greedy(n)))
            for p, n in zip(prompts[4:], lengths[4:], strict=True)
        ]
        return list(await asyncio.gather(*first, *later))

    results = asyncio.run(run())
    expected = [_generate(engine, p, n) for p, n in zip(prompts, lengths, strict=True) if p is not prompts[3]]
    assert [r.token_ids for r in results] == expected
    assert engine.stats.running == 0


@pytest.mark.slow  # several seconds: left to scripts/test, kept out of scripts/check
def test_requests_beyond_max_batch_size_wait_then_join(engine: HfEngine) -> None:
    prompts = [_ids(engine, t) for t in PROMPTS * 2][:10]  # 10 requests, max_batch_size 8
    expected = {tuple(p): _generate(engine, p, 12) for p in prompts}

    async def run() -> list[Collected]:
        return list(await asyncio.gather(*(collect(engine, p, _greedy(12)) for p in prompts)))

    results = asyncio.run(run())
    assert [r.token_ids for r in results] == [expected[tuple(p)] for p in prompts]
    assert engine.stats.waiting == 0 and engine.stats.running == 0


def test_streamed_text_is_the_decoded_tokens(engine: HfEngine) -> None:
    ids = _ids(engine, PROMPTS[4])
    result = asyncio.run(collect(engine, ids, _greedy(48)))
    assert result.text == engine.tokenizer.decode(result.token_ids, skip_special_tokens=True)


def test_stop_string_ends_output_before_it(engine: HfEngine) -> None:
    ids = _ids(engine, PROMPTS[0])
    full = asyncio.run(collect(engine, ids, _greedy(32))).text
    assert len(full) > 6
    stop = full[3:6]
    start = full.find(stop)
    result = asyncio.run(collect(engine, ids, _greedy(32, stop=(stop, "never-seen"))))
    assert result.text == full[:start]
    assert result.finish is not None and result.finish.reason == "stop"


def test_seeded_sampling_repeats_and_seeds_differ(engine: HfEngine) -> None:
    ids = _ids(engine, PROMPTS[1])

    def sample(seed: int) -> list[int]:
        params = SamplingParams(max_tokens=16, temperature=1.0, top_p=0.9, seed=seed, ignore_eos=True)
        return asyncio.run(collect(engine, ids, params)).token_ids

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_prompt_logprobs_only_when_max_tokens_is_zero(engine: HfEngine) -> None:
    ids = _ids(engine, PROMPTS[0])
    result = asyncio.run(collect(engine, ids, SamplingParams(max_tokens=0, logprobs=2, prompt_logprobs=2)))
    assert result.token_ids == []
    assert len(result.prompt_logprobs) == len(ids)
    assert result.prompt_logprobs[0] is None
    with torch.inference_mode():
        logits = engine.model(torch.tensor([ids])).logits[0].float()
    lsm = torch.log_softmax(logits, dim=-1)
    for j, entry in enumerate(result.prompt_logprobs[1:]):
        assert entry is not None and entry.token_id == ids[j + 1]
        assert entry.logprob == pytest.approx(float(lsm[j, ids[j + 1]]), abs=1e-4)
        assert len(entry.top) == 2 and entry.top[0][1] >= entry.top[1][1]


def _char_state(params: SamplingParams) -> SequenceState:
    decode = lambda ids: "".join(chr(i) for i in ids)  # noqa: E731  one token per character
    loop = asyncio.new_event_loop()
    loop.close()  # SequenceState never touches its outbox; only the engine delivers to it
    outbox = Outbox(loop, asyncio.Queue())
    return SequenceState(0, [ord("p")], params, outbox, IncrementalDetokenizer(decode, []), frozenset({0}))


def test_stop_prefix_is_held_back_until_it_cannot_match() -> None:
    state = _char_state(SamplingParams(max_tokens=10, stop=("ab",)))
    deltas = [state.append(ord(c), None).text for c in "xab"]
    assert deltas == ["x", "", ""]
    assert state.text == "x" and state.finish_reason == "stop"
    state = _char_state(SamplingParams(max_tokens=10, stop=("ab",)))
    deltas = [state.append(ord(c), None).text for c in "xac"]
    assert deltas == ["x", "", "ac"] and state.finish_reason is None


def test_eos_stops_unless_ignored_and_min_tokens_blocks_it() -> None:
    state = _char_state(SamplingParams(max_tokens=10))
    assert state.append(ord("a"), None).text == "a"
    state.append(0, None)
    assert state.finish_reason == "stop" and state.text == "a"
    state = _char_state(SamplingParams(max_tokens=3, ignore_eos=True))
    for token in (0, 0, 0):
        state.append(token, None)
    assert state.finish_reason == "length"
    assert _char_state(SamplingParams(max_tokens=5, min_tokens=2)).blocks_eos


def test_incremental_detokenizer_waits_for_whole_characters(engine: HfEngine) -> None:
    text = "a 東京 ü ✱ ok"
    ids = _ids(engine, text)
    detok = IncrementalDetokenizer(lambda i: str(engine.tokenizer.decode(i, skip_special_tokens=True)), [])
    pieces = [detok.add(t) for t in ids] + [detok.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_cache_kwarg_follows_the_forward_signature() -> None:
    """transformers ≥ 5.24 takes the KV cache as `cache`; older releases only as `past_key_values`."""
    from serve.hf.engine import cache_kwarg

    class New:
        def forward(self, input_ids: object = None, cache: object = None, **kwargs: object) -> None: ...

    class Old:
        def forward(self, input_ids: object = None, past_key_values: object = None) -> None: ...

    assert cache_kwarg(New()) == "cache"
    assert cache_kwarg(Old()) == "past_key_values"
