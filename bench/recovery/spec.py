"""RecoverySpec: one `llmbench bench recovery BASE VARIANT` (or `quantize --evaluate`), every default here."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_THRESHOLD = 0.95
DEFAULT_SPEED_LEVELS = (1, 2, 4, 8, 16, 32)


class RecoverySpec(BaseModel):
    """Base vs variant on the same items and the same load (lengths in tokens, shares as fractions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = Field(min_length=1, description="registry name of the base model")
    variant: str = Field(min_length=1, description="NAME:VARIANT or the variant's registry name")
    suites: list[str] = Field(min_length=1, description="builtin:NAME or suite .jsonl paths")
    threshold: float = Field(DEFAULT_THRESHOLD, gt=0, le=2, description="recovery below this is flagged")
    limit: int | None = Field(None, ge=1, description="items per area")
    accuracy_concurrency: int = Field(8, ge=1, description="accuracy requests in flight")
    max_tokens: int | None = Field(
        None, ge=1, description="output budget per item; None = 256 capped at half the served context"
    )
    backend: Literal["vllm", "hf"] | None = Field(
        None, description="serve both on this backend; None = the one that runs the variant here"
    )
    speed: bool = Field(True, description="measure the speed ratio (False: accuracy and size only)")
    speed_levels: list[int] = Field(default_factory=lambda: list(DEFAULT_SPEED_LEVELS))
    speed_requests: int = Field(
        64, ge=1, description="measured requests per level (at least 4 × concurrency)"
    )
    # In the model's own tokens: base and variant share the tokenizer, and the prompt must fit the served
    # context (reference tokens of the tiny models' small vocabulary are about twice as many model tokens).
    input_tokens: int = Field(64, ge=1, description="speed prompts' length, model tokens")
    output_tokens: int = Field(32, ge=1, description="speed answers' length, model tokens")
    saturation_share: float = Field(
        0.9,
        gt=0,
        le=1,
        description="near saturation: the lowest level at this share of the base's best tok/s",
    )
    store: Path | None = None

    @field_validator("speed_levels")
    @classmethod
    def _levels(cls, value: list[int]) -> list[int]:
        if not value or any(v < 1 for v in value):
            raise ValueError("speed levels must be positive concurrencies, e.g. 1,4,16")
        return sorted(set(value))

    @field_validator("suites")
    @classmethod
    def _suites(cls, value: list[str]) -> list[str]:
        if any(s.startswith("lm-eval:") for s in value):
            raise ValueError(
                "recovery scores llmbench suites (builtin:NAME or .jsonl); lm-eval tasks are not paired"
            )
        return value

    def requests_at(self, concurrency: int) -> int:
        """Measured requests at one level: speed_requests, and at least 4 per concurrent stream."""
        return max(self.speed_requests, 4 * concurrency)
