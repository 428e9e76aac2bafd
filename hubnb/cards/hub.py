"""The Customer Hub dashboard's cards (``notebooks/customer_hub.ipynb``, one section each).

Every function takes a :class:`hubnb.hub.HubDashboard` and returns a
:class:`~hubnb.render.Card`. Without hub data (``dashboard.has_data`` False) the hub's
cards say so in one line instead of showing zeros. Every text is a message of
:mod:`hubnb.i18n`, translated when the card is made (the language is chosen at run time).
"""

from __future__ import annotations

from .. import format as fmt
from ..figures import hub as hub_figures
from ..hub import SERVICE_TYPES, HubDashboard
from ..i18n import _, ngettext
from ..render import Card, Change, Tile


def service_labels() -> dict[str, str]:
    """The dashboard's names of the five service interactions, in the active language."""
    return {"order_tracked": _("Order tracked"), "return_started": _("Return started"),
            "coupon_applied": _("Coupon applied"), "help_clicked": _("Help clicked"),
            "chat_started": _("Chat started")}


def no_data_line() -> str:
    """The one line a hub card shows without hub data."""
    return _("No Customer Hub data for this period: see the notice at the top of the report.")


def __getattr__(name: str):
    # SERVICE_LABELS and NO_DATA_LINE were constants: they now follow the active language.
    if name == "SERVICE_LABELS":
        return service_labels()
    if name == "NO_DATA_LINE":
        return no_data_line()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _no_data() -> Card:
    return Card().notice(no_data_line(), "warning")


def _comparison_note(d: HubDashboard) -> str:
    if d.comparison is not None and not d.live.comparison_live:
        return " " + _("(Customer Hub was not live in the comparison period)")
    return ""


def tile_change(change, text, note: str = "") -> Change:
    """The comparison line of a tile: up (green) or down (red) with the previous value.

    ``text`` formats a value; "no comparison" where the comparison is absent or zero.
    """
    if change.previous is None:
        return Change("none", comparison=_("no comparison") + note)
    if change.change_pct is None:
        return Change("none", comparison=_("vs {value} · no comparison (previous value is "
                                           "zero)").format(value=text(change.previous)))
    versus = _("vs {value}").format(value=text(change.previous))
    pct = change.change_pct
    return Change(fmt.direction(pct), fmt.change(pct), versus)


def no_data_reason(d: HubDashboard) -> str:
    """Why the dashboard has no hub data (``d.live.no_data_reason``), in a sentence."""
    reason = d.live.no_data_reason
    if reason == "launched_after_period":
        return _("Customer Hub launched on {launched}, after this period ends ({end}).").format(
            launched=fmt.day(d.launched_on), end=fmt.day(d.period.end))
    if reason == "not_live_in_period":
        return _("Customer Hub was not live on any day of this period.")
    return _("This merchant's data has no Customer Hub events and no Customer Hub accounts.")


def _offline_reason(span) -> str:
    """Why the hub was not live during ``span``, in words (``span.reason`` is a data key)."""
    if span.reason == "before launch":
        if span.launched_on is not None:
            return _("before its launch on {day}").format(day=fmt.day(span.launched_on))
        return _("before launch")
    if span.reason == "paused":
        return _("paused")
    return span.reason


def _offline_sentence(span) -> str:
    """The notice of one span of days on which the hub was not live."""
    values = {"dates": fmt.date_range(span.start, span.end), "why": _offline_reason(span)}
    if span.in_period == "period":
        return _("Customer Hub was not live on {dates} ({why}): numbers for those days are "
                 "not measurements.").format(**values)
    if span.in_period == "comparison period":
        return _("Customer Hub was not live on {dates} ({why}, in the comparison period): "
                 "numbers for those days are not measurements.").format(**values)
    return _("Customer Hub was not live on {dates} ({why}, in the period and comparison "
             "period): numbers for those days are not measurements.").format(**values)


def live_card(d: HubDashboard) -> Card:
    """Days of the period or comparison period on which the hub was not live (before its
    launch, or paused); the "no data yet" notice when there is no hub data at all."""
    card = Card()
    if not d.has_data:
        return card.notice(
            no_data_reason(d), "warning", title=_("Customer Hub has no data yet"),
            after=_("The hub's tiles, service interactions and revenue are left out rather "
                    "than shown as zeros. Once Customer Hub is live and its events reach the "
                    "dataset, this report fills in."))
    if not d.live.offline:
        return card.text(_("Customer Hub was live on every day of the period and of the "
                           "comparison period."))
    for span in d.live.offline:
        card.notice(_offline_sentence(span), "warning")
    return card


