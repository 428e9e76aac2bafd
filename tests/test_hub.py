"""The Customer Hub dashboard (hubnb.hub), on small hand-built datasets.

Every dataset is written as CSV and read through load_dataset, as a merchant's would be.
The merchant is in America/New_York; unless a test says otherwise the period P is
Oct 29 – Nov 4, 2026 (it holds Nov 1, the 25-hour day daylight saving time ends) and the
comparison C is the previous period, Oct 22 – 28, 2026.

In UTC: P starts Oct 29 04:00 (EDT midnight) and ends before Nov 5 05:00 (EST midnight);
C starts Oct 22 04:00.
"""

import datetime as dt
import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

matplotlib.use("Agg")

from hubnb import hub  # noqa: E402
from hubnb.data import EVENT_TYPES, TABLES, Dataset, load_dataset  # noqa: E402
from hubnb.cards import hub as cards  # noqa: E402
from hubnb.figures import hub as hub_figures  # noqa: E402
from hubnb.params import parse_params  # noqa: E402

TZ = "America/New_York"
PROFILES = [  # profile_id, account_created_at, email
    ("p1", "2026-01-01T00:00:00Z", "p1@example.com"),
    ("p2", "2026-01-01T00:00:00Z", "p2@example.com"),
    ("p3", "2026-01-01T00:00:00Z", "p3@example.com"),
    ("p4", "", "p4@example.com"),
]


