"""Backtest: fit on the data up to ``as_of - backtest_days`` and score the holdout.

The calibration data are the counted orders as of the calibration end (refunds and
cancellations known by then, ``history_days`` before it). The holdout actuals are the
transactions (same-day orders merged) of the calibration profiles in the ``backtest_days``
local days after the calibration end, counted as of ``as_of``. Profiles first seen in the
holdout are not scored (the model predicts existing profiles).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import fftconvolve

from ..params import ClvParams
from .models import PURCHASE_MODELS, ClvModel, FitResult, compress
from .orders import counted_orders, rfm_summary, transactions
from .predict import interval_bounds, posterior_draws, predict

PAST_ORDER_BINS = ("0", "1", "2", "3", "4", "5", "6", "7+")


@dataclass(frozen=True)
class BacktestResult:
    """The scores of a backtest.

    Attributes
    ----------
    summary : dict
        metrics.json's ``clv.backtest``: holdout_days, actual_orders, predicted_orders
        (posterior predictive mean/lower/upper of the holdout total), correlation and mae
        (per profile, actual vs predicted mean), plus calibration_end, profiles, coverage.
    by_past_orders : DataFrame
        Per number of repeat transactions in calibration (0..6, 7+): profiles, actual_mean,
        predicted_mean of holdout transactions.
    cumulative : DataFrame
        date, actual, predicted_mean, lower, upper, phase ('calibration'/'holdout'): the
        cumulative repeat transactions of the calibration profiles against the model's
        expectation for profiles acquired on their first-order days (FHL05 fig. 2).
    coverage : float
        Share of profiles whose holdout count lies inside their posterior predictive interval.
    per_profile : DataFrame
        actual, predicted_mean, pred_lower, pred_upper, past_repeat per profile.
    fit : FitResult
        The calibration fit.
    """

    summary: dict
    by_past_orders: pd.DataFrame
    cumulative: pd.DataFrame
    coverage: float
    per_profile: pd.DataFrame
    fit: FitResult


def run_backtest(orders: pd.DataFrame, refunds: pd.DataFrame | None, params: ClvParams,
                 as_of: dt.date, timezone: str, progress: bool = False) -> BacktestResult:
    """Fit on the calibration period and score the ``params.backtest_days`` holdout."""
    days = params.backtest_days
    cal_end = as_of - dt.timedelta(days=days)
    cal = counted_orders(orders, refunds, params.orders, cal_end, timezone, params.history_days)
    if cal.empty:
        raise ValueError(f"no counted orders up to the calibration end {cal_end}")
    rfm = rfm_summary(cal, cal_end)
    fit = ClvModel(params.model).fit(compress(rfm), chains=params.chains, draws=params.draws,
                                     tune=params.tune, seed=params.seed, progress=progress)
    pred = predict(fit, rfm, days, params.credible_interval, seed=params.seed)
    hold = counted_orders(orders, refunds, params.orders, as_of, timezone, days)
    hold_tx = transactions(hold[hold["profile_id"].isin(rfm.index)])
    actual = hold_tx.groupby("profile_id").size().reindex(rfm.index, fill_value=0)

    p = pred.profiles
    per = pd.DataFrame({
        "actual": actual.astype(float),
        "predicted_mean": p["predicted_orders_mean"],
        "pred_lower": p["predicted_orders_pred_lower"],
        "pred_upper": p["predicted_orders_pred_upper"],
        "past_repeat": rfm["frequency"],
    })
    inside = (per["actual"] >= per["pred_lower"]) & (per["actual"] <= per["pred_upper"])
    coverage = float(inside.mean())
    err = per["actual"] - per["predicted_mean"]
    corr = (float(np.corrcoef(per["actual"], per["predicted_mean"])[0, 1])
            if per["actual"].std() > 0 and per["predicted_mean"].std() > 0 else None)
    summary = {
        "holdout_days": days,
        "actual_orders": int(per["actual"].sum()),
        "predicted_orders": pred.totals["predicted_orders"],
        "correlation": corr,
        "mae": float(err.abs().mean()),
        "calibration_end": cal_end.isoformat(),
        "profiles": int(len(per)),
        "coverage": coverage,
    }
    label = np.where(per["past_repeat"] >= 7, "7+", per["past_repeat"].clip(upper=7).astype(str))
    by = (per.assign(past_repeat_orders=pd.Categorical(label, categories=PAST_ORDER_BINS,
                                                       ordered=True))
          .groupby("past_repeat_orders", observed=False)
          .agg(profiles=("actual", "size"), actual_mean=("actual", "mean"),
               predicted_mean=("predicted_mean", "mean"))
          .reset_index())
    by["past_repeat_orders"] = by["past_repeat_orders"].astype(str)
    cumulative = cumulative_transactions(fit, rfm, cal, hold_tx, cal_end, as_of,
                                         params.credible_interval)
    return BacktestResult(summary, by, cumulative, coverage, per, fit)


def cumulative_transactions(fit: FitResult, rfm: pd.DataFrame, cal: pd.DataFrame,
                            hold_tx: pd.DataFrame, cal_end: dt.date, as_of: dt.date,
                            credible_interval: float, max_draws: int = 500) -> pd.DataFrame:
    """Daily cumulative repeat transactions, actual against expected (the tracking plot).

    Expected: sum over profiles of E[X(day - first day)] for a customer just acquired
    (FHL05 eq. (9)), per posterior draw; the interval covers parameter uncertainty.
    """
    purchase = PURCHASE_MODELS[fit.model_name]
    start = rfm["first_date"].min()
    dates = pd.date_range(start, pd.Timestamp(as_of), freq="D")
    n = len(dates)
    cohort = np.bincount((rfm["first_date"] - start).dt.days.to_numpy(), minlength=n)[:n]
    draws = posterior_draws(fit, max_draws)
    e_new = purchase.expected_purchases_new(draws, np.arange(n, dtype=float))
    # fftconvolve leaves round-off of order 1e-13 around 0; counts are never negative
    expected = np.maximum(fftconvolve(e_new, cohort[None, :].astype(float), axes=1)[:, :n], 0.0)
    lo, hi = interval_bounds(credible_interval)
    tx = pd.concat([_repeat_days(cal), hold_tx[["profile_id", "local_date"]]])
    tx = tx[tx["local_date"] > tx.groupby("profile_id")["local_date"].transform("min")]
    daily = tx.groupby("local_date").size().reindex(dates, fill_value=0)
    return pd.DataFrame({
        "date": dates,
        "actual": daily.cumsum().to_numpy(),
        "predicted_mean": expected.mean(axis=0),
        "lower": np.quantile(expected, lo, axis=0),
        "upper": np.quantile(expected, hi, axis=0),
        "phase": np.where(dates <= pd.Timestamp(cal_end), "calibration", "holdout"),
    })


def _repeat_days(counted: pd.DataFrame) -> pd.DataFrame:
    return transactions(counted)[["profile_id", "local_date"]]
