"""Multi-turn sessions: users arrive at a rate (or a fixed number are active at once), each holding a
conversation of T turns with a think time between them.

Each turn sends the whole history with the answers the server actually returned, appended as a chat app
does, so a prefix cache can reuse earlier turns. The plan fixes everything that does not depend on the
server: when each session starts, its system prompt, each turn's user message, output budget and the
pause before it. `SessionPlan.request(session, k, answers, request_id)` builds turn k from the answers.

    schema: llmbench.workload/1
    kind: sessions
    sessions: 20
    arrival_rate: 0.5             # or: concurrent: 4
    turns: uniform:2:6
    think_time_s: 5
    user_tokens: uniform:32:128
    output_tokens: 128
    documents: {count: 4, tokens: 1500, popularity: zipf}   # a shared document as each system prompt

Or the turns come from a conversation file (`conversations: chats.jsonl`, multi-turn ShareGPT or OpenAI
messages JSONL); then `output_tokens` unset means each recorded reply's length.

With `cache_breakpoints`, the Anthropic client marks the system prompt and the latest message of every
turn as cache breakpoints (Anthropic's recommended pattern for conversations).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from bench.prompts.lengths import Length, LengthDist
from bench.prompts.workloads.arrivals import ArrivalProcess
from bench.prompts.workloads.base import Api, DataPath, WorkloadBase
from bench.prompts.workloads.conversations import Conversation, load_conversations
from bench.prompts.workloads.shared_prefix import PrefixPool
from bench.prompts.workloads.text import TextSource
from bench.records import GenRequest, reference_tokens

DEFAULT_REPLY_TOKENS = 128  # a conversation file's turn without a recorded reply


@dataclass(frozen=True, slots=True)
class PlannedTurn:
    """One turn: the user's message, its output budget (tokens) and the pause before it is sent (s)."""

    user: str
    max_tokens: int
    think_s: float  # after the previous answer ended; 0 for the first turn


@dataclass(frozen=True, slots=True)
class PlannedSession:
    """One conversation: its id, start time, system prompt and turns."""

    session_id: str
    arrival_s: float | None  # s after the run's origin; None: started when a slot frees (concurrent)
    system: str | None
    turns: tuple[PlannedTurn, ...]


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """Every session of a run, in start order, and how their turns are sent."""

    sessions: tuple[PlannedSession, ...]
    concurrent: int | None  # sessions active at once; None: each starts at its arrival_s
    api: Api
    cache_breakpoints: bool

    @property
    def turns(self) -> int:
        """Requests the plan sends when every turn succeeds."""
        return sum(len(s.turns) for s in self.sessions)

    def request(self, session: PlannedSession, k: int, answers: Sequence[str], request_id: int) -> GenRequest:
        """Turn `k` (0-based) of `session`: the history with the first k `answers` as returned, then the
        k-th user message."""
        if not 0 <= k < len(session.turns):
            raise IndexError(f"session {session.session_id} has {len(session.turns)} turns, not turn {k}")
        if len(answers) < k:
            raise ValueError(f"turn {k} needs the {k} answers before it, got {len(answers)}")
        turn = session.turns[k]
        messages: list[dict[str, Any]] = []
        if session.system is not None:
            messages.append({"role": "system", "content": session.system})
        for j in range(k):
            messages.append({"role": "user", "content": session.turns[j].user})
            messages.append({"role": "assistant", "content": answers[j]})
        messages.append({"role": "user", "content": turn.user})
        if self.api == "completions":
            return GenRequest(
                request_id,
                prompt=_transcript(messages),
                max_tokens=turn.max_tokens,
                session_id=session.session_id,
                turn=k,
            )
        marks: tuple[int, ...] = ()
        if self.cache_breakpoints:
            marks = ((0,) if session.system is not None else ()) + (len(messages) - 1,)
        return GenRequest(
            request_id,
            messages=messages,
            max_tokens=turn.max_tokens,
            session_id=session.session_id,
            turn=k,
            cache_breakpoints=marks,
        )


def _transcript(messages: list[dict[str, Any]]) -> str:
    """Messages as one completions prompt, ending where the assistant's next answer begins."""
    labels = {"system": "", "user": "User: ", "assistant": "Assistant: "}
    return "\n\n".join(labels[str(m["role"])] + str(m["content"]) for m in messages) + "\n\nAssistant:"


