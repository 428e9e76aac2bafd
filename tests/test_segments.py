"""Segments over the CLV attributes and the marketing assets that use them."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from hubnb.errors import ParamsError
from hubnb.params import Segment, parse_params
from hubnb.segments import (assets_using_segments, attribute_column, evaluate_segments,
                            segment_file_name, segment_mask)


def seg(name, where):
    """A Segment validated the way the params file validates it."""
    params = parse_params({"merchant": "t", "timezone": "UTC", "data": ".",
                           "as_of": "2026-11-22", "segments": [{"name": name, "where": where}]})
    return params.segments[0]


@pytest.fixture
def profiles():
    return pd.DataFrame({
        "profile_id": [1, 2, 3, 4, 5],
        "email": ["a@x.com", "b@x.com", "c@x.com", "d@x.com", None],
        "historical_orders": [5, 1, 2, 3, 1],
        "historical_clv": [900.0, 40.0, 510.0, 500.0, 499.99],
        "avg_days_between_orders": [20.0, np.nan, 45.0, 30.0, np.nan],
        "predicted_orders_mean": [2.5, 0.2, 1.0, 0.9, 1.4],
        "predicted_orders_lower": [1.0, 0.0, 0.2, 0.5, 0.6],
        "predicted_orders_upper": [4.0, 0.6, 2.0, 1.5, 2.0],
        "churn_probability_mean": [0.05, 0.8, 0.29, 0.1, 0.3],
        "predicted_clv_mean": [400.0, 5.0, 90.0, 80.0, 60.0],
        "p_order_30d_mean": [0.7, 0.05, 0.5, 0.49, 0.9],
        "predicted_orders_pred_upper": [6.0, 1.0, 3.0, 2.0, 4.0],
    })


def test_bare_interval_attribute_means_its_mean_column():
    assert attribute_column("predicted_orders") == "predicted_orders_mean"
    assert attribute_column("churn_probability_upper") == "churn_probability_upper"
    assert attribute_column("historical_clv") == "historical_clv"


def test_spec_example_segments_pick_the_profiles_meeting_their_condition(profiles):
    vip = segment_mask(profiles, seg("VIP", "historical_clv >= 500"))
    # 900, 510 and exactly 500 qualify; 499.99 does not.
    assert profiles.loc[vip, "profile_id"].tolist() == [1, 3, 4]
    soon = segment_mask(profiles, seg("Soon", "predicted_orders >= 1 and churn_probability < 0.3"))
    # 1: 2.5 & 0.05; 3: 1.0 & 0.29; 5 has 1.4 orders but churn 0.3 (not < 0.3).
    assert profiles.loc[soon, "profile_id"].tolist() == [1, 3]


def test_p_order_30d_is_a_segment_attribute(profiles):
    mask = segment_mask(profiles, seg("Due", "p_order_30d >= 0.5 and churn_probability < 0.3"))
    # 1: 0.7 & 0.05; 3: exactly 0.5 & 0.29; 4 has 0.49; 5 has 0.9 but churn 0.3.
    assert profiles.loc[mask, "profile_id"].tolist() == [1, 3]
    upside = segment_mask(profiles, seg("Upside", "predicted_orders_pred_upper >= 4"))
    assert profiles.loc[upside, "profile_id"].tolist() == [1, 5]


def test_interval_bound_suffix_uses_that_bound(profiles):
    mask = segment_mask(profiles, seg("Sure", "predicted_orders_lower >= 0.6"))
    assert profiles.loc[mask, "profile_id"].tolist() == [1, 5]


def test_a_missing_value_fails_its_comparison(profiles):
    mask = segment_mask(profiles, seg("Regular", "avg_days_between_orders < 100"))
    assert profiles.loc[mask, "profile_id"].tolist() == [1, 3, 4]


def test_or_and_chained_comparisons(profiles):
    mask = segment_mask(profiles, seg("Mid", "100 < historical_clv <= 510 or predicted_orders > 2"))
    assert profiles.loc[mask, "profile_id"].tolist() == [1, 3, 4, 5]


@pytest.mark.parametrize("where", ["1 > 0", "True", "foo >= 3",
                                   "historical_clv.__class__ > 0", "__import__('os')"])
def test_a_condition_naming_no_attribute_is_a_params_error(profiles, where):
    with pytest.raises(ParamsError) as err:
        segment_mask(profiles, Segment("Bad", where, ()))
    assert "Bad" in str(err.value)
    with pytest.raises(ParamsError, match=r"segments\[0\]\.where"):
        seg("Bad", where)


def test_summary_sorted_by_profile_count_with_files_and_members(profiles):
    segments = (seg("VIP", "historical_clv >= 500"),
                seg("Likely to buy soon", "predicted_orders >= 1 and churn_probability < 0.3"),
                seg("Everyone", "historical_orders >= 1"))
    result = evaluate_segments(profiles, segments, last_updated="2026-11-22")
    s = result.summary
    assert s["segment"].tolist() == ["Everyone", "VIP", "Likely to buy soon"]
    assert s["profiles"].tolist() == [5, 3, 2]
    assert s["file"].tolist() == ["segments/everyone.csv", "segments/vip.csv",
                                  "segments/likely_to_buy_soon.csv"]
    assert s.loc[2, "clv_attributes"] == "predicted_orders, churn_probability"
    assert (s["last_updated"] == "2026-11-22").all()
    soon = result.members["Likely to buy soon"]
    assert soon.columns.tolist() == ["profile_id", "email", "predicted_orders_mean",
                                     "churn_probability_mean"]
    assert soon["profile_id"].tolist() == [1, 3]
    assert set(result.files()) == {"segments/everyone.csv", "segments/vip.csv",
                                   "segments/likely_to_buy_soon.csv"}


def test_not_eligible_predicted_segment_is_empty_with_a_note(profiles):
    historical_only = profiles.assign(predicted_orders_mean=np.nan, churn_probability_mean=np.nan,
                                      predicted_clv_mean=np.nan)
    segments = (seg("VIP", "historical_clv >= 500"),
                seg("Soon", "predicted_orders >= 1 or historical_clv > 0"))
    result = evaluate_segments(historical_only, segments, dt.date(2026, 11, 22))
    s = result.summary.set_index("segment")
    assert s.loc["VIP", "profiles"] == 3 and s.loc["VIP", "note"] == ""
    assert s.loc["Soon", "profiles"] == 0
    assert "not fitted" in s.loc["Soon", "note"]


@pytest.mark.parametrize("name, expected", [
    ("Likely to buy soon", "segments/likely_to_buy_soon.csv"),
    ("VIP", "segments/vip.csv"),
    ("  High value / at-risk!! ", "segments/high_value_at_risk.csv"),
    ("Café Ölé", "segments/caf_l.csv"),
    ("???", "segments/segment.csv"),
])
def test_segment_file_names_are_safe_slugs(name, expected):
    assert segment_file_name(name) == expected


def test_segment_file_names_do_not_collide():
    taken = set()
    assert [segment_file_name(n, taken) for n in ("VIP", "vip", "V.I.P")] == [
        "segments/vip.csv", "segments/vip_2.csv", "segments/v_i_p.csv"]


def assets_frame():
    ts = lambda s: pd.Timestamp(s)  # noqa: E731
    return pd.DataFrame({
        "asset_type": ["campaign", "campaign", "flow", "form", "campaign", "flow"],
        "asset_id": ["c1", "c2", "f1", "x1", "c3", "f2"],
        "name": ["Black Friday VIP", "Newsletter", "Winback", "Popup", "Soon push", "Welcome"],
        "status": ["scheduled", "sent", "live", "live", "draft", "live"],
        "channels": ["email", "email", "email;sms", "email", "sms", "email"],
        "audiences": ["Newsletter; vip ", "Newsletter", "Likely to buy soon;Lapsed",
                      "VIP", "likely TO BUY soon;VIP", None],
        "form_type": [None, None, None, "popup", None, None],
        # 03:00 UTC on Nov 20 is still Nov 19 in New York.
        "scheduled_at": [ts("2026-11-20T03:00:00Z"), pd.NaT, pd.NaT, pd.NaT, pd.NaT, pd.NaT],
        "updated_at": [ts("2026-11-01T12:00:00Z"), ts("2026-11-02T12:00:00Z"),
                       ts("2026-10-01T12:00:00Z"), ts("2026-09-15T12:00:00Z"),
                       ts("2026-11-21T12:00:00Z"), ts("2026-01-01T12:00:00Z")],
    })


def test_assets_whose_audiences_include_a_clv_segment():
    found = assets_using_segments(assets_frame(), ["VIP", "Likely to buy soon"],
                                  timezone="America/New_York")
    campaigns = found.tables["campaign"]
    # Latest first: c3 (updated Nov 21) then c1 (scheduled Nov 19 local); c2 uses no segment.
    assert campaigns["asset_id"].tolist() == ["c3", "c1"]
    assert campaigns["clv_segments"].tolist() == ["Likely to buy soon; VIP", "VIP"]
    assert campaigns["date"].tolist() == [dt.date(2026, 11, 21), dt.date(2026, 11, 19)]
    assert campaigns["status"].tolist() == ["draft", "scheduled"]
    assert found.tables["flow"][["asset_id", "channels"]].values.tolist() == [["f1", "email;sms"]]
    forms = found.tables["form"]
    assert forms[["asset_id", "type"]].values.tolist() == [["x1", "popup"]]
    assert found.reasons == {}


def test_empty_asset_tables_say_why():
    frame = assets_frame()
    absent = assets_using_segments(frame.iloc[0:0], ["VIP"], table_present=False)
    assert set(absent.reasons.values()) == {"no marketing_assets table in the dataset"}
    assert all(t.empty for t in absent.tables.values())
    unused = assets_using_segments(frame.astype({"audiences": "string"}), ["Big spenders"])
    assert unused.reasons["campaign"] == ("no campaign's audience includes a CLV segment "
                                          "(Big spenders)")
    no_forms = assets_using_segments(frame[frame["asset_type"] != "form"], ["VIP"])
    assert no_forms.reasons["form"] == "the marketing_assets table has no forms"
    no_segments = assets_using_segments(frame, [])
    assert no_segments.reasons["flow"] == "the params file defines no CLV segment"
