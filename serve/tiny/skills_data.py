"""The tiny-skills question set: four areas of short questions with exact short answers.

The held-out suite (`skills_suite`) and the training stream (`SkillSampler`) come from the same generators;
the sampler never yields a prompt that is in the held-out suite, so the suite measures generalisation.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

# The shipped suite (bench/suites/tiny-skills.jsonl) and the prompts held out from training.
SUITE_N_PER_AREA = 100
SUITE_SEED = 0

AREAS = ("arithmetic", "lookup", "string", "comparison")
_ID_PREFIX = {"arithmetic": "add", "lookup": "cap", "string": "rev", "comparison": "cmp"}
# Share of training examples per area: addition is learned last and string reversal first, so addition gets
# the most. Measured at 2,250 pinned steps (held-out exact match): this mix 76% (arithmetic 43, lookup 67,
# string 99, comparison 96); the earlier 35/15/35/15 mix 72% (37, 56, 100, 94).
TRAIN_MIX = {"arithmetic": 0.40, "lookup": 0.20, "string": 0.25, "comparison": 0.15}
# The mix of the questions in tiny-random's tokenizer corpus (kept as it was, so tiny-random does not change).
CORPUS_MIX = {"arithmetic": 0.35, "lookup": 0.15, "string": 0.35, "comparison": 0.15}

CAPITALS: tuple[tuple[str, str], ...] = (
    ("France", "Paris"),
    ("Germany", "Berlin"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Portugal", "Lisbon"),
    ("Japan", "Tokyo"),
    ("China", "Beijing"),
    ("India", "New Delhi"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Peru", "Lima"),
    ("Chile", "Santiago"),
    ("Canada", "Ottawa"),
    ("Mexico", "Mexico City"),
    ("Russia", "Moscow"),
    ("Greece", "Athens"),
    ("Norway", "Oslo"),
    ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"),
    ("Poland", "Warsaw"),
    ("Austria", "Vienna"),
    ("Ireland", "Dublin"),
    ("Cuba", "Havana"),
    ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"),
    ("Iran", "Tehran"),
    ("Iraq", "Baghdad"),
    ("Ghana", "Accra"),
    ("Nepal", "Kathmandu"),
    ("Argentina", "Buenos Aires"),
)

# Several phrasings per country: the suite holds some of them out, training sees the others, so a lookup
# question in the suite asks a known fact in an unseen wording.
CAPITAL_TEMPLATES = (
    "What is the capital of {c}?",
    "Name the capital of {c}.",
    "Which city is the capital of {c}?",
    "What city is the capital of {c}?",
    "Tell me the capital of {c}.",
    "{c} has which capital city?",
    "The capital of {c} is which city?",
    "Capital of {c}?",
)
# Phrasings of each country that training always keeps.
_MIN_TRAIN_TEMPLATES = 2
# More phrasings that only training uses (never in the suite): with many wordings per country the model learns
# to read the country rather than the template. Measured at 1,800 pinned steps: lookup 52% -> 79% held out.
TRAIN_ONLY_CAPITAL_TEMPLATES = (
    "What's the capital of {c}?",
    "Capital city of {c}?",
    "Which city is {c}'s capital?",
    "What is the capital city of {c}?",
    "Give the capital of {c}.",
    "{c}: what is its capital?",
    "In {c}, which city is the capital?",
    "Do you know the capital of {c}?",
    "The capital city of {c}?",
    "Say the capital of {c}.",
    "Name {c}'s capital city.",
    "{c}'s capital is which city?",
)
TRAIN_CAPITAL_TEMPLATES = CAPITAL_TEMPLATES + TRAIN_ONLY_CAPITAL_TEMPLATES


@dataclass(frozen=True)
class Question:
    """One question: its area, the user message and the exact expected answer."""

    area: str
    prompt: str
    answer: str


def _addition(rng: random.Random) -> Question:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return Question("arithmetic", f"What is {a} + {b}?", str(a + b))


def _capital(rng: random.Random, templates: Sequence[str] = CAPITAL_TEMPLATES) -> Question:
    country, capital = rng.choice(CAPITALS)
    template = rng.choice(templates)
    return Question("lookup", template.format(c=country), capital)


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 5)))


def _reverse(rng: random.Random) -> Question:
    word = _word(rng)
    return Question("string", f"Reverse the word '{word}'.", word[::-1])


def _compare(rng: random.Random) -> Question:
    a, b = rng.sample(range(100), 2)
    if rng.random() < 0.5:
        return Question("comparison", f"Is {a} greater than {b}? Answer yes or no.", "yes" if a > b else "no")
    return Question("comparison", f"Is {a} less than {b}? Answer yes or no.", "yes" if a < b else "no")


_GENERATORS: dict[str, Callable[[random.Random], Question]] = {
    "arithmetic": _addition,
    "lookup": _capital,
    "string": _reverse,
    "comparison": _compare,
}


def _held_out_capitals(n: int, rng: random.Random) -> list[Question]:
    """`n` capital questions spread evenly over the countries, each country keeping some phrasings."""
    per_country_max = len(CAPITAL_TEMPLATES) - _MIN_TRAIN_TEMPLATES
    if n > per_country_max * len(CAPITALS):
        raise ValueError(f"at most {per_country_max * len(CAPITALS)} lookup questions can be held out")
    countries = list(CAPITALS)
    rng.shuffle(countries)
    out: list[Question] = []
    for i, (country, capital) in enumerate(countries):
        count = n // len(countries) + (1 if i < n % len(countries) else 0)
        for template in rng.sample(CAPITAL_TEMPLATES, count):
            out.append(Question("lookup", template.format(c=country), capital))
    rng.shuffle(out)
    return out


def held_out_questions(n_per_area: int, seed: int) -> list[Question]:
    """The held-out questions, area by area, `n_per_area` distinct prompts each."""
    rng = random.Random(seed)
    out: list[Question] = []
    for area in AREAS:
        if area == "lookup":
            out.extend(_held_out_capitals(n_per_area, rng))
            continue
        seen: set[str] = set()
        while len(seen) < n_per_area:
            q = _GENERATORS[area](rng)
            if q.prompt not in seen:
                seen.add(q.prompt)
                out.append(q)
    return out


def skills_suite(n_per_area: int = SUITE_N_PER_AREA, seed: int = SUITE_SEED) -> list[dict[str, str]]:
    """Suite items in the JSONL suite format: id, area, prompt, reference, scorer ("exact")."""
    items: list[dict[str, str]] = []
    counters = dict.fromkeys(AREAS, 0)
    for q in held_out_questions(n_per_area, seed):
        counters[q.area] += 1
        items.append(
            {
                "id": f"{_ID_PREFIX[q.area]}-{counters[q.area]:04d}",
                "area": q.area,
                "prompt": q.prompt,
                "reference": q.answer,
                "scorer": "exact",
            }
        )
    return items


class SkillSampler:
    """An endless stream of fresh training questions that skips every held-out prompt."""

    def __init__(
        self,
        seed: int,
        held_out: Iterable[str],
        mix: Mapping[str, float] | None = None,
        capital_templates: Sequence[str] = TRAIN_CAPITAL_TEMPLATES,
    ) -> None:
        mix = TRAIN_MIX if mix is None else mix
        lookup: Callable[[random.Random], Question] = functools.partial(_capital, templates=capital_templates)
        self._generators = {**_GENERATORS, "lookup": lookup}
        self._rng = random.Random(seed)
        self._held_out = frozenset(held_out)
        self._areas = list(mix)
        self._weights = [mix[a] for a in self._areas]

    def sample(self) -> Question:
        """One training question whose prompt is not held out."""
        while True:
            area = self._rng.choices(self._areas, self._weights)[0]
            q = self._generators[area](self._rng)
            if q.prompt not in self._held_out:
                return q

    def batch(self, size: int) -> list[Question]:
        """`size` training questions."""
        return [self.sample() for _ in range(size)]


def suite_jsonl(items: Iterable[Mapping[str, str]]) -> str:
    """Items as the text of a suite file: one compact JSON object per line, in order."""
    return "".join(json.dumps(dict(item), ensure_ascii=False) + "\n" for item in items)
