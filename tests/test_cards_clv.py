"""The CLV dashboard's cards and analytics, on hand-made engine results (no MCMC)."""

import datetime as dt
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import pytest

from hubnb.cards import clv as cards
from hubnb.clv import dashboard
from hubnb.params import parse_params

AS_OF = dt.date(2026, 11, 22)


# --------------------------------------------------------------------------- fakes

@dataclass
class FakeFit:
    idata: object
    diagnostics: dict
    params_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    model_name: str = "mbg_nbd"


@dataclass
class FakeBacktest:
    summary: dict
    by_past_orders: pd.DataFrame
    cumulative: pd.DataFrame
    coverage: float


@dataclass
class FakeResult:
    eligible: bool
    reasons: list
    profiles: pd.DataFrame
    metrics: dict
    orders: pd.DataFrame
    fit: FakeFit | None = None
    backtest: FakeBacktest | None = None
    selection: object = None
    backtests: dict | None = None


class FakeData:
    def __init__(self, predictions=None, marketing_assets=None):
        self.predictions = predictions if predictions is not None else pd.DataFrame(
            columns=["profile_id", "predicted_clv"])
        self.marketing_assets = marketing_assets if marketing_assets is not None else pd.DataFrame(
            columns=["asset_type", "asset_id", "name", "status", "channels", "audiences",
                     "form_type", "scheduled_at", "updated_at"])
        self.present = {"predictions": predictions is not None,
                        "marketing_assets": marketing_assets is not None}


class FakeReport:
    def __init__(self, data=None, **clv):
        self.params = parse_params({
            "merchant": "t", "timezone": "America/New_York", "data": ".", "currency": "USD",
            "as_of": AS_OF.isoformat(), "clv": {"draws": 100, **clv},
            "segments": [{"name": "VIP", "where": "historical_clv >= 500"},
                         {"name": "Likely to buy soon",
                          "where": "predicted_orders >= 1 and churn_probability < 0.3"}]})
        self.data = data or FakeData()
        self.written = {}
        self.output_dir = "out"

    def write_csv(self, name, frame):
        self.written[name] = frame
        return name


def days_ago(n):
    return pd.Timestamp(AS_OF) - pd.Timedelta(days=n)


def example_frame():
    """Profiles for the five rules; each comment works out the expected pick.

    (id, orders, days since last order, predicted_clv_mean)
    """
    rows = [
        # Rule 1 (3+ orders, <= 90 days): 10, 11 (exactly 90 days), 13 -> {100, 300, 250},
        # median 250 -> 13. 12 (91 days) is out; were it in, the median 225 would tie 12
        # and 13 and pick 12.
        (10, 3, 21, 100.0), (11, 5, 90, 300.0), (12, 4, 91, 200.0), (13, 3, 52, 250.0),
        # Rule 2 (2 orders, <= 90): 20, 21 -> median 60, both 10 away: tie -> smaller id 20.
        # 22 (120 days) is out; were it in, the median 70 would pick 21.
        (20, 2, 10, 50.0), (21, 2, 3, 70.0), (22, 2, 120, 1000.0),
        # Rule 3 (1 order, <= 60): 30 (exactly 60), 31, 32 -> {40, 10, 35}, median 35 -> 32.
        (30, 1, 60, 40.0), (31, 1, 5, 10.0), (32, 1, 30, 35.0),
        # Rule 4 (3+ orders, > 180): 40, 42 -> {5, 1}, median 3, tie -> 40. 41 (exactly 180
        # days) is out; were it in, {5, 0.5, 1} has median 1 -> 42.
        (40, 3, 181, 5.0), (41, 6, 180, 0.5), (42, 3, 400, 1.0),
        # Rule 5 (1 order, > 60): 33, 50, 51 -> {20, 8, 12}, median 12 -> 51. Were 30
        # (60 days) in, the median 16 would tie 33 and 51 and pick 33.
        (33, 1, 61, 20.0), (50, 1, 200, 8.0), (51, 1, 365, 12.0),
    ]
    frame = pd.DataFrame(rows, columns=["profile_id", "historical_orders", "days",
                                        "predicted_clv_mean"])
    frame["last_order_date"] = [days_ago(d) for d in frame["days"]]
    frame["historical_clv"] = frame["historical_orders"] * 30.0
    return frame.drop(columns="days")


