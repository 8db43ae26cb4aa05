"""The input of an accuracy run (built by the CLI from flags) and what a finished run returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bench.accuracy.documents import AccuracySummary
from bench.accuracy.runner import DEFAULT_MAX_TOKENS
from bench.errors import UsageError
from bench.records import DEFAULT_TIMEOUT_S, ApiKind, ServerKind
from bench.validation import none_means_default

LMEVAL_PREFIX = "lm-eval:"


class SuiteOptions(BaseModel):
    """What one accuracy run scores and how: the suite flags of `bench accuracy`, and a sweep file's suite
    step (bench.sweep.spec), with the same fields and the same defaults. None for a field with a default
    means that default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str = Field(min_length=1, description="builtin:NAME, a JSONL path, or lm-eval:TASK[,TASK]")
    judge: str | None = Field(None, description="registry name of the judge endpoint")
    limit: int | None = Field(None, ge=1, description="items per area (suites) or samples per task (lm-eval)")
    concurrency: int = Field(8, ge=1, description="requests in flight at once")
    tasks_dir: Path | None = Field(None, description="folder of lm-eval task YAML files")
    chat_template: bool | None = Field(
        None, description="lm-eval: apply the chat template (default: chat API)"
    )
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1, description="output budget per item (tokens)")
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, description="per-request timeout (s)")
    similarity: bool = Field(False, description="add advisory embedding similarity to every item")
    logprobs: bool = Field(
        False, description="keep a summary of each answer's token logprobs (servers that return them)"
    )
    template: Path | None = Field(
        None, description="a llmbench.prompt/1 file every item is rendered through (a prompt version)"
    )

    @model_validator(mode="before")
    @classmethod
    def _none_is_the_default(cls, data: Any) -> Any:
        return none_means_default(cls, data)


class AccuracySpec(SuiteOptions):
    """Everything one accuracy run needs: the suite options and the endpoint (built by the CLI)."""

    target: str = Field(min_length=1, description="registry name or URL")
    url: str | None = Field(None, description="base URL of a local entry's running server")
    model: str | None = None
    api: ApiKind | None = None
    tokenizer: str | None = Field(None, description="local tokenizer folder (lm-eval over completions)")
    api_key_env: str | None = Field(
        None, min_length=1, description="environment variable holding the key of a URL or local target"
    )
    store: Path | None = None
    server_kind: ServerKind | None = Field(None, description="skip detection: what the server is")
    hardware: str | None = Field(None, description="models.yaml hardware profile the server runs on")
    sweep_id: str | None = Field(None, description="the sweep this run belongs to (set by sweeps)")
    point_id: str | None = Field(None, description="its point in that sweep")

    @property
    def lm_eval_tasks(self) -> tuple[str, ...] | None:
        if not self.suite.startswith(LMEVAL_PREFIX):
            return None
        tasks = tuple(t.strip() for t in self.suite.removeprefix(LMEVAL_PREFIX).split(",") if t.strip())
        if not tasks:
            raise UsageError("name at least one task: lm-eval:TASK[,TASK]", flag="--suite")
        return tasks


@dataclass(frozen=True)
class AccuracyResult:
    """A finished run: its id, status and the `llmbench.accuracy/1` summary (with its error breakdown)."""

    run_id: str
    status: Literal["complete", "partial", "failed"]
    summary: AccuracySummary
    logprob_items: int | None = None  # items that came back with token logprobs (None: not asked)

    @property
    def failed_items(self) -> int:
        """Items whose request (or judge) failed: counted apart, neither right nor wrong."""
        return self.summary.failed
