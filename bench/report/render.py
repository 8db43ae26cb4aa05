"""Output formats of `llmbench report`, in a registry keyed by format name."""

from __future__ import annotations

import json
from collections.abc import Callable

from bench.report.build import Report


def _html(report: Report) -> str:
    from bench.report.html import render_html

    return render_html(report)


def _markdown(report: Report) -> str:
    from bench.report.markdown import render_markdown

    return render_markdown(report)


def _json(report: Report) -> str:
    from bench.report.jsonout import report_json

    return json.dumps(report_json(report), indent=2, default=str) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {"html": _html, "md": _markdown, "json": _json}
EXTENSIONS = {"html": ".html", "md": ".md", "json": ".json"}