def test_five_examples_follow_the_spec_rules():
    picks = dashboard.example_profiles(example_frame(), AS_OF)
    assert picks["example"].tolist() == [1, 2, 3, 4, 5]
    assert picks["profile_id"].tolist() == [13, 20, 32, 40, 51]
    assert picks["group_size"].tolist() == [3, 2, 3, 2, 3]
    assert picks["days_since_last"].tolist() == [52, 10, 30, 181, 365]
    assert picks["rule"].tolist() == [
        "3+ orders, last within 90 days", "2 orders, last within 90 days",
        "1 order, last within 60 days", "3+ orders, last over 180 days ago",
        "1 order, last over 60 days ago"]


def test_days_since_last_order_is_counted_in_local_days():
    # 2026-11-22T03:00Z is Nov 21 in New York: 1 day before as_of, not 0.
    frame = pd.DataFrame({"profile_id": [1], "historical_orders": [1],
                          "predicted_clv_mean": [1.0], "historical_clv": [1.0],
                          "last_order_date": [pd.Timestamp("2026-11-22T03:00:00Z")]})
    picks = dashboard.example_profiles(frame, AS_OF, "America/New_York")
    assert picks.loc[2, "days_since_last"] == 1


def test_an_example_with_no_match_is_reported_empty():
    frame = example_frame()
    frame = frame[frame["historical_orders"] != 2]
    picks = dashboard.example_profiles(frame, AS_OF)
    assert picks.loc[1, "group_size"] == 0 and pd.isna(picks.loc[1, "profile_id"])


def test_not_eligible_examples_are_picked_by_historical_clv():
    frame = example_frame().assign(predicted_clv_mean=np.nan)
    # Rule 3 group {30, 31, 32} all have historical_clv 30: every distance is 0 -> id 30.
    picks = dashboard.example_profiles(frame, AS_OF)
    assert picks.loc[2, "profile_id"] == 30
    assert (picks["picked_by"] == "historical_clv").all()


def test_churn_bands_counts_and_revenue_at_stake():
    frame = pd.DataFrame({"churn_probability_mean": [0.1, 0.33, 0.5, 0.66, 0.9, np.nan],
                          "predicted_clv_mean": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]})
    bands = dashboard.churn_bands(frame, (0.33, 0.66))
    # low < 0.33 <= medium < 0.66 <= high; the missing probability is in no band.
    assert bands["band"].tolist() == ["Low", "Medium", "High"]
    assert bands["profiles"].tolist() == [1, 2, 2]
    assert bands["revenue_at_stake"].tolist() == [10.0, 50.0, 90.0]
    assert bands["share"].tolist() == pytest.approx([0.2, 0.4, 0.4])


def test_next_orders_counted_by_monday_weeks_within_the_horizon():
    assert AS_OF.weekday() == 6  # a Sunday: the window starts Monday Nov 23
    frame = pd.DataFrame({"expected_next_order_date_mean": [
        pd.Timestamp("2026-11-23"), pd.Timestamp("2026-11-29"), pd.Timestamp("2026-11-30"),
        pd.Timestamp("2027-12-01"), pd.NaT]})
    weeks = dashboard.next_orders_by_week(frame, AS_OF, horizon_days=14)
    assert weeks.weeks["week_start"].tolist() == [dt.date(2026, 11, 23), dt.date(2026, 11, 30)]
    assert weeks.weeks["profiles"].tolist() == [2, 1]
    assert (weeks.beyond_horizon, weeks.undefined) == (1, 1)


def test_top_profiles_by_predicted_clv_ties_by_id():
    frame = pd.DataFrame({"profile_id": [3, 1, 2, 4], "predicted_clv_mean": [5.0, 9.0, 9.0, np.nan],
                          "predicted_clv_lower": [1.0, 2.0, 3.0, np.nan],
                          "predicted_clv_upper": [8.0, 12.0, 11.0, np.nan]})
    assert dashboard.top_profiles(frame, 3)["profile_id"].tolist() == [1, 2, 3]


