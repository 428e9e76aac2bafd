"""The Customer Hub dashboard's cards (``notebooks/customer_hub.ipynb``, one section each).

Every function takes a :class:`hubnb.hub.HubDashboard` and returns a
:class:`~hubnb.render.Card`. Without hub data (``dashboard.has_data`` False) the hub's
cards say so in one line instead of showing zeros.
"""

from __future__ import annotations

from .. import format as fmt
from ..figures import hub as hub_figures
from ..hub import SERVICE_TYPES, HubDashboard
from ..render import Card, Change, Tile

#: The dashboard's names of the five service interactions.
SERVICE_LABELS = {"order_tracked": "Order tracked", "return_started": "Return started",
                  "coupon_applied": "Coupon applied", "help_clicked": "Help clicked",
                  "chat_started": "Chat started"}
NO_DATA_LINE = "No Customer Hub data for this period: see the notice at the top of the report."


def _no_data() -> Card:
    return Card().notice(NO_DATA_LINE, "warning")


def _comparison_note(d: HubDashboard) -> str:
    if d.comparison is not None and not d.live.comparison_live:
        return " (Customer Hub was not live in the comparison period)"
    return ""


def tile_change(change, text, note: str = "") -> Change:
    """The comparison line of a tile: up (green) or down (red) with the previous value.

    ``text`` formats a value; "no comparison" where the comparison is absent or zero.
    """
    if change.previous is None:
        return Change("none", comparison="no comparison" + note)
    versus = f"vs {text(change.previous)}"
    if change.change_pct is None:
        return Change("none", comparison=f"{versus} · no comparison (previous value is zero)")
    pct = change.change_pct
    # The colour follows the change as shown: a change that reads +0.0% is flat.
    shown = round(pct, 1)
    direction = "up" if shown > 0 else "down" if shown < 0 else "flat"
    return Change(direction, fmt.change(pct), versus)


def no_data_reason(d: HubDashboard) -> str:
    """Why the dashboard has no hub data (``d.live.no_data_reason``), in a sentence."""
    reason = d.live.no_data_reason
    if reason == "launched_after_period":
        return (f"Customer Hub launched on {fmt.day(d.launched_on)}, after this period ends "
                f"({fmt.day(d.period.end)}).")
    if reason == "not_live_in_period":
        return "Customer Hub was not live on any day of this period."
    return "This merchant's data has no Customer Hub events and no Customer Hub accounts."


def live_card(d: HubDashboard) -> Card:
    """Days of the period or comparison period on which the hub was not live (before its
    launch, or paused); the "no data yet" notice when there is no hub data at all."""
    card = Card()
    if not d.has_data:
        return card.notice(
            no_data_reason(d), "warning", title="Customer Hub has no data yet",
            after="The hub's tiles, service interactions and revenue are left out rather than "
                  "shown as zeros. Once Customer Hub is live and its events reach the "
                  "dataset, this report fills in.")
    if not d.live.offline:
        return card.text("Customer Hub was live on every day of the period and of the "
                         "comparison period.")
    for span in d.live.offline:
        why = span.reason
        if span.reason == "before launch" and span.launched_on is not None:
            why = f"before its launch on {fmt.day(span.launched_on)}"
        where = "" if span.in_period == "period" else f", in the {span.in_period}"
        card.notice(f"Customer Hub was not live on {fmt.date_range(span.start, span.end)} "
                    f"({why}{where}): numbers for those days are not measurements.",
                    "warning")
    return card


def overview_card(d: HubDashboard) -> Card:
    """The four overview tiles, each with its comparison and percent change (green when
    positive, red when negative; "no comparison" where the comparison is zero or absent)."""
    if not d.has_data:
        return _no_data()
    note = _comparison_note(d)
    cur = d.currency
    money = lambda v: fmt.money(v, cur)  # noqa: E731
    return Card().tiles([
        Tile("Total accounts", fmt.count(d.total_accounts),
             Change("none", comparison="since launch · no comparison"),
             f"accounts created by {fmt.day(d.period.end)}"),
        Tile("Service interactions", fmt.count(d.service_interactions.value),
             tile_change(d.service_interactions, fmt.count, note),
             "order tracked, return started, coupon applied, help clicked, chat started"),
        Tile("Active accounts", fmt.count(d.active_accounts.value),
             tile_change(d.active_accounts, fmt.count, note),
             "distinct accounts that opened Customer Hub"),
        Tile("Revenue generated", money(d.revenue_generated.value),
             tile_change(d.revenue_generated, money, note),
             f"items added to cart from Customer Hub (by {d.attribution})"),
    ])


