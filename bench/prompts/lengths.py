"""Token-length distributions parsed from strings: `128`, `fixed:128`, `uniform:64:256`, `normal:512:64`."""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from bench.errors import UsageError

_FORMS = "N, fixed:N, uniform:LO:HI or normal:MEAN:STD (tokens)"


class LengthDist(BaseModel):
    """A distribution of lengths in tokens; every sample is at least `minimum`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fixed", "uniform", "normal"] = "fixed"
    a: int = Field(gt=0, description="fixed: the length; uniform: low bound; normal: mean (tokens)")
    b: int = Field(
        0, ge=0, description="uniform: high bound (inclusive); normal: standard deviation (tokens)"
    )
    minimum: int = Field(1, ge=1, description="samples below this are raised to it (tokens)")

    @model_validator(mode="after")
    def _bounds(self) -> LengthDist:
        if self.kind == "uniform" and self.b < self.a:
            raise ValueError(f"uniform high bound {self.b} is below its low bound {self.a}")
        return self

    def sample(self, rng: random.Random) -> int:
        """One length in tokens."""
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.randint(self.a, self.b)
        else:
            value = round(rng.gauss(self.a, self.b))
        return max(self.minimum, value)

    @property
    def mean(self) -> float:
        """Mean length in tokens (before clamping)."""
        return (self.a + self.b) / 2 if self.kind == "uniform" else float(self.a)

    def __str__(self) -> str:
        return str(self.a) if self.kind == "fixed" else f"{self.kind}:{self.a}:{self.b}"


def parse_length(text: str | int, *, flag: str = "--input-tokens") -> LengthDist:
    """Parse `128`, `fixed:128`, `uniform:64:256` or `normal:512:64`; UsageError naming `flag` otherwise."""
    if isinstance(text, int):
        text = str(text)
    parts = [p.strip() for p in text.strip().split(":")]
    kind = "fixed" if len(parts) == 1 else parts[0].lower()
    numbers = parts if len(parts) == 1 else parts[1:]
    wanted = {"fixed": 1, "uniform": 2, "normal": 2}.get(kind)
    if wanted is None or len(numbers) != wanted:
        raise UsageError(f"{flag} {text!r}: expected {_FORMS}", flag=flag)
    try:
        values = [int(n) for n in numbers]
    except ValueError:
        raise UsageError(
            f"{flag} {text!r}: lengths are whole numbers of tokens ({_FORMS})", flag=flag
        ) from None
    if values[0] <= 0 or (len(values) > 1 and values[1] < 0):
        raise UsageError(f"{flag} {text!r}: lengths must be positive", flag=flag)
    if kind == "uniform" and values[1] < values[0]:
        raise UsageError(f"{flag} {text!r}: uniform:LO:HI needs LO <= HI", flag=flag)
    return LengthDist(kind=kind, a=values[0], b=values[1] if len(values) > 1 else 0)


def coerce_length(value: Any) -> Any:
    """A pydantic before-validator for LengthDist fields: `128`, `"uniform:64:256"` or a mapping.

    A bad string raises ValueError (not UsageError), so the error names the file's key, not a flag.
    """
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return parse_length(value, flag="length")
        except UsageError as exc:
            raise ValueError(str(exc).removeprefix("length ")) from None
    return value


Length = Annotated[LengthDist, BeforeValidator(coerce_length)]
