"""Prompts for load runs, deterministic from a seed.

API for the load generator:

    spec = PromptSpec(kind="synthetic", api="chat", input_tokens="uniform:64:256", output_tokens="128")
    tokenizer = load_tokenizer(folder_or_None)          # bench.tokenizer; None -> ApproxTokenizer
    requests = build_requests(spec, n, seed, tokenizer)  # list[GenRequest], request_id 0..n-1
    stream = iter_requests(spec, seed, tokenizer)        # the same sequence, endless (duration-bound runs)

`build_requests(spec, n, seed)` is a prefix of `iter_requests(spec, seed)`: the same seed gives the same
requests. Building costs about one to three tokenizer passes per prompt, so build before the run starts
rather than inside the send loop. Length strings (`128`, `uniform:64:256`, `normal:512:64`) are parsed by
`parse_length(text, flag=...)`, which raises UsageError naming the flag.

Kinds:
- `synthetic`: random words sized to exactly `input_tokens` as the target tokenizer counts them (chat:
  template and generation prompt included; completions: BOS included). GenRequest.input_tokens is set
  only when that count is exact: None with the approximate tokenizer, and None for chat when the
  tokenizer has no chat template (or jinja2 is missing), where the text alone is sized.
- `shared-prefix`: `num_prefixes` prefixes of `prefix_tokens` tokens; request i carries prefix i % N plus a
  unique suffix of `input_tokens` tokens (the suffix length distribution).
- `file`: a ShareGPT JSON or JSONL prompt file (`dataset`), shuffled by the seed and cycled as needed.

Output length: `output_tokens` sets max_tokens per request; for files it may be None, then the line's
`max_tokens`, else the recorded ShareGPT reply's token count, else DEFAULT_OUTPUT_TOKENS.

Units (`unit`): lengths are counted in **reference tokens** by default (⌈UTF-8 bytes ÷ 4⌉,
bench.records.reference_tokens): prompts are sized by that count, so every target gets the same text
from the same seed, and each target is asked for as many of its own tokens as make the output length in
reference tokens (max_tokens × `output_scale`, the target tokenizer's tokens per reference token over the
first prompts). That makes one defined workload for every option, whatever its tokenizer. With
`unit="model"` lengths are the target tokenizer's own tokens (as vLLM's and most load tools count), and
targets with different tokenizers get different texts.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bench.prompts.files import PromptItem, load_prompt_file
from bench.prompts.lengths import LengthDist, parse_length
from bench.prompts.synthetic import shared_prefix_texts, synthetic_texts
from bench.prompts.templates import PromptTemplate, apply_to_messages
from bench.records import GenRequest, reference_tokens
from bench.tokenizer import ApproxTokenizer, TextTokenizer

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "SCALE_SAMPLE",
    "LengthDist",
    "LengthUnit",
    "PromptItem",
    "PromptSpec",
    "build_requests",
    "iter_requests",
    "load_prompt_file",
    "output_scale",
    "parse_length",
    "text_output_scale",
]

DEFAULT_OUTPUT_TOKENS = 128
SCALE_SAMPLE = 32  # prompts the output scale is measured on
LengthUnit = Literal["reference", "model"]


class PromptSpec(BaseModel):
    """What prompts a load run sends. Lengths are token counts or distribution strings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["synthetic", "shared-prefix", "file"] = "synthetic"
    api: Literal["chat", "completions"] = Field("chat", description="messages (chat) or a prompt string")
    input_tokens: LengthDist = Field(
        LengthDist(a=128), description="synthetic: prompt length; shared-prefix: suffix length (tokens)"
    )
    output_tokens: LengthDist | None = Field(
        LengthDist(a=DEFAULT_OUTPUT_TOKENS), description="max_tokens per request; None: from the file"
    )
    dataset: Path | None = Field(None, description="kind=file: ShareGPT JSON or JSONL")
    num_prefixes: int = Field(1, ge=1, description="kind=shared-prefix: distinct prefixes")
    prefix_tokens: int = Field(256, ge=1, description="kind=shared-prefix: prefix length (tokens)")
    shuffle: bool = Field(True, description="kind=file: shuffle by the seed (else file order)")
    unit: LengthUnit = Field(
        "reference",
        description="reference: lengths in reference tokens (⌈bytes ÷ 4⌉), the same text for every target; "
        "model: in the target tokenizer's tokens",
    )
    ignore_eos: bool = Field(False, description="ask for exactly max_tokens (sent only where supported)")
    temperature: float | None = Field(None, ge=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    template: PromptTemplate | None = Field(
        None, description="a prompt version every prompt is asked through (chat): stored whole with the run"
    )

    @field_validator("input_tokens", "output_tokens", mode="before")
    @classmethod
    def _parse(cls, value: Any, info: Any) -> Any:
        if isinstance(value, str | int) and not isinstance(value, bool):
            flag = "--" + info.field_name.replace("_", "-")
            return parse_length(value, flag=flag)
        return value

    @model_validator(mode="after")
    def _needs(self) -> PromptSpec:
        if self.kind == "file" and self.dataset is None:
            raise ValueError("kind 'file' needs 'dataset' (a ShareGPT JSON or JSONL file)")
        if self.kind != "file" and self.output_tokens is None:
            raise ValueError(f"kind {self.kind!r} needs output_tokens")
        if self.template is not None and self.api != "chat":
            raise ValueError("a prompt template renders chat messages: it needs the chat API")
        return self


def iter_requests(
    spec: PromptSpec, seed: int, tokenizer: TextTokenizer | None = None
) -> Iterator[GenRequest]:
    """Endless GenRequests for `spec`, request_id 0, 1, 2, ...; deterministic from `seed`. With a prompt
    template each prompt is asked through it (its length then is the text's plus the template's: unknown
    to the request, which the server's usage reports)."""
    requests = _iter_requests(spec, seed, tokenizer)
    if spec.template is None:
        yield from requests
        return
    template = spec.template
    for request in requests:
        assert request.messages is not None  # the template needs chat (checked by the spec)
        messages = apply_to_messages(template, request.messages)
        yield dataclasses.replace(request, messages=messages, input_tokens=None)


def _iter_requests(spec: PromptSpec, seed: int, tokenizer: TextTokenizer | None) -> Iterator[GenRequest]:
    tok = tokenizer or ApproxTokenizer()
    if spec.kind == "file":
        yield from _file_requests(spec, seed, tok)
        return
    assert spec.output_tokens is not None  # checked by the spec
    texts = _texts(spec, seed, tok)
    head = list(itertools.islice(texts, SCALE_SAMPLE))
    scale = _scale(spec, tok, [t for t, _ in head])
    sizer = _sizer(spec, tok)
    out_rng = random.Random(f"{seed}:output-lengths")
    for request_id, (text, n_tokens) in enumerate(itertools.chain(head, texts)):
        max_tokens = max(1, round(spec.output_tokens.sample(out_rng) * scale))
        # Without the chat template the count misses the template's tokens: unknown, not a guess.
        exact = not sizer.approximate and (spec.api == "completions" or sizer.chat_exact)
        known = n_tokens if exact else None
        if spec.api == "chat":
            yield _request(spec, request_id, max_tokens, known, messages=[{"role": "user", "content": text}])
        else:
            yield _request(spec, request_id, max_tokens, known, prompt=text)


def _sizer(spec: PromptSpec, tok: TextTokenizer) -> TextTokenizer:
    """The tokenizer prompt lengths are counted with: the reference count, or the target's own."""
    return ApproxTokenizer() if spec.unit == "reference" else tok


def _texts(spec: PromptSpec, seed: int, tok: TextTokenizer) -> Iterator[tuple[str, int]]:
    sizer = _sizer(spec, tok)
    if spec.kind == "synthetic":
        return synthetic_texts(sizer, spec.input_tokens, seed, api=spec.api)
    return shared_prefix_texts(
        sizer,
        num_prefixes=spec.num_prefixes,
        prefix_tokens=spec.prefix_tokens,
        suffix_lengths=spec.input_tokens,
        seed=seed,
        api=spec.api,
    )


def _scale(spec: PromptSpec, tok: TextTokenizer, texts: list[str]) -> float:
    """The target's tokens per reference token over `texts` (1 in model units or without a tokenizer)."""
    return 1.0 if spec.unit == "model" else text_output_scale(texts, tok)


def text_output_scale(texts: Sequence[str], tokenizer: TextTokenizer | None = None) -> float:
    """The target's tokens per reference token over `texts` (1.0 without a real tokenizer or texts): what
    output lengths given in reference tokens are multiplied by for this target. `output_scale` measures it
    on a PromptSpec's first SCALE_SAMPLE prompts; workloads on their first requests' texts."""
    tok = tokenizer or ApproxTokenizer()
    if tok.approximate or not texts:
        return 1.0
    ref = sum(reference_tokens(len(t.encode())) for t in texts)
    own = sum(tok.count(t) for t in texts)
    return own / ref if ref else 1.0


def output_scale(spec: PromptSpec, seed: int, tokenizer: TextTokenizer | None = None) -> float:
    """What `iter_requests` multiplies output lengths by for this target: its tokens per reference token
    (measured on the first prompts; 1.0 in model units)."""
    tok = tokenizer or ApproxTokenizer()
    if spec.kind == "file":
        items = load_prompt_file(spec.dataset) if spec.dataset is not None else []
        texts = [_item_text(items[i]) for i in _file_order(spec, seed, len(items))[:SCALE_SAMPLE]]
    else:
        texts = [t for t, _ in itertools.islice(_texts(spec, seed, tok), SCALE_SAMPLE)]
    return _scale(spec, tok, texts)


def _file_order(spec: PromptSpec, seed: int, n: int) -> list[int]:
    order = list(range(n))
    if spec.shuffle:
        random.Random(f"{seed}:file-order").shuffle(order)
    return order


def _item_text(item: PromptItem) -> str:
    if item.prompt is not None:
        return item.prompt
    return "\n".join(str(m.get("content") or "") for m in item.messages or [])


def build_requests(
    spec: PromptSpec, n: int, seed: int, tokenizer: TextTokenizer | None = None
) -> list[GenRequest]:
    """The first `n` requests of `iter_requests(spec, seed, tokenizer)`."""
    return list(itertools.islice(iter_requests(spec, seed, tokenizer), n))


def _request(
    spec: PromptSpec,
    request_id: int,
    max_tokens: int,
    input_tokens: int | None,
    *,
    prompt: str | None = None,
    messages: list[dict[str, Any]] | None = None,
) -> GenRequest:
    return GenRequest(
        request_id,
        prompt=prompt,
        messages=messages,
        input_tokens=input_tokens,
        max_tokens=max_tokens,
        ignore_eos=spec.ignore_eos,
        temperature=spec.temperature,
        extra_body=dict(spec.extra_body),
    )


def _file_requests(spec: PromptSpec, seed: int, tok: TextTokenizer) -> Iterator[GenRequest]:
    assert spec.dataset is not None
    items = load_prompt_file(spec.dataset)
    order = _file_order(spec, seed, len(items))
    out_rng = random.Random(f"{seed}:output-lengths")
    scale = _scale(spec, tok, [_item_text(items[i]) for i in order[:SCALE_SAMPLE]])
    for request_id, index in enumerate(itertools.cycle(order)):
        item = items[index]
        if spec.output_tokens is not None:
            max_tokens = max(1, round(spec.output_tokens.sample(out_rng) * scale))
        elif item.max_tokens is not None:
            max_tokens = item.max_tokens
        elif item.reference is not None:
            max_tokens = max(1, tok.count(item.reference))
        else:
            max_tokens = DEFAULT_OUTPUT_TOKENS
        yield _item_request(spec, request_id, item, max_tokens, tok)


def _item_request(
    spec: PromptSpec, request_id: int, item: PromptItem, max_tokens: int, tok: TextTokenizer
) -> GenRequest:
    messages = item.messages
    if spec.api == "chat":
        if messages is None:
            messages = [{"role": "user", "content": item.prompt or ""}]
        n = None if tok.approximate or not tok.chat_exact else tok.count_chat(messages)
        return _request(spec, request_id, max_tokens, n, messages=messages)
    prompt = item.prompt
    if prompt is None:
        assert messages is not None
        rendered = tok.render_chat(messages)
        prompt = (
            rendered if rendered is not None else "\n".join(str(m.get("content") or "") for m in messages)
        )
    n = None if tok.approximate else tok.count(prompt, special=True)
    return _request(spec, request_id, max_tokens, n, prompt=prompt)
