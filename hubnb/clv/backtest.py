"""Backtest: fit on the data up to ``as_of - backtest_days`` and score the holdout.

The calibration data are the counted orders as of the calibration end (refunds and
cancellations known by then, ``history_days`` before it). The holdout actuals are the
transactions (same-day orders merged) of the calibration profiles in the ``backtest_days``
local days after the calibration end, counted as of ``as_of``. Profiles first seen in the
holdout are not scored (the model predicts existing profiles).

The scores are what merchants rely on: the holdout total against its posterior predictive
interval (``total_error_pct``), the per-customer correlation and mean absolute error of
actual against predicted orders, the coverage of the per-profile posterior predictive
intervals of orders and spend against their nominal level, and how well churn and the
next order date rank the customers who actually order in the holdout (``auc``: the
probability that a random holdout buyer is ranked ahead of a random non-buyer, ties
counting one half; 0.5 is chance).

Calibration a reviewer can see (:func:`reliability` and :func:`holdout_tracking`):

- **Reliability of p_order_30d.** The scored customers in ten groups of equal size by their
  predicted chance of an order within 30 days of the calibration end (deciles; tied values
  may merge groups), each group's mean prediction against the share that did order in
  those 30 days, with its count; the calibration error is the count-weighted mean absolute
  gap between the two (the expected calibration error). Needs a holdout of 30 days or
  more.
- **Weekly tracking.** The scored customers' cumulative repeat orders week by week over the
  holdout, against the model's: per posterior draw (:data:`TRACK_DRAWS`, evenly thinned)
  the sum of their conditional expected orders up to each week's end. The predictive band
  adds purchase randomness to that parameter uncertainty: the holdout total's simulated
  variance over its mean (its dispersion, from the predictions) is carried to each week in
  proportion to the orders expected so far, and the band is the quantiles of the normal
  mixture over draws (each normal by :data:`TRACK_NORMALS` evenly spaced quantiles). Above :data:`TRACK_PROFILES` scored customers the expectation is
  summed over a seeded random sample of that many, scaled up.

Every candidate of ``clv.model: auto`` is backtested. The chosen model's backtest is
fitted as its main fit was; the others on their importance-resampled Laplace approximation
where it is trusted (:func:`hubnb.clv.fitcache.approximate_fit`, the same approximation
``auto`` compared them on; :data:`CANDIDATE_LAPLACE_DRAWS` proposal draws), with at most
:data:`CANDIDATE_DRAWS` draws for their predictions: about a second each instead of a full
NUTS fit, their intervals from fewer draws than the chosen model's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..params import ClvParams
from . import fitcache
from .histories import compress, with_prior
from .laplace import CANDIDATE_LAPLACE_DRAWS  # noqa: F401  (named in the docstring above)
from .models import PURCHASE_MODELS, FitResult
from .orders import counted_orders, rfm_summary, transactions
from .predict import interval_bounds, posterior_draws

PAST_ORDER_BINS = ("0", "1", "2", "3", "4", "5", "6", "7+")
#: Customers scored in the backtest of a large merchant (see :func:`scored_profiles`).
SCORED_PROFILES = 200_000
#: Days after the calibration end of the reliability diagram's outcome (p_order_30d).
RELIABILITY_DAYS = 30
#: Groups of the reliability diagram.
RELIABILITY_BINS = 10
#: Posterior draws of the weekly tracking's expectation...
TRACK_DRAWS = 20
#: ... summed over at most this many scored customers (a seeded sample, scaled up).
TRACK_PROFILES = 5_000
#: Normal quantiles per posterior draw of the tracking's predictive band.
TRACK_NORMALS = 50
#: At most this many (importance-resampled) draws for the other candidates' predictions
#: (their Laplace approximation: :data:`~hubnb.clv.laplace.CANDIDATE_LAPLACE_DRAWS`).
CANDIDATE_DRAWS = 100


@dataclass(frozen=True)
class BacktestResult:
    """The scores of a backtest.

    Attributes
    ----------
    summary : dict
        metrics.json's ``clv.backtest``: holdout_days, actual_orders, predicted_orders
        (posterior predictive mean/lower/upper of the holdout total), correlation and mae
        (per profile, actual vs predicted mean), plus calibration_end, profiles, coverage;
        ``sample_of`` (the calibration customers) when only a sample was scored.
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
        actual, predicted_mean, pred_lower, pred_upper, pred_mass, actual_spend, spend_pred_lower,
        spend_pred_upper, churn_probability, days_to_next_order, past_repeat per profile.
    fit : FitResult
        The calibration fit.
    """

    summary: dict
    by_past_orders: pd.DataFrame
    cumulative: pd.DataFrame
    coverage: float
    per_profile: pd.DataFrame
    fit: FitResult
    #: The reliability diagram of p_order_30d (:func:`reliability`), None with a holdout
    #: shorter than 30 days.
    reliability: pd.DataFrame | None = None
    #: The weekly tracking of the holdout (:func:`holdout_tracking`).
    tracking: pd.DataFrame | None = None


def run_backtest(orders: pd.DataFrame, refunds: pd.DataFrame | None, params: ClvParams,
                 as_of: dt.date, timezone: str, progress: bool = False,
                 model: str | None = None, approximate: bool = False,
                 priors: dict | None = None) -> BacktestResult:
    """Fit ``model`` (a purchase model's name; default ``params.model``, which must then
    name one model) on the calibration period and score the ``params.backtest_days``
    holdout. ``approximate``: another candidate of ``auto``, fitted by
    :func:`~hubnb.clv.fitcache.approximate_fit` (see the module's docstring). ``priors``:
    a pooled merchant's population priors by model (:mod:`hubnb.clv.population`), which
    the calibration fit uses as the main fit does."""
    days = params.backtest_days
    model = model or params.model
    cal_end = as_of - dt.timedelta(days=days)
    cal = counted_orders(orders, refunds, params.orders, cal_end, timezone, params.history_days)
    if cal.empty:
        raise ValueError(f"no counted orders up to the calibration end {cal_end}")
    all_rfm = rfm_summary(cal, cal_end)
    data = compress(all_rfm)
    if priors:
        data = with_prior(data, priors)
    fit = (fitcache.approximate_fit(model, data, params, progress) if approximate
           else fitcache.posterior_fit(model, data, params, progress))
    rfm = scored_profiles(all_rfm, data.purchase_rows, params.seed)
    pred = fitcache.predictions(fit, rfm, days, params.credible_interval, params.seed,
                                max_draws=CANDIDATE_DRAWS if approximate else None)
    hold = counted_orders(orders, refunds, params.orders, as_of, timezone, days)
    hold_tx = transactions(hold[hold["profile_id"].isin(all_rfm.index)])
    by_profile = hold_tx.groupby("profile_id")
    actual = by_profile.size().reindex(rfm.index, fill_value=0)
    spend = by_profile["value"].sum().reindex(rfm.index, fill_value=0.0)

    p = {name: pd.Series(pred.column(name), index=pred.index) for name in (
        "predicted_orders_mean", "predicted_orders_pred_lower", "predicted_orders_pred_upper",
        "predicted_orders_pred_mass", "predicted_clv_pred_lower", "predicted_clv_pred_upper",
        "churn_probability_mean", "days_to_next_order_mean", "p_order_30d_mean")}
    per = pd.DataFrame({
        "actual": actual.astype(float),
        "predicted_mean": p["predicted_orders_mean"],
        "pred_lower": p["predicted_orders_pred_lower"],
        "pred_upper": p["predicted_orders_pred_upper"],
        "pred_mass": p["predicted_orders_pred_mass"],
        "actual_spend": spend.astype(float),
        "spend_pred_lower": p["predicted_clv_pred_lower"],
        "spend_pred_upper": p["predicted_clv_pred_upper"],
        "churn_probability": p["churn_probability_mean"],
        "days_to_next_order": p["days_to_next_order_mean"],
        "past_repeat": rfm["frequency"],
        "p_order_30d": p["p_order_30d_mean"],
    })
    summary = score(per, pred.totals["predicted_orders"], params.credible_interval)
    d = fit.diagnostics
    if len(rfm) < len(all_rfm):
        summary["sample_of"] = int(len(all_rfm))
    summary.update(holdout_days=days, calibration_end=cal_end.isoformat(), model=model,
                   posterior=d.get("posterior", "nuts"),
                   diagnostics={"r_hat_max": d["r_hat_max"], "divergences": d["divergences"],
                                "flagged": d["flagged"], "fit_seconds": d["fit_seconds"]})
    rel = reliability(per, hold_tx, cal_end) if days >= RELIABILITY_DAYS else None
    tot = pred.total_draws
    track = fitcache.backtest_part(
        "tracking", fit, {"rfm": rfm[["frequency", "recency", "T"]], "hold": hold_tx,
                          "dispersion": pd.DataFrame({k: tot[k] for k in ("orders_var",
                                                                          "expected_orders")})},
        lambda: holdout_tracking(fit, rfm, hold_tx, cal_end, days, params.credible_interval,
                                 pred, params.seed),
        cal_end=cal_end.isoformat(), days=days, ci=params.credible_interval, seed=params.seed)
    summary["p_order_30d_calibration_error"] = (
        None if rel is None else float((rel["profiles"] * (rel["observed"] - rel["predicted"])
                                        .abs()).sum() / rel["profiles"].sum()))
    summary["reliability"] = None if rel is None else rel.to_dict("records")
    summary["weekly_tracking"] = track.assign(day=track["day"].astype(int)).to_dict("records")
    coverage = summary["coverage"]["orders"]
    label = np.where(per["past_repeat"] >= 7, "7+", per["past_repeat"].clip(upper=7).astype(str))
    by = (per.assign(past_repeat_orders=pd.Categorical(label, categories=PAST_ORDER_BINS,
                                                       ordered=True))
          .groupby("past_repeat_orders", observed=False)
          .agg(profiles=("actual", "size"), actual_mean=("actual", "mean"),
               predicted_mean=("predicted_mean", "mean"))
          .reset_index())
    by["past_repeat_orders"] = by["past_repeat_orders"].astype(str)
    cumulative = fitcache.backtest_part(
        "cumulative", fit, {"first": all_rfm[["first_date"]],
                            "cal": cal[["profile_id", "local_date"]], "hold": hold_tx},
        lambda: cumulative_transactions(fit, all_rfm, cal, hold_tx, cal_end, as_of,
                                        params.credible_interval),
        cal_end=cal_end.isoformat(), as_of=as_of.isoformat(), ci=params.credible_interval)
    return BacktestResult(summary, by, cumulative, coverage, per, fit, rel, track)


def scored_profiles(rfm: pd.DataFrame, purchase_rows: int, seed: int) -> pd.DataFrame:
    """The calibration profiles whose holdout is scored: all of them, or, with
    :data:`~hubnb.clv.laplace.LARGE_ROWS` or more distinct purchase histories, a random
    sample of :data:`SCORED_PROFILES` (fixed by ``seed``, in profile order). The fit and the
    tracking plot use every profile; the per-customer scores and the holdout total are the
    sample's. At 10,000,000 customers this saves two minutes of predictions; 200,000
    customers put the sampling error of a share such as the coverage below 0.2 points."""
    from .laplace import LARGE_ROWS

    if purchase_rows < LARGE_ROWS or len(rfm) <= SCORED_PROFILES:
        return rfm
    rows = np.random.default_rng(seed).choice(len(rfm), SCORED_PROFILES, replace=False)
    return rfm.iloc[np.sort(rows)]


def reliability(per: pd.DataFrame, hold_tx: pd.DataFrame, cal_end: dt.date,
                bins: int = RELIABILITY_BINS) -> pd.DataFrame:
    """The reliability diagram of p_order_30d: ``bin`` (1..), ``profiles``, ``predicted``
    (the group's mean p_order_30d) and ``observed`` (the share that ordered within
    :data:`RELIABILITY_DAYS` days after ``cal_end``), groups of equal size by predicted
    value (module docstring)."""
    last = pd.Timestamp(cal_end) + pd.Timedelta(days=RELIABILITY_DAYS)
    early = hold_tx.loc[hold_tx["local_date"] <= last, "profile_id"].unique()
    ordered = per.index.isin(early).astype(float)
    predicted = per["p_order_30d"].to_numpy(float)
    ranks = pd.Series(predicted).rank(method="first").to_numpy()
    group = np.minimum((ranks - 1) * bins // max(len(ranks), 1), bins - 1).astype(int)
    frame = pd.DataFrame({"group": group, "predicted": predicted, "observed": ordered})
    out = (frame.groupby("group").agg(profiles=("predicted", "size"),
                                      predicted=("predicted", "mean"),
                                      observed=("observed", "mean"))
           .reset_index(drop=True))
    out.insert(0, "bin", np.arange(1, len(out) + 1))
    return out


def holdout_tracking(fit: FitResult, rfm: pd.DataFrame, hold_tx: pd.DataFrame,
                     cal_end: dt.date, days: int, credible_interval: float, pred,
                     seed: int = 1) -> pd.DataFrame:
    """Week by week over the holdout: ``day`` (days after ``cal_end``), ``actual``
    cumulative repeat orders of the scored customers, the model's ``predicted_mean`` and
    its predictive band ``lower``/``upper`` (module docstring)."""
    purchase = PURCHASE_MODELS[fit.model_name]
    ends = list(range(7, days + 1, 7))
    if not ends or ends[-1] != days:
        ends.append(days)
    sample, scale = rfm, 1.0
    if len(rfm) > TRACK_PROFILES:
        rows = np.random.default_rng(seed).choice(len(rfm), TRACK_PROFILES, replace=False)
        sample, scale = rfm.iloc[np.sort(rows)], len(rfm) / TRACK_PROFILES
    keys = (sample.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index())
    x, t_x, T = (keys[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    counts = keys["n"].to_numpy(float) * scale
    draws = posterior_draws(fit, TRACK_DRAWS)
    expected = np.stack([purchase.expected_orders(draws, x, t_x, T, float(t)) @ counts
                         for t in ends], axis=1)                    # draws x weeks
    tot = pred.total_draws
    dispersion = float(np.mean(tot["orders_var"]) / max(np.mean(tot["expected_orders"]), 1e-12))
    from scipy.stats import norm

    # evenly spaced normal quantiles (stratified), not random ones: a steady band
    z = norm.ppf((np.arange(TRACK_NORMALS) + 0.5) / TRACK_NORMALS).reshape(1, -1, 1)
    band = np.maximum(expected[:, None, :] + np.sqrt(dispersion * expected)[:, None, :] * z,
                      0.0).reshape(-1, len(ends))
    lo, hi = interval_bounds(credible_interval)
    offsets = (hold_tx.loc[hold_tx["profile_id"].isin(rfm.index), "local_date"]
               - pd.Timestamp(cal_end)).dt.days.to_numpy()
    actual = np.array([(offsets <= t).sum() for t in ends], dtype=float)
    return pd.DataFrame({"week": np.arange(1, len(ends) + 1), "day": ends, "actual": actual,
                         "predicted_mean": expected.mean(axis=0),
                         "lower": np.quantile(band, lo, axis=0),
                         "upper": np.quantile(band, hi, axis=0)})


def auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of ``score`` for the labels ``positive`` (Mann-Whitney U
    over average ranks: ties count one half); None without both classes."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(score, float))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score(per: pd.DataFrame, total: dict, credible_interval: float) -> dict:
    """The backtest's scores of a per-profile frame (see :class:`BacktestResult`)."""
    actual, predicted = per["actual"], per["predicted_mean"]
    inside = (actual >= per["pred_lower"]) & (actual <= per["pred_upper"])
    spend_inside = ((per["actual_spend"] >= per["spend_pred_lower"])
                    & (per["actual_spend"] <= per["spend_pred_upper"]))
    corr = (float(np.corrcoef(actual, predicted)[0, 1])
            if actual.std() > 0 and predicted.std() > 0 else None)
    n_actual = float(actual.sum())
    bought = (actual > 0).to_numpy()
    return {
        "actual_orders": int(n_actual),
        "predicted_orders": total,
        "total_error_pct": (100.0 * (total["mean"] - n_actual) / n_actual) if n_actual else None,
        "total_in_interval": bool(total["lower"] <= n_actual <= total["upper"]),
        "correlation": corr,
        "mae": float((actual - predicted).abs().mean()),
        "profiles": int(len(per)),
        "buyers": int(bought.sum()),
        "coverage": {"nominal": credible_interval, "orders": float(inside.mean()),
                     "orders_expected": (float(per["pred_mass"].mean())
                                         if "pred_mass" in per else None),
                     "clv": float(spend_inside.mean())},
        # lower churn and an earlier next order should rank the holdout's buyers first
        "auc": {"churn": auc(-per["churn_probability"].to_numpy(), bought),
                "next_order_date": auc(-per["days_to_next_order"].to_numpy(), bought)},
    }


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
    expected = np.maximum(_convolve(e_new, cohort.astype(float))[:, :n], 0.0)
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


def _convolve(rows: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Full linear convolution of each row of ``rows`` with ``kernel``, by FFT (numpy's:
    scipy.signal would add a second to every CLV notebook's imports). FFT round-off of
    order 1e-13 can land just below 0; the caller clips, since counts are never negative."""
    size = rows.shape[1] + len(kernel) - 1
    nfft = 1 << (size - 1).bit_length()
    spectrum = np.fft.rfft(rows, nfft, axis=1) * np.fft.rfft(kernel, nfft)
    return np.fft.irfft(spectrum, nfft, axis=1)[:, :size]
