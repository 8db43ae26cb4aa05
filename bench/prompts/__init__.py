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
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bench.prompts.files import PromptItem, load_prompt_file
from bench.prompts.lengths import LengthDist, parse_length
from bench.prompts.synthetic import shared_prefix_texts, synthetic_texts
from bench.records import GenRequest
from bench.tokenizer import ApproxTokenizer, TextTokenizer

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "LengthDist",
    "PromptItem",
    "PromptSpec",
    "build_requests",
    "iter_requests",
    "load_prompt_file",
    "parse_length",
]

DEFAULT_OUTPUT_TOKENS = 128


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
    ignore_eos: bool = Field(False, description="ask for exactly max_tokens (sent only where supported)")
    temperature: float | None = Field(None, ge=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)

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
        return self


def iter_requests(
    spec: PromptSpec, seed: int, tokenizer: TextTokenizer | None = None
) -> Iterator[GenRequest]:
    """Endless GenRequests for `spec`, request_id 0, 1, 2, ...; deterministic from `seed`."""
    tok = tokenizer or ApproxTokenizer()
    if spec.kind == "file":
        yield from _file_requests(spec, seed, tok)
        return
    assert spec.output_tokens is not None  # checked by the spec
    if spec.kind == "synthetic":
        texts = synthetic_texts(tok, spec.input_tokens, seed, api=spec.api)
    else:
        texts = shared_prefix_texts(
            tok,
            num_prefixes=spec.num_prefixes,
            prefix_tokens=spec.prefix_tokens,
            suffix_lengths=spec.input_tokens,
            seed=seed,
            api=spec.api,
        )
    out_rng = random.Random(f"{seed}:output-lengths")
    for request_id, (text, n_tokens) in enumerate(texts):
        max_tokens = spec.output_tokens.sample(out_rng)
        # Without the chat template the count misses the template's tokens: unknown, not a guess.
        exact = not tok.approximate and (spec.api == "completions" or tok.chat_exact)
        known = n_tokens if exact else None
        if spec.api == "chat":
            yield _request(spec, request_id, max_tokens, known, messages=[{"role": "user", "content": text}])
        else:
            yield _request(spec, request_id, max_tokens, known, prompt=text)


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
    order = list(range(len(items)))
    if spec.shuffle:
        random.Random(f"{seed}:file-order").shuffle(order)
    out_rng = random.Random(f"{seed}:output-lengths")
    for request_id, index in enumerate(itertools.cycle(order)):
        item = items[index]
        if spec.output_tokens is not None:
            max_tokens = spec.output_tokens.sample(out_rng)
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
