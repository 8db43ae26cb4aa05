"""Prompt files: ShareGPT JSON and JSONL prompt files.

ShareGPT: `[{"conversations": [{"from": "human", "value": ...}, {"from": "gpt", "value": ...}, ...]}, ...]`;
the first human turn is the prompt and the reply after it sizes the output when no output length is
given (as vLLM's benchmark does). Entries without a human turn are skipped.

JSONL, one object per line: `{"prompt": "..."}` or `{"messages": [{"role": ..., "content": ...}, ...]}`,
with an optional `"max_tokens": N`; a ShareGPT-shaped object (`conversations`) is accepted too. A malformed
line is a ConfigError naming the file and the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import ConfigError

_HUMAN = ("human", "user")
_ASSISTANT = ("gpt", "assistant", "chatgpt", "bard", "model")


@dataclass(frozen=True, slots=True)
class PromptItem:
    """One prompt from a file: a prompt string or chat messages, and an output budget or reference reply."""

    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    max_tokens: int | None = None  # tokens, when the file sets it
    reference: str | None = None  # the recorded reply (ShareGPT), to size the output


def load_prompt_file(path: Path) -> list[PromptItem]:
    """Every usable prompt in a ShareGPT JSON or JSONL file, in file order."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read prompt file {path}: {exc.strerror or exc}", file=str(path)) from exc
    stripped = text.lstrip()
    items = _sharegpt_json(text, path) if stripped.startswith("[") else _jsonl(text, path)
    if not items:
        raise ConfigError(
            f"{path} holds no usable prompts",
            file=str(path),
            fix='use ShareGPT JSON ([{"conversations": [{"from": "human", "value": ...}]}]) or JSONL lines '
            'with "prompt" or "messages"',
        )
    return items


def _sharegpt_json(text: str, path: Path) -> list[PromptItem]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})", file=str(path)
        ) from exc
    items: list[PromptItem] = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict) or "conversations" not in entry:
            raise ConfigError(
                f"{path}: entry {index} is not a ShareGPT conversation (an object with 'conversations')",
                file=str(path),
                key=f"[{index}]",
            )
        item = _conversation(entry["conversations"], where=f"{path}: entry {index}", path=path)
        if item is not None:
            items.append(item)
    return items


def _conversation(turns: Any, *, where: str, path: Path) -> PromptItem | None:
    if not isinstance(turns, list):
        raise ConfigError(f"{where}: 'conversations' must be a list of turns", file=str(path))
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise ConfigError(f"{where}: turn {i} needs 'from' and a string 'value'", file=str(path))
        if str(turn.get("from", "")).lower() in _HUMAN and turn["value"].strip():
            reply = turns[i + 1] if i + 1 < len(turns) else None
            reference = None
            if isinstance(reply, dict) and str(reply.get("from", "")).lower() in _ASSISTANT:
                reference = reply.get("value") if isinstance(reply.get("value"), str) else None
            return PromptItem(prompt=turn["value"], reference=reference)
    return None


def _jsonl(text: str, path: Path) -> list[PromptItem]:
    items: list[PromptItem] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{where}: not valid JSON ({exc.msg}, column {exc.colno})",
                file=str(path),
                key=f"line {lineno}",
            ) from exc
        if not isinstance(obj, dict):
            raise ConfigError(f"{where}: expected a JSON object", file=str(path), key=f"line {lineno}")
        item = _jsonl_item(obj, where=where, path=path, lineno=lineno)
        if item is not None:
            items.append(item)
    return items


def _jsonl_item(obj: dict[str, Any], *, where: str, path: Path, lineno: int) -> PromptItem | None:
    max_tokens = obj.get("max_tokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise ConfigError(
            f"{where}: max_tokens must be a positive integer", file=str(path), key=f"line {lineno}"
        )
    if isinstance(obj.get("prompt"), str):
        return PromptItem(prompt=obj["prompt"], max_tokens=max_tokens)
    messages = obj.get("messages")
    if messages is not None:
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)
        ):
            raise ConfigError(
                f"{where}: 'messages' must be a non-empty list of {{'role', 'content'}} objects",
                file=str(path),
                key=f"line {lineno}",
            )
        return PromptItem(messages=messages, max_tokens=max_tokens)
    if "conversations" in obj:
        item = _conversation(obj["conversations"], where=where, path=path)
        return (
            None
            if item is None
            else PromptItem(prompt=item.prompt, reference=item.reference, max_tokens=max_tokens)
        )
    raise ConfigError(
        f"{where}: a prompt line needs 'prompt' (a string) or 'messages' (a list)",
        file=str(path),
        key=f"line {lineno}",
    )
