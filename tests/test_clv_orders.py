"""Which orders count for CLV, the historical attributes, the RFM summary and eligibility."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from hubnb.clv.eligibility import MIN_CUSTOMERS, eligibility_reasons
from hubnb.clv.orders import counted_orders, historical_attributes, rfm_summary
from hubnb.params import OrderFilter

AS_OF = dt.date(2026, 3, 31)
TZ = "America/New_York"


def ts(s):
    return pd.Timestamp(s, tz="UTC")


def make_orders(rows):
    cols = ["order_id", "profile_id", "placed_at", "value", "source_name", "is_subscription",
            "cancelled_at"]
    df = pd.DataFrame(rows, columns=cols)
    df["placed_at"] = pd.to_datetime(df["placed_at"], utc=True)
    df["cancelled_at"] = pd.to_datetime(df["cancelled_at"], utc=True)
    df["signed_in"] = False
    return df


def make_refunds(rows):
    df = pd.DataFrame(rows, columns=["refund_id", "order_id", "refunded_at", "amount"])
    df["refunded_at"] = pd.to_datetime(df["refunded_at"], utc=True)
    return df


ORDERS = make_orders([
    (1, "a", "2026-03-01T15:00:00Z", 100.0, "web", False, None),
    (2, "a", "2026-03-10T15:00:00Z", 50.0, "pos", False, None),
    (3, "a", "2026-03-20T15:00:00Z", 30.0, "iphone", True, None),
    (4, "b", "2026-03-05T15:00:00Z", 0.0, "web", False, None),
    (5, "b", "2026-03-06T15:00:00Z", 40.0, "web", False, "2026-03-07T00:00:00Z"),
    (6, "c", "2026-03-15T15:00:00Z", 80.0, "web", False, None),
])


def ids(counted):
    return sorted(counted["order_id"].tolist())


def test_default_filter_drops_zero_value_and_cancelled():
    c = counted_orders(ORDERS, None, OrderFilter(), AS_OF, TZ, 1500)
    assert ids(c) == [1, 2, 3, 6]


def test_zero_value_kept_when_asked():
    c = counted_orders(ORDERS, None, OrderFilter(exclude_zero_value=False), AS_OF, TZ, 1500)
    assert ids(c) == [1, 2, 3, 4, 6]


def test_sources_pos_and_subscription_filters():
    assert ids(counted_orders(ORDERS, None, OrderFilter(sources=("web",)), AS_OF, TZ, 1500)) == [1, 6]
    assert ids(counted_orders(ORDERS, None, OrderFilter(exclude_pos=True), AS_OF, TZ, 1500)) == [1, 3, 6]
    assert ids(counted_orders(ORDERS, None, OrderFilter(exclude_subscriptions=True),
                              AS_OF, TZ, 1500)) == [1, 2, 6]


def test_cancellation_after_as_of_not_yet_known():
    # order 5 (6 March 15:00 UTC) was cancelled at 7 March 00:00 UTC, which is 6 March 19:00
    # in New York: as of 6 March in New York the cancellation is known, in UTC it is not yet
    c = counted_orders(ORDERS, None, OrderFilter(), dt.date(2026, 3, 6), TZ, 1500)
    assert 5 not in ids(c)
    c = counted_orders(ORDERS, None, OrderFilter(), dt.date(2026, 3, 6), "UTC", 1500)
    assert 5 in ids(c)


def test_refunds_netted_partial_full_and_after_as_of():
    refunds = make_refunds([
        (1, 1, "2026-03-02T00:00:00Z", 30.0),    # partial: 100 -> 70
        (2, 6, "2026-03-16T00:00:00Z", 50.0),    # two refunds covering 80 in full
        (3, 6, "2026-03-17T00:00:00Z", 30.0),
        (4, 2, "2026-04-05T00:00:00Z", 50.0),    # after as_of: ignored
        (5, 3, "2026-03-21T00:00:00Z", 45.0),    # more than the value (30): fully refunded
    ])
    c = counted_orders(ORDERS, refunds, OrderFilter(), AS_OF, TZ, 1500).set_index("order_id")
    assert sorted(c.index) == [1, 2]
    assert c.loc[1, "net_value"] == pytest.approx(70.0)
    assert c.loc[2, "net_value"] == pytest.approx(50.0)


def test_history_days_and_cut_off_in_local_time():
    orders = make_orders([
        (1, "a", "2026-03-22T03:00:00Z", 10.0, "web", False, None),   # 21 Mar local: day 11 back
        (2, "a", "2026-03-22T05:00:00Z", 10.0, "web", False, None),   # 22 Mar local: day 10
        (3, "a", "2026-04-01T03:00:00Z", 10.0, "web", False, None),   # 31 Mar 23:00 local
        (4, "a", "2026-04-01T05:00:00Z", 10.0, "web", False, None),   # 1 Apr local: after as_of
    ])
    c = counted_orders(orders, None, OrderFilter(), AS_OF, TZ, history_days=10)
    assert ids(c) == [2, 3]
    assert c["local_date"].tolist() == [pd.Timestamp("2026-03-22"), pd.Timestamp("2026-03-31")]


def test_same_day_orders_are_one_transaction():
    orders = make_orders([
        (1, "a", "2026-01-01T14:00:00Z", 10.0, "web", False, None),
        (2, "a", "2026-01-01T20:00:00Z", 15.0, "web", False, None),   # same local day
        (3, "a", "2026-01-11T14:00:00Z", 20.0, "web", False, None),
        (4, "a", "2026-01-11T15:00:00Z", 6.0, "web", False, None),
        (5, "a", "2026-01-21T14:00:00Z", 40.0, "web", False, None),
        (6, "b", "2026-03-30T14:00:00Z", 5.0, "web", False, None),
    ])
    c = counted_orders(orders, None, OrderFilter(), AS_OF, TZ, 1500)
    rfm = rfm_summary(c, AS_OF)
    a, b = rfm.loc["a"], rfm.loc["b"]
    assert (a["frequency"], a["recency"], a["T"]) == (2, 20, (AS_OF - dt.date(2026, 1, 1)).days)
    assert a["monetary_value"] == pytest.approx((26.0 + 40.0) / 2)   # repeat transactions only
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (0, 0, 1, 0.0)

    hist = historical_attributes(c).set_index("profile_id")
    assert hist.loc["a", "historical_orders"] == 5                  # orders, not transactions
    assert hist.loc["a", "historical_clv"] == pytest.approx(91.0)
    assert hist.loc["a", "avg_days_between_orders"] == pytest.approx(20 / 4)
    assert np.isnan(hist.loc["b", "avg_days_between_orders"])


def _counted(n_customers, first_day, last_day, repeaters):
    rows = []
    for i in range(n_customers):
        rows.append((i, pd.Timestamp(first_day), 10.0))
    for i in range(repeaters):
        for k in (1, 2):
            rows.append((i, pd.Timestamp(first_day) + pd.Timedelta(days=k), 10.0))
    rows.append((0, pd.Timestamp(last_day), 10.0))
    df = pd.DataFrame(rows, columns=["profile_id", "local_date", "net_value"])
    df["order_id"] = range(len(df))
    return df


def test_eligible_data_has_no_reasons():
    c = _counted(MIN_CUSTOMERS, "2025-06-01", "2026-03-30", repeaters=20)
    assert eligibility_reasons(c, AS_OF) == []


def test_each_unmet_requirement_is_a_reason_saying_what_is_needed():
    c = _counted(50, "2026-01-15", "2026-02-01", repeaters=2)
    reasons = eligibility_reasons(c, AS_OF)
    assert len(reasons) == 4
    text = " ".join(reasons)
    assert "50 customers" in text and "at least 500" in text
    assert "180 days" in text
    assert "last 30 days" in text
    assert "3 or more orders" in text


def test_no_orders_at_all_is_not_eligible():
    empty = pd.DataFrame(columns=["profile_id", "local_date", "net_value", "order_id"])
    assert len(eligibility_reasons(empty, AS_OF)) == 4
