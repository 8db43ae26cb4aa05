"""What the renderers write about an option, defined once for the Markdown, HTML and card outputs: its model
and variant, its accuracy (marked when a mock's configured answers made it, not a model), and the unit of
each money column of the leaderboard.

An accuracy is simulated when its run's target was a mock endpoint: target kind `mock`, or a server that
said it is llmbench's mock backend. `bench accuracy` stores the mock's answer configuration in the run's
provenance (`mock_answers`), so the page can say what was configured (e.g. an oracle right 95% of the time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.report.figures import Row
from bench.report.options import Option
from bench.report.value import PER_1K_REQUESTS, PER_1M_BLENDED, PER_1M_OUTPUT, PER_CORRECT, Per, per_column

# The leaderboard's money columns: the Row field and its unit before a column picks its count.
MONEY_COLUMNS: dict[str, Per] = {
    "usd_per_1m_output": PER_1M_OUTPUT,
    "usd_per_1m_blended": PER_1M_BLENDED,
    "usd_per_1k_requests": PER_1K_REQUESTS,
    "usd_per_correct": PER_CORRECT,
}


def model_and_variant(name: str) -> tuple[str, str | None]:
    """A target name's model and variant: MODEL:VARIANT splits at its colon; a URL is a model of its own."""
    if "://" in name:  # http://127.0.0.1:8000/v1 is not the model "http" in variant "//127…"
        return name, None
    model, _, variant = name.partition(":")
    return model, variant or None


def simulated(option: Option) -> str | None:
    """What simulated the option's accuracy (a mock endpoint's configured answers), or None if measured."""
    run = option.accuracy_run
    if run is None:
        return None
    answers: Any = run.provenance.get("mock_answers")
    backend = (run.provenance.get("server") or {}).get("backend")
    if not isinstance(answers, dict):
        if run.target.get("kind") == "mock" or backend == "mock":
            return "a mock endpoint's configured answers"
        return None
    if answers.get("kind") == "oracle":
        share = answers.get("accuracy")
        by_area = " (set per area)" if answers.get("area_accuracy") else ""
        rate = f" right {share:.0%} of the time{by_area}" if isinstance(share, int | float) else ""
        return f"a mock oracle configured to answer{rate}"
    return f"a mock endpoint's {answers.get('kind') or 'configured'} answers"


def accuracy_text(row: Row, *, with_n: bool = False) -> str | None:
    """'95.0% [93.1, 96.5]', ' simulated' when a mock made it, ' (n = 400)'; None when not measured."""
    if row.accuracy.value is None:
        return None
    text = f"{100 * row.accuracy.value:.1f}%"
    if row.ci95:
        text += f" [{100 * row.ci95[0]:.1f}, {100 * row.ci95[1]:.1f}]"
    if simulated(row.option):
        text += " simulated"
    return text + (f" (n = {row.n_items})" if with_n else "")


def money_units(rows: Sequence[Row]) -> dict[str, Per]:
    """Each money column's unit: one count for every row, chosen from the column's smallest figure."""
    return {
        name: per_column(unit, (getattr(r, name).value for r in rows)) for name, unit in MONEY_COLUMNS.items()
    }
