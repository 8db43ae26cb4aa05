"""The signals a router or a cascade decides on, in a registry keyed by `kind`.

Every signal gives each item a score where higher means "needs the strong model"; the policy sends an item
to the strong model (router) or escalates it (cascade) when its score is at least the threshold. A score of
None means the signal could not be computed for that item (no logprobs came back, the judge failed): the
policy then takes its fallback, the strong model.

Router signals need no answer (the prompt only): prompt length, keyword rules, a classifier trained on
prompt embeddings. Cascade signals read the cheap model's answer: its token-logprob confidence (a low
quantile), agreement across its stored repeats, a judge's verdict, the scorer's format validity.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bench.accuracy.logprobs import Quantile
from bench.accuracy.scorers import normalize
from bench.whatif.classifier import fit_logistic
from bench.whatif.model import JudgedAnswer, Option, RouteData
from bench.whatif.policy import FREE, SignalCost

Stage = Literal["router", "cascade"]
JUDGE_RUBRIC = (
    "Pass only if the answer correctly and completely answers the question, in the format the question "
    "asks for. Fail if it is wrong, incomplete, evasive or answers a different question."
)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptLengthSignal(_Spec):
    """Router: the prompt's length in UTF-8 bytes (longer prompts go to the strong model)."""

    kind: Literal["prompt_length"] = "prompt_length"


class KeywordSignal(_Spec):
    """Router: 1 when the prompt holds any of the keywords (whole words, any case), else 0."""

    kind: Literal["keyword"] = "keyword"
    keywords: list[str] = Field(min_length=1)


class ClassifierSignal(_Spec):
    """Router: P(the strong model is right where the cheap one is wrong), from the prompt's embedding."""

    kind: Literal["classifier"] = "classifier"
    l2: float = Field(1.0, gt=0, description="L2 penalty of the logistic regression")


class LogprobSignal(_Spec):
    """Cascade: minus a low quantile of the cheap answer's token logprobs (less confident, higher)."""

    kind: Literal["logprob"] = "logprob"
    quantile: Quantile = "p10"


class AgreementSignal(_Spec):
    """Cascade: 1 − the share of the cheap model's stored repeats that agree with its most common answer."""

    kind: Literal["agreement"] = "agreement"


class JudgeSignal(_Spec):
    """Cascade: 1 − a judge's score of the cheap answer (no reference shown); its calls are paid for."""

    kind: Literal["judge"] = "judge"
    rubric: str = JUDGE_RUBRIC


class FormatSignal(_Spec):
    """Cascade: 1 when the scorer found the cheap answer malformed (no match, no number, no JSON), else 0."""

    kind: Literal["format"] = "format"


SignalSpec = Annotated[
    PromptLengthSignal
    | KeywordSignal
    | ClassifierSignal
    | LogprobSignal
    | AgreementSignal
    | JudgeSignal
    | FormatSignal,
    Field(discriminator="kind"),
]


@dataclass(frozen=True)
class SignalInputs:
    """What signals read: the data, the pair, and the precomputed prompt embeddings and judge verdicts."""

    data: RouteData
    cheap: Option
    strong: Option
    embeddings: Mapping[str, Sequence[float]] | None = None  # item id → the prompt's embedding
    judged: Mapping[str, JudgedAnswer] | None = None  # item id → the judge's verdict on the cheap answer


@dataclass(frozen=True)
class Fitted:
    """A signal ready to score items, and what an exported policy needs to recompute it."""

    score: Callable[[str], float | None]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SignalKind:
    """One registry entry: its stage, why it cannot run on some data, how it scores, and its own cost."""

    stage: Stage
    missing: Callable[[Any, SignalInputs], str | None]
    fit: Callable[[Any, SignalInputs, Sequence[str]], Fitted]
    cost: Callable[[Any, SignalInputs, str], SignalCost] = lambda _s, _i, _id: FREE
    trained: bool = False  # learns from labels: its thresholds are chosen on cross-fitted scores


def _no_prompts(_spec: Any, inputs: SignalInputs) -> str | None:
    return None if inputs.data.prompts else "no prompt text (the runs' suite file is not at hand)"


def _length(_spec: Any, inputs: SignalInputs, _train: Sequence[str]) -> Fitted:
    prompts = inputs.data.prompts
    return Fitted(lambda i: float(len(prompts[i].encode())) if i in prompts else None)


def _keyword(spec: Any, inputs: SignalInputs, _train: Sequence[str]) -> Fitted:
    assert isinstance(spec, KeywordSignal)
    words = "|".join(re.escape(normalize(k)) for k in spec.keywords)
    pattern = re.compile(rf"(?<!\w)(?:{words})(?!\w)")
    prompts = inputs.data.prompts

    def score(i: str) -> float | None:
        return None if i not in prompts else float(pattern.search(normalize(prompts[i])) is not None)

    return Fitted(score, {"keywords": list(spec.keywords)})