def test_order_definition_names_every_filter():
    params = FakeReport(orders={"sources": ["web", "iphone"], "exclude_pos": True,
                                "exclude_subscriptions": True}).params
    text = cards.order_definition(params.clv.orders, params.clv.history_days)
    for words in ("last 1,500 days", "not cancelled", "web, iphone", "point-of-sale orders excluded",
                  "subscription orders excluded", "zero-value orders excluded"):
        assert words in text


# --------------------------------------------------------------------------- cards

def fake_result(eligible=True, flagged=False, backtest=True, n=300, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    orders_n = rng.integers(1, 6, n)
    last_days = rng.integers(0, 400, n)
    first_days = last_days + (orders_n - 1) * rng.integers(5, 60, n)
    hist = orders_n * rng.gamma(2, 30, n)
    prof = pd.DataFrame({
        "profile_id": ids, "email": [f"p{i}@shop.test" for i in ids],
        "first_order_date": [days_ago(int(d)) for d in first_days],
        "last_order_date": [days_ago(int(d)) for d in last_days],
        "historical_orders": orders_n, "historical_clv": hist,
        "avg_days_between_orders": np.where(orders_n > 1, (first_days - last_days)
                                            / np.maximum(orders_n - 1, 1), np.nan)})
    if eligible:
        def triple(name, mean, spread):
            prof[f"{name}_mean"] = mean
            prof[f"{name}_lower"] = mean * (1 - spread)
            prof[f"{name}_upper"] = mean * (1 + spread)
        triple("predicted_orders", rng.gamma(1, 1, n), 0.6)
        triple("aov", rng.gamma(3, 20, n), 0.3)
        triple("predicted_clv", prof["predicted_orders_mean"] * prof["aov_mean"], 0.7)
        triple("total_clv", prof["historical_clv"] + prof["predicted_clv_mean"], 0.2)
        triple("churn_probability", rng.uniform(0, 0.95, n), 0.1)
        triple("days_to_next_order", rng.uniform(5, 300, n), 0.5)
        for s in ("mean", "lower", "upper"):
            prof[f"expected_next_order_date_{s}"] = (
                pd.Timestamp(AS_OF) + pd.to_timedelta(prof[f"days_to_next_order_{s}"].round(), "D"))
    orders = pd.DataFrame({
        "profile_id": np.repeat(ids, orders_n),
        "order_id": np.arange(orders_n.sum()),
        "local_date": np.concatenate([pd.date_range(days_ago(int(f)), days_ago(int(l)),
                                                    periods=k).normalize()
                                      for f, l, k in zip(first_days, last_days, orders_n)]),
        "net_value": rng.gamma(2, 30, orders_n.sum())})
    orders["placed_at"] = orders["local_date"].dt.tz_localize("UTC")
    fit = bt = None
    if eligible:
        post = {k: rng.normal(v, 0.05 * v, (2, 100)) for k, v in
                {"r": 0.8, "alpha": 40.0, "a": 0.7, "b": 3.0, "p": 6.0, "q": 4.0, "v": 15.0}.items()}
        fit = FakeFit(az.from_dict({"posterior": post}), {
            "r_hat_max": 1.12 if flagged else 1.003, "ess_bulk_min": 80 if flagged else 900,
            "divergences": 3 if flagged else 0, "fit_seconds": 12.5, "flagged": flagged,
            "flag_reasons": ["r_hat 1.12 > 1.01", "3 divergences"] if flagged else []},
            pd.DataFrame({"mean": [0.8, 40.0]}, index=pd.Index(["r", "alpha"], name="param")))
        if backtest:
            dates = pd.date_range(days_ago(200), AS_OF, freq="D")
            actual = np.cumsum(rng.poisson(5, len(dates)))
            bt = FakeBacktest(
                {"holdout_days": 90, "actual_orders": 480,
                 "predicted_orders": {"mean": 455.0, "lower": 410.0, "upper": 500.0},
                 "correlation": 0.61, "mae": 0.42, "calibration_end": "2026-08-24",
                 "total_error_pct": -5.2, "profiles": 300, "buyers": 120, "model": "mbg_nbd",
                 "coverage": {"nominal": 0.9, "orders": 0.93, "orders_expected": 0.94,
                              "clv": 0.91},
                 "auc": {"churn": 0.71, "next_order_date": 0.74},
                 "diagnostics": {"r_hat_max": 1.02, "divergences": 0, "flagged": True,
                                 "fit_seconds": 3.5}},
                pd.DataFrame({"past_repeat_orders": ["0", "1", "2", "3+"],
                              "profiles": [100, 80, 50, 30], "actual_mean": [0.2, 0.5, 0.9, 1.6],
                              "predicted_mean": [0.25, 0.45, 0.8, 1.5]}),
                pd.DataFrame({"date": dates, "actual": actual, "predicted_mean": actual * 1.02,
                              "lower": actual * 0.95, "upper": actual * 1.1,
                              "phase": np.where(dates > days_ago(90), "holdout", "calibration")}),
                0.87)
    return FakeResult(eligible=eligible,
                      reasons=[] if eligible else [
                          "120 customers with orders; needs at least 500: collect more orders"],
                      profiles=prof, metrics={"eligible": eligible}, orders=orders,
                      fit=fit, backtest=bt)


def test_flagged_fit_shows_its_warning_in_the_model_card():
    report = FakeReport()
    html = cards.model_card(fake_result(flagged=True), report).html()
    assert cards.diagnostics_warning() in html
    assert "r_hat 1.12 &gt; 1.01" in html and "FLAGGED" in html
    ok = cards.model_card(fake_result(flagged=False), report).html()
    assert cards.diagnostics_warning() not in ok
    assert "Nov 23, 2026 to Nov 22, 2027 (365 days)" in ok
    assert "300 profiles with a counted order" in ok


def test_not_eligible_notice_says_why_and_keeps_historical_attributes():
    result = fake_result(eligible=False)
    report = FakeReport()
    notice = cards.eligibility_card(result, report).html()
    assert "not available for this merchant yet" in notice
    assert "needs at least 500: collect more orders" in notice
    assert "Historical CLV" in notice and "clv.force: true" in notice
    assert "not eligible" in cards.model_card(result, report).html().lower()
    assert "eligibility rules" in cards.eligibility_card(fake_result(), report).html()


def test_every_card_renders_for_an_eligible_fit():
    result = fake_result()
    predictions = pd.DataFrame({"profile_id": np.arange(1, 201),
                                "predicted_clv": np.linspace(0, 300, 200),
                                "churn_probability": np.linspace(0, 1, 200),
                                "expected_date_of_next_order": pd.Timestamp("2027-01-01")})
    report = FakeReport(FakeData(predictions=predictions))
    shown = [cards.example_profiles_card(result, report),
             cards.distribution_card(result, report),
             cards.churn_risk_card(result, report),
             cards.next_orders_card(result, report),
             cards.top_profiles_card(result, report),
             cards.backtest_card(result, report),
             cards.posterior_card(result, report),
             cards.platform_card(result, report)]
    for card in shown:
        assert "<img" in card.html()
    assert "<summary>Trace and rank plots" in shown[6].html()
    assert "Largest disagreements" in shown[7].html()
    segments = cards.clv_segments(result, report)
    cards.segments_card(report, segments)
    assert set(report.written) == {"segments/vip.csv", "segments/likely_to_buy_soon.csv"}
    outputs = cards.outputs_card(report, result, segments).html()
    assert "clv_profiles.csv (300 profiles)" in outputs and "segments/vip.csv" in outputs
    report.output_dir = None
    assert "not written" in cards.outputs_card(report, result, segments).html()


def test_cards_that_do_not_apply_say_why():
    report = FakeReport()
    result = fake_result(eligible=False)
    for card in (cards.churn_risk_card, cards.next_orders_card,
                 cards.top_profiles_card, cards.backtest_card):
        assert "not eligible" in card(result, report).html()
    assert "not fitted" in cards.posterior_card(result, report).html()
    assert "no predictions table" in cards.platform_card(result, report).html()
    assert "example" not in cards.distribution_card(result, report).html()
    assert "backtest_days is 0" in cards.backtest_card(fake_result(backtest=False),
                                                            report).html()
    assets = cards.assets_card(report).html()
    assert assets.count("no marketing_assets table in the dataset") == 3


def test_platform_comparison_correlation_and_disagreements():
    profiles = pd.DataFrame({"profile_id": [1, 2, 3, 4], "predicted_clv_mean": [10.0, 20.0, 30.0, 40.0],
                             "churn_probability_mean": [0.1, 0.2, 0.3, 0.4]})
    predictions = pd.DataFrame({"profile_id": [2, 3, 4, 5], "predicted_clv": [22.0, 60.0, 44.0, 1.0],
                                "churn_probability": [0.2, 0.3, 0.4, 0.5],
                                "expected_date_of_next_order": pd.NaT})
    cmp = dashboard.compare_with_platform(profiles, predictions, AS_OF)
    s = cmp.summary.set_index("attribute")
    assert s.loc["predicted_clv", "profiles"] == 3
    assert s.loc["churn_probability", "correlation"] == pytest.approx(1.0)
    # |20-22| = 2, |30-60| = 30, |40-44| = 4: profile 3 disagrees most.
    assert cmp.disagreements["profile_id"].tolist() == [3, 4, 2]
    assert cmp.disagreements["difference"].tolist() == [-30.0, -4.0, -2.0]
    none = dashboard.compare_with_platform(profiles, predictions.iloc[0:0], AS_OF,
                                            table_present=False)
    assert none.reason == "no predictions table in the dataset"


# --------------------------------------------------------------------------- the notebook

NOTEBOOK = __import__("pathlib").Path(__file__).resolve().parent.parent / "notebooks" / "clv.ipynb"


def run_notebook(tmp_path, profiles, **clv):
    """Execute notebooks/clv.ipynb by Papermill on demo data; return (html, output_dir)."""
    pytest.importorskip("hubnb.clv", reason="the CLV engine has not landed")
    from hubnb import clv as engine
    if not hasattr(engine, "compute_clv"):
        pytest.skip("the CLV engine has not landed")
    import nbformat
    import papermill as pm
    import yaml
    from nbconvert import HTMLExporter

    from hubnb.demo import generate_demo_data

    data = tmp_path / "data"
    generate_demo_data(data, profiles=profiles, seed=3, with_predictions=True)
    params = tmp_path / "tiny.yaml"
    params.write_text(yaml.safe_dump({
        "merchant": "tiny", "data": str(data), "timezone": "America/New_York",
        "currency": "USD", "as_of": "2026-11-22",
        "clv": {"chains": 2, "seed": 1, **clv},
        "segments": [{"name": "VIP", "where": "historical_clv >= 500"},
                     {"name": "Likely to buy soon",
                      "where": "predicted_orders >= 1 and churn_probability < 0.3"}]}))
    out = tmp_path / "out"
    executed = tmp_path / "clv.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(executed), cwd=str(NOTEBOOK.parent),
                        parameters={"params_path": str(params), "output_dir": str(out)},
                        progress_bar=False, log_output=False)
    body, _ = HTMLExporter(exclude_input=True).from_notebook_node(nbformat.read(executed, 4))
    return body, out


