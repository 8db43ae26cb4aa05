"""Valid stored documents for tests that write runs by hand: the same typed models the product writes.

A test that stores a run without running one builds its documents here, so what it stores is what the
product would store (the store reads every document back as its type and refuses a malformed one).
"""

from __future__ import annotations

from typing import Any

from bench.accuracy.documents import AccuracyRunProfile
from bench.documents import Provenance, SweepPoint, TargetDoc
from bench.loadgen.documents import LoadRunProfile, Sent
from bench.loadgen.profiles import Limits
from bench.prompts import PromptSpec


def target(name: str = "mock", kind: str = "mock", api: str = "openai-chat", **kw: Any) -> TargetDoc:
    """A run's target."""
    server = "llmbench" if kind == "local" else "openai"
    values: dict[str, Any] = {"name": name, "kind": kind, "url": "http://127.0.0.1:1/v1", "api": api,
                              "model": name, "server_kind": server}  # fmt: skip
    return TargetDoc.model_validate({**values, **kw})


def load_profile(kind: str = "concurrent", *, sent: bool = False, **kw: Any) -> LoadRunProfile:
    """A load run's profile: `kind` with its load (concurrency 1 / rate 1 unless given), 100 requests."""
    values: dict[str, Any] = {"kind": kind, "label": kw.pop("label", kind), "limits": Limits(requests=100)}
    if kind == "concurrent":
        values["concurrency"] = kw.pop("concurrency", 1)
    if kind in ("constant", "poisson"):
        values["rate"] = kw.pop("rate", 1.0)
    prompts = kw.pop("prompts", None)
    values["prompts"] = prompts if prompts is not None else PromptSpec(input_tokens="32", output_tokens="16")
    if sent:
        values["sent"] = Sent(length_unit="reference", ignore_eos_requested=True, ignore_eos=True)
    return LoadRunProfile.model_validate({**values, **kw})


def accuracy_profile(suite: str = "builtin:tiny-skills", **kw: Any) -> AccuracyRunProfile:
    """An accuracy run's profile."""
    return AccuracyRunProfile.model_validate({"target": kw.pop("target", "mock"), "suite": suite, **kw})


def provenance(**kw: Any) -> Provenance:
    """A run's provenance (nothing known but what is given)."""
    return Provenance.model_validate(kw)


def point(point_id: str, target: str = "t") -> SweepPoint:
    """A sweep's planned point (a mock target)."""
    return SweepPoint(point_id=point_id, label=point_id, target=target, kind="mock", serve_name=target,
                      variant="base", backend="mock")  # fmt: skip
