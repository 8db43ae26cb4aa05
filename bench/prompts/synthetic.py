"""Synthetic prompts of exact token lengths, and shared-prefix prompts for prefix-cache studies.

Text is random common words (deterministic from a seed), cut and topped up at token boundaries until the
target tokenizer counts exactly the requested length, *as the server will count it*: for chat requests the
count includes the chat template and the generation prompt; for completions, the special tokens the
tokenizer adds (BOS). With the approximate tokenizer (chars / 4) lengths are estimates and `input_tokens`
is left unset on the requests.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from bench.prompts.lengths import LengthDist
from bench.tokenizer import TextTokenizer

Api = str  # "chat" (messages) or "completions" (prompt)

# Common English words: most are one token in real vocabularies, so fitting converges in one or two steps.
_WORD_TEXT = (
    "the of and to in is it you that he was for on are as with his they at be this have from or one had by "
    "word but not what all were we when your can said there use an each which she do how their if will up "
    "other about out many then them these so some her would make like him into time has look two more write "
    "go see number no way could people my than first water been call who oil its now find long down day did "
    "get come made may part over new sound take only little work know place year live me back give most very "
    "after thing our just name good sentence man think say great where help through much before line right "
    "too mean old any same tell boy follow came want show also around form three small set put end does "
    "another well large must big even such because turn here why ask went men read need land different home "
    "us move try kind hand picture again change off play spell air away animal house point page letter "
    "mother answer found study still learn should world high every near add food between own below country "
    "plant last school father keep tree never start city earth eye light thought head under story saw left "
    "few while along might close something seem next hard open example begin life always those both paper "
    "together got group often run important until children side feet car mile night walk white sea began "
    "grow took river four carry state once book hear stop without second later miss idea enough eat face "
    "watch far real almost let above girl sometimes mountain cut young talk soon list song being leave family"
)
_WORDS = tuple(_WORD_TEXT.split())

_MAX_FIT_STEPS = 24


class WordSource:
    """Random words from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def take(self, k: int, *, after: str) -> str:
        """At least one and about `k` words, space-separated from `after` when it is non-empty."""
        text = " ".join(self.rng.choices(_WORDS, k=max(1, k)))
        return " " + text if after else text


class Fitter:
    """Fits random words to exact token counts for one tokenizer and request shape.

    Why three stages: encoding is the cost of prompt building. Most tokenizers split text at spaces
    before merging, so the tokens of space-separated words add up; then words are drawn by their known
    token counts and the text is encoded once, to check. Otherwise one encode with offsets gives the cut
    point, checked once; and where a tokenizer or template merges across the cut, `fit_text` iterates.
    """

    def __init__(self, tokenizer: TextTokenizer, api: Api | None) -> None:
        self.tokenizer = tokenizer
        # api None: the bare text, with no template or special tokens around it.
        self.count: Callable[[str], int] = tokenizer.count if api is None else counter(tokenizer, api)
        self.overhead = self.count("")  # template / BOS tokens around the text
        self.tokens_per_word = 1.5
        self._sizes: tuple[dict[str, int], dict[str, int]] | None = None  # tokens of "w" and " w"
        self._pools: tuple[dict[int, list[str]], dict[int, list[str]]] = ({}, {})
        self._additive: bool | None = None
        self._head_counts: dict[str, int] = {}

    def fit(self, head: str, target: int, words: WordSource) -> tuple[str, int]:
        """`head` plus random words counted as exactly `target` tokens where possible (see fit_text)."""
        if self._additive is None:
            self._additive = self._check_additive(words)
        if self._additive:
            text = self._by_sizes(head, target, words)
            if text is not None:
                n = self.count(text)
                if n == target:
                    return text, n
        return self._by_offsets(head, target, words)

    def _check_additive(self, words: WordSource) -> bool:
        first = {w: self.tokenizer.count(w) for w in _WORDS}
        after = {w: self.tokenizer.count(" " + w) for w in _WORDS}
        self._sizes = (first, after)
        for sizes, pool in zip(self._sizes, self._pools, strict=True):
            for w, n in sizes.items():
                pool.setdefault(n, []).append(w)
        probe = random.Random(0).choices(_WORDS, k=64)
        return self.tokenizer.count(" ".join(probe)) == first[probe[0]] + sum(after[w] for w in probe[1:])

    def _by_sizes(self, head: str, target: int, words: WordSource) -> str | None:
        assert self._sizes is not None
        if head not in self._head_counts:
            self._head_counts[head] = self.count(head)
        remaining = target - self._head_counts[head]
        if remaining <= 0:
            return None
        rng = words.rng
        picked: list[str] = []
        sizes, pool = (self._sizes[1], self._pools[1]) if head else (self._sizes[0], self._pools[0])
        while remaining > 0:
            word = rng.choice(_WORDS)
            n = sizes[word]
            if n > remaining:
                exact = pool.get(remaining)
                if not exact:
                    return None
                word, n = rng.choice(exact), remaining
            picked.append(word)
            remaining -= n
            sizes, pool = self._sizes[1], self._pools[1]
        tail = " ".join(picked)
        return f"{head} {tail}" if head else tail

    def _by_offsets(self, head: str, target: int, words: WordSource) -> tuple[str, int]:
        need = target - self.overhead  # tokens of the text itself
        spans = self.tokenizer.offsets(head) if head else []
        if need <= len(spans):
            return fit_text(self.tokenizer, head, target, words, self.count)
        text = head
        while len(spans) < need:
            missing = need - len(spans)
            k = int(missing / self.tokens_per_word * 1.05) + 2  # aim a little long: cutting is cheap
            before = len(spans)
            text += words.take(k, after=text)
            spans = self.tokenizer.offsets(text)
            self.tokens_per_word = max(0.5, (len(spans) - before) / k)
        text = text[: max(spans[need - 1][1], len(head))]
        n = self.count(text)
        if n == target:
            return text, n
        return fit_text(self.tokenizer, head, target, words, self.count, start=text)