def test_notebook_not_eligible_renders_the_notice(tmp_path):
    html, out = run_notebook(tmp_path, profiles=60)
    assert "Predictive CLV is not available for this merchant yet" in html
    assert (out / "clv_profiles.csv").is_file()
    assert (out / "segments" / "vip.csv").is_file()
    assert "Traceback" not in html


@pytest.mark.slow
def test_notebook_with_a_flagged_fit_shows_the_warning(tmp_path):
    # 10 draws after 10 tuning steps cannot converge: the engine flags the fit.
    html, out = run_notebook(tmp_path, profiles=700, draws=10, tune=10, force=True,
                             backtest_days=60)
    assert cards.diagnostics_warning() in html
    assert "<details><summary>Trace and rank plots" in html
    assert (out / "segments" / "likely_to_buy_soon.csv").is_file()


def test_backtest_card_shows_coverage_and_rankings_per_model():
    html = cards.backtest_card(fake_result(), FakeReport()).html()
    for text in ("Churn ranks the holdout", "71.0%", "74.0%", "93.0%", "94.0%", "-5.2%",
                 "MBG/NBD fit are flagged"):
        assert text in html, text


def test_model_choice_card_shows_both_scores_and_why():
    from hubnb.clv.selection import ModelChoice, explain

    cands = {"pareto_nbd": {"elpd_loo": -25570.5, "se": 839.4, "d_elpd": 0.0, "d_se": 0.0,
                            "pareto_k_over_0_7": 0.0, "r_hat_max": 1.002, "fit_seconds": 9.1},
             "mbg_nbd": {"elpd_loo": -25578.7, "se": 839.6, "d_elpd": 8.2, "d_se": 5.9,
                         "pareto_k_over_0_7": 0.0, "r_hat_max": 1.001, "fit_seconds": 1.2}}
    result = fake_result()
    result.selection = ModelChoice("pareto_nbd", cands, False, explain("pareto_nbd", cands, False))
    report = FakeReport()
    html = cards.model_choice_card(result, report).html()
    assert "Pareto/NBD (chosen)" in html and "MBG/NBD" in html
    assert "-25,570.5" in html and "-8.2" in html and "5.9" in html
    assert "about equally well" in html
    # set by hand: one sentence; BG/NBD's warning about one-order customers shows once in
    # the report, in the model card, not again here
    result.selection = None
    result.fit.model_name = "bg_nbd"
    html = cards.model_choice_card(result, FakeReport(model="bg_nbd")).html()
    assert "set by hand" in html
    warning = "every customer with a single order is held active"
    assert warning not in html
    assert cards.model_card(result, FakeReport(model="bg_nbd")).html().count(warning) == 1