def _no_embeddings(_spec: Any, inputs: SignalInputs) -> str | None:
    return None if inputs.embeddings else "no prompt embeddings (no prompt text, or no embedding model)"


def _classifier(spec: Any, inputs: SignalInputs, train: Sequence[str]) -> Fitted:
    assert isinstance(spec, ClassifierSignal) and inputs.embeddings is not None
    vectors = inputs.embeddings
    ids = [i for i in train if i in vectors]
    if not ids:
        return Fitted(lambda _i: None)
    labels = [inputs.strong.items[i].correct and not inputs.cheap.items[i].correct for i in ids]
    model = fit_logistic([vectors[i] for i in ids], labels, spec.l2)

    def score(i: str) -> float | None:
        return model.probability(vectors[i]) if i in vectors else None

    weights = [round(w, 6) for w in model.weights]
    params = {"l2": spec.l2, "bias": round(model.bias, 6), "weights": weights, "trained_on": len(ids)}
    return Fitted(score, params)


def _no_logprobs(_spec: Any, inputs: SignalInputs) -> str | None:
    has = any(o.logprobs is not None for o in inputs.cheap.items.values())
    return None if has else f"{inputs.cheap.name} stored no token logprobs"


def _logprob(spec: Any, inputs: SignalInputs, _train: Sequence[str]) -> Fitted:
    assert isinstance(spec, LogprobSignal)
    items = inputs.cheap.items

    def score(i: str) -> float | None:
        summary = items[i].logprobs
        return None if summary is None else -summary.value(spec.quantile)

    return Fitted(score, {"quantile": spec.quantile})


def _no_repeats(_spec: Any, inputs: SignalInputs) -> str | None:
    has = any(len(o.repeat_outputs) >= 2 for o in inputs.cheap.items.values())
    return None if has else f"{inputs.cheap.name} stored no repeats of its items"


def disagreement(outputs: Sequence[str]) -> float | None:
    """1 − the share of answers equal (normalized) to the most common one; None with fewer than 2."""
    if len(outputs) < 2:
        return None
    top = Counter(normalize(o) for o in outputs).most_common(1)[0][1]
    return 1.0 - top / len(outputs)


def _agreement(_spec: Any, inputs: SignalInputs, _train: Sequence[str]) -> Fitted:
    items = inputs.cheap.items
    return Fitted(lambda i: disagreement(items[i].repeat_outputs))


def _no_judge(_spec: Any, inputs: SignalInputs) -> str | None:
    return None if inputs.judged is not None else "no judge given (--judge NAME)"


def _judge(spec: Any, inputs: SignalInputs, _train: Sequence[str]) -> Fitted:
    assert isinstance(spec, JudgeSignal) and inputs.judged is not None
    judged = inputs.judged
    return Fitted(lambda i: 1.0 - judged[i].score if i in judged else None, {"rubric": spec.rubric})


def _judge_cost(_spec: Any, inputs: SignalInputs, item_id: str) -> SignalCost:
    verdict = (inputs.judged or {}).get(item_id)
    if verdict is None:  # the judge failed: the fallback escalates, the call's cost is unknown
        return SignalCost(usd=None)
    return SignalCost(usd=verdict.cost_usd, ms=verdict.latency_ms)


def _no_format(_spec: Any, inputs: SignalInputs) -> str | None:
    has = any(o.format_valid is not None for o in inputs.cheap.items.values())
    return None if has else "the scorers of these items check no format (exact, keyword)"


def _format(_spec: Any, inputs: SignalInputs, _train: Sequence[str]) -> Fitted:
    items = inputs.cheap.items
    return Fitted(lambda i: 1.0 if items[i].format_valid is False else 0.0)  # unknown format: no evidence


SIGNALS: dict[str, SignalKind] = {
    "prompt_length": SignalKind("router", _no_prompts, _length),
    "keyword": SignalKind("router", _no_prompts, _keyword),
    "classifier": SignalKind("router", _no_embeddings, _classifier, trained=True),
    "logprob": SignalKind("cascade", _no_logprobs, _logprob),
    "agreement": SignalKind("cascade", _no_repeats, _agreement),
    "judge": SignalKind("cascade", _no_judge, _judge, _judge_cost),
    "format": SignalKind("cascade", _no_format, _format),
}
DEFAULT_SIGNALS: tuple[SignalSpec, ...] = (
    PromptLengthSignal(),
    ClassifierSignal(),
    LogprobSignal(),
    AgreementSignal(),
    JudgeSignal(),
    FormatSignal(),
)


def label(spec: SignalSpec) -> str:
    """A short name: 'cascade:logprob(p10)', 'router:keyword'."""
    detail = f"({spec.quantile})" if isinstance(spec, LogprobSignal) else ""
    return f"{SIGNALS[spec.kind].stage}:{spec.kind}{detail}"
