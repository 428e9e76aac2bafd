"""compute_clv: from the data contract's tables to the CLV dashboard's numbers."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..params import ClvParams
from . import fitcache
from .backtest import BacktestResult, run_backtest
from .eligibility import eligibility_reasons
from .histories import compress, with_prior
from .mbg_cnbd import K_GRID, model_name, regularity_of
from .models import AUTO_CANDIDATES, FitResult
from .orders import counted_orders, historical_attributes, rfm_summary
from .population import pooled_share, pooling_plan
from .predict import PREDICTIVE, QUANTITIES, Predictions
from .selection import ModelChoice, with_approximate_posterior

INTERVAL_COLUMNS = ([f"{q}_{s}" for q in ("predicted_orders", "predicted_clv", "total_clv",
                                          "aov", "churn_probability", "days_to_next_order",
                                          "expected_next_order_date", "p_order_30d")
                     for s in ("mean", "lower", "upper")]
                    + [f"{q}_pred_{s}" for q in ("predicted_orders", "predicted_clv", "total_clv")
                       for s in ("lower", "upper")])
PROFILE_COLUMNS = (["profile_id", "email", "first_order_date", "last_order_date",
                    "historical_orders", "historical_clv", "avg_days_between_orders"]
                   + INTERVAL_COLUMNS)


@dataclass(frozen=True)
class ClvResult:
    """Everything the CLV report shows.

    Attributes
    ----------
    eligible : bool
        The data meet the eligibility bar (:mod:`hubnb.clv.eligibility`).
    reasons : list of str
        The unmet requirements (empty when eligible).
    profiles : DataFrame
        clv_profiles.csv: one row per profile with a counted order (:data:`PROFILE_COLUMNS`);
        predicted columns are null when no model was fitted.
    metrics : dict
        metrics.json's ``clv``.
    orders : DataFrame
        The counted orders: profile_id, order_id, placed_at, local_date, net_value.
    fit : FitResult or None
    backtest : BacktestResult or None
        The chosen model's backtest.
    predictions : Predictions or None
    selection : ModelChoice or None
        ``clv.model: auto``: both candidates' PSIS-LOO scores and why the winner won.
    backtests : dict
        Every candidate's backtest by model name (one entry unless ``auto``).
    """

    eligible: bool
    reasons: list
    profiles: pd.DataFrame
    metrics: dict
    orders: pd.DataFrame
    fit: FitResult | None = None
    backtest: BacktestResult | None = None
    predictions: Predictions | None = None
    selection: ModelChoice | None = None
    backtests: dict | None = None


def compute_clv(orders: pd.DataFrame, refunds: pd.DataFrame | None, profiles: pd.DataFrame | None,
                clv_params: ClvParams, as_of: dt.date, timezone: str,
                progress: bool = False, population=None) -> ClvResult:
    """Historical attributes, eligibility, the Bayesian fit, predictions and backtest.

    Parameters
    ----------
    orders, refunds, profiles : DataFrame
        The data contract's tables (validated by :mod:`hubnb.data`).
    clv_params : ClvParams
        The ``clv`` params.
    as_of : date
        Last local day of data.
    timezone : str
        The merchant's IANA time zone.
    progress : bool
        Show the sampler's progress bar.
    population : hubnb.clv.population.Population, optional
        A batch's population (population.json). With ``clv.pooling: auto`` a merchant below
        the eligibility bar, down to the floor (:func:`hubnb.clv.population.pooling_plan`),
        is fitted under its prior; an eligible merchant is not touched by it.

    Returns
    -------
    ClvResult
        Not eligible (``clv.force`` off, and not pooled): historical attributes only, no fit.
    """
    p = clv_params
    counted = counted_orders(orders, refunds, p.orders, as_of, timezone, p.history_days)
    hist = historical_attributes(counted)
    frame = _base_frame(hist, profiles)
    reasons = eligibility_reasons(counted, as_of)
    eligible = not reasons
    priors, pooling = pooling_plan(eligible, counted, p, population)
    metrics = {"eligible": eligible, "customers": int(len(hist)), "time_unit": "day",
               "horizon_days": p.horizon_days}
    if reasons:
        metrics["reasons"] = list(reasons)
    metrics["pooling"] = pooling
    if (not eligible and not p.force and not priors) or counted.empty:
        return ClvResult(eligible, list(reasons), _without_predictions(frame)[PROFILE_COLUMNS],
                         json_safe(metrics), counted)

    rfm = rfm_summary(counted, as_of)
    data = compress(rfm)
    if priors:      # pooled: the population's models, under its prior (no k grid)
        data = with_prior(data, priors)
        reg, candidates = None, tuple(priors)
    else:
        reg = regularity(data, p)
        candidates = candidate_models(p.model, reg["k"] if reg else 1)
    if p.model == "auto" and len(candidates) > 1:
        fits, selection, quick = choose_and_fit(data, p, progress, candidates)
    else:
        fits = {candidates[0]: fitcache.posterior_fit(candidates[0], data, p, progress)}
        selection, quick = None, {}
    fit = fits[selection.winner if selection else candidates[0]]
    pred = fitcache.predictions(fit, rfm, p.horizon_days, p.credible_interval, p.seed)
    frame = _with_predictions(frame, pred, as_of)
    d = fit.diagnostics
    if priors:
        pooling.update(model=fit.model_name, **pooled_share(fit, data, priors[fit.model_name]))
    metrics.update({
        "forced": not eligible and not priors,
        "model": {
            "name": fit.model_name,
            "params": {name: {"mean": float(fit.params_summary.loc[name, "mean"]),
                              "sd": float(fit.params_summary.loc[name, "sd"])}
                       for name in fit.param_names},
            "r_hat_max": d["r_hat_max"], "ess_bulk_min": d["ess_bulk_min"],
            "divergences": d["divergences"], "fit_seconds": d["fit_seconds"],
            "fit_cache_hit": bool(d.get("fit_cache_hit")),
            "flagged": d["flagged"], "flag_reasons": list(d["flag_reasons"]),
            "chains": p.chains, "draws": p.draws, "tune": p.tune,
            "posterior": d.get("posterior", "nuts"),
            "requested": p.model,
        },
        "totals": pred.totals,
        "credible_interval": p.credible_interval,
    })
    if d.get("posterior") == "laplace-is":
        metrics["model"]["pareto_k"] = d["pareto_k"]
    if reg is not None:
        metrics["model"]["regularity"] = dict(reg, grid={str(k): v for k, v in reg["grid"].items()},
                                              median_gap_days=median_gap_days(rfm))
    if selection is not None:
        metrics["model"]["selection"] = selection.as_metrics()
        for name, c in metrics["model"]["selection"]["candidates"].items():
            f = fits.get(name)
            c.update(sampled=f is not None,
                     posterior=f.diagnostics.get("posterior", "nuts") if f else None,
                     r_hat_max=f.diagnostics["r_hat_max"] if f else None,
                     fit_seconds=f.diagnostics["fit_seconds"] if f else None,
                     flagged=f.diagnostics["flagged"] if f else None)
            if name in quick:
                c.update(laplace_seconds=quick[name].seconds,
                         laplace_pareto_k=quick[name].pareto_k)
    backtest, backtests = None, {}
    if p.backtest_days > 0:
        # Every candidate is backtested: the chosen model as it was fitted, the others on
        # their Laplace approximation where it is trusted, else NUTS (hubnb.clv.backtest)
        backtests = {name: run_backtest(orders, refunds, p, as_of, timezone, progress=progress,
                                        model=name, approximate=name != fit.model_name,
                                        priors=priors)
                     for name in candidates}
        backtest = backtests[fit.model_name]
        metrics["backtest"] = dict(backtest.summary)
        if len(backtests) > 1:
            metrics["backtest"]["candidates"] = {n: dict(b.summary) for n, b in backtests.items()}
    return ClvResult(eligible, list(reasons), frame[PROFILE_COLUMNS],
                     json_safe(public_names(metrics)), counted, fit, backtest, pred, selection,
                     backtests)


def public_names(metrics: dict) -> dict:
    """metrics.json names MBG/CNBD-k as the data contract does: ``mbg_cnbd`` with
    ``regularity_k`` beside it (in ``model``, in each selection candidate and backtest),
    where the engine calls it ``mbg_cnbd_k<K>``; k = 1 is ``mbg_nbd`` itself."""
    def public(name):
        k = regularity_of(name)
        return ("mbg_cnbd", k) if k > 1 else (name, None)

    model = metrics.get("model") or {}
    if "name" in model:
        model["name"], k = public(model["name"])
        if k is not None or model.get("requested") == "mbg_cnbd":
            model["regularity_k"] = k or 1          # mbg_cnbd with k = 1: MBG/NBD itself
    sel = model.get("selection")
    if sel:
        sel["winner"] = public(sel["winner"])[0]
        renamed = {}
        for name, c in sel["candidates"].items():
            new, k = public(name)
            renamed[new] = dict(c, **({"regularity_k": k} if k else {}))
        sel["candidates"] = renamed
    bt = metrics.get("backtest")
    if bt:
        for summary in [bt, *(bt.get("candidates") or {}).values()]:
            new, k = public(summary.get("model", ""))
            summary["model"] = new
            if k:
                summary["regularity_k"] = k
        if bt.get("candidates"):
            bt["candidates"] = {public(n)[0]: v for n, v in bt["candidates"].items()}
    return metrics


def choose_and_fit(data, p: ClvParams, progress: bool = False,
                   candidates: tuple[str, ...] = AUTO_CANDIDATES):
    """``clv.model: auto``: ``(NUTS fits by name, ModelChoice, Laplace fits by name)``.

    Every candidate is first approximated (:mod:`hubnb.clv.laplace`, a second or two each)
    and the approximations compared by PSIS-LOO. When every approximation is trusted
    (Pareto k of its importance weights at most 0.7), the choice stands on those scores
    (``method`` ``psis-loo (laplace)``) and only the winner is sampled with NUTS: a clear
    winner needs no more evidence, and between candidates that predict about equally well
    the choice hardly changes the predictions, so sampling the other in full would buy
    nothing the report uses. Otherwise every candidate is sampled and compared on its
    NUTS draws, as without the quick pass.
    """
    quick = {name: fitcache.quick_fit(name, data, p.seed) for name in candidates}
    if all(q is not None and q.reliable for q in quick.values()):
        choice = fitcache.model_choice(quick, method="psis-loo (laplace)")
        winner = fitcache.posterior_fit(choice.winner, data, p, progress,
                                        quick=quick[choice.winner])
        if winner.diagnostics.get("posterior") == "laplace-is":
            choice = with_approximate_posterior(choice)
        return {choice.winner: winner}, choice, quick
    fits = {name: fitcache.nuts_fit(name, data, p, progress) for name in candidates}
    return fits, fitcache.model_choice(fits), {k: v for k, v in quick.items() if v is not None}


def candidate_models(model: str, k: int = 1) -> tuple[str, ...]:
    """The purchase models ``clv.model`` fits: for ``auto`` Pareto/NBD, MBG/NBD and, when the
    data chose a regularity k > 1, MBG/CNBD-k; for ``mbg_cnbd`` MBG/CNBD-k (k = 1 is
    MBG/NBD); else the model itself."""
    if model == "auto":
        return AUTO_CANDIDATES + ((model_name(k),) if k > 1 else ())
    if model == "mbg_cnbd":
        return (model_name(k),)
    return (model,)


def regularity(data, p: ClvParams) -> dict | None:
    """MBG/CNBD-k's k for ``auto`` and ``mbg_cnbd`` (None for the other models, or when the
    data carry no gaps between orders): ``{"k", "fixed", "grid"}``.

    ``clv.regularity_k`` (``mbg_cnbd`` only) fixes k. Otherwise each k of :data:`~hubnb.clv.mbg_cnbd.K_GRID`
    (1..6) gets a cheap score, the log posterior density at its mode plus the customers'
    likelihood constants (:func:`hubnb.clv.laplace.mode_score`, a BFGS run of a fraction of
    a second started from the previous k's mode, cached), and the best k wins; the search stops once the score has fallen
    twice in a row (BTYDplus's rule). Only that k's model is then approximated, compared
    by PSIS-LOO and, if it wins, sampled. Where the data show no regularity the best k is
    1, MBG/NBD itself, and ``auto`` has its two candidates as before.
    """
    if p.model not in ("auto", "mbg_cnbd"):
        return None
    if p.regularity_k is not None:
        return {"k": int(p.regularity_k), "fixed": True, "grid": {}}
    if not float(data.arrays.get("has_litt", 0.0)):
        return None
    scores: dict[int, float] = {}
    mode = None
    for k in K_GRID:
        scores[k], found = fitcache.mode_score(model_name(k), data, mode)
        mode = found if found is not None else mode      # the next k starts from here
        s = [scores[j] for j in sorted(scores)]
        if len(s) >= 3 and s[-1] < s[-2] < s[-3]:
            break
    best = max(scores, key=lambda k: scores[k])
    return {"k": int(best), "fixed": False, "grid": scores}


def median_gap_days(rfm: pd.DataFrame) -> float | None:
    """The median, over customers with a repeat order, of their average days between
    orders (t_x / x): "about every N days" in the model-choice card."""
    x = rfm["frequency"].to_numpy(float)
    repeat = x > 0
    if not repeat.any():
        return None
    return float(np.median(rfm["recency"].to_numpy(float)[repeat] / x[repeat]))


def _base_frame(hist: pd.DataFrame, profiles: pd.DataFrame | None) -> pd.DataFrame:
    frame = hist.copy()
    if profiles is not None and "email" in profiles:
        email = profiles.drop_duplicates("profile_id").set_index("profile_id")["email"]
        frame["email"] = frame["profile_id"].map(email)
    else:
        frame["email"] = None
    return frame


def _without_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    """The predicted columns, empty (no model was fitted)."""
    for col in INTERVAL_COLUMNS:
        frame[col] = pd.NaT if col.startswith("expected_next") else np.nan
    return frame


def _with_predictions(frame: pd.DataFrame, pred: Predictions, as_of: dt.date) -> pd.DataFrame:
    rows = pred.rows(frame["profile_id"].to_numpy())
    for q in QUANTITIES:
        for s in ("mean", "lower", "upper"):
            frame[f"{q}_{s}"] = pred.column(f"{q}_{s}", rows)
    for q in PREDICTIVE:
        for s in ("pred_lower", "pred_upper"):
            frame[f"{q}_{s}"] = pred.column(f"{q}_{s}", rows)
    for s in ("mean", "lower", "upper", "pred_lower", "pred_upper"):
        frame[f"total_clv_{s}"] = frame["historical_clv"] + frame[f"predicted_clv_{s}"]
    for s in ("mean", "lower", "upper"):
        frame[f"expected_next_order_date_{s}"] = next_order_dates(
            frame[f"days_to_next_order_{s}"].to_numpy(float), as_of)
    return frame


def next_order_dates(days: np.ndarray, as_of: dt.date) -> np.ndarray:
    """as_of + days, rounded to whole days, as second-resolution datetimes: the CSV keeps
    dates far beyond the horizon (the report shows them as "not expected within ...").
    Only a wait past the year 9999 (the model's "practically never") is left empty."""
    days = np.asarray(days, dtype=float)
    limit = (dt.date(9999, 12, 31) - as_of).days
    ok = np.isfinite(days) & (days <= limit)
    out = np.full(len(days), np.datetime64("NaT"), dtype="datetime64[s]")
    out[ok] = (np.datetime64(as_of, "D")
               + np.round(days[ok]).astype("timedelta64[D]")).astype("datetime64[s]")
    return out


def json_safe(obj):
    """NaN and inf become None; numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