def test_next_order_dates_beyond_the_window_read_not_expected():
    as_of = dt.date(2026, 11, 22)
    assert cards.next_order_text(pd.Timestamp("2027-03-01"), as_of, 365) == "Mar 1, 2027"
    assert cards.next_order_text(pd.Timestamp("2031-01-01"), as_of, 365) == \
        "not expected within 365 days"
    example = pd.Series({"historical_orders": 1, "predicted_orders_mean": 0.3,
                         "predicted_orders_lower": 0.2, "predicted_orders_upper": 0.4,
                         "predicted_orders_pred_lower": 0.0, "predicted_orders_pred_upper": 2.0,
                         "expected_next_order_date_mean": pd.Timestamp("2029-01-01"),
                         "expected_next_order_date_lower": pd.Timestamp("2027-06-01"),
                         "expected_next_order_date_upper": pd.Timestamp("2035-01-01")})
    table = cards.profile_attributes(example, "USD", 365, as_of).set_index("Attribute")
    row = table.loc["Predicted orders (next 365 days)"]
    assert row[cards.credible_label()] == "0.20 to 0.40"
    assert row[cards.predictive_label()] == "0 to 2"
    nxt = table.loc["Expected next order date"]
    assert nxt["Value (mean)"] == "not expected within 365 days"
    assert nxt[cards.credible_label()] == "Jun 1, 2027 to after Nov 22, 2027"


