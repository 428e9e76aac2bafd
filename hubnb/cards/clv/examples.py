"""Section 2: five example profiles, each with its attributes and their intervals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ... import format as fmt
from ...clv.dashboard import EXAMPLE_RULES, example_profiles
from ...figures import clv as clv_figures
from ...i18n import _, ngettext
from ...render import Card
from .labels import credible_label, predictive_label


def next_order_text(date, as_of: dt.date, horizon_days: int) -> str:
    """A next order date as shown: beyond the prediction window it reads "not expected
    within <horizon> days" rather than a date years ahead (the CSV keeps the date)."""
    if date is None or pd.isna(date):
        return fmt.DASH
    if pd.Timestamp(date) > pd.Timestamp(as_of) + pd.Timedelta(days=horizon_days):
        return _("not expected within {days} days").format(days=fmt.count(horizon_days))
    return fmt.day(date)


def profile_attributes(example: pd.Series, currency: str, horizon_days: int,
                       as_of: dt.date | None = None) -> pd.DataFrame:
    """Every CLV attribute of one profile with its intervals, as text for a table.

    Two intervals stand apart: the credible interval of the model's average for this
    profile, and (orders, CLV, total CLV) the posterior predictive interval of what the
    profile will actually do, purchase randomness included.
    """
    def span(low, high):
        return _("{low} to {high}").format(low=low, high=high)

    def interval(name, text, pred_text=None):
        mean, low, high = (example.get(f"{name}_{s}") for s in ("mean", "lower", "upper"))
        if mean is None or pd.isna(mean):
            return fmt.DASH, fmt.DASH, fmt.DASH if pred_text else ""
        pred = ""
        if pred_text:
            plo, phi = example.get(f"{name}_pred_lower"), example.get(f"{name}_pred_upper")
            pred = (fmt.DASH if plo is None or pd.isna(plo) or phi is None or pd.isna(phi)
                    else span(pred_text(plo), pred_text(phi)))
        return text(mean), span(text(low), text(high)), pred

    window_end = (None if as_of is None
                  else pd.Timestamp(as_of) + pd.Timedelta(days=horizon_days))

    def date_interval():
        mean, low, high = (example.get(f"expected_next_order_date_{s}")
                           for s in ("mean", "lower", "upper"))
        if mean is None or pd.isna(mean):
            return fmt.DASH, fmt.DASH, ""
        if window_end is None:
            return fmt.day(mean), span(fmt.day(low), fmt.day(high)), ""
        after = _("after {day}").format(day=fmt.day(window_end))
        low_text = after if pd.Timestamp(low) > window_end else fmt.day(low)
        high_text = after if pd.Timestamp(high) > window_end else fmt.day(high)
        shown = low_text if low_text == high_text else span(low_text, high_text)
        return next_order_text(mean, as_of, horizon_days), shown, ""

    cash = lambda v: fmt.money(v, currency)  # noqa: E731
    count = lambda v: fmt.number(v, 2)  # noqa: E731
    whole = lambda v: fmt.number(v, 0)  # noqa: E731  (predictive bounds of counts are whole)
    days = lambda v: fmt.number(v, 0)  # noqa: E731
    share = lambda v: fmt.share(v, 1)  # noqa: E731
    last = fmt.day(example.get("last_order_date"))
    if not pd.isna(example.get("days_since_last", np.nan)):
        last = _("{day} ({days} days before as of)").format(
            day=last, days=fmt.count(int(example["days_since_last"])))
    window = fmt.count(horizon_days)
    rows = [
        (_("Historical orders"), fmt.number(example.get("historical_orders"), 0), "", ""),
        (_("Historical CLV"), cash(example.get("historical_clv")), "", ""),
        (_("Average days between orders"),
         fmt.number(example.get("avg_days_between_orders"), 1), "", ""),
        (_("First order"), fmt.day(example.get("first_order_date")), "", ""),
        (_("Last order"), last, "", ""),
        (_("Predicted orders (next {days} days)").format(days=window),
         *interval("predicted_orders", count, whole)),
        (_("Predicted CLV (next {days} days)").format(days=window),
         *interval("predicted_clv", cash, cash)),
        (_("Total CLV"), *interval("total_clv", cash, cash)),
        (_("Average order value (future orders)"), *interval("aov", cash)),
        (_("Churn probability"), *interval("churn_probability", share)),
        (_("Chance of an order in the next 30 days"), *interval("p_order_30d", share)),
        (_("Days to next order (median wait if still active)"),
         *interval("days_to_next_order", days)),
        (_("Expected next order date"), *date_interval()),
    ]
    return pd.DataFrame(rows, columns=[_("Attribute"), _("Value (mean)"), credible_label(),
                                       predictive_label()])


