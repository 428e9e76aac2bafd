"""hubnb.format: every displayed number, amount and date, checked against worked examples."""

import datetime as dt
import math

import pandas as pd
import pytest

from hubnb import format as fmt


@pytest.mark.parametrize("value, currency, decimals, expected", [
    (1234.5, "USD", None, "$1,234.50"),          # the currency's own 2 decimals
    (-1234.5, "EUR", None, "-€1,234.50"),
    (1234.5, "KRW", None, "₩1,234"),             # KRW has no minor unit: half to even
    (1235.5, "KRW", None, "₩1,236"),
    (1234.5, "JPY", None, "¥1,234"),             # 1234.5 -> 1234 (half to even)
    (851739.1, "EUR", 0, "€851,739"),            # forced whole amounts (totals, axes)
    (0.005, "USD", 2, "$0.00"),                  # half-even: 0.005 -> 0.00
])
def test_money_in_the_merchants_currency(value, currency, decimals, expected):
    assert fmt.money(value, currency, decimals) == expected


def test_missing_values_read_as_a_dash():
    for value in (None, float("nan"), pd.NaT, pd.NA):
        assert fmt.money(value, "USD") == fmt.DASH
        assert fmt.share(value) == fmt.DASH
        assert fmt.day(value) == fmt.DASH
    assert fmt.number(math.nan, 2) == "—"


def test_numbers_shares_and_changes():
    assert fmt.count(1234567) == "1,234,567"
    assert fmt.number(1234.5678, 2) == "1,234.57"
    assert fmt.number(2.5, 0) == "2"              # half to even, as Babel (CLDR) rounds
    assert fmt.share(0.1234) == "12.3%"
    assert fmt.share(0.5, 0) == "50%"
    assert fmt.change(12.84) == "+12.8%"
    assert fmt.change(-100 / 3) == "-33.3%"      # -33.333...% unrounded in metrics.json
    assert fmt.change(0.0) == "0.0%"
    assert fmt.significant(0.243149) == "0.2431"
    assert fmt.significant(6183.2) == "6,183"


def test_one_date_style_and_period_labels():
    assert fmt.day(dt.date(2026, 10, 5)) == "Oct 5, 2026"
    assert fmt.day(pd.Timestamp("2027-03-01 13:00")) == "Mar 1, 2027"
    assert fmt.day("2026-11-22") == "Nov 22, 2026"
    thin = "\u2009–\u2009"
    assert fmt.date_range(dt.date(2026, 10, 5), dt.date(2026, 10, 5)) == "Oct 5, 2026"
    assert fmt.date_range(dt.date(2026, 10, 5), dt.date(2026, 10, 7)) == f"Oct 5{thin}7, 2026"
    assert fmt.date_range(dt.date(2026, 9, 28), dt.date(2026, 10, 2)) == f"Sep 28{thin}Oct 2, 2026"
    assert (fmt.date_range(dt.date(2025, 12, 30), dt.date(2026, 1, 2))
            == f"Dec 30, 2025{thin}Jan 2, 2026")
    # 30 days: Oct 24 to Nov 22 inclusive
    assert fmt.period(dt.date(2026, 10, 24), dt.date(2026, 11, 22)) == \
        f"Oct 24{thin}Nov 22, 2026 (30 days)"
    assert fmt.period(dt.date(2026, 10, 24), dt.date(2026, 10, 24)) == "Oct 24, 2026 (1 day)"