def _attribution(d: HubDashboard) -> str:
    """How revenue was attributed (``d.attribution``), in words; added_from_hub is a column."""
    return {"attribution window": _("attribution window"),
            "added_from_hub, with the attribution window where it is null":
                _("added_from_hub, with the attribution window where it is null"),
            }.get(d.attribution, d.attribution)


def overview_card(d: HubDashboard) -> Card:
    """The four overview tiles, each with its comparison and percent change (green when
    positive, red when negative; "no comparison" where the comparison is zero or absent)."""
    if not d.has_data:
        return _no_data()
    note = _comparison_note(d)
    cur = d.currency
    money = lambda v: fmt.money(v, cur)  # noqa: E731
    return Card().tiles([
        Tile(_("Total accounts"), fmt.count(d.total_accounts),
             Change("none", comparison=_("since launch · no comparison")),
             _("accounts created by {day}").format(day=fmt.day(d.period.end))),
        Tile(_("Service interactions"), fmt.count(d.service_interactions.value),
             tile_change(d.service_interactions, fmt.count, note),
             _("order tracked, return started, coupon applied, help clicked, chat started")),
        Tile(_("Active accounts"), fmt.count(d.active_accounts.value),
             tile_change(d.active_accounts, fmt.count, note),
             _("distinct accounts that opened Customer Hub")),
        Tile(_("Revenue generated"), money(d.revenue_generated.value),
             tile_change(d.revenue_generated, money, note),
             _("items added to cart from Customer Hub (by {attribution})").format(
                 attribution=_attribution(d))),
    ])


def _fell(d: HubDashboard, name: str) -> str:
    """``Active accounts fell 50.0% (2 → 1)``: how a stagnant measure fell."""
    c = getattr(d, name)
    values = {"change": fmt.change(abs(c.change_pct or 0)).lstrip("+"),
              "previous": fmt.count(c.previous), "value": fmt.count(c.value)}
    if name == "active_accounts":
        return _("Active accounts fell {change} ({previous} → {value})").format(**values)
    return _("Service interactions fell {change} ({previous} → {value})").format(**values)


def reengage_card(d: HubDashboard, path=None) -> Card:
    """The re-engagement list, offered prominently when active accounts or interactions fell.

    ``path`` is where reengage.csv was written (None when the notebook runs by hand).
    """
    n = len(d.reengage)
    where = (f"{getattr(path, 'name', path)}" if path is not None
             else _("reengage.csv (written by hubnb run)"))
    who = ngettext("{n} account that has not opened Customer Hub for more than {days} days "
                   "before {day}, or never",
                   "{n} accounts that have not opened Customer Hub for more than {days} days "
                   "before {day}, or never", n).format(
        n=fmt.count(n), days=fmt.count(d.inactive_after_days), day=fmt.day(d.as_of))
    card = Card()
    if not d.stagnant:
        text = _("Re-engagement list: {who}: {where}.").format(who=who, where=where)
        if d.has_data and d.comparison is not None:
            text += " " + _("Active accounts and service interactions did not fall.")
        return card.text(text)
    fell = [_fell(d, name) for name in ("active_accounts", "service_interactions")
            if name in d.stagnant]
    return card.notice(
        _("{changes} against the comparison period.").format(changes="; ".join(fell)),
        "warning", title=_("Engagement is falling"),
        after=_("Re-engage {who}. The list is {where} (profile_id, email, account_created_at, "
                "last_hub_opened_at, days_since_last_open): use it as an email or SMS "
                "segment.").format(who=who, where=where))


