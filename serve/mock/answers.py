"""What the mock answers: token counting, filler text, and an oracle over a JSONL question file."""

from __future__ import annotations

import hashlib
import json
import random
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from serve.errors import ServerStartError
from serve.mock.cache import NO_USE, CacheBlock, CacheUse
from serve.specs import AnswerModel

Finish = Literal["stop", "length", "stop_sequence"]

UNKNOWN_ANSWER = "I don't know."

# Short, common words: one token each in any BPE vocabulary worth the name, and nothing to JSON-escape.
_FILLER_WORDS = (
    "the of and to in is was for on that with as by at from his her an be are this had not it but or "
    "have one all were we when there can more if out so up said what its about into than them only "
    "other new some could time these two may then do first any my now such like our over man me even "
    "most made after also did many before must through back years where much your way well down should"
)
_FILLER_LEN = 4096
_REASONING_OFFSET = 1000  # reasoning filler starts this many words into the sequence


@dataclass(slots=True)
class Generation:
    """A valid generation request, whatever API it came through."""

    api: str
    model: str
    prompt_text: str
    match_text: str
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    ignore_eos: bool = False
    min_tokens: int = 0
    prompt_tokens: int | None = None  # known when the prompt came as token ids
    batch: list[str] = field(default_factory=list)  # further prompts of a batched /v1/completions
    cache: Literal["auto", "explicit"] = "auto"  # OpenAI's automatic cache or Anthropic's breakpoints
    cache_blocks: list[CacheBlock] = field(default_factory=list)  # the prompt's blocks (explicit cache)
    cache_use: CacheUse = NO_USE  # what the cache did for this request (set by the server)
    reasoning_cap: int | None = 0  # reasoning tokens allowed: 0 none, None up to the mock's setting
    thinking: bool = False  # Anthropic: the request enabled extended thinking


@dataclass(slots=True)
class Answer:
    """The output: text pieces (about one token each), the true token count and why it ended."""

    pieces: list[str]
    tokens: int
    finish: Finish
    stop_sequence: str | None = None
    plain: bool = False  # no piece needs JSON escaping
    reasoning: list[str] = field(default_factory=list)  # reasoning pieces streamed before `pieces`
    reasoning_tokens: int = 0  # tokens of `reasoning`, billed as output on top of `tokens`

    @property
    def output_tokens(self) -> int:
        """Every generated token: reasoning and answer."""
        return self.tokens + self.reasoning_tokens