def fit_text(
    tokenizer: TextTokenizer,
    head: str,
    target: int,
    words: WordSource,
    count: Callable[[str], int],
    *,
    start: str | None = None,
) -> tuple[str, int]:
    """`head` plus random words such that `count(text) == target` tokens where possible.

    Returns the text and its count; when no exact fit exists (the head or the template alone is longer
    than `target`), the closest text found. Only the appended words are ever cut, never `head`. `start`
    (head plus some words) resumes from an earlier attempt.
    """
    if start is not None:
        text = start
    else:
        base = count(head)
        text = head + words.take(target - base, after=head) if target > base else head
    best_text, best_count = text, count(text)
    c = best_count
    for _ in range(_MAX_FIT_STEPS):
        if c == target:
            return text, c
        if c < target:
            text += words.take(target - c, after=text)
        else:
            spans = tokenizer.offsets(text)
            keep = len(spans) - (c - target)
            # Cut after the last kept token (its end excludes a trailing space where offsets are trimmed).
            cut = spans[keep - 1][1] if keep >= 1 else 0
            if cut <= len(head):
                cut = len(head)
            if cut >= len(text):  # the excess is in the head or the template: nothing left to cut
                break
            text = text[:cut]
        c = count(text)
        if abs(c - target) < abs(best_count - target) or c == target:
            best_text, best_count = text, c
    return best_text, best_count


def counter(tokenizer: TextTokenizer, api: Api) -> Callable[[str], int]:
    """Prompt tokens the server will see for `text` sent as one user message (chat) or as a prompt."""
    if api == "chat":
        return lambda text: tokenizer.count_chat([{"role": "user", "content": text}])
    return lambda text: tokenizer.count(text, special=True)


def synthetic_texts(
    tokenizer: TextTokenizer, lengths: LengthDist, seed: int, *, api: Api
) -> Iterator[tuple[str, int]]:
    """Endless (text, tokens) pairs with token lengths drawn from `lengths`, deterministic from `seed`."""
    length_rng = random.Random(f"{seed}:input-lengths")
    words = WordSource(random.Random(f"{seed}:words"))
    fitter = Fitter(tokenizer, api)
    while True:
        yield fitter.fit("", lengths.sample(length_rng), words)


def shared_prefix_texts(
    tokenizer: TextTokenizer,
    *,
    num_prefixes: int,
    prefix_tokens: int,
    suffix_lengths: LengthDist,
    seed: int,
    api: Api,
) -> Iterator[tuple[str, int]]:
    """Endless (text, tokens): prefix i % N of `prefix_tokens` tokens, then a unique suffix (tokens)."""
    words = WordSource(random.Random(f"{seed}:prefix-words"))
    # Prefixes are sized alone (no template), as the token run every request carrying them shares. The
    # suffix starts with a space, where pre-tokenizers split, so the prefix's tokens never change.
    plain = Fitter(tokenizer, None)
    prefixes = [plain.fit("", prefix_tokens, words)[0] for _ in range(num_prefixes)]
    fitter = Fitter(tokenizer, api)
    totals = [fitter.count(prefix) for prefix in prefixes]
    length_rng = random.Random(f"{seed}:suffix-lengths")
    suffix_words = WordSource(random.Random(f"{seed}:suffix-words"))
    i = 0
    while True:
        k = i % num_prefixes
        yield fitter.fit(prefixes[k], totals[k] + suffix_lengths.sample(length_rng), suffix_words)
        i += 1
