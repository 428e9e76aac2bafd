"""The shareable HTML of a report and the index page of all reports.

:func:`notebook_to_html` renders an executed notebook with nbconvert's JupyterLab template
extended by hubnb's (``templates/nbconvert/hubnb``): code hidden, hubnb's stylesheet, a
table of contents linking every section, and no script or font fetched from the network,
so the report opens offline as one file (figures are inline PNGs). The table of contents
and the index page are rendered by :mod:`hubnb.render`'s autoescaping environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from . import format as fmt
from .render import TEMPLATES, render, stylesheet


@dataclass(frozen=True)
class TocEntry:
    """A section of a report: its heading level (2 or 3), text and anchor id."""

    level: int
    text: str
    anchor: str


class _Headings(HTMLParser):
    """Collects ``(level, id, text)`` of h1-h3 elements, as nbconvert rendered them."""

    def __init__(self):
        super().__init__()
        self.found, self._open = [], None

    def handle_starttag(self, tag, attrs):
        if re.fullmatch(r"h[1-3]", tag):
            self._open = [int(tag[1]), dict(attrs).get("id", ""), ""]
        elif tag == "a" and self._open is not None:
            self._open.append("in-anchor")

    def handle_endtag(self, tag):
        if self._open is not None and tag == f"h{self._open[0]}":
            self.found.append(tuple(self._open[:3]))
            self._open = None
        elif tag == "a" and self._open is not None and self._open[-1] == "in-anchor":
            self._open.pop()

    def handle_data(self, data):
        if self._open is not None and self._open[-1] != "in-anchor":
            self._open[2] += data


def table_of_contents(nb) -> tuple[str, list[TocEntry]]:
    """The notebook's title (its h1) and its sections (h2, h3), with the anchor ids
    nbconvert gives their headings (read from nbconvert's own markdown rendering)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    title, entries = "", []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        parser = _Headings()
        parser.feed(markdown2html_mistune(cell.source))
        for level, anchor, text in parser.found:
            if level == 1 and not title:
                title = text.strip()
            elif level > 1 and anchor:
                entries.append(TocEntry(level, text.strip(), anchor))
    return title, entries


def notebook_to_html(executed: Path, title: str) -> Path:
    """Write ``executed`` (an executed notebook) as a report beside it (``.html``)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    heading, entries = table_of_contents(nb)
    exporter = HTMLExporter(template_name="hubnb",
                            extra_template_basedirs=[str(TEMPLATES / "nbconvert")],
                            exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    resources = {"metadata": {"name": title},
                 "hubnb_head": render("report_head.html.j2", css=stylesheet()),
                 "hubnb_toc": render("report_toc.html.j2", title=heading or title,
                                     entries=entries)}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    target = executed.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def _change(metric: dict) -> dict | None:
    pct = metric.get("change_pct")
    if pct is None:
        return None
    return {"text": fmt.change(pct), "direction": "up" if pct > 0 else "down" if pct < 0 else "flat"}


def headline(m: dict) -> list[dict]:
    """The index's headline numbers of one merchant's metrics.json, formatted."""
    currency = m.get("currency", "USD")
    items = []
    hub = m.get("customer_hub") or {}
    active, revenue = hub.get("active_accounts") or {}, hub.get("revenue_generated") or {}
    if active.get("value") is None and revenue.get("value") is None:
        if hub:
            items.append({"label": "Customer Hub", "value": "no data yet", "change": None})
    else:
        items.append({"label": "Active accounts", "value": fmt.count(active["value"]),
                      "change": _change(active)})
        items.append({"label": "Revenue generated", "value": fmt.money(revenue["value"], currency),
                      "change": _change(revenue)})
    clv = m.get("clv") or {}
    if clv.get("eligible") and "totals" in clv:
        t = clv["totals"]["predicted_clv"]
        items.append({"label": f"Predicted CLV, next {fmt.count(clv.get('horizon_days', 365))} days",
                      "value": f"{fmt.money(t['mean'], currency, 0)} ({fmt.money(t['lower'], currency, 0)}"
                               f" to {fmt.money(t['upper'], currency, 0)})", "change": None})
    elif clv:
        items.append({"label": "Predictive CLV", "value": "not eligible", "change": None})
    return items


def index_html(merchants) -> str:
    """The index page: ``merchants`` is a list of (folder, metrics, report file names)."""
    rows = []
    for folder, m, reports in merchants:
        period = m.get("period") or {}
        rows.append({
            "name": m.get("display_name") or m.get("merchant", folder),
            "period": fmt.date_range(period["start"], period["end"]) if period else "—",
            "headline": headline(m),
            "reports": [{"href": f"{folder}/{name}",
                         "label": Path(name).stem.replace("_", " ").replace("clv", "CLV")
                                  .capitalize().replace("Clv", "CLV")} for name in reports],
            "generated": m.get("generated_at", ""),
        })
    return render("index.html.j2", rows=rows, css=stylesheet())