def _csv(header: str, rows) -> str:
    return header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def hub_dataset(folder: Path, profiles=PROFILES, orders=(), lines=None, events=None,
                lines_header="order_id,line_id,product_id,product_name,quantity,line_total,"
                             "added_from_hub"):
    """Write a dataset directory of CSV files; None leaves a table's file out."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles.csv").write_text(_csv("profile_id,account_created_at,email", profiles))
    (folder / "orders.csv").write_text(
        _csv("order_id,profile_id,placed_at,value,signed_in,cancelled_at", orders))
    if lines is not None:
        (folder / "order_lines.csv").write_text(_csv(lines_header, lines))
    if events is not None:
        (folder / "hub_events.csv").write_text(
            _csv("event_id,profile_id,occurred_at,event_type,product_id", events))
    return load_dataset(folder)


def hub_params(folder: Path, **overrides):
    raw = {"merchant": "t", "data": str(folder), "timezone": TZ, "currency": "USD",
           "as_of": "2026-11-04", "period": {"start": "2026-10-29", "end": "2026-11-04"},
           "comparison": "previous_period",
           "hub": {"launched_on": "2025-01-01", "attribution_window_days": 7,
                   "inactive_after_days": 30}}
    hub_overrides = overrides.pop("hub", {})
    raw.update(overrides)
    raw["hub"] = {**raw["hub"], **hub_overrides}
    return parse_params(raw, base_dir=folder)


def dashboard_of(tmp_path, params=None, **tables):
    data = hub_dataset(tmp_path / "m", **tables)
    return hub.customer_hub(data, params or hub_params(tmp_path / "m"))


# ------------------------------------------------------------------ service interactions

EDGE_EVENTS = [
    ("e1", "p1", "2026-10-28T23:59:59-04:00", "order_tracked", ""),   # C's last second
    ("e2", "p1", "2026-10-29T00:00:00-04:00", "order_tracked", ""),   # P's first instant
    ("e3", "p2", "2026-11-04T23:59:59-05:00", "help_clicked", ""),    # P's last second
    ("e4", "p2", "2026-11-05T00:00:00-05:00", "help_clicked", ""),    # after P
    ("e5", "p3", "2026-10-22T00:00:00-04:00", "chat_started", ""),    # C's first instant
    ("e6", "p3", "2026-10-21T23:59:59-04:00", "chat_started", ""),    # before C
    ("e7", "p1", "2026-11-01T00:30:00-04:00", "coupon_applied", ""),  # DST day, EDT
    ("e8", "p2", "2026-11-01T23:30:00-05:00", "return_started", ""),  # DST day, EST
    ("e9", "p1", "2026-11-02T10:00:00Z", "hub_opened", ""),           # not a service type
    ("e2", "p1", "2026-10-30T10:00:00Z", "chat_started", ""),         # repeated id: dropped
]


def test_service_interactions_count_whole_local_days_at_the_edges(tmp_path):
    d = dashboard_of(tmp_path, events=EDGE_EVENTS)
    # P: e2 (order_tracked), e3 (help_clicked), e7 (coupon), e8 (return) -> 4
    # C: e1 (order_tracked), e5 (chat) -> 2; change 100 * (4 - 2) / 2 = 100
    assert d.service_breakdown == {"order_tracked": 1, "return_started": 1,
                                   "coupon_applied": 1, "help_clicked": 1, "chat_started": 0}
    assert d.service_interactions == hub.Change(4, 2, 100.0)


def test_repeated_event_id_counts_once_first_row_wins(tmp_path):
    d = dashboard_of(tmp_path, events=EDGE_EVENTS)
    # the repeat of e2 (a chat_started in P) is dropped by load_dataset
    assert d.service_breakdown["chat_started"] == 0
    assert int(d.service_series["chat_started"].sum()) == 0


def test_dst_day_has_25_hours_and_both_ends_count_for_it(tmp_path):
    d = dashboard_of(tmp_path, events=EDGE_EVENTS)
    per_day = d.service_series.sum(axis=1)
    assert d.buckets.unit == "day" and len(per_day) == 7
    assert per_day[pd.Timestamp("2026-11-01")] == 2          # 00:30 EDT and 23:30 EST
    assert per_day[pd.Timestamp("2026-10-31")] == 0
    assert per_day[pd.Timestamp("2026-11-02")] == 0
    assert per_day[pd.Timestamp("2026-10-29")] == 1          # e2 at local midnight
    assert per_day[pd.Timestamp("2026-11-04")] == 1          # e3 at 23:59:59
    # day edges: Nov 1 runs from 04:00 UTC to 05:00 UTC the next day
    edges = d.buckets.edges_us
    assert edges[4] - edges[3] == 25 * 3600 * 10**6


def test_breakdown_is_in_the_metrics_and_sums_to_service_interactions(tmp_path):
    m = dashboard_of(tmp_path, events=EDGE_EVENTS).metrics()
    assert sum(m["service_breakdown"].values()) == m["service_interactions"]["value"] == 4


# ------------------------------------------------------------------ accounts

def test_active_accounts_are_distinct_profiles_that_opened_the_hub(tmp_path):
    events = [
        ("a1", "p1", "2026-10-30T12:00:00Z", "hub_opened", ""),
        ("a2", "p1", "2026-10-31T12:00:00Z", "hub_opened", ""),   # same profile again
        ("a3", "p2", "2026-11-04T23:00:00-05:00", "hub_opened", ""),
        ("a4", "p3", "2026-10-30T12:00:00Z", "order_tracked", ""),  # not an open
        ("a5", "p4", "2026-11-05T00:00:00-05:00", "hub_opened", ""),  # after P
        ("a6", "p3", "2026-10-25T12:00:00Z", "hub_opened", ""),   # in C
    ]
    d = dashboard_of(tmp_path, events=events)
    # P: p1, p2 -> 2; C: p3 -> 1; change 100 * (2 - 1) / 1
    assert d.active_accounts == hub.Change(2, 1, 100.0)


def test_total_accounts_counts_accounts_created_by_the_last_local_day(tmp_path):
    profiles = [
        ("p1", "2025-06-01T00:00:00Z", ""),
        ("p2", "2026-11-04T23:59:59-05:00", ""),   # last second of P: counts
        ("p3", "2026-11-05T00:00:00-05:00", ""),   # first instant after P: does not
        ("p4", "", ""),                              # no account
    ]
    d = dashboard_of(tmp_path, profiles=profiles, events=[])
    assert d.total_accounts == 2
    assert d.metrics()["total_accounts"] == 2


# ------------------------------------------------------------------ revenue generated

ORDERS = [  # order_id, profile_id, placed_at, value, signed_in, cancelled_at
    ("o1", "p1", "2026-11-02T12:00:00Z", 100, "true", ""),
    ("o2", "p2", "2026-11-03T12:00:00Z", 40, "true", "2026-11-04T00:00:00Z"),  # cancelled
    ("o3", "p1", "2026-10-25T12:00:00Z", 60, "true", ""),                      # in C
    ("o4", "p3", "2026-11-04T23:30:00-05:00", 10, "true", ""),                 # P's last day
    ("o5", "p3", "2026-11-03T12:00:00Z", 1000, "false", ""),                   # not signed in
]
LINES = [  # order_id, line_id, product_id, product_name, quantity, line_total, added_from_hub
    ("o1", 1, "A", "Alpha", 2, 20, "true"),
    ("o1", 2, "B", "Beta", 1, 30, "false"),
    ("o1", 3, "C", "Gamma", 1, 50, "false"),
    ("o2", 1, "A", "Alpha", 1, 40, "true"),
    ("o3", 1, "A", "Alpha", 1, 15, "true"),
    ("o3", 2, "D", "Delta", 1, 45, ""),          # null: falls back to the window
    ("o4", 1, "E", "", 1, 10, "true"),
    ("o5", 1, "B", "Beta", 3, 1000, "false"),
]
CART_D = [("c1", "p1", "2026-10-24T12:00:00Z", "hub_add_to_cart", "D")]


def test_revenue_counts_only_lines_added_from_the_hub_in_placed_not_cancelled_orders(tmp_path):
    d = dashboard_of(tmp_path, orders=ORDERS, lines=LINES, events=CART_D)
    # P: o1 line A (20) beside lines B and C that were not; o2 cancelled; o4 line E (10)
    # C: o3 line A (15) + line D (45, null flag, carted by p1 a day before) = 60
    assert d.revenue_generated == hub.Change(30.0, 60.0, -50.0)


def test_view_report_lists_the_products_behind_revenue_generated(tmp_path):
    d = dashboard_of(tmp_path, orders=ORDERS, lines=LINES, events=CART_D)
    p = d.products
    assert list(p.columns) == ["product_id", "product", "units", "revenue", "orders"]
    assert p["product_id"].tolist() == ["A", "E"]        # by revenue: 20, then 10
    assert p["product"].tolist() == ["Alpha", "E"]       # no name: the product_id
    assert p["units"].tolist() == [2, 1]
    assert p["revenue"].tolist() == [20.0, 10.0]
    assert p["orders"].tolist() == [1, 1]


def test_window_fallback_without_added_from_hub(tmp_path):
    order = "2026-11-03T12:00:00Z"
    orders = [("o1", "p1", order, 300, "true", ""), ("o2", "p2", order, 5, "true", "")]
    lines = [("o1", 1, "A", "", 1, 10), ("o1", 2, "B", "", 1, 20), ("o1", 3, "C", "", 1, 30),
             ("o1", 4, "D", "", 1, 40), ("o1", 5, "F", "", 1, 50), ("o1", 6, "G", "", 1, 60),
             ("o2", 1, "C", "", 1, 5)]
    cart = "hub_add_to_cart"
    events = [
        ("c1", "p1", "2026-10-27T12:00:00Z", cart, "A"),   # exactly 7 days before: inside
        ("c2", "p1", "2026-10-27T11:59:59Z", cart, "B"),   # 7 days and 1 s before: outside
        ("c3", "p2", "2026-11-02T12:00:00Z", cart, "C"),   # another profile's cart
        ("c4", "p1", "2026-11-02T12:00:00Z", cart, "E"),   # a product not in the order
        ("c5", "p1", "2026-11-03T12:00:01Z", cart, "F"),   # after the order
        ("c6", "p1", "2026-10-01T12:00:00Z", cart, "G"),   # long before...
        ("c7", "p1", "2026-11-03T12:00:00Z", cart, "G"),   # ...and at the order's instant
        ("c8", "p1", "2026-11-02T12:00:00Z", "hub_opened", ""),
    ]
    data = hub_dataset(tmp_path / "m", orders=orders, lines=lines, events=events,
                       lines_header="order_id,line_id,product_id,product_name,quantity,"
                                    "line_total")
    assert not data.has_added_from_hub
    d = hub.customer_hub(data, hub_params(tmp_path / "m"))
    # o1: A (10) and G (60); D was never carted; o2: C (5), carted by its own profile p2
    assert d.revenue_generated.value == 75.0
    assert d.attribution == "attribution window"
    assert sorted(d.products["product_id"]) == ["A", "C", "G"]


def test_attribution_window_days_is_a_parameter(tmp_path):
    orders = [("o1", "p1", "2026-11-03T12:00:00Z", 10, "true", "")]
    lines = [("o1", 1, "A", "", 1, 10, "")]
    events = [("c1", "p1", "2026-11-01T12:00:00Z", "hub_add_to_cart", "A")]  # 2 days before
    one_day = hub_params(tmp_path / "m", hub={"attribution_window_days": 1})
    assert dashboard_of(tmp_path, one_day, orders=orders, lines=lines,
                        events=events).revenue_generated.value == 0.0
    two_days = hub_params(tmp_path / "m", hub={"attribution_window_days": 2})
    assert dashboard_of(tmp_path, two_days, orders=orders, lines=lines,
                        events=events).revenue_generated.value == 10.0


# ------------------------------------------------------------------ average order value

def test_average_order_value_uses_signed_in_not_cancelled_orders_in_the_period(tmp_path):
    d = dashboard_of(tmp_path, orders=ORDERS, lines=LINES, events=CART_D)
    # P: o1 (100) and o4 (10) -> 55; o2 is cancelled, o5 not signed in. C: o3 (60).
    # change 100 * (55 - 60) / 60 = -25 / 3 = -8.333..., unrounded
    c = d.average_order_value
    assert (c.value, c.previous) == (55.0, 60.0)
    assert c.change_pct == pytest.approx(-25 / 3, rel=1e-12)
    assert d.orders == 2 and d.previous_orders == 1
    aov = d.metrics()["average_order_value"]
    assert aov == {"value": 55.0, "previous": 60.0,
                   "change_pct": pytest.approx(-25 / 3, rel=1e-12), "orders": 2}
    per_day = d.aov_series
    assert per_day.loc[pd.Timestamp("2026-11-02"), "orders"] == 1
    assert per_day.loc[pd.Timestamp("2026-11-04"), "average_order_value"] == 10.0
    assert np.isnan(per_day.loc[pd.Timestamp("2026-11-03"), "average_order_value"])


def test_average_order_value_is_null_without_orders(tmp_path):
    d = dashboard_of(tmp_path, events=EDGE_EVENTS)
    assert d.metrics()["average_order_value"] == {"value": None, "previous": None,
                                                  "change_pct": None, "orders": 0}
    card = cards.average_order_value_card(d).html()
    assert "no signed-in orders in this period" in card and "<img" in card


# ------------------------------------------------------------------ comparisons

def test_zero_comparison_has_no_change_pct(tmp_path):
    events = [("s1", "p1", "2026-10-30T12:00:00Z", "help_clicked", ""),
              ("s2", "p1", "2026-10-30T13:00:00Z", "hub_opened", "")]
    m = dashboard_of(tmp_path, events=events).metrics()
    assert m["service_interactions"] == {"value": 1, "previous": 0, "change_pct": None}
    assert m["active_accounts"] == {"value": 1, "previous": 0, "change_pct": None}
    tiles = cards.overview_card(dashboard_of(tmp_path, events=events)).html()
    assert "no comparison (previous value is zero)" in tiles


def test_no_comparison_leaves_previous_null(tmp_path):
    params = hub_params(tmp_path / "m", comparison="none")
    d = dashboard_of(tmp_path, params, orders=ORDERS, lines=LINES, events=EDGE_EVENTS)
    m = d.metrics()
    for name in ("service_interactions", "active_accounts", "revenue_generated"):
        assert m[name]["previous"] is None and m[name]["change_pct"] is None
    assert m["average_order_value"]["previous"] is None
    assert m["service_interactions"]["value"] == 4
    assert "no comparison" in cards.overview_card(d).html()


def test_change_pct_rule():
    assert hub.change_pct(4, 3) == pytest.approx(100 / 3, rel=1e-12)      # 33.333...
    assert hub.change_pct(1, 3) == pytest.approx(-200 / 3, rel=1e-12)     # -66.666...
    assert hub.change_pct(5, 0) is None
    assert hub.change_pct(5, None) is None


def test_change_pct_is_not_rounded():
    # 100 * (2 - 3) / 3 = -33.333...: metrics.json keeps it whole, display rounds it
    pct = hub.change_pct(2, 3)
    assert pct == pytest.approx(-100 / 3, rel=1e-12)
    assert pct != round(pct, 1) and pct != round(pct, 2)
    assert hub.Change.of(2, 3).change_pct == pct


def test_metrics_are_unrounded(tmp_path):
    # AOV of P: signed-in orders of 10.00, 10.00 and 10.01 -> 30.01 / 3 = 10.00333...
    # (rounded to cents it would be 10.0); C: one order of 10.00.
    # Revenue of P: attributed lines 0.10 + 0.20 + 0.015 = 0.315 (not 0.32 nor 0.31);
    # C: one line of 0.07. change 100 * (0.315 - 0.07) / 0.07 = 350.
    orders = [("o1", "p1", "2026-11-02T12:00:00Z", 10, "true", ""),
              ("o2", "p2", "2026-11-02T13:00:00Z", 10, "true", ""),
              ("o3", "p3", "2026-11-03T12:00:00Z", 10.01, "true", ""),
              ("o4", "p1", "2026-10-25T12:00:00Z", 10, "true", "")]
    lines = [("o1", 1, "A", "Alpha", 1, 0.10, "true"),
             ("o1", 2, "B", "Beta", 1, 0.20, "true"),
             ("o2", 1, "A", "Alpha", 1, 0.015, "true"),
             ("o4", 1, "A", "Alpha", 1, 0.07, "true")]
    d = dashboard_of(tmp_path, orders=orders, lines=lines, events=[])
    m = d.metrics()
    aov = m["average_order_value"]
    assert aov["value"] == pytest.approx(30.01 / 3, rel=1e-12)
    assert aov["value"] != round(aov["value"], 2)
    assert aov["previous"] == 10.0
    assert aov["change_pct"] == pytest.approx(100 * (30.01 / 3 - 10) / 10, rel=1e-9)
    rev = m["revenue_generated"]
    assert rev["value"] == pytest.approx(0.315, abs=1e-12)
    assert rev["previous"] == pytest.approx(0.07, abs=1e-12)
    assert rev["change_pct"] == pytest.approx(350.0, rel=1e-9)
    # the View report's revenue per product is unrounded too: A = 0.10 + 0.015, B = 0.20
    p = d.products.set_index("product_id")["revenue"]
    assert p["A"] == pytest.approx(0.115, abs=1e-12) and p["B"] == pytest.approx(0.20)
    assert d.products["product_id"].tolist() == ["B", "A"]


def test_customer_hub_is_deterministic(tmp_path):
    data = hub_dataset(tmp_path / "m", orders=ORDERS, lines=LINES, events=EDGE_EVENTS + CART_D)
    params = hub_params(tmp_path / "m")
    first = hub.customer_hub(data, params).metrics()
    second = hub.customer_hub(data, params).metrics()
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert json.dumps(first) == json.dumps(second)       # same key order too


def test_metrics_have_specs_shape(tmp_path):
    m = dashboard_of(tmp_path, orders=ORDERS, lines=LINES, events=EDGE_EVENTS).metrics()
    assert set(m) == {"total_accounts", "service_interactions", "active_accounts",
                      "revenue_generated", "average_order_value", "service_breakdown"}
    for name in ("service_interactions", "active_accounts", "revenue_generated"):
        assert set(m[name]) == {"value", "previous", "change_pct"}
    assert set(m["average_order_value"]) == {"value", "previous", "change_pct", "orders"}
    assert list(m["service_breakdown"]) == list(hub.SERVICE_TYPES)
    assert isinstance(m["total_accounts"], int)
    assert isinstance(m["service_interactions"]["value"], int)
    assert isinstance(m["revenue_generated"]["value"], float)


# ------------------------------------------------------------------ hub live state

def test_notices_name_the_days_the_hub_was_not_live(tmp_path):
    params = hub_params(tmp_path / "m", hub={
        "launched_on": "2026-10-24", "paused": [{"start": "2026-10-30", "end": "2026-10-31"}]})
    d = dashboard_of(tmp_path, params, events=EDGE_EVENTS)
    spans = [(sp.start, sp.end, sp.reason, sp.in_period) for sp in d.live.offline]
    assert spans == [
        (dt.date(2026, 10, 22), dt.date(2026, 10, 23), "before launch", "comparison period"),
        (dt.date(2026, 10, 30), dt.date(2026, 10, 31), "paused", "period")]
    assert d.has_data and d.live.comparison_live
    card = cards.live_card(d).html()
    assert ("Customer Hub was not live on Oct 22\u2009–\u200923, 2026 (before its launch on Oct 24, "
            "2026, in the comparison period)") in card
    assert "Customer Hub was not live on Oct 30\u2009–\u200931, 2026 (paused)" in card


def test_no_hub_data_report_shows_no_zero_tiles(tmp_path):
    profiles = [("p1", "", ""), ("p2", "", "")]
    d = dashboard_of(tmp_path, profiles=profiles, orders=ORDERS[:1], lines=LINES[:1])
    assert not d.has_data
    m = d.metrics()
    for name in ("service_interactions", "active_accounts", "revenue_generated"):
        assert m[name] == {"value": None, "previous": None, "change_pct": None}
    assert set(m["service_breakdown"].values()) == {None}
    tiles = cards.overview_card(d).html()
    assert "Service interactions" not in tiles and "no customer hub data" in tiles.lower()
    assert "Customer Hub has no data yet" in cards.live_card(d).html()
    assert "no customer hub data" in cards.service_interactions_card(d).html().lower()
    assert "no customer hub data" in cards.products_card(d).html().lower()


def test_hub_launched_after_the_period_has_no_data_yet(tmp_path):
    params = hub_params(tmp_path / "m", hub={"launched_on": "2026-12-01"})
    d = dashboard_of(tmp_path, params, events=EDGE_EVENTS)
    assert not d.has_data
    assert d.live.no_data_reason == "launched_after_period"
    assert "launched on Dec 1, 2026, after this period ends (Nov 4, 2026)" in \
        cards.live_card(d).html()
    assert d.metrics()["active_accounts"]["value"] is None


def test_comparison_before_launch_is_no_comparison(tmp_path):
    params = hub_params(tmp_path / "m", hub={"launched_on": "2026-10-29"})
    d = dashboard_of(tmp_path, params, events=EDGE_EVENTS)
    assert d.has_data and not d.live.comparison_live
    assert d.service_interactions == hub.Change(4, None, None)
    assert "not live in the comparison period" in cards.overview_card(d).html()


# ------------------------------------------------------------------ re-engagement

def test_reengagement_list_holds_accounts_inactive_for_longer_than_the_limit(tmp_path):
    profiles = [("p1", "2026-01-01T00:00:00Z", "p1@example.com"),
                ("p2", "2026-01-01T00:00:00Z", "p2@example.com"),
                ("p3", "2026-01-01T00:00:00Z", "p3@example.com"),
                ("p4", "2026-11-05T00:00:00-05:00", "p4@example.com"),  # after as_of
                ("p5", "", "p5@example.com")]                            # no account
    events = [("r1", "p1", "2026-10-05T12:00:00-04:00", "hub_opened", ""),  # 30 days: active
              ("r2", "p2", "2026-09-01T12:00:00Z", "hub_opened", ""),
              ("r3", "p2", "2026-10-04T23:59:00-04:00", "hub_opened", ""),  # 31 days
              ("r4", "p3", "2026-11-01T12:00:00Z", "order_tracked", "")]    # never opened
    d = dashboard_of(tmp_path, profiles=profiles, events=events)
    r = d.reengage
    assert list(r.columns) == ["profile_id", "email", "account_created_at",
                               "last_hub_opened_at", "days_since_last_open"]
    assert r["profile_id"].tolist() == ["p3", "p2"]                     # never first
    assert r["days_since_last_open"].isna().tolist() == [True, False]
    assert r["days_since_last_open"].iloc[1] == 31
    assert r["last_hub_opened_at"].iloc[1] == pd.Timestamp("2026-10-05T03:59:00Z")


def test_falling_engagement_offers_the_reengagement_list(tmp_path):
    events = [("f1", "p1", "2026-10-25T12:00:00Z", "hub_opened", ""),
              ("f2", "p2", "2026-10-25T12:00:00Z", "hub_opened", ""),
              ("f3", "p1", "2026-10-30T12:00:00Z", "hub_opened", "")]
    d = dashboard_of(tmp_path, events=events)
    assert d.active_accounts == hub.Change(1, 2, -50.0)
    assert d.stagnant == ("active_accounts",)
    card = cards.reengage_card(d, Path("/out/reengage.csv")).html()
    assert "Active accounts fell 50.0% (2 → 1)" in card and "reengage.csv" in card
    # p3 (never opened) is listed; p1 and p2 opened within 30 days of Nov 4
    assert d.reengage["profile_id"].tolist() == ["p3"]
    quiet = cards.reengage_card(dashboard_of(tmp_path, events=EDGE_EVENTS)).html()
    assert "did not fall" in quiet


# ------------------------------------------------------------------ figures

def test_cards_have_figures_with_titles_and_the_tile_in_money(tmp_path):
    d = dashboard_of(tmp_path, orders=ORDERS, lines=LINES, events=EDGE_EVENTS)
    service = cards.service_interactions_card(d).html()
    assert 'alt="Service interactions: 4 in Oct 29\u2009–\u2009Nov 4, 2026"' in service
    aov = cards.average_order_value_card(d).html()
    assert "$55.00" in aov and 'alt="Average order value of signed-in checkouts, per day"' in aov
    assert "Alpha" in cards.products_card(d).html()


def test_figures_draw_their_data_with_titles_and_labelled_axes(tmp_path):
    d = dashboard_of(tmp_path, orders=ORDERS, lines=LINES, events=EDGE_EVENTS)
    fig = hub_figures.service_interactions_chart(
        {t: d.service_breakdown[t] for t in hub.SERVICE_TYPES}, cards.SERVICE_LABELS,
        d.service_series, "day", "Day (local time)", "Service interactions: 4")
    by_type, over_time = fig.axes
    assert over_time.get_ylabel() == "Interactions per day" and by_type.get_xlabel()
    assert fig._suptitle.get_text() == "Service interactions: 4"
    # one bar per type, as long as its count
    widths = sorted(p.get_width() for p in by_type.patches)
    assert widths == sorted(d.service_breakdown[t] for t in hub.SERVICE_TYPES)
    aov = hub_figures.average_order_value_chart(d.aov_series, 55.0, "USD", "day", "Day",
                                                "AOV")
    assert aov.axes[0].get_ylabel() == "Average order value (USD)"
    assert aov.axes[1].get_ylabel() == "Signed-in orders per day"
    assert aov.axes[0].get_title() == "AOV"
    # drawn on a given axis, the figure is that axis's figure
    from matplotlib.figure import Figure
    ax = Figure().subplots()
    assert hub_figures.average_order_value_chart(d.aov_series, None, "USD", "day", "Day",
                                                 "AOV", ax=ax) is ax.figure


def test_periods_over_90_days_are_graphed_per_week(tmp_path):
    params = hub_params(tmp_path / "m", period="last_365_days")
    d = dashboard_of(tmp_path, params, orders=ORDERS, lines=LINES, events=EDGE_EVENTS)
    # 365 days: a first week of 1 day (Nov 5, 2025), then 52 whole weeks to Nov 4, 2026
    assert d.buckets.unit == "week" and len(d.buckets.starts) == 53
    assert d.buckets.starts[:2] == (dt.date(2025, 11, 5), dt.date(2025, 11, 6))
    assert d.buckets.days[0] == 1 and set(d.buckets.days[1:]) == {7}
    assert d.buckets.starts[-1] == dt.date(2026, 10, 29)
    assert int(d.service_series.to_numpy().sum()) == d.service_interactions.value
    assert "weeks end on the period" in cards.service_interactions_card(d).html()
    assert cards._x_label(d) == "Week starting (the first week has 1 day)"
    ninety = hub.period_buckets(hub_params(tmp_path / "m", period="last_90_days").period)
    assert ninety.unit == "day" and len(ninety.starts) == 90


# ------------------------------------------------------------------ properties

P_START = pd.Timestamp("2026-10-22T04:00:00Z")   # C's first instant
SPAN_S = 20 * 86_400                               # C, P and a few days after


@st.composite
def hub_tables(draw):
    n_profiles = draw(st.integers(1, 6))
    n_events = draw(st.integers(0, 40))
    n_orders = draw(st.integers(0, 10))
    seconds = st.integers(-86_400 * 8, SPAN_S)
    ev = pd.DataFrame({
        "event_id": np.arange(n_events, dtype=np.int64),
        "profile_id": draw(st.lists(st.integers(1, n_profiles), min_size=n_events,
                                    max_size=n_events)),
        "occurred_at": P_START + pd.to_timedelta(
            draw(st.lists(seconds, min_size=n_events, max_size=n_events)), unit="s"),
        "event_type": draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=n_events,
                                    max_size=n_events)),
        "product_id": draw(st.lists(st.integers(1, 3), min_size=n_events, max_size=n_events)),
    })
    lines = []
    orders = []
    for i in range(n_orders):
        k = draw(st.integers(1, 3))
        totals = draw(st.lists(st.integers(0, 100), min_size=k, max_size=k))
        flags = draw(st.lists(st.sampled_from([True, False, None]), min_size=k, max_size=k))
        for j in range(k):
            lines.append((i, j, draw(st.integers(1, 3)), 1, float(totals[j]), flags[j]))
        orders.append((i, draw(st.integers(1, n_profiles)),
                       P_START + pd.Timedelta(seconds=draw(seconds)),
                       float(sum(totals) + draw(st.integers(0, 20))), draw(st.booleans()),
                       draw(st.booleans())))
    with_flag = draw(st.booleans())
    return n_profiles, ev, orders, lines, with_flag


def _property_dataset(n_profiles, ev, orders, lines, with_flag) -> Dataset:
    utc = "datetime64[us, UTC]"
    tables = {name: pd.DataFrame({c.name: [] for c in t.columns}) for name, t in TABLES.items()}
    tables["profiles"] = pd.DataFrame({
        "profile_id": np.arange(1, n_profiles + 1, dtype=np.int64),
        "created_at": pd.Series([pd.NaT] * n_profiles, dtype=utc),
        "account_created_at": pd.Series([pd.Timestamp("2026-01-01", tz="UTC")] * n_profiles,
                                        dtype=utc),
        "email": pd.Series(["x@example.com"] * n_profiles, dtype="string")})
    ev = ev.assign(occurred_at=ev["occurred_at"].astype(utc),
                   event_type=ev["event_type"].astype("string"),
                   product_id=ev["product_id"].astype("Int64"))
    tables["hub_events"] = ev
    o = pd.DataFrame(orders, columns=["order_id", "profile_id", "placed_at", "value",
                                      "signed_in", "cancelled"])
    tables["orders"] = pd.DataFrame({
        "order_id": o["order_id"].astype(np.int64), "profile_id": o["profile_id"].astype(np.int64),
        "placed_at": o["placed_at"].astype(utc), "value": o["value"].astype(float),
        "signed_in": o["signed_in"].astype(bool),
        "cancelled_at": o["placed_at"].where(o["cancelled"].astype(bool)).astype(utc)})
    lines = pd.DataFrame(lines, columns=["order_id", "line_id", "product_id", "quantity",
                                         "line_total", "added_from_hub"])
    tables["order_lines"] = lines.assign(
        order_id=lines["order_id"].astype(np.int64), product_id=lines["product_id"].astype(np.int64),
        quantity=lines["quantity"].astype(np.int64), product_name=pd.Series(
            [None] * len(lines), dtype="string"),
        added_from_hub=lines["added_from_hub"].astype("boolean"))
    cols = set(tables["order_lines"].columns) - ({"added_from_hub"} if not with_flag else set())
    return Dataset(path=Path("."), tables=tables, quality=pd.DataFrame(),
                   columns_present={"order_lines": cols})


def _reference_revenue(data: Dataset, period, window_days: int) -> float:
    """Line-by-line reading of the attribution rule, as a check on the vectorised one."""
    total = 0.0
    orders = data.orders.set_index("order_id")
    ev = data.hub_events
    carts = ev[ev["event_type"] == "hub_add_to_cart"]
    for line in data.order_lines.itertuples():
        order = orders.loc[line.order_id]
        if not period.contains(pd.Series([order.placed_at])).iloc[0]:
            continue
        if pd.notna(order.cancelled_at):
            continue
        flag = line.added_from_hub if data.has_added_from_hub else pd.NA
        if pd.isna(flag):
            gap = order.placed_at - carts["occurred_at"]
            flag = bool(((carts["profile_id"] == order.profile_id)
                         & (carts["product_id"] == line.product_id)
                         & (gap >= pd.Timedelta(0))
                         & (gap <= pd.Timedelta(days=window_days))).any())
        if flag:
            total += line.line_total
    return total


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hub_tables())
def test_property_dashboard_invariants(tables):
    data = _property_dataset(*tables)
    params = hub_params(Path("."))
    d = hub.customer_hub(data, params)
    # the breakdown sums to service_interactions, per day too
    assert sum(d.service_breakdown.values()) == d.service_interactions.value
    assert int(d.service_series.to_numpy().sum()) == d.service_interactions.value
    # revenue generated never exceeds the revenue of the non-cancelled orders in P
    o = data.orders
    in_p = params.period.contains(o["placed_at"]) & o["cancelled_at"].isna()
    assert d.revenue_generated.value <= o.loc[in_p, "value"].sum() + 1e-9
    # ... and equals the rule read line by line
    assert d.revenue_generated.value == pytest.approx(
        _reference_revenue(data, params.period, 7), rel=1e-12, abs=1e-9)
    # active accounts never exceed the distinct profiles with events in P
    ev = data.hub_events
    with_events = ev.loc[params.period.contains(ev["occurred_at"]), "profile_id"].nunique()
    assert d.active_accounts.value <= with_events