class SessionsWorkload(WorkloadBase):
    """Multi-turn chat sessions from length distributions or a conversation file."""

    kind: Literal["sessions"] = "sessions"
    sessions: int | None = Field(
        None, ge=1, description="conversations to hold (with a conversation file: default, all of them)"
    )
    arrival_rate: float | None = Field(None, gt=0, description="new sessions per second")
    arrival: ArrivalProcess = Field(ArrivalProcess(), description="how session arrivals are spaced")
    concurrent: int | None = Field(None, ge=1, description="sessions active at once (instead of a rate)")
    turns: Length = Field(LengthDist(a=4), description="turns per session")
    think_time_s: float = Field(0.0, ge=0, description="pause between an answer and the next turn (s)")
    think_time: Literal["fixed", "exponential"] = Field(
        "fixed", description="fixed, or exponential of that mean"
    )
    user_tokens: Length = Field(LengthDist(kind="uniform", a=32, b=128), description="each user message")
    output_tokens: Length | None = Field(
        LengthDist(a=128),
        description="max_tokens per turn; unset with a conversation file: the recorded reply's",
    )
    system_tokens: int = Field(0, ge=0, description="a system prompt of its own per session (0: none)")
    documents: PrefixPool | None = Field(None, description="shared documents: each session's system prompt")
    conversations: DataPath | None = Field(None, description="multi-turn ShareGPT or OpenAI messages JSONL")
    cache_breakpoints: bool = Field(
        True, description="mark the system prompt and the latest message (Anthropic)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> SessionsWorkload:
        if (self.arrival_rate is None) == (self.concurrent is None):
            raise ValueError("set exactly one of arrival_rate (sessions per second) or concurrent")
        if self.concurrent is not None and self.arrival != ArrivalProcess():
            raise ValueError("arrival applies with arrival_rate, not with concurrent")
        if self.sessions is None and self.conversations is None:
            raise ValueError("set sessions (how many conversations), or conversations (a file)")
        if self.output_tokens is None and self.conversations is None:
            raise ValueError("output_tokens may be unset only with a conversation file")
        if self.documents is not None and self.system_tokens:
            raise ValueError(
                "set documents (shared system prompts) or system_tokens (one per session), not both"
            )
        return self

    def check(self) -> None:
        """Read the conversation file, if any: ConfigError naming bad lines."""
        if self.conversations is not None:
            load_conversations(self.conversations)

    def build(self) -> SessionPlan:
        """The plan: deterministic from the seed."""
        conversations = load_conversations(self.conversations) if self.conversations is not None else []
        count = self.sessions if self.sessions is not None else len(conversations)
        texts = TextSource(self.seed)
        chooser = self.documents.chooser() if self.documents is not None else None
        arrivals = self._arrivals(count)
        planned = []
        for i in range(count):
            rng = random.Random(f"{self.seed}:session:{i}")
            if chooser is not None and self.documents is not None:
                system: str | None = self.documents.text(texts, chooser.draw(rng))
            elif self.system_tokens:
                system = texts.text(f"session {i} system", self.system_tokens)
            else:
                system = None
            if conversations:
                conversation = conversations[i % len(conversations)]
                system = conversation.system if conversation.system is not None else system
                turns = self._recorded_turns(conversation, rng)
            else:
                turns = self._drawn_turns(i, texts, rng)
            planned.append(PlannedSession(f"session-{i}", arrivals[i], system, turns))
        return SessionPlan(tuple(planned), self.concurrent, self.api, self.cache_breakpoints)

    def _arrivals(self, count: int) -> list[float | None]:
        if self.arrival_rate is None:
            return [None] * count
        rng = random.Random(f"{self.seed}:session-arrivals")
        out: list[float | None] = []
        t = 0.0
        for _ in range(count):
            out.append(t)
            t += self.arrival.unit_gaps(rng) / self.arrival_rate
        return out

    def _think(self, k: int, rng: random.Random) -> float:
        if k == 0 or self.think_time_s == 0:
            return 0.0
        return self.think_time_s if self.think_time == "fixed" else rng.expovariate(1.0 / self.think_time_s)

    def _drawn_turns(self, i: int, texts: TextSource, rng: random.Random) -> tuple[PlannedTurn, ...]:
        assert self.output_tokens is not None  # checked by the model
        out = []
        for k in range(self.turns.sample(rng)):
            user = texts.text(f"session {i} turn {k}", self.user_tokens.sample(rng))
            out.append(PlannedTurn(user, self.output_tokens.sample(rng), self._think(k, rng)))
        return tuple(out)

    def _recorded_turns(self, conversation: Conversation, rng: random.Random) -> tuple[PlannedTurn, ...]:
        out = []
        for k, turn in enumerate(conversation.turns):
            if self.output_tokens is not None:
                max_tokens = self.output_tokens.sample(rng)
            elif turn.answer:
                max_tokens = max(1, reference_tokens(len(turn.answer.encode())))
            else:
                max_tokens = DEFAULT_REPLY_TOKENS
            out.append(PlannedTurn(turn.user, max_tokens, self._think(k, rng)))
        return tuple(out)
