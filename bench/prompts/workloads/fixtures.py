"""Small synthetic files in each published trace and log format, deterministic from a seed (nothing is
downloaded): what `scripts/make-fixture-traces` writes, and what the examples and tests replay.

- `mooncake.jsonl`: requests of a few shared-prefix families (equal leading hash ids) plus blocks of
  their own, Mooncake's columns and 512-token blocks;
- `azure.csv`: Azure LLM inference trace columns, date-time stamps with 7-digit fractions as published;
- `burstgpt.csv`: BurstGPT's columns, two models and both log types, some failed rows (0 response tokens);
- `requests.jsonl`: a gateway log of chat-completions bodies (bare and wrapped lines, tools,
  response_format, sessions), with timestamps;
- `conversations.jsonl`: multi-turn conversations as OpenAI messages JSONL.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.prompts.workloads.text import TextSource

FIXTURE_ROWS = 40
_START = datetime(2024, 5, 10, 9, 0, 0, tzinfo=UTC)


def mooncake(seed: int, rows: int = FIXTURE_ROWS) -> str:
    """A Mooncake JSONL trace: 3 families of shared leading blocks, ~4 requests/s."""
    rng = random.Random(f"{seed}:mooncake")
    next_id = 0
    families = []
    for _ in range(3):
        length = rng.randint(2, 5)
        families.append(list(range(next_id, next_id + length)))
        next_id += length
    out = []
    t_ms = 0
    for _ in range(rows):
        family = rng.choice(families)
        shared = family[: rng.randint(1, len(family))]
        own = rng.randint(0, 3)
        ids = shared + list(range(next_id, next_id + own))
        next_id += own
        input_length = 512 * (len(ids) - 1) + rng.randint(1, 512)
        row = {"timestamp": t_ms, "input_length": input_length, "output_length": rng.randint(8, 256),
               "hash_ids": ids}  # fmt: skip
        out.append(json.dumps(row))
        t_ms += int(rng.expovariate(1 / 250))
    return "\n".join(out) + "\n"


def azure(seed: int, rows: int = FIXTURE_ROWS) -> str:
    """An Azure LLM inference trace (CSV), ~3 requests/s."""
    rng = random.Random(f"{seed}:azure")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
    t = _START
    for _ in range(rows):
        stamp = t.strftime("%Y-%m-%d %H:%M:%S.%f") + str(rng.randint(0, 9))  # published with 7 digits
        writer.writerow([stamp, rng.randint(16, 4000), rng.randint(1, 600)])
        t += timedelta(microseconds=int(rng.expovariate(1 / 330_000)))
    return buffer.getvalue()


def burstgpt(seed: int, rows: int = FIXTURE_ROWS) -> str:
    """A BurstGPT trace (CSV): ChatGPT and GPT-4 rows, conversation and API logs, a few failures."""
    rng = random.Random(f"{seed}:burstgpt")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"])
    t = 0
    for _ in range(rows):
        request = rng.randint(10, 2000)
        response = 0 if rng.random() < 0.1 else rng.randint(1, 800)
        model = rng.choice(("ChatGPT", "ChatGPT", "GPT-4"))
        log_type = rng.choice(("Conversation log", "API log"))
        writer.writerow([t, model, request, response, request + response, log_type])
        t += rng.randint(0, 3)
    return buffer.getvalue()


def request_log(seed: int, rows: int = FIXTURE_ROWS) -> str:
    """A JSONL log of chat-completions bodies with timestamps (s) and session ids."""
    rng = random.Random(f"{seed}:requests")
    texts = TextSource(seed)
    out = []
    t = 1_715_331_600.0  # 2024-05-10 09:00:00 UTC
    tool = {"type": "function", "function": {"name": "lookup", "description": "Look a word up.",
            "parameters": {"type": "object", "properties": {"word": {"type": "string"}}}}}  # fmt: skip
    for i in range(rows):
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": texts.text("support system prompt", 64)}
        ]
        messages.append({"role": "user", "content": texts.text(f"log question {i}", rng.randint(8, 120))})
        body: dict[str, Any] = {
            "model": "gpt-4o-mini",
            "messages": messages,
            "max_tokens": rng.randint(16, 256),
        }
        if i % 5 == 1:
            body["tools"] = [tool]
            body["tool_choice"] = "auto"
        if i % 7 == 3:
            body["response_format"] = {"type": "json_object"}
        if i % 3 == 0:
            body["temperature"] = 0.2
        session = f"user-{rng.randint(1, 6)}"
        if i % 4 == 2:  # a gateway's wrapper around the body
            out.append(json.dumps({"timestamp": round(t, 3), "session_id": session, "body": body}))
        else:
            out.append(json.dumps({**body, "timestamp": round(t, 3), "session_id": session}))
        t += rng.expovariate(2.0)
    return "\n".join(out) + "\n"


def conversations(seed: int, count: int = 8) -> str:
    """Multi-turn conversations as OpenAI messages JSONL (a system prompt, 2–4 turns each)."""
    rng = random.Random(f"{seed}:conversations")
    texts = TextSource(seed)
    out = []
    for c in range(count):
        messages = [{"role": "system", "content": texts.text("assistant system prompt", 48)}]
        for k in range(rng.randint(2, 4)):
            messages.append(
                {"role": "user", "content": texts.text(f"chat {c} user {k}", rng.randint(10, 80))}
            )
            messages.append(
                {"role": "assistant", "content": texts.text(f"chat {c} reply {k}", rng.randint(20, 160))}
            )
        out.append(json.dumps({"messages": messages}))
    return "\n".join(out) + "\n"


FIXTURES = {
    "mooncake.jsonl": mooncake,
    "azure.csv": azure,
    "burstgpt.csv": burstgpt,
    "requests.jsonl": request_log,
    "conversations.jsonl": conversations,
}


def fixture_files(seed: int) -> dict[str, str]:
    """Every fixture file's name and text for `seed`."""
    return {name: make(seed) for name, make in FIXTURES.items()}
