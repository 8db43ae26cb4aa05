"""The levers section rendered: Markdown lines and an HTML fragment (bench.report.levers computes it)."""

from __future__ import annotations

from typing import Any

import jinja2
from markupsafe import Markup

from bench.report.levers import LeversSection
from bench.report.value import fmt_number, fmt_usd
from bench.whatif.levers import Lever

KIND = {
    "route": "routing / cascade",
    "cache": "cache",
    "prompt": "prompt version",
    "provider-cache": "provider prompt caching",
}
MEASURED_ON = {
    "route": "held-out items",
    "cache": "measured requests",
    "prompt": "paired items",
    "provider-cache": "requests",
}


def saved_text(lever: Lever) -> str:
    """'45.0% of spend', or why it is unknown."""
    if lever.saved_share is None:
        return "n/a: costs unknown"
    return f"{100 * lever.saved_share:.1f}% of spend"


def accuracy_text(lever: Lever) -> str:
    """'+0.0 [-3.1, +3.1] (McNemar p = 1)', or why nothing changes."""
    if lever.accuracy_ci95_points is None:
        return "0 (serves the model's own answer to the same prompt)"
    lo, hi = lever.accuracy_ci95_points
    p = "" if lever.mcnemar_p is None else f" (McNemar p = {lever.mcnemar_p:.2g})"
    return f"{lever.accuracy_points:+.1f} [{lo:+.1f}, {hi:+.1f}]{p}"


def favoured_text(section: LeversSection) -> str:
    """Which lever the measurements favour, in one sentence."""
    best = section.favoured
    limit = f"the max drop of {section.max_drop:g} points"
    if best is None:
        return f"No lever measured here saves within {limit}."
    return (
        f"The measurements favour {best.name}: it saves {saved_text(best)} at an accuracy change of "
        f"{accuracy_text(best)} points, within {limit}."
    )


def _row(lever: Lever, section: LeversSection) -> dict[str, Any]:
    return {
        "kind": KIND[lever.kind],
        "name": lever.name,
        "saved": saved_text(lever),
        "accuracy": accuracy_text(lever),
        "on": f"{lever.items} {MEASURED_ON[lever.kind]}",
        "favoured": lever == section.favoured,
    }


def _version(v: Any) -> dict[str, Any]:
    acc = "-" if v.accuracy is None else f"{100 * v.accuracy:.1f}%"
    if v.ci95 is not None:
        acc += f" [{100 * v.ci95[0]:.1f}, {100 * v.ci95[1]:.1f}]"
    return {
        "option": v.option,
        "version": v.version + (" (the report's)" if v.base else ""),
        "n": v.n,
        "accuracy": acc,
        "tokens": "-" if v.input_tokens is None else fmt_number(v.input_tokens),
        "usd": "n/a" if v.usd_per_1k_items is None else fmt_usd(v.usd_per_1k_items),
    }


def levers_markdown(section: LeversSection | None) -> list[str]:
    """The section as Markdown lines (nothing when the report has no option)."""
    if section is None:
        return []
    lines = ["", "### Levers (what each would save, and cost in accuracy)", "", f"For {section.subject}.", ""]
    if section.levers:
        lines += ["| lever | option | saves | accuracy change, points [95% CI] | measured on |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for lv in section.levers:
            r = _row(lv, section)
            mark = " **(favoured)**" if r["favoured"] else ""
            lines.append(f"| {r['kind']} | {r['name']}{mark} | {r['saved']} | {r['accuracy']} | {r['on']} |")
        lines.append("")
    lines.append(f"**{favoured_text(section)}**")
    if section.prompt_versions:
        lines += ["", "Prompt versions side by side:", "",
                  "| option | prompt version | items | accuracy [95% CI] | input tokens/item | $/1k items |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for v in map(_version, section.prompt_versions):
            cells = (v["option"], v["version"], v["n"], v["accuracy"], v["tokens"], v["usd"])
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    if section.not_measured:
        lines += ["", "Not measured:"] + [f"- {n.lever}: {n.why}" for n in section.not_measured]
    lines += [f"> {n}" for n in section.notes]
    return lines


TEMPLATE = """\
<h2>Levers</h2>
<style>#levers tr.favoured td { font-weight: 600; background: #eef7ee; }</style>
<section id="levers">
<p>What each lever would save and cost in accuracy, for {{ subject }} (held-out and measured on the stored
runs; accuracy changes in points with 95% CIs).</p>
{% if rows %}<table id="levers-table"><thead><tr><th>lever</th><th>option</th><th>saves</th>
<th>accuracy change, points [95% CI]</th><th>measured on</th></tr></thead><tbody>
{% for r in rows %}<tr{% if r.favoured %} class="favoured"{% endif %}><td>{{ r.kind }}</td>
<td>{{ r.name }}</td><td class="num">{{ r.saved }}</td><td class="num">{{ r.accuracy }}</td>
<td class="num">{{ r.on }}</td></tr>
{% endfor %}</tbody></table>{% endif %}
<p id="levers-favoured"><b>{{ favoured }}</b></p>
{% if versions %}<h3>Prompt versions</h3>
<table id="prompt-versions"><thead><tr><th>option</th><th>prompt version</th><th>items</th>
<th>accuracy [95% CI]</th><th>input tokens/item</th><th>$/1k items</th></tr></thead><tbody>
{% for v in versions %}<tr><td>{{ v.option }}</td><td>{{ v.version }}</td><td class="num">{{ v.n }}</td>
<td class="num">{{ v.accuracy }}</td><td class="num">{{ v.tokens }}</td><td class="num">{{ v.usd }}</td></tr>
{% endfor %}</tbody></table>{% endif %}
{% if not_measured %}<h3>Not measured</h3><ul id="levers-not-measured">
{% for n in not_measured %}<li><b>{{ n.lever }}</b>: not measured: {{ n.why }}</li>{% endfor %}</ul>
{% endif %}
{% for n in notes %}<p class="meta">{{ n }}</p>{% endfor %}
</section>
"""


def levers_html(section: LeversSection | None) -> Markup:
    """The section as an HTML fragment for the report page (empty without a section)."""
    if section is None:
        return Markup("")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(TEMPLATE).render(
        subject=section.subject,
        rows=[_row(lv, section) for lv in section.levers],
        favoured=favoured_text(section),
        versions=[_version(v) for v in section.prompt_versions],
        not_measured=section.not_measured,
        notes=section.notes,
    )
    return Markup(html)  # rendered with autoescape: every value above is escaped
