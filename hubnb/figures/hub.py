"""Figures and cards of the Customer Hub dashboard.

Each function takes a :class:`hubnb.hub.HubDashboard` and returns something a notebook
displays: a matplotlib Figure (closed, so it shows once), an ``IPython.display.HTML`` card
or a pandas Styler. None computes a metric. Without hub data (``dashboard.has_data``
False) the hub cards show a short notice instead of zeros.
"""

from __future__ import annotations

import html

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from IPython.display import HTML

from ..hub import SERVICE_TYPES, HubDashboard, date_range_label
from . import NEGATIVE, NEUTRAL, PALETTE, POSITIVE, money, money_axis

SERVICE_LABELS = {"order_tracked": "Order tracked", "return_started": "Return started",
                  "coupon_applied": "Coupon applied", "help_clicked": "Help clicked",
                  "chat_started": "Chat started"}
_CARD = ("border:1px solid #d0d7de;border-radius:8px;padding:12px 16px;"
         "background:#ffffff;font-family:system-ui,-apple-system,'Segoe UI',sans-serif")
_WARN = ("border:1px solid #d4a72c;border-left:6px solid #d4a72c;border-radius:6px;"
         "padding:10px 14px;margin:6px 0;background:#fff8c5;color:#3b2300;"
         "font-family:system-ui,-apple-system,'Segoe UI',sans-serif")


def _no_data_line() -> HTML:
    return HTML(f"<div style='{_WARN}'>No Customer Hub data for this period — "
                "see the notice at the top of the report.</div>")


def _count(v) -> str:
    return f"{int(v):,}"


def _change_html(change, fmt, comparison_note: str) -> str:
    if change.previous is None:
        return f"<span style='color:{NEUTRAL}'>no comparison{comparison_note}</span>"
    prev = f"vs {fmt(change.previous)}"
    if change.change_pct is None:
        return (f"<span style='color:{NEUTRAL}'>{html.escape(prev)} · no comparison "
                "(previous value is zero)</span>")
    pct = change.change_pct
    colour = POSITIVE if pct > 0 else NEGATIVE if pct < 0 else NEUTRAL
    arrow = "▲" if pct > 0 else "▼" if pct < 0 else "■"
    return (f"<span style='color:{colour};font-weight:600'>{arrow} {pct:+.1f}%</span> "
            f"<span style='color:{NEUTRAL}'>{html.escape(prev)}</span>")


def _tile(label: str, value: str, below: str, footnote: str = "") -> str:
    foot = (f"<div style='color:{NEUTRAL};font-size:11px;margin-top:4px'>"
            f"{html.escape(footnote)}</div>") if footnote else ""
    return (f"<div style='{_CARD};min-width:0'>"
            f"<div style='color:{NEUTRAL};font-size:13px'>{html.escape(label)}</div>"
            f"<div style='font-size:28px;font-weight:600;margin:2px 0'>{html.escape(value)}</div>"
            f"<div style='font-size:13px'>{below}</div>{foot}</div>")


def _comparison_note(d: HubDashboard) -> str:
    if d.comparison is None:
        return ""
    if not d.live.comparison_live:
        return " (Customer Hub was not live in the comparison period)"
    return ""


def overview_tiles(d: HubDashboard) -> HTML:
    """The four overview tiles, each with its comparison and percent change.

    Green when the change is positive, red when negative; "no comparison" where the
    comparison is zero or absent. Without hub data: no tiles, a line pointing to the
    "no data yet" card of :func:`live_notices`.
    """
    if not d.has_data:
        return _no_data_line()
    note = _comparison_note(d)
    cur = d.currency
    tiles = [
        _tile("Total accounts", _count(d.total_accounts),
              f"<span style='color:{NEUTRAL}'>since launch · no comparison</span>",
              f"accounts created by {d.period.end:%b} {d.period.end.day}, {d.period.end.year}"),
        _tile("Service interactions", _count(d.service_interactions.value),
              _change_html(d.service_interactions, _count, note),
              "order tracked, return started, coupon applied, help clicked, chat started"),
        _tile("Active accounts", _count(d.active_accounts.value),
              _change_html(d.active_accounts, _count, note),
              "distinct accounts that opened Customer Hub"),
        _tile("Revenue generated", money(d.revenue_generated.value, cur),
              _change_html(d.revenue_generated, lambda v: money(v, cur), note),
              f"items added to cart from Customer Hub (by {d.attribution})"),
    ]
    return HTML("<div style='display:grid;grid-template-columns:repeat(4,minmax(0,1fr));"
                "gap:12px'>" + "".join(tiles) + "</div>")


