"""The cards both reports show: the header, the parameters and provenance, data quality."""

from __future__ import annotations

import datetime as dt
import json

from .. import format as fmt
from ..i18n import _, ngettext
from ..messages import translated
from ..render import Card


def header_card(report, dashboard: str = "customer_hub") -> Card:
    """The report's header: merchant, the dates it covers, as-of day, currency.

    The Customer Hub report states its period and comparison with their exact dates; the
    CLV report states its history window and prediction horizon instead.
    """
    p = report.params
    rows = [(_("Merchant"), p.display_name)]
    if dashboard == "clv":
        first = p.as_of - dt.timedelta(days=p.clv.history_days - 1)
        last = p.as_of + dt.timedelta(days=p.clv.horizon_days)
        history, horizon = p.clv.history_days, p.clv.horizon_days
        rows += [(_("Orders from"),
                  ngettext("{start} to {end} ({n} day of history)",
                           "{start} to {end} ({n} days of history)", history).format(
                      start=fmt.day(first), end=fmt.day(p.as_of), n=fmt.count(history))),
                 (_("Predictions for"),
                  ngettext("the next {n} day, to {day}", "the next {n} days, to {day}",
                           horizon).format(n=fmt.count(horizon), day=fmt.day(last)))]
    else:
        rows += [(_("Period"), fmt.period(p.period.start, p.period.end)),
                 (_("Compared with"), fmt.period(p.comparison.start, p.comparison.end)
                  if p.comparison else _("no comparison"))]
    rows += [(_("As of"), _("{day} ({timezone}, whole local days)").format(
                 day=fmt.day(p.as_of), timezone=p.timezone)),
             (_("Currency"), p.currency)]
    return Card().key_values(rows)


def about_card(report) -> Card:
    """The parameters the report was made with, and where it comes from: hubnb's version
    and git commit, the params file and the data, each with its fingerprint."""
    prov = report.provenance
    card = Card().key_values([
        (_("hubnb version"), prov.hubnb_version),
        (_("Git commit"), prov.git_commit or _("not known (installed package)")),
        (_("Params file"), prov.params_file or _("none")),
        (_("Params fingerprint (SHA-256)"), prov.params_fingerprint or fmt.DASH),
        (_("Data directory"), prov.data_dir),
        (_("Data fingerprint (SHA-256)"), prov.data_fingerprint),
    ], _("Provenance"))
    card.key_values(_flat(prov.params), _("Parameters (as written in the params file)"))
    files = [f"{name}: {digest}" for name, digest in prov.data_files.items()]
    return card.items(files, _("Data files and their SHA-256:"))


def _flat(params: dict, prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted key, value)`` rows of nested params: ``clv.orders.sources``; lists as JSON."""
    rows = []
    for key, value in params.items():
        if isinstance(value, dict) and value:
            rows += _flat(value, f"{prefix}{key}.")
        elif isinstance(value, (dict, list)):
            rows.append((prefix + key, json.dumps(value, ensure_ascii=False)))
        else:
            text = ("null" if value is None else str(value).lower() if isinstance(value, bool)
                    else str(value))
            rows.append((prefix + key, text))
    return rows


def quality_card(report) -> Card:
    """The data-quality summary: every rule for imperfect data and how many rows it hit."""
    q = report.data.quality
    frame = q.assign(rows=q["rows"].map(fmt.count), rule=q["rule"].map(translated),
                     action=q["action"].map(translated)).rename(columns={
        "table": _("Table"), "rule": _("Rule"), "rows": _("Rows"),
        "action": _("What hubnb did")})
    return Card().table(frame)
