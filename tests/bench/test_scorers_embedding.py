"""Embedding similarity (offline all-MiniLM-L6-v2): advisory only, never right or wrong."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.accuracy.embedding import Embedder
from bench.accuracy.runner import SuiteRunner
from bench.accuracy.suite import Suite, SuiteItem
from bench.accuracy.summary import summarize
from bench.records import GenRequest, RequestRecord, Status


class EchoClient:
    """A fake StreamingClient that answers every prompt with a fixed text."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def __aenter__(self) -> EchoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def check(self) -> None:
        return None

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        now = time.perf_counter()
        return RequestRecord(
            request.request_id, Status.OK, scheduled_s, now, now + 0.01, input_tokens=5, output_tokens=3,
            output_text=self.text,
        )  # fmt: skip


@pytest.mark.slow  # loading the embedding model takes about 7 s
async def test_embedding_is_advisory(tmp_path: Path) -> None:
    embedder = Embedder()
    close = embedder.similarity("Paris is the capital of France.", ["The capital of France is Paris."])
    far = embedder.similarity("Bananas are rich in potassium.", ["The capital of France is Paris."])
    assert close > far and -1.0 <= far <= close <= 1.0
    items = [
        SuiteItem(
            id="e", area="open", prompt="q", reference="The capital of France is Paris.", scorer="embedding"
        ),
        SuiteItem(
            id="x", area="open", prompt="q", reference="Paris is the capital of France.", scorer="exact"
        ),
    ]
    runner = SuiteRunner(EchoClient("Paris is the capital of France."), embedder=embedder, similarity=True)
    got = {i.item_id: i for i in await runner.run(Suite("s", tmp_path, "0", items), lambda _: None)}
    assert got["e"].correct is None and got["e"].score == pytest.approx(close, abs=1e-4)
    assert got["x"].correct is True and got["x"].extra["similarity"] > 0.99
    s = summarize(list(got.values()), suite="s", target="t", run_id=None).to_json()
    assert s["n"] == 1 and s["unscored"] == 1  # the advisory item is not in the accuracy
