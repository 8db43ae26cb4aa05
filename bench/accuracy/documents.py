"""What an accuracy run stores: its profile (the spec it ran, the suite's hash) and its summary
(`llmbench.accuracy/1`: score and Wilson 95% CI overall and per area, tokens, cost, failures). One model
writes each and reads it back (bench.documents.StoredModel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from bench.documents import StoredModel
from bench.prompts.templates import TemplateRef

SCHEMA = "llmbench.accuracy/1"


class AccuracyRunProfile(StoredModel):
    """The accuracy spec a run ran (bench.accuracy.spec.AccuracySpec, as it was), the protocol, the hashes
    of the item and judge templates, the prompt template the items were rendered through (`prompt`: its
    name, version and hash), and the suite's content hash, size, version and regression area (a suite
    imported from feedback: the items users marked bad)."""

    target: str
    url: str | None = None
    suite: str
    judge: str | None = None
    limit: int | None = None
    concurrency: int = 8
    model: str | None = None
    api: str | None = None
    tokenizer: str | None = None
    tasks_dir: Path | None = None
    chat_template: bool | None = None
    max_tokens: int | None = None
    timeout_s: float | None = None
    api_key_env: str | None = None
    similarity: bool = False
    logprobs: bool = False
    template: Path | None = None
    store: Path | None = None
    server_kind: str | None = None
    hardware: str | None = None
    sweep_id: str | None = None
    point_id: str | None = None
    templates: dict[str, str | None] = Field(default_factory=dict)
    suite_sha256: str | None = None
    items: int | None = None
    prompt: TemplateRef | None = None
    suite_version: int | None = None
    regression_area: str | None = None


class AreaScore(StoredModel):
    """Score of one area (or of the whole run): Wilson 95% CI; failed and unscored items counted apart."""

    score: float | None
    n: int
    correct: int
    ci95: tuple[float, float] | None = None
    failed: int = 0
    unscored: int = 0


class ErrorKind(StoredModel):
    kind: str
    count: int
    http_status: int | None = None
    first_message: str = ""


class TokenTotals(StoredModel):
    input: int | None = None
    output: int | None = None


class JudgeUsage(StoredModel):
    """What the LLM judge cost a run: calls (cached ones free), tokens and USD."""

    judge_model: str | None = None
    calls: int = 0
    cached: int = 0
    tokens: TokenTotals = TokenTotals()
    cost_usd: float | None = None


class RequestTotals(StoredModel):
    """lm-eval runs: every request it sent through the proxy, and how many failed."""

    n: int
    failed: int = 0


class LatencySummary(StoredModel):
    mean: float | None = None
    p50: float | None = None
    max: float | None = None


class AccuracySummary(StoredModel):
    """The `llmbench.accuracy/1` summary of one run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: str = Field(SCHEMA, alias="schema")
    suite: str
    target: str
    score: float | None
    ci95: tuple[float, float] | None = None
    n: int
    correct: int
    areas: dict[str, AreaScore] = Field(default_factory=dict)
    tokens: TokenTotals = TokenTotals()
    cost_usd: float | None = None
    failed: int = 0
    error_details: list[ErrorKind] = Field(default_factory=list)
    unscored: int = 0
    items: int = 0
    latency_ms: LatencySummary = LatencySummary()
    run_id: str | None = None
    cost_note: str | None = None
    judge: JudgeUsage | None = None
    lm_eval: dict[str, Any] | None = None  # lm-eval runs: per task, its metric, value, stderr, n, config hash
    requests: RequestTotals | None = None  # lm-eval runs: the requests behind the samples
    templates: dict[str, str] | None = None  # lm-eval runs: each task's config hash

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