def normalize(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


class TokenCounter:
    """Counts tokens with a tokenizer.json when given, else as ceil(chars / 4)."""

    def __init__(self, tokenizer: Path | None) -> None:
        self._tok: Any = None
        if tokenizer is not None:
            path = tokenizer / "tokenizer.json" if tokenizer.is_dir() else tokenizer
            try:
                from tokenizers import Tokenizer

                self._tok = Tokenizer.from_file(str(path))
            except Exception as e:
                raise ServerStartError(f"cannot load tokenizer {path}: {e}") from e

    def count(self, text: str) -> int:
        """Prompt tokens of `text`, at least 1."""
        if self._tok is None:
            return max(1, -(-len(text) // 4))
        return max(1, len(self._tok.encode(text, add_special_tokens=False).ids))

    def block_keys(self, text: str, step: int) -> list[bytes]:
        """The bytes of each whole run of `step` tokens of `text`, in order (no partial last run)."""
        if self._tok is None:
            width = 4 * step
            return [text[i : i + width].encode() for i in range(0, len(text) - width + 1, width)]
        ids = self._tok.encode(text, add_special_tokens=False).ids
        return [array("I", ids[i : i + step]).tobytes() for i in range(0, len(ids) - step + 1, step)]

    def prefix_counts(self, text: str, ends: list[int]) -> list[int]:
        """Tokens of `text[:end]` for each character position in `ends` (as counted inside the whole text)."""
        if self._tok is None:
            return [-(-end // 4) for end in ends]
        token_ends = [end for _, end in self._tok.encode(text, add_special_tokens=False).offsets]
        return [bisect_right(token_ends, end) for end in ends]

    def pieces(self, text: str, limit: int) -> tuple[list[str], int, bool]:
        """Split `text` into token pieces, keeping at most `limit` tokens: (pieces, tokens, truncated)."""
        if self._tok is None:
            total = -(-len(text) // 4)
            kept = min(total, limit)
            return [text[i : i + 4] for i in range(0, kept * 4, 4)], kept, kept < total
        offsets = self._tok.encode(text, add_special_tokens=False).offsets
        kept = min(len(offsets), limit)
        truncated = kept < len(offsets)
        pieces: list[str] = []
        start = 0
        for i in range(kept):
            end = len(text) if i == len(offsets) - 1 else offsets[i][1]
            # A token inside a multi-byte character has an empty span: merge it into the next piece.
            if end > start:
                pieces.append(text[start:end])
                start = end
        return pieces, kept, truncated


class FillerText:
    """Seeded filler: token k of every answer is the same short word."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        vocabulary = _FILLER_WORDS.split()
        words = [" " + rng.choice(vocabulary) for _ in range(_FILLER_LEN)]
        self._words = words + words

    def tokens(self, n: int, offset: int = 0) -> list[str]:
        """`n` filler tokens (one short word each), starting `offset` words into the sequence."""
        start = offset % _FILLER_LEN
        if n <= _FILLER_LEN:
            out = self._words[start : start + n]
        else:
            out = [self._words[(start + i) % _FILLER_LEN] for i in range(n)]
        if out:
            out[0] = out[0].lstrip()
        return out


@dataclass(frozen=True, slots=True)
class OracleItem:
    """One question: its id, whitespace-normalized prompt, acceptable references and area (if given)."""

    id: str
    key: str
    references: tuple[str, ...]
    area: str | None = None


class Oracle:
    """Answers known questions right with probability `accuracy` (or its area's), decided per (seed, id)."""

    def __init__(
        self,
        items: list[OracleItem],
        accuracy: float,
        seed: int,
        area_accuracy: dict[str, float] | None = None,
    ) -> None:
        self.items = items
        self.accuracy = accuracy
        self.seed = seed
        self.area_accuracy = dict(area_accuracy or {})
        self._by_key: dict[str, OracleItem] = {}
        for item in items:
            self._by_key.setdefault(item.key, item)
        self._firsts = list(dict.fromkeys(item.references[0] for item in items))

    @classmethod
    def load(
        cls, path: Path, accuracy: float, seed: int, area_accuracy: dict[str, float] | None = None
    ) -> Oracle:
        """Read a JSONL file of {id, prompt | messages, reference | references, area?} (a suite file)."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ServerStartError(f"cannot read oracle file {path}: {e}") from e
        items = []
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    items.append(_parse_item(json.loads(line), number))
                except (ValueError, TypeError, KeyError) as e:
                    raise ServerStartError(f"{path}:{number}: bad oracle item: {e}") from e
        return cls(items, accuracy, seed, area_accuracy)

    def lookup(self, text: str) -> OracleItem | None:
        """The item asked in `text`: exact match, else the known question nearest the end of `text`."""
        key = normalize(text)
        item = self._by_key.get(key)
        if item is not None or not key:
            return item
        # Few-shot and templated prompts wrap the question; the asked one is the last one quoted.
        best: tuple[int, int] | None = None
        for candidate in self.items:
            at = key.rfind(candidate.key)
            if at >= 0 and candidate.key:
                rank = (at + len(candidate.key), len(candidate.key))
                if best is None or rank > best:
                    best, item = rank, candidate
        return item

    def is_correct(self, item: OracleItem) -> bool:
        """Whether this item is answered right; the same for every run with the same seed."""
        share = self.area_accuracy.get(item.area, self.accuracy) if item.area else self.accuracy
        return _unit(f"{self.seed}:{item.id}") < share

    def reply(self, item: OracleItem | None) -> str:
        """The answer text for an item (or for an unknown question)."""
        if item is None:
            return UNKNOWN_ANSWER
        if self.is_correct(item):
            return item.references[0]
        return self.wrong(item)

    def wrong(self, item: OracleItem) -> str:
        """A plausible wrong answer: another item's reference that matches none of this item's."""
        n = len(self._firsts)
        start = int(_unit(f"wrong:{self.seed}:{item.id}") * n) if n else 0
        for k in range(n):
            candidate = self._firsts[(start + k) % n]
            if candidate not in item.references:
                return candidate
        first = item.references[0].strip()
        if first.lstrip("-").isdigit():
            return str(int(first) + 1)
        return UNKNOWN_ANSWER if UNKNOWN_ANSWER not in item.references else "No."


class Answerer:
    """Turns a Generation into an Answer according to the AnswerModel."""

    def __init__(self, spec: AnswerModel, counter: TokenCounter) -> None:
        self.spec = spec
        self.counter = counter
        self.filler = FillerText(spec.seed)
        self.oracle: Oracle | None = None
        if spec.kind == "oracle":
            assert spec.oracle_file is not None
            self.oracle = Oracle.load(spec.oracle_file, spec.accuracy, spec.seed, spec.area_accuracy)

    def answer(self, gen: Generation, match_text: str | None = None, reasoning: int = 0) -> Answer:
        """The answer to `gen` (or to one prompt of its batch, given as `match_text`), after `reasoning`
        tokens of reasoning that come out of the same output budget."""
        limit = gen.max_tokens if gen.max_tokens is not None else self.spec.default_output_tokens
        thought = min(reasoning, limit)
        out = self._answer(gen, match_text, limit - thought)
        if thought:
            out.reasoning = self.filler.tokens(thought, _REASONING_OFFSET + (gen.seed or 0))
            out.reasoning_tokens = thought
            if thought == limit:
                out.finish = "length"
        return out

    def _answer(self, gen: Generation, match_text: str | None, limit: int) -> Answer:
        item = None
        if self.oracle is not None:
            item = self.oracle.lookup(gen.match_text if match_text is None else match_text)
        if self.oracle is None or (item is None and self.spec.unknown == "filler"):
            finish: Finish = "length" if gen.max_tokens is not None or gen.ignore_eos else "stop"
            out = Answer(self.filler.tokens(limit, gen.seed or 0), limit, finish, plain=True)
        else:
            text = self.oracle.reply(item)
            pieces, count, truncated = self.counter.pieces(text, limit)
            out = Answer(pieces, count, "length" if truncated else "stop")
            # vLLM's ignore_eos and min_tokens keep generating past the end of the answer.
            target = limit if gen.ignore_eos else min(gen.min_tokens, limit)
            if count < target:
                out.pieces += self.filler.tokens(target - count, count)
                out.tokens = target
                out.finish = "length" if gen.ignore_eos else out.finish
        if gen.stop:
            _apply_stop(out, gen.stop)
        return out


def _apply_stop(answer: Answer, stops: list[str]) -> None:
    text = "".join(answer.pieces)
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return
    at, stop = min(hits)
    kept: list[str] = []
    used = 0
    for piece in answer.pieces:
        if used >= at:
            break
        kept.append(piece[: at - used])
        used += len(piece)
    answer.pieces = [p for p in kept if p]
    answer.tokens = len(kept)
    answer.finish = "stop_sequence"
    answer.stop_sequence = stop


def _unit(text: str) -> float:
    """A number in [0, 1) fixed by `text` (stable across processes, unlike hash())."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def _parse_item(raw: Any, number: int) -> OracleItem:
    if not isinstance(raw, dict):
        raise TypeError("each line must be a JSON object")
    if "prompt" in raw:
        prompt = raw["prompt"]
        if not isinstance(prompt, str):
            raise TypeError("prompt must be a string")
    elif "messages" in raw:
        prompt = last_user_text(raw["messages"])
    else:
        raise KeyError("needs prompt or messages")
    refs = raw["references"] if "references" in raw else [raw["reference"]]
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str | int | float) for r in refs):
        raise TypeError("references must be a non-empty list of strings")
    area = raw.get("area")
    return OracleItem(
        str(raw.get("id", number)),
        normalize(prompt),
        tuple(str(r) for r in refs),
        area if isinstance(area, str) else None,
    )


def content_text(content: Any) -> str:
    """The text of a message content: a string, or a list of {type: text, text} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def last_user_text(messages: Any) -> str:
    """The text of the last user message of a chat (empty when there is none)."""
    if not isinstance(messages, list):
        raise TypeError("messages must be a list")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""
