"""The shareable HTML of a report and the index page of all reports.

:func:`notebook_to_html` renders an executed notebook with nbconvert's JupyterLab template
extended by hubnb's (``templates/nbconvert/hubnb``): code hidden, hubnb's stylesheet, a
table of contents linking every section, and no script or font fetched from the network,
so the report opens offline as one file (figures are inline PNGs). The table of contents
and the index page are rendered by :mod:`hubnb.render`'s autoescaping environment.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from babel.dates import format_skeleton

from . import format as fmt
from . import i18n
from .clv.purchase import MODEL_NAMES
from .i18n import _
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


def notebook_to_html(executed: Path, title: str, locale: str = "en") -> Path:
    """Write ``executed`` (an executed notebook) as a report beside it (``.html``), its
    table of contents and page language in ``locale``."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    heading, entries = table_of_contents(nb)
    title = f"{title}: {heading}" if heading else title
    exporter = HTMLExporter(template_name="hubnb", language_code=locale,
                            extra_template_basedirs=[str(TEMPLATES / "nbconvert")],
                            exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    with i18n.using(locale):
        resources = {"metadata": {"name": title}, "language_code": locale,
                     "hubnb_head": render("report_head.html.j2", css=stylesheet()),
                     "hubnb_toc": render("report_toc.html.j2", title=heading or title,
                                         entries=entries)}
    body, _resources = exporter.from_notebook_node(nb, resources=resources)
    target = executed.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target




def status_labels() -> dict[str, str]:
    """The index's run statuses (data values: ``data-status``, CSS classes, the filter's
    option values) as a reviewer reads them, in the active language."""
    return {"ok": _("ok"), "failed": _("failed"), "skipped": _("skipped"),
            "not eligible": _("not eligible"), "pooled": _("pooled")}


def _cell(text: str, sort=None, change: dict | None = None) -> dict:
    """A cell of the index: its text, the value it sorts by, an optional coloured change."""
    return {"text": text, "sort": "" if sort is None else sort, "change": change}


def _change(metric: dict) -> dict | None:
    pct = metric.get("change_pct")
    if pct is None:
        return None
    return {"text": fmt.change(pct), "direction": fmt.direction(pct)}


def index_row(folder: str, metrics: dict, status: dict, reports: list[str],
              failure_log: str = "") -> dict:
    """One merchant's row of the index, from its metrics.json and status.json."""
    currency = metrics.get("currency", "USD")
    hub = metrics.get("customer_hub") or {}
    clv = metrics.get("clv") or {}
    state = status.get("status") or ("ok" if metrics else "failed")
    if state == "skipped" and status.get("status_before_skip"):
        state = status["status_before_skip"]
    pooling = clv.get("pooling") or {}
    if state in ("ok", "pooled") and clv and not clv.get("eligible", True):
        state = "pooled" if pooling.get("used") else "not eligible"
    stale = state == "failed" and bool(metrics)
    active, revenue = hub.get("active_accounts") or {}, hub.get("revenue_generated") or {}
    row = {
        "merchant": _cell(metrics.get("display_name") or metrics.get("merchant") or folder,
                          (metrics.get("display_name") or folder).lower()),
        "status": {**_cell(state, state), "label": status_labels().get(state, state)},
        "stale": stale,
        "error": status.get("error", ""),
        "last_run": _cell(_when(status.get("last_run") or metrics.get("generated_at")),
                          status.get("last_run") or metrics.get("generated_at") or ""),
        "last_good": _when(metrics.get("generated_at")) if metrics else _("never"),
        "total_accounts": _cell(fmt.count(hub.get("total_accounts")), hub.get("total_accounts")),
        "active_accounts": _cell(fmt.count(active.get("value")), active.get("value"),
                                 _change(active)),
        "revenue": _cell(fmt.money(revenue.get("value"), currency), revenue.get("value"),
                         _change(revenue)),
        "clv": _cell(fmt.DASH), "model": _cell(fmt.DASH, ""),
        "reports": [{"href": f"{folder}/{name}", "label": _report_label(name)}
                    for name in reports],
        "failure_log": f"{folder}/{failure_log}" if failure_log else "",
        "pooled": "",
    }
    if (clv.get("eligible") or pooling.get("used")) and "totals" in clv:
        t = clv["totals"]["predicted_clv"]
        row["clv"] = _cell(_("{mean} ({lower} to {upper})").format(
            mean=fmt.money(t["mean"], currency, 0), lower=fmt.money(t["lower"], currency, 0),
            upper=fmt.money(t["upper"], currency, 0)), t["mean"])
        name = (clv.get("model") or {}).get("name", "")
        k = (clv.get("model") or {}).get("regularity_k")
        label = MODEL_NAMES[f"mbg_cnbd_k{k}"] if name == "mbg_cnbd" and k and k > 1 else \
            MODEL_NAMES.get(name, name or fmt.DASH)
        row["model"] = _cell(label, name)
        if pooling.get("used"):
            row["pooled"] = _("pooled with {n} peers; the peers decided {share} of it").format(
                n=fmt.count(pooling.get("peers")), share=fmt.share(pooling.get("prior_share"), 0))
    elif clv:
        row["clv"] = _cell(_("not eligible"), -1)
    if hub and active.get("value") is None and revenue.get("value") is None:
        row["active_accounts"] = _cell(_("no hub data"), -1)
        row["revenue"] = _cell(_("no hub data"), -1)
    return row


def _when(iso: str | None) -> str:
    """A UTC timestamp of metrics.json or status.json as ``Nov 25, 2026 10:41 UTC``."""
    if not iso:
        return fmt.DASH
    stamp = dt.datetime.fromisoformat(iso)
    time = format_skeleton("Hm", stamp.replace(tzinfo=None), locale=i18n.current())
    return _("{day} {time} UTC").format(day=fmt.day(stamp), time=time)


def _report_label(name: str) -> str:
    return {"customer_hub.html": _("Customer Hub"), "clv.html": _("CLV")}.get(
        name, Path(name).stem.replace("_", " "))


def index_html(merchants: list[dict]) -> str:
    """The index page: one row per merchant (dicts of folder, metrics, status, reports,
    failure_log), sortable by any column and filterable by status, with no network."""
    rows = [index_row(m["folder"], m["metrics"], m["status"], m["reports"],
                      m.get("failure_log", "")) for m in merchants]
    labels = status_labels()
    statuses = [{"value": s, "label": labels.get(s, s)}
                for s in sorted({r["status"]["text"] for r in rows})]
    return render("index.html.j2", rows=rows, statuses=statuses, total=fmt.count(len(rows)),
                  css=stylesheet(), locale=i18n.current())
