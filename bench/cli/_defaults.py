"""An option's default as `--help` shows it, read from the model that holds it (each default in one place).

Click options default to None, so an unset flag falls back to the model's own default; the help text reads
that default from the model instead of writing it out a second time.
"""

from __future__ import annotations

from pydantic import BaseModel


def shown(model: type[BaseModel], field: str) -> str:
    """`model.field`'s default as help text: on/off for a switch, numbers without trailing zeros."""
    value = model.model_fields[field].get_default(call_default_factory=True)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