def reengage_card(d: HubDashboard, path=None) -> Card:
    """The re-engagement list, offered prominently when active accounts or interactions fell.

    ``path`` is where reengage.csv was written (None when the notebook runs by hand).
    """
    n = len(d.reengage)
    where = (f"{getattr(path, 'name', path)}" if path is not None
             else "reengage.csv (written by hubnb run)")
    who = (f"{fmt.count(n)} account{'s' if n != 1 else ''} that have not opened Customer Hub "
           f"for more than {d.inactive_after_days} days before {fmt.day(d.as_of)}, or never")
    card = Card()
    if not d.stagnant:
        why = (" Active accounts and service interactions did not fall."
               if d.has_data and d.comparison is not None else "")
        return card.text(f"Re-engagement list: {who}: {where}.{why}")
    fell = []
    for name, label in (("active_accounts", "Active accounts"),
                        ("service_interactions", "Service interactions")):
        if name in d.stagnant:
            c = getattr(d, name)
            fell.append(f"{label} fell {fmt.change(abs(c.change_pct or 0)).lstrip('+')} "
                        f"({fmt.count(c.previous)} → {fmt.count(c.value)})")
    return card.notice(
        "; ".join(fell) + " against the comparison period.", "warning",
        title="Engagement is falling",
        after=f"Re-engage {who}. The list is {where} (profile_id, email, account_created_at, "
              "last_hub_opened_at, days_since_last_open): use it as an email or SMS segment.")


def products_card(d: HubDashboard, top: int = 20) -> Card:
    """The View report: ordered products behind revenue generated, by revenue (top rows)."""
    if not d.has_data:
        return _no_data()
    products = d.products
    if not len(products):
        return Card().text("No item was attributed to Customer Hub in this period.")
    shown = products.head(top)
    revenue = f"Revenue ({d.currency})"
    frame = shown.assign(
        units=shown["units"].map(fmt.count), orders=shown["orders"].map(fmt.count),
        revenue=shown["revenue"].map(lambda v: fmt.money(v, d.currency)),
    )[["product", "units", "revenue", "orders"]].rename(columns={
        "product": "Product", "units": "Units", "revenue": revenue, "orders": "Orders"})
    caption = (f"Top {len(shown)} of {fmt.count(len(products))} products · revenue generated "
               f"{fmt.money(d.revenue_generated.value, d.currency)}")
    return Card().table(frame, caption, bars=revenue, bar_values=shown["revenue"].to_numpy())


def _per(d: HubDashboard) -> str:
    return d.buckets.unit


def _x_label(d: HubDashboard) -> str:
    if d.buckets.unit == "day":
        return "Day (local time)"
    partial = d.buckets.partial_first_days
    note = f" (the first week has {partial} day{'s' if partial != 1 else ''})" if partial else ""
    return "Week starting" + note


def service_interactions_card(d: HubDashboard) -> Card:
    """Breakdown by the five types and their counts per day (week) over the period."""
    if not d.has_data:
        return _no_data()
    weekly = " (weeks end on the period's last day)" if d.buckets.unit == "week" else ""
    title = (f"Service interactions: {fmt.count(d.service_interactions.value)} in "
             f"{fmt.date_range(d.period.start, d.period.end)}{weekly}")
    fig = hub_figures.service_interactions_chart(
        {t: d.service_breakdown[t] for t in SERVICE_TYPES}, SERVICE_LABELS, d.service_series,
        _per(d), _x_label(d), title)
    return Card().figure(fig, title)


def average_order_value_card(d: HubDashboard) -> Card:
    """The average order value tile (signed-in checkouts, with comparison and change) and
    its series per day (week) with the order count behind each point."""
    c = d.average_order_value
    cur = d.currency
    money = lambda v: fmt.money(v, cur)  # noqa: E731
    if c.value is None:
        change = Change("none", comparison="no signed-in orders in this period" + (
            f" · {money(c.previous)} in the comparison period" if c.previous is not None else ""))
    elif c.previous is None and d.comparison is not None:
        change = Change("none", comparison="no comparison (no signed-in orders in the "
                                           "comparison period)")
    else:
        change = tile_change(c, money)
    previous = (f" · {fmt.count(d.previous_orders)} in the comparison period"
                if d.previous_orders is not None else "")
    card = Card().tiles([Tile("Average order value (signed-in checkouts)",
                              money(c.value) if c.value is not None else "no orders", change,
                              f"{fmt.count(d.orders)} signed-in, not cancelled orders"
                              f"{previous}")], columns=2)
    title = f"Average order value of signed-in checkouts, per {_per(d)}"
    fig = hub_figures.average_order_value_chart(d.aov_series, c.value, cur, _per(d),
                                                _x_label(d), title)
    return card.figure(fig, title)
