"""Tokenizers for the builtin tiny models: a byte-level one and a small trained BPE, both with ChatML.

Both are saved as `PreTrainedTokenizerFast` with the chat template inside tokenizer_config.json, so that
older transformers (the one vLLM pins) load them too; `<|im_end|>` is EOS and padding is on the left.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

from serve.tiny._hf import transformers_module
from serve.tiny.skills_data import CAPITAL_TEMPLATES, CORPUS_MIX, SkillSampler

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, IM_START, IM_END)  # ids 0, 1, 2 in both tokenizers

# ChatML, no default system prompt: the rendered prompt is exactly what tiny-skills was trained on.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def chatml_prompt(user: str) -> str:
    """The text CHATML_TEMPLATE renders for one user message with the generation prompt."""
    return f"{IM_START}user\n{user}{IM_END}\n{IM_START}assistant\n"


def token_id(tok: Tokenizer, token: str) -> int:
    """The id of `token`, which must be in the vocabulary."""
    found = tok.token_to_id(token)
    if found is None:
        raise ValueError(f"token {token!r} is missing from the tokenizer")
    return int(found)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from bytes to printable characters, the alphabet of the ByteLevel pre-tokenizer."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def _add_specials(tok: Tokenizer) -> None:
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIAL_TOKENS])


def byte_tokenizer() -> Tokenizer:
    """One token per byte (ids 3..258) plus the three ChatML specials (ids 0..2): 259 tokens."""
    alphabet = _bytes_to_unicode()
    vocab = {s: i for i, s in enumerate(SPECIAL_TOKENS)}
    vocab.update({alphabet[b]: len(SPECIAL_TOKENS) + b for b in range(256)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    _add_specials(tok)
    return tok


# Consonant-vowel syllables and a few clusters: the raw material of pseudo-words.
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwyz" for v in "aeiou"] + [
    "st",
    "tr",
    "pl",
    "th",
    "sh",
    "ch",
    "ng",
]
_COMMON_TEXT = (
    "the of and to in is it you that he was for on are as with his they at be this have from or one had by "
    "word but not what all were we when your can said there use an each which she do how their if will up "
    "other about out many then them these so some her would make like him into time has look two more write "
    "go see number no way could people my than first water been call who oil its now find long down day did "
    "get come made may part model server token request latency answer question capital reverse greater less"
)
_PUNCT = (".", ".", ".", ",", "?", "!", ";", ":")


def _corpus_word(rng: random.Random, pseudo: str, common: list[str]) -> str:
    """A common English word (45%), a number (7%) or the given pseudo-word."""
    r = rng.random()
    if r < 0.45:
        return rng.choice(common)
    return str(rng.randint(0, 2025)) if r > 0.93 else pseudo


def local_corpus(seed: int, n_words: int = 150_000) -> list[str]:
    """Deterministic English-like lines (common words, pseudo-words, numbers, skills questions)."""
    rng = random.Random(seed)
    common = _COMMON_TEXT.split()
    lexicon = [
        "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))) for _ in range(12_000)
    ]
    # Zipf-like frequencies, so frequent pieces merge first as in natural text.
    cum_weights = list(itertools.accumulate(1.0 / (rank + 10) for rank in range(len(lexicon))))
    sampler = SkillSampler(seed, held_out=(), mix=CORPUS_MIX, capital_templates=CAPITAL_TEMPLATES)
    lines: list[str] = []
    words = 0
    while words < n_words:
        length = rng.randint(4, 18)
        picks = rng.choices(lexicon, cum_weights=cum_weights, k=length)
        sentence = [_corpus_word(rng, pick, common) for pick in picks]
        sentence[0] = sentence[0].capitalize()
        lines.append(" ".join(sentence) + rng.choice(_PUNCT))
        if rng.random() < 0.1:
            q = sampler.sample()
            lines.append(f"{q.prompt} {q.answer}")
        words += length
    return lines


def train_bpe_tokenizer(lines: list[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer of exactly `vocab_size` tokens trained on `lines`."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer, length=len(lines))
    _add_specials(tok)
    if tok.get_vocab_size() != vocab_size:
        raise ValueError(f"BPE training reached {tok.get_vocab_size()} tokens, not {vocab_size}")
    return tok


def wrap_tokenizer(tok: Tokenizer, model_max_length: int) -> Any:
    """The tokenizer as a transformers `PreTrainedTokenizerFast` with ChatML and left padding."""
    # padding_side goes to the constructor: transformers 5 saves only constructor arguments.
    return transformers_module().PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        padding_side="left",
        chat_template=CHATML_TEMPLATE,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def save_tokenizer(hf_tokenizer: Any, folder: Path) -> None:
    """Save with the chat template in tokenizer_config.json and a class name every version knows."""
    hf_tokenizer.save_pretrained(str(folder), save_jinja_files=False)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    # transformers 5 writes "TokenizersBackend", which transformers 4 (vLLM's) cannot resolve.
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.pop("backend", None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