def example_profiles_card(result, report) -> Card:
    """Card 2: the five example profiles, each with every attribute and its order timeline."""
    p = report.params
    examples = example_profiles(result.profiles, p.as_of, p.timezone)
    card = Card()
    if result.fit is None:
        card.notice(_("Not eligible: only the historical attributes are shown; the examples "
                      "are picked by historical CLV instead of predicted CLV."), "warning")
    orders = result.orders
    rules = {rule.number: rule for rule in EXAMPLE_RULES}
    for _row, ex in examples.iterrows():
        rule = example_rule_text(rules[ex["example"]])
        card.heading(_("{number}. {title}: {rule}").format(
            number=ex["example"], title=example_title(ex["example"]), rule=rule))
        if ex["group_size"] == 0:
            card.text(_("No profile has {rule}.").format(rule=rule))
            continue
        who = (ex.get("email") if isinstance(ex.get("email"), str)
               else _("profile {id}").format(id=ex["profile_id"]))
        text = (_("{who} (profile {id}): of the {n} profiles with {rule}, the one whose "
                  "predicted CLV is nearest the group's median.")
                if ex["picked_by"] == "predicted_clv_mean" else
                _("{who} (profile {id}): of the {n} profiles with {rule}, the one whose "
                  "historical CLV is nearest the group's median."))
        card.text(text.format(who=who, id=ex["profile_id"], n=fmt.count(ex["group_size"]),
                              rule=rule))
        card.table(profile_attributes(ex, p.currency, p.clv.horizon_days, p.as_of))
        own = orders.loc[orders["profile_id"] == ex["profile_id"]]
        title = _("Orders of {who} and the expected next order").format(who=who)
        fig = clv_figures.example_timeline(own, ex, p.as_of, p.currency,
                                           p.clv.credible_interval, p.clv.horizon_days,
                                           title=title)
        card.figure(fig, title)
    if result.fit is not None:
        card.text(_("Two ranges stand beside each prediction. The {ci} credible interval says "
                    "how sure the model is of this customer's average; the {ci} predictive "
                    "interval is where the customer's actual orders and spend over the window "
                    "will fall, the chance of each purchase included: compare that one with "
                    "what happens. The next order date is the median wait to the next order if "
                    "the customer is still active.").format(
            ci=fmt.share(p.clv.credible_interval, 0)))
    return card


def example_title(number: int) -> str:
    """The name of each of the five example profiles."""
    return {1: _("Loyal and active"), 2: _("Second order, active"), 3: _("New customer"),
            4: _("Lapsed loyal customer"), 5: _("One-time customer, lapsed")}[int(number)]


def example_rule_text(rule) -> str:
    """An :class:`~hubnb.clv.dashboard.ExampleRule` in words: ``3+ orders, last within 90
    days``."""
    if rule.max_orders == np.inf:
        orders = _("{n}+ orders").format(n=rule.min_orders)
    else:
        orders = ngettext("{n} order", "{n} orders", rule.min_orders).format(n=rule.min_orders)
    if rule.within_days is not None:
        return _("{orders}, last within {days} days").format(orders=orders, days=rule.within_days)
    return _("{orders}, last over {days} days ago").format(orders=orders, days=rule.over_days)
