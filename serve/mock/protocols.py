"""What the mock's API dialects share: the error type, the pre-rendered stream pieces, input checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from serve.mock.answers import Answer, Generation


class ApiError(Exception):
    """A request the mock answers with an HTTP error in the provider's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind


@dataclass(slots=True)
class Rendered:
    """A streamed answer as bytes: each content chunk is prefix + JSON-escaped text + suffix."""

    head: bytes  # sent as soon as the request is accepted (Anthropic's message_start…ping)
    first: bytes  # sent right before the first content chunk (OpenAI's role chunk)
    prefix: bytes
    suffix: bytes
    tail: bytes  # after the last content chunk (finish, usage, [DONE] / message_stop)
    # Reasoning chunks, before the content: reasoning_prefix + text + (reasoning_suffix or suffix); `switch`
    # goes between the last reasoning chunk and the first content chunk (Anthropic's block change).
    reasoning_prefix: bytes = b""
    reasoning_suffix: bytes | None = None
    switch: bytes = b""


class ApiDialect(Protocol):
    """One provider's request parsing and response rendering (OpenAI chat, completions, Anthropic)."""

    def parse(self, body: Any, strict: bool) -> Generation:
        """Check the JSON body; raise ApiError(400) with the provider's wording when it is malformed."""
        ...

    def body(
        self, gen: Generation, answers: list[Answer], prompt_tokens: int, rid: int, created: int
    ) -> bytes:
        """The whole non-streamed JSON response."""
        ...

    def stream(self, gen: Generation, answer: Answer, prompt_tokens: int, rid: int, created: int) -> Rendered:
        """The streamed response, as pre-rendered pieces."""
        ...

    def error(self, err: ApiError) -> bytes:
        """The provider's JSON error body."""
        ...

    def not_found(self, model: str) -> ApiError:
        """The provider's error for an unknown model id."""
        ...


def json_type(value: Any) -> str:
    """How OpenAI's errors name a JSON value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def type_error(name: str, expected: str, value: Any) -> ApiError:
    """A 400 for a field of the wrong JSON type."""
    return ApiError(
        400,
        f"Invalid type for '{name}': expected {expected}, but got {json_type(value)} instead.",
        param=name,
        code="invalid_type",
    )


def get_int(body: dict[str, Any], name: str, minimum: int) -> int | None:
    """An optional integer field of at least `minimum`."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise type_error(name, "an integer", value)
    if value < minimum:
        raise ApiError(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum}, "
            f"but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    return value


def get_number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    """An optional number field within [low, high]."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise type_error(name, "a number", value)
    if not low <= value <= high:
        raise ApiError(
            400,
            f"Invalid '{name}': {value} is out of range. Expected a value between {low} and {high}.",
            param=name,
            code="invalid_value",
        )
    return float(value)


def get_bool(body: dict[str, Any], name: str) -> bool:
    """An optional boolean field (absent or null is False)."""
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise type_error(name, "a boolean", value)
    return value


def get_stops(body: dict[str, Any], name: str, limit: int | None) -> list[str]:
    """A stop field: a string or a list of strings (at most `limit`)."""
    value = body.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise type_error(name, "a string or an array of strings", value)
    if limit is not None and len(value) > limit:
        raise ApiError(
            400, f"Invalid '{name}': at most {limit} stop sequences.", param=name, code="invalid_value"
        )
    return list(value)


def check_fields(body: dict[str, Any], known: frozenset[str], strict: bool, message: str) -> None:
    """In strict mode, reject the first field the real provider does not know."""
    if strict:
        for name in body:
            if name not in known:
                raise ApiError(400, message.format(name=name))
