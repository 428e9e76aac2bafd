"""clv.model: auto — PSIS-LOO over weighted distinct histories, the choice and its words;
the backtest's ranking and coverage scores."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from hubnb.clv.backtest import auc, score
from hubnb.clv import bg_nbd
from hubnb.clv.compute import next_order_dates
from hubnb.clv.histories import compress, history_rows
from hubnb.clv.models import FitResult
from hubnb.clv.selection import choose_model, explain, loo, weighted_se


def _rfm(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.poisson(0.8, n)
    T = rng.integers(30, 36, n)        # few distinct T and t_x: histories repeat
    tx = np.where(x > 0, T - rng.integers(0, 4, n) * 5, 0)
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T,
                         "monetary_value": np.where(x > 0, 20.0, 0.0)},
                        index=pd.Index(np.arange(n), name="profile_id"))


def _fake_fit(rfm, model="bg_nbd", seed=1, chains=2, draws=300):
    """A FitResult whose 'posterior' is a cloud around plausible values (the LOO maths do
    not need a real posterior)."""
    rng = np.random.default_rng(seed)
    centre = ({"r": 0.5, "alpha": 20.0, "a": 0.8, "b": 2.5} if model != "pareto_nbd"
              else {"r": 0.5, "alpha": 20.0, "s": 0.6, "beta": 30.0})
    post = xr.Dataset({k: (("chain", "draw"), v * np.exp(rng.normal(0, 0.1, (chains, draws))))
                       for k, v in centre.items()})
    return FitResult(model, {"posterior": post}, {}, {}, pd.DataFrame(), compress(rfm))


def test_weighted_loo_equals_arviz_with_one_row_per_profile():
    """elpd, its SE and the Pareto k share over weighted distinct histories are ArviZ's
    numbers on the uncompressed data (one log-likelihood column per profile)."""
    import arviz_stats
    from xarray import DataTree


    rfm = _rfm()
    fit = _fake_fit(rfm)
    x, tx, T, n = history_rows(fit.data.arrays)
    assert n.sum() == len(rfm) and len(n) < len(rfm) / 2   # histories do repeat
    mine = loo(fit)

    post = fit.idata["posterior"]
    p = {k: post[k].to_numpy()[..., None] for k in ("r", "alpha", "a", "b")}
    ll = bg_nbd.loglik(p["r"], p["alpha"], p["a"], p["b"], rfm["frequency"].to_numpy(),
                        rfm["recency"].to_numpy(), rfm["T"].to_numpy())
    tree = DataTree.from_dict({
        "posterior": post,
        "log_likelihood": xr.Dataset({"y": (("chain", "draw", "profile"), ll)}),
    })
    ref = arviz_stats.loo(tree, pointwise=True, var_name="y")
    assert mine.elpd == pytest.approx(float(ref.elpd), rel=1e-9)
    assert mine.se == pytest.approx(float(ref.se), rel=1e-9)
    assert mine.p_loo == pytest.approx(float(ref.p), rel=1e-6)
    k_share = float((ref.pareto_k.to_numpy() > 0.7).mean())
    assert mine.pareto_k_over_0_7 == pytest.approx(k_share)


def test_weighted_se_is_the_se_of_the_repeated_values():
    values, weights = np.array([1.0, -2.0, 0.5]), np.array([3, 1, 2])
    repeated = np.repeat(values, weights)
    # ArviZ: sqrt(n * var(elpd_i)), the sample variance
    assert weighted_se(values, weights) == pytest.approx(
        np.sqrt(len(repeated) * np.var(repeated, ddof=1)))


def test_auto_keeps_the_higher_elpd_and_reports_the_difference():
    rfm = _rfm()
    fits = {"bg_nbd": _fake_fit(rfm, "bg_nbd", seed=1),
            "mbg_nbd": _fake_fit(rfm, "mbg_nbd", seed=1)}
    choice = choose_model(fits)
    c = choice.candidates
    assert choice.winner == max(c, key=lambda k: c[k]["elpd_loo"])
    other = next(k for k in c if k != choice.winner)
    assert c[choice.winner]["d_elpd"] == 0 and c[choice.winner]["d_se"] == 0
    assert c[other]["d_elpd"] == pytest.approx(c[choice.winner]["elpd_loo"] - c[other]["elpd_loo"])
    assert c[other]["d_elpd"] > 0
    assert sum(v["weight"] for v in c.values()) == pytest.approx(1.0)
    assert choice.as_metrics()["method"] == "psis-loo"


def test_the_reason_says_whether_the_data_can_tell_the_models_apart():
    base = {"elpd_loo": -100.0, "se": 10.0, "pareto_k_over_0_7": 0.0}
    clear = explain("pareto_nbd", {"pareto_nbd": {**base, "d_elpd": 0.0, "d_se": 0.0},
                                   "mbg_nbd": {**base, "d_elpd": 30.0, "d_se": 5.0}}, True)
    assert "clearly prefer" in clear and "Pareto/NBD" in clear and "30.0" in clear
    close = explain("mbg_nbd", {"mbg_nbd": {**base, "d_elpd": 0.0, "d_se": 0.0},
                                "pareto_nbd": {**base, "d_elpd": 1.5, "d_se": 2.0}}, False)
    assert "about equally well" in close and "MBG/NBD" in close
    flaky = explain("mbg_nbd", {"mbg_nbd": {**base, "d_elpd": 0.0, "d_se": 0.0,
                                            "pareto_k_over_0_7": 0.05},
                                "pareto_nbd": {**base, "d_elpd": 1.5, "d_se": 2.0}}, False)
    assert "Pareto k is above 0.7" in flaky


def test_auc_by_hand():
    # buyers score 0.9 and 0.4, non-buyers 0.5, 0.4, 0.1: of the 6 pairs, the 0.9 buyer
    # wins 3, the 0.4 buyer wins 1 (vs 0.1) and ties 1 (vs 0.4): (3 + 1 + 0.5) / 6
    assert auc(np.array([0.9, 0.4, 0.5, 0.4, 0.1]),
               np.array([True, True, False, False, False])) == pytest.approx(4.5 / 6)
    assert auc(np.array([1.0, 2.0]), np.array([True, True])) is None
    # all tied: chance
    assert auc(np.zeros(4), np.array([True, False, True, False])) == pytest.approx(0.5)


def test_backtest_scores_by_hand():
    per = pd.DataFrame({
        "actual": [0.0, 2.0, 1.0, 0.0],
        "predicted_mean": [0.2, 1.5, 0.5, 0.4],
        "pred_lower": [0.0, 1.0, 0.0, 0.0], "pred_upper": [1.0, 3.0, 0.0, 2.0],
        "actual_spend": [0.0, 50.0, 10.0, 0.0],
        "spend_pred_lower": [0.0, 0.0, 0.0, 5.0], "spend_pred_upper": [30.0, 40.0, 20.0, 60.0],
        "churn_probability": [0.8, 0.1, 0.5, 0.3],
        "days_to_next_order": [300.0, 20.0, 100.0, 200.0],
    })
    total = {"mean": 2.6, "lower": 1.0, "upper": 5.0}
    s = score(per, total, 0.9)
    assert s["actual_orders"] == 3 and s["buyers"] == 2 and s["profiles"] == 4
    assert s["total_error_pct"] == pytest.approx(100 * (2.6 - 3) / 3)
    assert s["total_in_interval"]
    assert s["mae"] == pytest.approx((0.2 + 0.5 + 0.5 + 0.4) / 4)
    assert s["correlation"] == pytest.approx(np.corrcoef([0, 2, 1, 0], [0.2, 1.5, 0.5, 0.4])[0, 1])
    # orders: rows 0, 1, 3 inside (row 2: 1 > 0); spend: rows 0, 2 inside (50 > 40, 0 < 5)
    assert s["coverage"] == {"nominal": 0.9, "orders": 0.75, "orders_expected": None, "clv": 0.5}
    # buyers (rows 1, 2): churn 0.1 beats both non-buyers (0.8, 0.3), churn 0.5 beats 0.8
    # but not 0.3: 3 of 4 pairs; their dates (20, 100) are both earlier than 300 and 200
    assert s["auc"] == {"churn": 0.75, "next_order_date": 1.0}


def test_next_order_dates_keep_far_dates_and_round_to_days():
    as_of = dt.date(2026, 11, 22)
    out = next_order_dates(np.array([0.4, 10.6, 365 * 40, np.nan, 1e9]), as_of)
    assert out[0] == np.datetime64("2026-11-22")
    assert out[1] == np.datetime64("2026-12-03")
    assert out[2] == np.datetime64(as_of + dt.timedelta(days=365 * 40))   # kept, 2066
    assert np.isnat(out[3]) and np.isnat(out[4])


def test_too_few_draws_for_psis_fall_back_to_the_in_sample_score_and_say_so():
    rfm = _rfm()
    fits = {"bg_nbd": _fake_fit(rfm, "bg_nbd", draws=20),
            "mbg_nbd": _fake_fit(rfm, "mbg_nbd", draws=20)}
    choice = choose_model(fits)
    assert choice.method.startswith("lppd") and "Too few posterior draws" in choice.reason
    # the in-sample score, by hand: log of the mean likelihood over the 40 draws, summed
    from scipy.special import logsumexp


    post = fits["bg_nbd"].idata["posterior"]
    p = {k: post[k].to_numpy().reshape(-1, 1) for k in ("r", "alpha", "a", "b")}
    ll = bg_nbd.loglik(p["r"], p["alpha"], p["a"], p["b"], rfm["frequency"].to_numpy(),
                        rfm["recency"].to_numpy(), rfm["T"].to_numpy())
    lppd = float(np.sum(logsumexp(ll, axis=0) - np.log(40)))
    assert choice.candidates["bg_nbd"]["elpd_loo"] == pytest.approx(lppd, rel=1e-10)
    assert choice.candidates["bg_nbd"]["pareto_k_over_0_7"] is None


def test_a_flat_tail_falls_back_to_plain_importance_sampling_for_that_row_only():
    from hubnb.clv.psis import psis_loo

    rng = np.random.default_rng(0)
    chains, per_chain = 2, 100
    varied = rng.normal(-3.0, 0.5, size=chains * per_chain)
    flat = np.full(chains * per_chain, -2.0)          # every draw the same: a stuck chain
    elpd, k, p = psis_loo(np.column_stack([varied, flat]), r_eff=1.0)
    alone = psis_loo(varied[:, None], r_eff=1.0)
    assert (elpd[0], k[0], p[0]) == pytest.approx((alone[0][0], alone[1][0], alone[2][0]))
    # the flat row: log S - logsumexp(2 repeated S times) = log S - (2 + log S) = -2
    assert elpd[1] == pytest.approx(-2.0) and p[1] == pytest.approx(0.0) and np.isinf(k[1])