def no_data_card(d: HubDashboard) -> HTML:
    """The "Customer Hub has no data yet" card, with the reason."""
    reason = html.escape(d.live.no_data_reason or "")
    return HTML(
        f"<div style='{_WARN};padding:18px 20px'>"
        "<div style='font-size:20px;font-weight:700'>Customer Hub has no data yet</div>"
        f"<div style='margin-top:6px'>{reason}</div>"
        "<div style='margin-top:6px'>The hub's tiles, service interactions and revenue are "
        "left out rather than shown as zeros. Once Customer Hub is live and its events reach "
        "the dataset, this report fills in.</div></div>")


def live_notices(d: HubDashboard) -> HTML:
    """Notices for days of P or C before launch or inside a pause (or the no-data card)."""
    if not d.has_data:
        return no_data_card(d)
    notices = d.live.notices()
    if not notices:
        return HTML(f"<div style='color:{NEUTRAL}'>Customer Hub was live on every day of the "
                    "period and of the comparison period.</div>")
    return HTML("".join(f"<div style='{_WARN}'>{html.escape(n)}</div>" for n in notices))


def reengage_card(d: HubDashboard, path=None) -> HTML:
    """The re-engagement list: offered prominently when active accounts or interactions fell.

    ``path`` is where reengage.csv was written (None when the notebook runs by hand).
    """
    n = len(d.reengage)
    where = (f"<code>{html.escape(str(path.name if hasattr(path, 'name') else path))}</code>"
             if path is not None else
             "<code>reengage.csv</code> (written by <code>hubnb run</code>)")
    who = (f"{n:,} account{'s' if n != 1 else ''} that have not opened Customer Hub for more "
           f"than {d.inactive_after_days} days before {d.as_of:%b} {d.as_of.day}, "
           f"{d.as_of.year}, or never")
    if not d.stagnant:
        why = (" Active accounts and service interactions did not fall."
               if d.has_data and d.comparison is not None else "")
        return HTML(f"<div style='color:{NEUTRAL}'>Re-engagement list: {who} — {where}.{why}"
                    "</div>")
    fell = []
    for name, label in (("active_accounts", "Active accounts"),
                        ("service_interactions", "Service interactions")):
        if name in d.stagnant:
            c = getattr(d, name)
            fell.append(f"{label} fell {abs(c.change_pct or 0):.1f}% "
                        f"({c.previous:,} → {c.value:,})")
    return HTML(
        f"<div style='{_WARN};padding:14px 18px'>"
        f"<div style='font-size:16px;font-weight:700'>Engagement is falling</div>"
        f"<div>{html.escape('; '.join(fell))} against the comparison period.</div>"
        f"<div style='margin-top:6px'><b>Re-engage {who}.</b> The list is {where} "
        "(profile_id, email, account_created_at, last_hub_opened_at, days_since_last_open): "
        "use it as an email or SMS segment.</div></div>")


def products_table(d: HubDashboard, top: int = 20):
    """The View report: ordered products behind revenue generated, by revenue (top rows)."""
    if not d.has_data:
        return _no_data_line()
    products = d.products
    if not len(products):
        return HTML(f"<div style='color:{NEUTRAL}'>No item was attributed to Customer Hub in "
                    "this period.</div>")
    shown = products.head(top).drop(columns=["product_id"]).rename(columns={
        "product": "Product", "units": "Units", "revenue": f"Revenue ({d.currency})",
        "orders": "Orders"})
    caption = (f"Top {len(shown)} of {len(products):,} products · revenue generated "
               f"{money(d.revenue_generated.value, d.currency)}")
    return (shown.style.hide(axis="index")
            .format({f"Revenue ({d.currency})": lambda v: money(v, d.currency),
                     "Units": "{:,}", "Orders": "{:,}"})
            .bar(subset=[f"Revenue ({d.currency})"], color="#cfe3f7", vmin=0)
            .set_caption(caption)
            .set_table_styles([{"selector": "caption",
                                "props": "caption-side:top;text-align:left;color:#57606a"}]))


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _per(d: HubDashboard) -> str:
    return "per day" if d.buckets.unit == "day" else "per week (weeks end on the period's last day)"


