"""Conversation files for session workloads: multi-turn ShareGPT, or OpenAI `messages` JSONL.

- ShareGPT: a JSON list (or JSONL lines) of `{"conversations": [{"from": "system" | "human" | "gpt", "value":
  ...}, ...]}` (`user`/`assistant`/`chatgpt`/`bard`/`model` are read too).
- OpenAI messages JSONL: one `{"messages": [{"role": ..., "content": ...}, ...]}` per line.

A conversation becomes its system prompt (a leading system message), then turns: each user message (user
messages in a row are joined) and the recorded reply after it, if any. Tool and function messages are left
out. A conversation without a user message is skipped; a malformed line is refused by line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.prompts.workloads.base import LineProblem, file_error
from bench.validation import read_text

_ROLE = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "model": "assistant",
}
FIX = (
    'use ShareGPT ([{"conversations": [{"from": "human", "value": ...}, {"from": "gpt", "value": ...}]}]) '
    'or JSONL lines of {"messages": [{"role": "user", "content": ...}, ...]}'
)


@dataclass(frozen=True, slots=True)
class Turn:
    """One user message and the reply recorded after it (None when the file has none)."""

    user: str
    answer: str | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """A recorded conversation: its system prompt, if any, and its turns in order."""

    system: str | None
    turns: tuple[Turn, ...]


def load_conversations(path: Path) -> list[Conversation]:
    """Every usable conversation of a file, in order; ConfigError naming bad lines or entries."""
    try:
        text = read_text(path, what="conversation file")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"conversation file not found: {path}", file=str(path), fix="check the path"
        ) from exc
    out = _sharegpt_list(text, path) if text.lstrip().startswith("[") else _jsonl(text, path)
    if not out:
        raise ConfigError(f"{path} holds no conversation with a user message", file=str(path), fix=FIX)
    return out


def _sharegpt_list(text: str, path: Path) -> list[Conversation]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})",
            file=str(path),
            key=f"line {exc.lineno}",
            fix=FIX,
        ) from exc
    out = []
    for index, entry in enumerate(data):
        try:
            conversation = _conversation(entry)
        except ValueError as exc:
            raise ConfigError(
                f"{path}: entry {index}: {exc}", file=str(path), key=f"[{index}]", fix=FIX
            ) from exc
        if conversation.turns:
            out.append(conversation)
    return out


def _jsonl(text: str, path: Path) -> list[Conversation]:
    problems: list[LineProblem] = []
    out = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            conversation = _conversation(json.loads(raw))
        except json.JSONDecodeError as exc:
            problems.append(LineProblem(line, f"not valid JSON ({exc.msg}, column {exc.colno})"))
            continue
        except ValueError as exc:
            problems.append(LineProblem(line, str(exc)))
            continue
        if conversation.turns:
            out.append(conversation)
    if problems:
        raise file_error(path, problems, what="conversation lines", fix=FIX)
    return out


def _conversation(entry: Any) -> Conversation:
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    if "messages" in entry:
        raw = entry["messages"]
        if not isinstance(raw, list):
            raise ValueError("'messages' must be a list")
        messages = [(_role(m, "role"), _text(m, "content")) for m in raw]
    elif "conversations" in entry:
        raw = entry["conversations"]
        if not isinstance(raw, list):
            raise ValueError("'conversations' must be a list")
        messages = [(_role(m, "from"), _text(m, "value")) for m in raw]
    else:
        raise ValueError("needs 'conversations' (ShareGPT) or 'messages' (OpenAI)")
    system = None
    turns: list[Turn] = []
    for i, (role, text) in enumerate(messages):
        if role == "system" and i == 0:
            system = text
        elif role == "user":
            if turns and turns[-1].answer is None:
                turns[-1] = Turn(turns[-1].user + "\n" + text)
            else:
                turns.append(Turn(text))
        elif role == "assistant" and turns:
            previous = turns[-1].answer
            turns[-1] = Turn(turns[-1].user, text if previous is None else previous + "\n" + text)
    return Conversation(system, tuple(turns))


def _role(message: Any, key: str) -> str:
    if not isinstance(message, dict):
        raise ValueError("a message is not an object")
    role = str(message.get(key, "")).lower()
    return _ROLE.get(role, "other")


def _text(message: dict[str, Any], key: str) -> str:
    content = message.get(key)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    if content is None:
        return ""
    raise ValueError(f"a message's {key!r} is not text")
