"""Is there enough data for predictive CLV? Klaviyo's bar, checked on the counted orders.

Klaviyo's requirements for predictive analytics: at least 500 customers who placed an
order, at least 180 days of order history, orders within the last 30 days, and some
customers with 3 or more orders. ``clv.force: true`` fits anyway.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ..i18n import N_
from ..messages import Message

MIN_CUSTOMERS = 500
MIN_HISTORY_DAYS = 180
RECENT_DAYS = 30
MIN_REPEAT_ORDERS = 3
#: "Some customers with 3+ orders": we ask for at least this many.
MIN_CUSTOMERS_WITH_REPEAT = 10


def eligibility_reasons(counted: pd.DataFrame, as_of: dt.date) -> list[str]:
    """The unmet requirements, each saying what data would meet it; empty when eligible.

    Parameters
    ----------
    counted : DataFrame
        The counted orders (:func:`hubnb.clv.orders.counted_orders`).
    as_of : date
        Last local day of data.
    """
    reasons = []
    customers = counted["profile_id"].nunique()
    if customers < MIN_CUSTOMERS:
        reasons.append(Message(N_(
            "{customers} customers have a counted order; predictive CLV needs at least "
            "{minimum} (more order history, or a wider clv.orders filter)"),
            customers=int(customers), minimum=MIN_CUSTOMERS))
    if len(counted) == 0:
        reasons.append(Message(N_("no order history; predictive CLV needs at least {days} days "
                                  "of orders"), days=MIN_HISTORY_DAYS))
        reasons.append(Message(N_("no orders in the last {days} days; predictive CLV needs "
                                  "recent orders"), days=RECENT_DAYS))
        reasons.append(Message(N_("no customer has {orders} or more orders; predictive CLV "
                                  "needs at least {minimum}"),
                               orders=MIN_REPEAT_ORDERS, minimum=MIN_CUSTOMERS_WITH_REPEAT))
        return reasons
    end = pd.Timestamp(as_of)
    first = counted["local_date"].min()
    history = (end - first).days + 1
    if history < MIN_HISTORY_DAYS:
        reasons.append(Message(N_(
            "order history covers {days} days (since {first}); predictive CLV needs at least "
            "{minimum} days (add older orders, or raise clv.history_days)"),
            days=int(history), first=first.date(), minimum=MIN_HISTORY_DAYS))
    last = counted["local_date"].max()
    if (end - last).days >= RECENT_DAYS:
        reasons.append(Message(N_(
            "the last counted order was on {last}, more than {days} days before as_of {as_of}; "
            "predictive CLV needs orders in the last {days} days (export recent orders, or set "
            "as_of to the end of the data)"), last=last.date(), days=RECENT_DAYS, as_of=as_of))
    repeaters = int((counted.groupby("profile_id").size() >= MIN_REPEAT_ORDERS).sum())
    if repeaters < MIN_CUSTOMERS_WITH_REPEAT:
        reasons.append(Message(N_(
            "{customers} customers have {orders} or more orders; predictive CLV needs at least "
            "{minimum} repeat buyers to learn repeat behaviour"),
            customers=repeaters, orders=MIN_REPEAT_ORDERS, minimum=MIN_CUSTOMERS_WITH_REPEAT))
    return reasons