def _x_label(d: HubDashboard) -> str:
    if d.buckets.unit == "day":
        return "Day (local time)"
    partial = d.buckets.partial_first_days
    note = f" (the first week has {partial} day{'s' if partial != 1 else ''})" if partial else ""
    return "Week starting" + note


def service_interactions_figure(d: HubDashboard):
    """Breakdown by the five types (bars) and their counts over the period (lines)."""
    if not d.has_data:
        return _no_data_line()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2),
                                      gridspec_kw={"width_ratios": [1, 2]})
    labels = [SERVICE_LABELS[t] for t in SERVICE_TYPES]
    counts = [d.service_breakdown[t] for t in SERVICE_TYPES]
    colours = [PALETTE[i] for i in range(len(SERVICE_TYPES))]
    bars = left.barh(labels[::-1], counts[::-1], color=colours[::-1])
    left.bar_label(bars, labels=[f"{c:,}" for c in counts[::-1]], padding=3, fontsize=9)
    left.set_xlabel("Interactions in the period")
    left.set_title("By type")
    left.margins(x=0.18)
    series = d.service_series
    for t, colour in zip(SERVICE_TYPES, colours):
        right.plot(series.index, series[t], color=colour, label=SERVICE_LABELS[t],
                   marker="o" if len(series) <= 31 else None, markersize=3, linewidth=1.6)
    right.set_ylabel(f"Interactions {'per day' if d.buckets.unit == 'day' else 'per week'}")
    right.set_xlabel(_x_label(d))
    right.set_title(f"Over time, {_per(d)}")
    right.set_ylim(bottom=0)
    _date_axis(right)
    right.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
    fig.suptitle(f"Service interactions: {d.service_interactions.value:,} in "
                 f"{date_range_label(d.period.start, d.period.end)}", fontweight="bold")
    plt.close(fig)
    return fig


def aov_tile(d: HubDashboard) -> HTML:
    """The average order value tile: signed-in checkouts, with comparison and change."""
    c = d.average_order_value
    cur = d.currency
    value = money(c.value, cur) if c.value is not None else "no orders"
    if c.value is None:
        below = (f"<span style='color:{NEUTRAL}'>no signed-in orders in this period"
                 + (f" · {money(c.previous, cur)} in the comparison period"
                    if c.previous is not None else "") + "</span>")
    elif c.previous is None and d.comparison is not None:
        below = (f"<span style='color:{NEUTRAL}'>no comparison (no signed-in orders in the "
                 "comparison period)</span>")
    else:
        below = _change_html(c, lambda v: money(v, cur), "")
    prev = (f" · {d.previous_orders:,} in the comparison period"
            if d.previous_orders is not None else "")
    return HTML("<div style='display:grid;grid-template-columns:repeat(2,minmax(0,1fr))'>" + _tile(
        "Average order value (signed-in checkouts)", value, below,
        f"{d.orders:,} signed-in, not cancelled orders{prev}") + "</div>")


def average_order_value_figure(d: HubDashboard):
    """Average order value per day (week) as a line, with the order count as bars behind it."""
    s = d.aov_series
    fig, ax = plt.subplots(figsize=(11, 4.2))
    counts = ax.twinx()
    width = 0.8 if d.buckets.unit == "day" else 5.6
    counts.bar(s.index, s["orders"], width=width, color=PALETTE[7], alpha=0.35,
               label="Signed-in orders")
    counts.set_ylabel(f"Signed-in orders {'per day' if d.buckets.unit == 'day' else 'per week'}")
    counts.grid(False)
    # The line must be drawn above the bars of the twin axis.
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(s.index, s["average_order_value"], color=PALETTE[0], marker="o",
            markersize=3.5, linewidth=2, label="Average order value")
    if d.average_order_value.value is not None:
        ax.axhline(d.average_order_value.value, color=PALETTE[0], linestyle="--",
                   linewidth=1, alpha=0.7,
                   label=f"Period average {money(d.average_order_value.value, d.currency)}")
    money_axis(ax, d.currency)
    ax.set_ylabel(f"Average order value ({d.currency})")
    ax.set_xlabel(_x_label(d))
    ax.set_ylim(bottom=0)
    counts.set_ylim(bottom=0)
    _date_axis(ax)
    handles = ax.get_legend_handles_labels()
    more = counts.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper center",
              bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False, fontsize=9)
    ax.set_title(f"Average order value of signed-in checkouts, {_per(d)}")
    plt.close(fig)
    return fig