def products_card(d: HubDashboard, top: int = 20) -> Card:
    """The View report: ordered products behind revenue generated, by revenue (top rows)."""
    if not d.has_data:
        return _no_data()
    products = d.products
    if not len(products):
        return Card().text(_("No item was attributed to Customer Hub in this period."))
    shown = products.head(top)
    revenue = _("Revenue ({currency})").format(currency=d.currency)
    frame = shown.assign(
        units=shown["units"].map(fmt.count), orders=shown["orders"].map(fmt.count),
        revenue=shown["revenue"].map(lambda v: fmt.money(v, d.currency)),
    )[["product", "units", "revenue", "orders"]].rename(columns={
        "product": _("Product"), "units": _("Units"), "revenue": revenue,
        "orders": _("Orders")})
    caption = ngettext("Top {shown} of {n} product · revenue generated {revenue}",
                       "Top {shown} of {n} products · revenue generated {revenue}",
                       len(products)).format(
        shown=fmt.count(len(shown)), n=fmt.count(len(products)),
        revenue=fmt.money(d.revenue_generated.value, d.currency))
    return Card().table(frame, caption, bars=revenue, bar_values=shown["revenue"].to_numpy())


def _per(d: HubDashboard) -> str:
    return d.buckets.unit


def _x_label(d: HubDashboard) -> str:
    if d.buckets.unit == "day":
        return _("Day (local time)")
    partial = d.buckets.partial_first_days
    if partial:
        return ngettext("Week starting (the first week has {n} day)",
                        "Week starting (the first week has {n} days)",
                        partial).format(n=fmt.count(partial))
    return _("Week starting")


def service_interactions_card(d: HubDashboard) -> Card:
    """Breakdown by the five types and their counts per day (week) over the period."""
    if not d.has_data:
        return _no_data()
    values = {"n": fmt.count(d.service_interactions.value),
              "dates": fmt.date_range(d.period.start, d.period.end)}
    if d.buckets.unit == "week":
        title = _("Service interactions: {n} in {dates} (weeks end on the period's last "
                  "day)").format(**values)
    else:
        title = _("Service interactions: {n} in {dates}").format(**values)
    fig = hub_figures.service_interactions_chart(
        {t: d.service_breakdown[t] for t in SERVICE_TYPES}, service_labels(),
        d.service_series, _per(d), _x_label(d), title)
    return Card().figure(fig, title)


def average_order_value_card(d: HubDashboard) -> Card:
    """The average order value tile (signed-in checkouts, with comparison and change) and
    its series per day (week) with the order count behind each point."""
    c = d.average_order_value
    cur = d.currency
    money = lambda v: fmt.money(v, cur)  # noqa: E731
    if c.value is None:
        change = Change("none", comparison=(
            _("no signed-in orders in this period · {money} in the comparison period").format(
                money=money(c.previous)) if c.previous is not None
            else _("no signed-in orders in this period")))
    elif c.previous is None and d.comparison is not None:
        change = Change("none", comparison=_("no comparison (no signed-in orders in the "
                                             "comparison period)"))
    else:
        change = tile_change(c, money)
    if d.previous_orders is not None:
        footnote = ngettext(
            "{n} signed-in, not cancelled order · {previous} in the comparison period",
            "{n} signed-in, not cancelled orders · {previous} in the comparison period",
            d.orders).format(n=fmt.count(d.orders), previous=fmt.count(d.previous_orders))
    else:
        footnote = ngettext("{n} signed-in, not cancelled order",
                            "{n} signed-in, not cancelled orders",
                            d.orders).format(n=fmt.count(d.orders))
    card = Card().tiles([Tile(_("Average order value (signed-in checkouts)"),
                              money(c.value) if c.value is not None else _("no orders"),
                              change, footnote)], columns=2)
    title = (_("Average order value of signed-in checkouts, per week") if _per(d) == "week"
             else _("Average order value of signed-in checkouts, per day"))
    fig = hub_figures.average_order_value_chart(d.aov_series, c.value, cur, _per(d),
                                                _x_label(d), title)
    return card.figure(fig, title)


def outputs_card(report, d: HubDashboard) -> Card:
    """The files this notebook writes (or why it writes none): the re-engagement list and the
    dashboard's numbers for metrics.json."""
    card = Card()
    if report.output_dir is None:
        return card.text(_("Run by hand (output_dir is None): reengage.csv and the metrics are "
                           "not written; `hubnb run` writes them."))
    n = len(d.reengage)
    return card.items([
        ngettext("{file} ({n} account)", "{file} ({n} accounts)", n).format(
            file="reengage.csv", n=fmt.count(n)),
        _("the customer_hub block of metrics.json")], _("Written:"))
