import datetime as dt
import textwrap

import pytest

from hubnb.errors import ParamsError
from hubnb.params import load_params, parse_params

BASE = {"merchant": "acme", "data": "data", "timezone": "Europe/Paris", "as_of": "2026-11-22"}


def params(**kw):
    return parse_params({**BASE, **kw})


def test_demo_params_file_loads_with_its_documented_values():
    p = load_params("params/demo.yaml")
    assert p.merchant == "demo" and p.currency == "USD"
    assert p.period.start == dt.date(2026, 10, 24) and p.period.end == dt.date(2026, 11, 22)
    assert p.hub.launched_on == dt.date(2025, 3, 1)
    assert p.data.name == "demo" and p.data.parent.name == "data"  # relative to the file
    assert [s.name for s in p.segments] == ["VIP", "Likely to buy soon"]
    assert p.segments[1].attributes == ("predicted_orders", "churn_probability")


def test_defaults_fill_what_is_left_out():
    p = params()
    assert p.currency == "USD" and p.period.days == 30 and p.comparison.days == 30
    assert p.clv.horizon_days == 365 and p.clv.orders.exclude_zero_value is True
    assert p.hub.attribution_window_days == 7


def test_as_of_defaults_to_today_in_the_timezone():
    raw = {k: v for k, v in BASE.items() if k != "as_of"}
    from zoneinfo import ZoneInfo
    assert parse_params(raw).as_of == dt.datetime.now(ZoneInfo("Europe/Paris")).date()


@pytest.mark.parametrize("override, key", [
    ({"colour": "red"}, "colour"),
    ({"period": "last_week"}, "period"),
    ({"period": {"start": "2026-10-31", "end": "2026-10-01"}}, "period"),
    ({"comparison": "last_year"}, "comparison"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"merchant": "Acme Store"}, "merchant"),
    ({"currency": "dollars"}, "currency"),
    ({"currency": "QQQ"}, "currency"),
    ({"as_of": "22/11/2026"}, "as_of"),
    ({"hub": {"launched": "2025-03-01"}}, "hub.launched"),
    ({"hub": {"paused": [{"start": "2026-01-02"}]}}, "hub.paused[0]"),
    ({"clv": {"model": "bg"}}, "clv.model"),
    ({"clv": {"draws": -5}}, "clv.draws"),
    ({"clv": {"credible_interval": 1.5}}, "clv.credible_interval"),
    ({"clv": {"orders": {"exclude_refunds": True}}}, "clv.orders.exclude_refunds"),
    ({"clv": {"orders": {"exclude_pos": "yes"}}}, "clv.orders.exclude_pos"),
    ({"segments": [{"name": "All", "where": "1 > 0"}]}, "segments[0].where"),
    ({"segments": [{"name": "Odd", "where": "lifetime >= 3"}]}, "segments[0].where"),
    ({"segments": [{"name": "Bad", "where": "historical_clv >="}]}, "segments[0].where"),
    ({"segments": [{"name": "Hack", "where": "__import__('os')"}]}, "segments[0].where"),
])
def test_a_wrong_params_value_names_its_key(override, key):
    with pytest.raises(ParamsError) as err:
        params(**override)
    assert err.value.key.startswith(key)
    assert key in str(err.value)


def test_segment_without_attribute_names_the_segment():
    with pytest.raises(ParamsError, match=r"segments\[0\]\.where \(All\).*names no CLV attribute"):
        params(segments=[{"name": "All", "where": "1 > 0"}])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("merchant: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_custom_period_and_comparison_from_yaml(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text(textwrap.dedent("""\
        merchant: m
        data: ./d
        timezone: America/New_York
        as_of: 2026-11-22
        period: {start: 2026-10-01, end: 2026-10-31}
        comparison: previous_year
        """))
    p = load_params(f)
    assert (p.period.start, p.period.end) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert (p.comparison.start, p.comparison.end) == (dt.date(2025, 10, 1), dt.date(2025, 10, 31))
    assert p.data == (tmp_path / "d").resolve()


def test_currency_must_be_an_iso_4217_code():
    with pytest.raises(ParamsError) as err:
        params(currency="QQQ")
    assert err.value.key == "currency"
    assert str(err.value) == ("bad params: currency: 'QQQ' is not an ISO 4217 currency code "
                              "(e.g. USD, EUR, GBP, KRW)")
    for code in ("USD", "EUR", "GBP", "JPY", "KRW", "CHF"):
        assert params(currency=code).currency == code


def test_clv_pooling_is_auto_or_off():
    assert params().clv.pooling == "auto"
    for value, expected in (("auto", "auto"), ("off", "off"), (False, "off")):
        # (False: YAML reads a bare `off` as false)
        assert params(clv={"pooling": value}).clv.pooling == expected
    for bad in ("always", True, 1, ["auto"]):
        with pytest.raises(ParamsError, match="clv.pooling"):
            params(clv={"pooling": bad})