def test_a_large_merchants_cards_say_the_posterior_is_approximate_and_the_backtest_sampled():
    """Past the large-data limit the model card names the importance-sampled Laplace
    posterior with its Pareto k and effective draws, and the backtest card says its scores
    come from a random sample of the customers the model was fitted on; in Italian too."""
    from types import SimpleNamespace

    from hubnb import i18n

    result = fake_result()
    result.fit.diagnostics.update(posterior="laplace-is", pareto_k=-0.49, ess_bulk_min=842.06,
                                  r_hat_max=None, proposal_draws=1000, fit_seconds=37.3)
    result.fit.data = SimpleNamespace(purchase_rows=1_688_962)
    result.backtest.summary.update(sample_of=8_911_542, profiles=200_000)
    html = cards.model_card(result, FakeReport()).html()
    assert ("importance-sampled Laplace approximation (Pareto k -0.49), 842 effective draws, "
            "fitted in 37.3 s") in html
    assert ("with 1,688,962 distinct purchase histories the posterior is a Laplace "
            "approximation, importance-sampled (1,000 draws) instead of NUTS") in html
    bt = cards.backtest_card(result, FakeReport()).html()
    assert ("The model was fitted on all 8,911,542 customers; its holdout was scored on a "
            "random sample of 200,000 of them (more than 50,000 distinct purchase "
            "histories") in bt
    with i18n.using("it"):
        bt_it = cards.backtest_card(result, FakeReport()).html()
    assert "campione casuale di 200.000" in bt_it and "8.911.542" in bt_it
    # a merchant below the limit: no such sentence
    del result.backtest.summary["sample_of"]
    assert "random sample" not in cards.backtest_card(result, FakeReport()).html()
