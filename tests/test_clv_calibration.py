"""The backtest's calibration a reviewer sees (hubnb.clv.backtest): the reliability diagram
of p_order_30d and the weekly tracking, worked out by hand on small data."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from hubnb.clv import mbg_nbd
from hubnb.clv.backtest import TRACK_DRAWS, holdout_tracking, reliability

CAL_END = dt.date(2026, 6, 1)


def _tx(rows):
    return pd.DataFrame({"profile_id": [r[0] for r in rows],
                         "local_date": pd.to_datetime([r[1] for r in rows])})


def test_reliability_groups_customers_by_prediction_and_counts_who_ordered():
    # 20 customers, predictions 0.00..0.95; those with an even index ordered within 30 days,
    # customer 19 only on day 31 (outside), customer 1 on day 30 (inside)
    ids = [f"c{i}" for i in range(20)]
    per = pd.DataFrame({"p_order_30d": np.arange(20) * 0.05}, index=ids)
    rows = [(f"c{i}", "2026-06-10") for i in range(0, 20, 2)]
    rows += [("c1", "2026-07-01"), ("c19", "2026-07-02"), ("c2", "2026-06-20")]
    rel = reliability(per, _tx(rows), CAL_END, bins=10)
    assert rel["bin"].tolist() == list(range(1, 11))
    assert rel["profiles"].tolist() == [2] * 10
    # group g holds customers 2g and 2g+1: mean prediction 0.1 g + 0.025
    np.testing.assert_allclose(rel["predicted"], np.arange(10) * 0.1 + 0.025)
    # each group has one even customer who ordered; group 0 also c1 (day 30)
    assert rel["observed"].tolist() == [1.0] + [0.5] * 9


def test_reliability_of_tied_predictions_keeps_equal_groups():
    per = pd.DataFrame({"p_order_30d": [0.2] * 9 + [0.9]}, index=list("abcdefghij"))
    rel = reliability(per, _tx([("j", "2026-06-02")]), CAL_END, bins=5)
    assert rel["profiles"].tolist() == [2] * 5
    assert rel["observed"].iloc[-1] == 0.5 and rel["observed"].iloc[:-1].eq(0).all()


def test_weekly_tracking_sums_the_conditional_expectations():
    """The tracking's mean is sum over customers of E[X(T, T+t) | x, t_x, T] per draw
    (MBG/NBD's closed form, computed here directly), its actual the repeat orders by each
    week's end; without purchase randomness (variance 0) the band is the draws' spread."""
    rng = np.random.default_rng(0)
    rfm = pd.DataFrame({"frequency": [0, 2, 2, 5], "recency": [0, 30, 30, 200],
                        "T": [40, 90, 90, 300]}, index=["a", "b", "c", "d"])
    n = TRACK_DRAWS                      # every draw used
    draws = {"r": rng.uniform(0.5, 1.0, n), "alpha": rng.uniform(20, 40, n),
             "a": rng.uniform(0.5, 1.0, n), "b": rng.uniform(2, 4, n)}
    fit = SimpleNamespace(model_name="mbg_nbd", draws=draws)
    pred = SimpleNamespace(total_draws={"orders_var": np.zeros(5),
                                        "expected_orders": np.ones(5)})
    hold = _tx([("b", "2026-06-03"), ("d", "2026-06-08"), ("d", "2026-06-20"),
                ("zz", "2026-06-04")])                        # zz: not a scored customer
    track = holdout_tracking(fit, rfm, hold, CAL_END, 20, 0.9, pred)
    assert track["day"].tolist() == [7, 14, 20]
    assert track["actual"].tolist() == [2.0, 2.0, 3.0]     # days 2 and 7, then 19
    x, t_x, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    p = {k: v[:, None] for k, v in draws.items()}
    for week, t in enumerate((7.0, 14.0, 20.0)):
        per_draw = mbg_nbd.expected_purchases(p["r"], p["alpha"], p["a"], p["b"], x, t_x, T,
                                              t).sum(axis=1)
        assert track["predicted_mean"].iloc[week] == pytest.approx(per_draw.mean(), rel=1e-9)
        assert track["lower"].iloc[week] == pytest.approx(np.quantile(per_draw, 0.05))
        assert track["upper"].iloc[week] == pytest.approx(np.quantile(per_draw, 0.95))


def test_weekly_tracking_band_widens_with_purchase_randomness():
    rfm = pd.DataFrame({"frequency": [3] * 50, "recency": [60] * 50, "T": [100] * 50},
                       index=[f"p{i}" for i in range(50)])
    draws = {"r": np.full(10, 0.8), "alpha": np.full(10, 30.0), "a": np.full(10, 0.8),
             "b": np.full(10, 3.0)}
    fit = SimpleNamespace(model_name="mbg_nbd", draws=draws)
    pred = SimpleNamespace(total_draws={"orders_var": np.full(4, 40.0),
                                        "expected_orders": np.full(4, 20.0)})
    track = holdout_tracking(fit, rfm, _tx([]), CAL_END, 28, 0.9, pred)
    # one draw value: the band is the normal's, dispersion 2 times the expected so far
    mean = track["predicted_mean"].to_numpy()
    half = track["upper"].to_numpy() - mean
    assert np.all(half > 0)
    np.testing.assert_allclose(half / np.sqrt(2 * mean), 1.645, rtol=0.05)
