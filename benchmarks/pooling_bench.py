"""Partial pooling (issue 20): does a small merchant's CLV get better under its peers' prior?

A merchant below Klaviyo's eligibility bar (500 customers with orders, 180 days of history,
orders in the last 30 days, 10 customers with 3+ orders) gets no predictive CLV from
Klaviyo. hubnb learns a population prior from the eligible merchants of a batch
(:mod:`hubnb.clv.population`) and fits the small merchant under it. This benchmark
compares, on merchants under 500 customers, three answers over a holdout:

- **pooled**: ``compute_clv(..., population=pop)`` with ``clv.pooling: auto``;
- **unpooled**: the merchant fitted alone (``clv.force: true, clv.pooling: off``);
- **Klaviyo**: no prediction at all. Coverage and churn AUC are n/a; for the MAE and the
  total error its prediction is taken as 0 orders per customer (so its MAE is the mean
  number of holdout orders and its total error is -100%).

The calibration/holdout split is done here, not by ``clv.backtest_days``: each merchant is
fitted with ``as_of`` = the calibration end on its orders up to then, ``horizon_days`` =
the holdout's length; each calibration customer's actual holdout orders are its
transactions (same-day orders merged, as hubnb counts them: ``counted_orders`` over the
holdout's local days, then ``transactions``) in the holdout, as
:func:`hubnb.clv.backtest.run_backtest` counts them. Customers first seen in the holdout
are not scored. Scores per group of merchants, over all their customers:

- **MAE**: mean |actual - predicted_orders_mean| per customer (**RMSE** beside it: the
  mean is what minimises squared error, while MAE is minimised by the median, which is 0
  for most customers of a holdout: predicting 0 can beat even the true model on MAE);
- **total**: (sum predicted - sum actual) / sum actual of the holdout orders;
- **cover**: share of customers whose actual holdout orders lie inside
  [predicted_orders_pred_lower, predicted_orders_pred_upper] (``credible_interval`` 0.9);
- **AUC**: churn AUC, the probability that ``churn_probability_mean`` ranks a random
  customer with no holdout order above a random customer with one (ties one half; the
  rank formula of :func:`hubnb.clv.backtest.auc`), averaged over the group's merchants;
  **AUCord** beside it ranks by ``predicted_orders_mean`` for "an order in the holdout"
  (BG/NBD says P(alive) = 1 for a customer without a repeat order, so under BG/NBD the
  churn ranking alone is a weak predictor even with the true parameters).

Two settings:

1. **Simulated batch** from a known hierarchical truth. ``--merchants`` (40) merchants,
   customer counts spread log-uniformly (stratified, fixed seed) from 50 to 20,000; each
   merchant's BG/NBD purchase parameters (r, alpha, a, b) and Gamma-Gamma (p, q, v) drawn
   around hubnb.demo's truth (TRUE_BG_NBD, TRUE_GAMMA_GAMMA) with an sd of ``--spread``
   (0.3) on each of hubnb's coordinates: log r, log alpha, log a, log b, log p,
   log (q - 1), log v. Customers are acquired uniformly over ``--cal-days`` (730) days,
   then scored on a ``--holdout-days`` (180) holdout. Orders are simulated straight into a
   data-contract orders frame (no files). The table adds the **oracle**: predictions
   under the merchant's true parameters (:func:`hubnb.clv.predict.predict` on them): no
   parameter error left, so its MAE is what a fit can reach in expectation and "MAE above
   the oracle's" is the part of the error pooling can act on (on a finite holdout a fit
   can land below it by chance). The learned population of BG/NBD is printed beside the
   truth.
2. **CDNOW subsets**: small merchants drawn as disjoint random customer subsets (50, 100,
   200 and 400 customers; ``--cdnow-seeds`` draws of each) of CDNOW full, pooled with the
   rest of CDNOW split at random into ``--cdnow-groups`` (6) eligible pseudo-merchants.
   The literature's split: calibration to 1997-09-30, 39 weeks (273 days) of holdout.

Each table ends with the eligible merchants of the batch, fitted alone and scored the same
way, for reference.

The population step is what ``hubnb batch`` does before the merchants' runs: each
merchant's evidence (its counted orders and eligibility and, when eligible, the Laplace
fits of the pooled models summarised by :func:`~hubnb.clv.population.merchant_summary`,
mirroring :func:`~hubnb.clv.population.merchant_evidence` without files), then
:func:`~hubnb.clv.population.learn_population`. It is timed against the batch's
per-merchant runs, the sum of the ``compute_clv`` times of every merchant of the batch
(eligible ones alone, small ones pooled). The population goes through
``Population.write`` / ``read_population`` before use. With ``--check-api`` the first
eligible simulated merchant is also written as a dataset folder and params file under
/tmp and :func:`~hubnb.clv.population.merchant_evidence` itself is compared with the
mirror.

**Two stages against one.** hubnb learns the population in two stages (each merchant's
likelihood summarised as a Normal, then a hierarchical Normal model over the summaries).
In each setting the one-stage model (benchmarks/pooling_onestage.py: partial pooling in
PyMC on every merchant's weighted distinct-history rows at once, the same coordinates and
priors) is fitted on the ``--one-stage-merchants`` (6) smallest eligible merchants, for
MBG/NBD, beside the two-stage one on the same merchants: the population means (their
difference in posterior sds), spreads and new-merchant prior sds side by side, and the
small merchants' holdout MAE and coverage under each prior (``clv.model: mbg_nbd``). Only
the smallest, because the one-stage sampler takes tiny steps along the large merchants'
well-determined parameters (25 merchants up to 17,000 customers ran for over 10 minutes).
``--skip-one-stage`` leaves it out.

Targets (met/MISSED is printed for each setting):

- pooled MAE at least 10% below unpooled MAE (all small merchants' customers);
- pooled 90% predictive coverage at least 85%;
- the population step faster than the batch's per-merchant runs.

Reduced sampler settings keep it to about 4-6 minutes on 2 cores (``--draws 500``, as many
tuning steps, 2 chains); the fit cache is off (``HUBNB_FIT_CACHE=0``) so every fit timed is
a fit made. ``--quick`` is a smoke run (10 merchants up to 4,000 customers, one CDNOW
seed; about 1.5 minutes)::

    .venv/bin/python benchmarks/pooling_bench.py [--quick] [--draws 500] [--merchants 40]
                                                 [--skip-sim] [--skip-cdnow] [--check-api]

Needs data/cdnow (``make cdnow``) for the second setting; writes
benchmarks/results/pooling_<time>.json.
"""

from __future__ import annotations

import os

os.environ["HUBNB_FIT_CACHE"] = "0"     # before hubnb is imported: every fit timed is made

import argparse
import datetime as dt
import hashlib
import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MAE_TARGET = 0.10           # pooled MAE at least 10% below unpooled
COVERAGE_TARGET = 0.85      # pooled 90% predictive intervals cover at least 85%
TIMEZONE = "UTC"
SMALL = 500                 # hubnb.clv.eligibility.MIN_CUSTOMERS
START = dt.date(2022, 1, 1)     # first day of the simulated merchants
CDNOW_AS_OF = dt.date(1998, 6, 30)
CDNOW_CAL_END = dt.date(1997, 9, 30)
CDNOW_SIZES = (50, 100, 200, 400)
METHODS = ("pooled", "unpooled", "klaviyo")


# ------------------------------------------------------------------ simulated merchants

def truth_centre() -> dict:
    """log of hubnb.demo's truth on hubnb's seven coordinates (v in currency units)."""
    from hubnb.demo import TRUE_BG_NBD, TRUE_GAMMA_GAMMA

    b, g = TRUE_BG_NBD, TRUE_GAMMA_GAMMA
    return {"r": math.log(b["r"]), "alpha": math.log(b["alpha"]), "a": math.log(b["a"]),
            "b": math.log(b["b"]), "p": math.log(g["p"]), "q-1": math.log(g["q"] - 1.0),
            "v": math.log(g["v"])}


def merchant_truths(n: int, lo: int, hi: int, spread: float, seed: int) -> list[dict]:
    """``n`` merchants: customers log-uniform on [lo, hi] (one per stratum of equal log
    width, shuffled), parameters log-Normal around the demo truth with sd ``spread``."""
    rng = np.random.default_rng(seed)
    u = (np.arange(n) + rng.random(n)) / n
    sizes = np.round(np.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))).astype(int)
    rng.shuffle(sizes)
    centre = truth_centre()
    out = []
    for i, size in enumerate(sizes):
        theta = {k: c + spread * rng.standard_normal() for k, c in centre.items()}
        out.append({"merchant": f"sim{i:02d}", "customers": int(size),
                    "r": math.exp(theta["r"]), "alpha": math.exp(theta["alpha"]),
                    "a": math.exp(theta["a"]), "b": math.exp(theta["b"]),
                    "p": math.exp(theta["p"]), "q": 1.0 + math.exp(theta["q-1"]),
                    "v": math.exp(theta["v"]), "seed": int(rng.integers(2 ** 31))})
    return out


def simulate_orders(t: dict, cal_days: int, holdout_days: int) -> pd.DataFrame:
    """A merchant's orders (data contract columns) under BG/NBD + Gamma-Gamma with the true
    parameters ``t``: first orders uniform over the ``cal_days`` calibration days; then, up
    to the end of the holdout, a Poisson process of rate lambda ~ Gamma(r, alpha) per day
    while alive, dropout with probability p ~ Beta(a, b) after each repeat order (FHL05,
    as hubnb.demo draws it); order values Gamma(p, nu), nu ~ Gamma(q, v)."""
    rng = np.random.default_rng(t["seed"])
    n = t["customers"]
    end = float(cal_days + holdout_days)
    first = np.sort(rng.random(n) * cal_days)
    lam = rng.gamma(t["r"], 1.0 / t["alpha"], n)
    p_drop = np.clip(rng.beta(t["a"], t["b"], n), 1e-12, 1.0)
    n_repeat_max = rng.geometric(p_drop)
    span = end - first
    m = rng.poisson(lam * span)
    owner = np.repeat(np.arange(n), m)
    arr = rng.random(owner.size) * span[owner]
    order = np.lexsort((arr, owner))
    owner, arr = owner[order], arr[order]
    starts = np.concatenate([[0], np.cumsum(m)[:-1]])
    rank = np.arange(owner.size) - starts[owner]
    keep = rank < n_repeat_max[owner]
    owner = np.concatenate([np.arange(n), owner[keep]])
    when = np.concatenate([first, first[owner[n:]] + arr[keep]])
    nu = rng.gamma(t["q"], 1.0 / t["v"], n)
    value = np.maximum(np.round(rng.gamma(t["p"], 1.0 / nu[owner]), 2), 0.01)
    epoch = pd.Timestamp(START, tz="UTC")
    placed = epoch + pd.to_timedelta(np.floor(when * 86400), unit="s")
    srt = np.lexsort((owner, when))
    frame = pd.DataFrame({
        "order_id": [f"{t['merchant']}-o{i}" for i in range(len(srt))],
        "profile_id": pd.Series([f"{t['merchant']}-p{o}" for o in owner[srt]], dtype="string"),
        "placed_at": pd.DatetimeIndex(placed[srt]).as_unit("us"),
        "value": value[srt].astype(float),
        "source_name": "web", "is_subscription": False, "signed_in": False,
    })
    frame["order_id"] = frame["order_id"].astype("string")
    return frame


# ------------------------------------------------------------------ scoring

def clv_params(args, horizon_days: int):
    from hubnb.params import ClvParams

    return ClvParams(horizon_days=horizon_days, history_days=1500, model=args.model,
                     credible_interval=0.9, chains=2, draws=args.draws, tune=args.draws,
                     seed=args.seed, backtest_days=0, pooling="auto")


def calibration(orders: pd.DataFrame, cal_end: dt.date) -> pd.DataFrame:
    from hubnb.clv.orders import cutoff_utc

    return orders[orders["placed_at"] < cutoff_utc(cal_end, TIMEZONE)]


def holdout_actuals(orders: pd.DataFrame, cal_end: dt.date, holdout_days: int,
                    profiles) -> pd.Series:
    """Each calibration profile's transactions (local days with a counted order) in the
    ``holdout_days`` local days after ``cal_end``, as hubnb's backtest counts them."""
    from hubnb.clv.orders import counted_orders, transactions
    from hubnb.params import OrderFilter

    end = cal_end + dt.timedelta(days=holdout_days)
    hold = counted_orders(orders, None, OrderFilter(), end, TIMEZONE, holdout_days)
    tx = transactions(hold[hold["profile_id"].isin(profiles)])
    return tx.groupby("profile_id").size().reindex(profiles, fill_value=0).astype(float)


def scores_of(actual: np.ndarray, mean=None, lower=None, upper=None, churn=None) -> dict:
    """The per-customer sums a group's scores are made of (and the merchant's AUC)."""
    from hubnb.clv.backtest import auc

    out = {"customers": len(actual), "actual": float(actual.sum())}
    pred = np.zeros(len(actual)) if mean is None else np.asarray(mean, float)
    out["abs_error"] = float(np.abs(actual - pred).sum())
    out["sq_error"] = float(((actual - pred) ** 2).sum())
    out["predicted"] = float(pred.sum())
    if lower is not None:
        out["inside"] = int(((actual >= lower) & (actual <= upper)).sum())
    if churn is not None:
        out["churn_auc"] = auc(np.asarray(churn, float), actual == 0)
        out["orders_auc"] = auc(pred, actual > 0)
    return out


def result_scores(res, actual: pd.Series) -> dict | None:
    """Scores of a ClvResult's per-profile predictions, or None when nothing was fitted."""
    prof = res.profiles.set_index("profile_id").reindex(actual.index)
    if prof["predicted_orders_mean"].isna().all():
        return None
    return scores_of(actual.to_numpy(), prof["predicted_orders_mean"].to_numpy(float),
                     prof["predicted_orders_pred_lower"].to_numpy(float),
                     prof["predicted_orders_pred_upper"].to_numpy(float),
                     prof["churn_probability_mean"].to_numpy(float))


def oracle_scores(t: dict, orders_cal: pd.DataFrame, cal_end: dt.date, holdout_days: int,
                  actual: pd.Series) -> dict:
    """Predictions under the merchant's true parameters (no parameter uncertainty)."""
    from hubnb.clv.orders import counted_orders, rfm_summary
    from hubnb.clv.predict import MAX_SIM_DRAWS, predict
    from hubnb.params import OrderFilter

    rfm = rfm_summary(counted_orders(orders_cal, None, OrderFilter(), cal_end, TIMEZONE, 1500),
                      cal_end)
    true = {k: np.full(MAX_SIM_DRAWS, t[k]) for k in ("r", "alpha", "a", "b", "p", "q", "v")}
    pred = predict(true, rfm, holdout_days, 0.9, model_name="bg_nbd", seed=1)
    col = {c: pd.Series(pred.column(c), index=pred.index).reindex(actual.index).to_numpy()
           for c in ("predicted_orders_mean", "predicted_orders_pred_lower",
                     "predicted_orders_pred_upper", "churn_probability_mean")}
    return scores_of(actual.to_numpy(), col["predicted_orders_mean"],
                     col["predicted_orders_pred_lower"], col["predicted_orders_pred_upper"],
                     col["churn_probability_mean"])


def group_scores(rows: list[dict]) -> dict | None:
    """Customer-weighted scores over a group's merchants (AUC: mean over merchants)."""
    rows = [r for r in rows if r is not None]
    if not rows:
        return None
    n = sum(r["customers"] for r in rows)
    actual = sum(r["actual"] for r in rows)
    out = {"merchants": len(rows), "customers": n,
           "mae": sum(r["abs_error"] for r in rows) / n,
           "rmse": math.sqrt(sum(r["sq_error"] for r in rows) / n),
           "total_error_pct": (100 * (sum(r["predicted"] for r in rows) - actual) / actual
                               if actual else None)}
    if all("inside" in r for r in rows):
        out["coverage"] = sum(r["inside"] for r in rows) / n
    for key in ("churn_auc", "orders_auc"):
        aucs = [r[key] for r in rows if r.get(key) is not None]
        if key in rows[0]:
            out[key] = float(np.mean(aucs)) if aucs else None
    return out


# ------------------------------------------------------------------ the population step

def evidence_of(name: str, orders_cal: pd.DataFrame, cal_end: dt.date, p) -> dict:
    """:func:`hubnb.clv.population.merchant_evidence` without a params file or data folder:
    the same steps on an orders frame (fingerprints are a hash of the merchant's orders)."""
    from hubnb.clv.eligibility import eligibility_reasons
    from hubnb.clv.histories import compress
    from hubnb.clv.orders import counted_orders, rfm_summary
    from hubnb.clv.population import summaries_of

    counted = counted_orders(orders_cal, None, p.orders, cal_end, TIMEZONE, p.history_days)
    eligible = not eligibility_reasons(counted, cal_end)
    digest = hashlib.sha256(pd.util.hash_pandas_object(orders_cal[["profile_id", "placed_at",
                                                                   "value"]],
                                                       index=False).to_numpy().tobytes())
    out = {"merchant": name, "params": f"{name}.yaml", "params_fingerprint": name,
           "data_fingerprint": digest.hexdigest()[:16], "eligible": eligible,
           "customers": int(counted["profile_id"].nunique()), "summaries": {}}
    if eligible:
        out["summaries"] = summaries_of(compress(rfm_summary(counted, cal_end)), p.seed)
    return out


def population_step(merchants: dict, cal_end_of, p, tmp: Path, label: str):
    """Evidence of every merchant, then learn_population; written and read back.
    Returns (population, evidence by merchant, seconds: evidence, learn)."""
    from hubnb.clv.population import learn_population, read_population

    t0 = time.perf_counter()
    evidence = {name: evidence_of(name, o, cal_end_of(name), p) for name, o in merchants.items()}
    t1 = time.perf_counter()
    pop = learn_population(list(evidence.values()), seed=p.seed)
    t2 = time.perf_counter()
    if pop is None:
        return None, evidence, (t1 - t0, t2 - t1)
    path = pop.write(tmp / f"population_{label}.json")
    return read_population(path), evidence, (t1 - t0, t2 - t1)


def check_evidence_api(name: str, orders_cal: pd.DataFrame, cal_end: dt.date, p,
                       mirror: dict, tmp: Path) -> dict:
    """merchant_evidence on a params file + dataset folder of the same merchant, against
    the mirror's summaries (max abs difference of means and covariances per model)."""
    import yaml

    from hubnb.clv.population import merchant_evidence

    folder = tmp / f"data_{name}"
    folder.mkdir(parents=True, exist_ok=True)
    first = orders_cal.groupby("profile_id")["placed_at"].min()
    iso = lambda s: s.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    pd.DataFrame({"profile_id": first.index, "created_at": iso(first.reset_index(drop=True)),
                  "account_created_at": "", "email": ""}).to_csv(folder / "profiles.csv",
                                                                index=False)
    o = orders_cal.copy()
    o["placed_at"] = iso(o["placed_at"])
    o["cancelled_at"] = ""
    o.to_csv(folder / "orders.csv", index=False)
    params = {"merchant": name, "data": str(folder), "timezone": TIMEZONE, "currency": "USD",
              "as_of": cal_end.isoformat(),
              "clv": {"horizon_days": p.horizon_days, "model": p.model, "draws": p.draws,
                      "tune": p.tune, "seed": p.seed}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    t0 = time.perf_counter()
    ev = merchant_evidence(path)
    out = {"seconds": round(time.perf_counter() - t0, 2), "error": ev.get("error"),
           "eligible": ev.get("eligible"), "customers": ev.get("customers"),
           "mirror_customers": mirror["customers"], "models": {}}
    for model, s in ev.get("summaries", {}).items():
        m = mirror["summaries"].get(model)
        out["models"][model] = None if m is None else {
            "mean_diff": float(np.abs(s.mean - m.mean).max()),
            "cov_diff": float(np.abs(s.cov - m.cov).max())}
    return out


# ------------------------------------------------------------------ one batch

def run_batch(label: str, merchants: dict, cal_end_of, holdout_days: int, args, tmp: Path,
              truths: dict | None = None, full_orders: dict | None = None) -> dict:
    """The population step, then every merchant's compute_clv (eligible: alone; small:
    pooled, unpooled and Klaviyo), scored on the holdout. ``merchants``: calibration
    orders by name; ``full_orders``: the orders through the holdout (for the actuals)."""
    from hubnb.clv.compute import compute_clv

    p = clv_params(args, holdout_days)
    pop, evidence, (ev_s, learn_s) = population_step(merchants, cal_end_of, p, tmp, label)
    out = {"population": {"evidence_seconds": ev_s, "learn_seconds": learn_s,
                          "seconds": ev_s + learn_s, "learned": pop is not None},
           "merchants": {}}
    if pop is not None:
        out["population"]["models"] = {
            n: {"merchants": m.merchants, "mu": list(map(float, m.mu_mean)),
                "tau": list(map(float, m.tau_mean)), "prior_sigma": list(map(float,
                                                                             m.prior_sigma)),
                "coordinates": list(m.coordinates), "diagnostics": m.diagnostics}
            for n, m in pop.models.items()}
    eligible = sum(bool(e["eligible"]) for e in evidence.values())
    print(f"\n[{label}] population step: evidence of {len(merchants)} merchants "
          f"({eligible} eligible) {ev_s:.1f} s, learn_population {learn_s:.1f} s"
          + ("" if pop is not None else " -- NO POPULATION (fewer than 3 eligible)"))
    if pop is not None:
        for n, m in pop.models.items():
            d = m.diagnostics
            left = sorted(k for k, e in evidence.items() if e["eligible"]
                          and n not in e["summaries"])
            print(f"  {n:11s} {m.merchants} merchants, r_hat_max {d.get('r_hat_max', 0):.3f}, "
                  f"divergences {d.get('divergences')}, {d.get('seconds')} s"
                  + (f" (left out, Laplace fit missing or not trusted: {', '.join(left)})"
                     if left else ""))
    unpooled_p = replace(p, force=True, pooling="off")
    batch_seconds = 0.0
    for i, (name, orders_cal) in enumerate(merchants.items()):
        ev = evidence[name]
        cal_end = cal_end_of(name)
        row = {"customers": ev["customers"], "eligible": ev["eligible"]}
        t0 = time.perf_counter()
        res = compute_clv(orders_cal, None, None, p, cal_end, TIMEZONE, population=pop)
        row["batch_seconds"] = time.perf_counter() - t0
        batch_seconds += row["batch_seconds"]
        if ev["eligible"]:         # scored too, as a reference for the small ones
            actual = holdout_actuals(full_orders[name], cal_end, holdout_days,
                                     res.profiles["profile_id"])
            row["alone"] = result_scores(res, actual)
            row["klaviyo"] = scores_of(actual.to_numpy())
            if truths is not None:
                row["oracle"] = oracle_scores(truths[name], orders_cal, cal_end,
                                              holdout_days, actual)
            out["merchants"][name] = row
            print(f"  [{i + 1}/{len(merchants)}] {name}: {ev['customers']:,} customers, "
                  f"eligible, fitted alone in {row['batch_seconds']:.1f} s")
            continue
        profiles = res.profiles["profile_id"]
        actual = holdout_actuals(full_orders[name], cal_end, holdout_days, profiles)
        pooling = res.metrics.get("pooling", {})
        row["pooling"] = {k: pooling.get(k) for k in ("used", "model", "prior_share",
                                                      "prior_share_purchase",
                                                      "prior_share_spend", "reason")}
        row["pooled_model"] = (res.metrics.get("model") or {}).get("name")
        row["pooled"] = result_scores(res, actual)
        t0 = time.perf_counter()
        alone = compute_clv(orders_cal, None, None, unpooled_p, cal_end, TIMEZONE)
        row["unpooled_seconds"] = time.perf_counter() - t0
        row["unpooled_model"] = (alone.metrics.get("model") or {}).get("name")
        row["unpooled_flagged"] = (alone.metrics.get("model") or {}).get("flag_reasons")
        row["pooled_flagged"] = (res.metrics.get("model") or {}).get("flag_reasons")
        row["unpooled"] = result_scores(alone, actual)
        row["klaviyo"] = scores_of(actual.to_numpy())
        if truths is not None:
            row["oracle"] = oracle_scores(truths[name], orders_cal, cal_end, holdout_days,
                                          actual)
        out["merchants"][name] = row
        ps = row["pooling"].get("prior_share")
        print(f"  [{i + 1}/{len(merchants)}] {name}: {ev['customers']:,} customers, "
              f"pooled {row['pooled_model']} ({row['batch_seconds']:.1f} s, prior share "
              f"{'n/a' if ps is None else f'{ps:.2f}'}), unpooled {row['unpooled_model']} "
              f"({row['unpooled_seconds']:.1f} s); MAE pooled "
              f"{_f(row['pooled'], 'mae')} unpooled {_f(row['unpooled'], 'mae')}"
              + (f" oracle {_f(row['oracle'], 'mae')}" if truths else ""))
    out["batch_seconds"] = batch_seconds
    if pop is not None and not args.skip_one_stage and "mbg_nbd" in pop.models:
        out["one_stage"] = one_stage_check(label, merchants, cal_end_of, evidence, pop, p,
                                           holdout_days, full_orders, args)
    return out


def one_stage_check(label, merchants, cal_end_of, evidence, pop, p, holdout_days,
                    full_orders, args) -> dict:
    """The two-stage population against the one-stage model (partial pooling in PyMC on
    every eligible merchant's rows, benchmarks/pooling_onestage.py), for MBG/NBD: the
    populations side by side, and the small merchants' holdout scores under each prior
    (``clv.model: mbg_nbd``, so both use the same model)."""
    from hubnb.clv.compute import compute_clv
    from hubnb.clv.histories import compress
    from hubnb.clv.orders import counted_orders, rfm_summary
    from hubnb.clv.population import Population, fit_population
    from pooling_onestage import agreement, one_stage_population

    # the one-stage model samples every merchant's theta: on a batch's largest merchants its
    # sampler needs tiny steps, so both models are compared on the smallest eligible ones
    peers = sorted((n for n in merchants if evidence[n]["eligible"]
                    and "mbg_nbd" in evidence[n]["summaries"]),
                   key=lambda n: evidence[n]["customers"])[:args.one_stage_merchants]
    datas = []
    for name in peers:
        counted = counted_orders(merchants[name], None, p.orders, cal_end_of(name), TIMEZONE,
                                 p.history_days)
        datas.append(compress(rfm_summary(counted, cal_end_of(name))))
    t0 = time.perf_counter()
    one = one_stage_population(datas, "mbg_nbd", draws=args.draws, seed=p.seed)
    seconds = time.perf_counter() - t0
    two = fit_population([evidence[n]["summaries"]["mbg_nbd"] for n in peers], seed=p.seed)
    agree = agreement(two, one)
    print(f"\n[{label}] one-stage MBG/NBD population on the {len(datas)} smallest eligible "
          f"merchants' rows ({', '.join(peers)}): "
          f"{seconds:.0f} s ({one.diagnostics['divergences']} divergences); two-stage "
          f"{two.diagnostics.get('seconds')} s")
    print(f"  {'coordinate':<14}{'mu 2-stage':>11}{'mu 1-stage':>11}{'diff/sd':>9}"
          f"{'tau 2':>8}{'tau 1':>8}{'prior sd 2/1':>14}")
    for j, c in enumerate(two.coordinates):
        print(f"  {c:<14}{two.mu_mean[j]:>11.3f}{one.mu_mean[j]:>11.3f}"
              f"{agree['mu_diff_in_sd'][j]:>9.2f}{two.tau_mean[j]:>8.3f}{one.tau_mean[j]:>8.3f}"
              f"{agree['prior_sigma_ratio'][j]:>14.2f}")
    mbg = replace(p, model="mbg_nbd")
    scored = {"two-stage": [], "one-stage": []}
    for name, orders_cal in merchants.items():
        if evidence[name]["eligible"]:
            continue
        for side, m in (("two-stage", two), ("one-stage", one)):
            population = Population({"mbg_nbd": m}, [{}] * m.merchants, "", "")
            res = compute_clv(orders_cal, None, None, mbg, cal_end_of(name), TIMEZONE,
                              population=population)
            actual = holdout_actuals(full_orders[name], cal_end_of(name), holdout_days,
                                     res.profiles["profile_id"])
            s = result_scores(res, actual)
            if s is not None:
                scored[side].append(s)
    summary = {}
    for side, rows in scored.items():
        n = sum(r["customers"] for r in rows) or 1
        summary[side] = {"mae": sum(r["abs_error"] for r in rows) / n,
                         "coverage": sum(r["inside"] for r in rows) / n}
    print(f"  small merchants pooled under each (MBG/NBD): MAE two-stage "
          f"{summary['two-stage']['mae']:.4f}, one-stage {summary['one-stage']['mae']:.4f}; "
          f"coverage {summary['two-stage']['coverage']:.3f} and "
          f"{summary['one-stage']['coverage']:.3f}")
    return {"seconds": seconds, "merchants": len(datas), "agreement": agree,
            "one_stage_diagnostics": one.diagnostics, "small_merchants": summary}


def _num(value, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def _f(s, key):
    if s is None:
        return "n/a"
    if key == "mae":
        return f"{s['abs_error'] / s['customers']:.3f}"
    return f"{s[key]:.3f}"


# ------------------------------------------------------------------ report

def report(label: str, out: dict, groups: list[tuple[str, list[str]]], oracle: bool) -> dict:
    """Prints the group table and the targets; returns the table and the targets."""
    methods = ("pooled", "unpooled", "klaviyo") + (("oracle",) if oracle else ())
    table = {}
    print(f"\n{label}: holdout scores of the merchants under {SMALL} customers (and of the "
          f"eligible ones, fitted alone, for reference)")
    print(f"  {'group':22s} {'method':9s} {'merch':>5s} {'cust':>7s} {'MAE':>7s} {'RMSE':>7s} "
          f"{'total':>8s} {'cover':>6s} {'AUCch':>6s} {'AUCord':>6s}")
    eligible = [n for n, r in out["merchants"].items() if r["eligible"]]
    ref = ("eligible (reference)", eligible)
    for gname, names in groups + [ref]:
        table[gname] = {}
        for m in (("alone", "klaviyo") + (("oracle",) if oracle else ()) if gname == ref[0]
                  else methods):
            g = group_scores([out["merchants"][n].get(m) for n in names])
            table[gname][m] = g
            if g is None:
                print(f"  {gname:22s} {m:9s}   n/a")
                continue
            cov = g.get("coverage")
            auc = g.get("churn_auc")
            auc_o = g.get("orders_auc")
            tot = g["total_error_pct"]
            print(f"  {gname:22s} {m:9s} {g['merchants']:5d} {g['customers']:7d} "
                  f"{g['mae']:7.4f} {g['rmse']:7.4f} {_num(tot, '+7.1f', '%'):>8s} "
                  f"{_num(cov, '.3f'):>6s} {_num(auc, '.3f'):>6s} {_num(auc_o, '.3f'):>6s}")
    allg = table[groups[-1][0]]   # all the small merchants
    targets = {}
    pooled, alone = allg["pooled"], allg["unpooled"]
    if pooled and alone:
        gain = 1 - pooled["mae"] / alone["mae"]
        targets["mae"] = {"gain": gain, "met": gain >= MAE_TARGET,
                          "rmse_gain": 1 - pooled["rmse"] / alone["rmse"]}
        print(f"  pooled MAE {pooled['mae']:.4f} is {100 * gain:+.1f}% below unpooled "
              f"{alone['mae']:.4f} ({'met' if gain >= MAE_TARGET else 'MISSED'}: target >= "
              f"{100 * MAE_TARGET:.0f}%); RMSE {pooled['rmse']:.4f} against "
              f"{alone['rmse']:.4f} ({100 * targets['mae']['rmse_gain']:+.1f}%)")
        best = allg.get("oracle")
        if best:
            e_p, e_u = pooled["mae"] - best["mae"], alone["mae"] - best["mae"]
            targets["excess_over_oracle"] = {"pooled": e_p, "unpooled": e_u}
            print(f"  MAE above the oracle's {best['mae']:.4f} (the part a better fit can "
                  f"remove): pooled {e_p:+.4f}, unpooled {e_u:+.4f}"
                  + (f" ({100 * (1 - e_p / e_u):+.0f}% of it removed by pooling)"
                     if e_u > 0 else ""))
        cov = pooled.get("coverage")
        targets["coverage"] = {"coverage": cov, "met": cov is not None and cov >= COVERAGE_TARGET}
        print(f"  pooled 90% predictive coverage {100 * cov:.1f}% "
              f"({'met' if targets['coverage']['met'] else 'MISSED'}: target >= "
              f"{100 * COVERAGE_TARGET:.0f}%)")
    pop_s, batch_s = out["population"]["seconds"], out["batch_seconds"]
    targets["time"] = {"population_seconds": pop_s, "batch_seconds": batch_s,
                       "met": pop_s < batch_s}
    print(f"  population step {pop_s:.1f} s (evidence {out['population']['evidence_seconds']:.1f}"
          f" s + learn {out['population']['learn_seconds']:.1f} s) against the batch's "
          f"per-merchant compute_clv runs {batch_s:.1f} s "
          f"({'met' if pop_s < batch_s else 'MISSED'}: target population < runs)")
    return {"groups": table, "targets": targets}


def print_population_vs_truth(out: dict, spread: float) -> None:
    pm = out["population"].get("models", {}).get("bg_nbd")
    if not pm:
        return
    c = truth_centre()
    truth = [c["r"], c["alpha"], c["a"], c["b"], c["p"], c["q-1"]]
    elig = [t for t in out["truths"] if out["merchants"][t["merchant"]]["eligible"]]
    sample = np.array([[math.log(t["r"]), math.log(t["alpha"]), math.log(t["a"]),
                        math.log(t["b"]), math.log(t["p"]), math.log(t["q"] - 1)]
                       for t in elig])
    s_mean, s_sd = sample.mean(axis=0), sample.std(axis=0, ddof=1)
    out["population"]["bg_nbd_truth"] = {"centre": truth, "spread": spread,
                                         "eligible_mean": list(map(float, s_mean)),
                                         "eligible_sd": list(map(float, s_sd))}
    print(f"\n  learned BG/NBD population against the truth (log scale; 'peers' = mean and sd "
          f"of the {len(elig)} eligible merchants' true values; v_scaled has no truth: v is "
          f"divided by each merchant's mean repeat spend)")
    print(f"  {'coordinate':14s} {'true mu':>8s} {'peers':>8s} {'mu':>8s} {'true tau':>8s} "
          f"{'peers':>8s} {'tau':>8s} {'prior sd':>8s}")
    for j, name in enumerate(pm["coordinates"]):
        if j < 6:
            t = (f"{truth[j]:8.3f} {s_mean[j]:8.3f} {pm['mu'][j]:8.3f} {spread:8.3f} "
                 f"{s_sd[j]:8.3f}")
        else:
            t = f"{'-':>8s} {'-':>8s} {pm['mu'][j]:8.3f} {'-':>8s} {'-':>8s}"
        print(f"  {name:14s} {t} {pm['tau'][j]:8.3f} {pm['prior_sigma'][j]:8.3f}")


# ------------------------------------------------------------------ the two settings

def simulated(args, tmp: Path) -> dict:
    truths = merchant_truths(args.merchants, args.min_customers, args.max_customers,
                             args.spread, args.seed)
    cal_end = START + dt.timedelta(days=args.cal_days - 1)
    t0 = time.perf_counter()
    full = {t["merchant"]: simulate_orders(t, args.cal_days, args.holdout_days) for t in truths}
    merchants = {n: calibration(o, cal_end) for n, o in full.items()}
    print(f"simulated {len(truths)} merchants ({sum(t['customers'] for t in truths):,} "
          f"customers, {sum(len(o) for o in full.values()):,} orders) in "
          f"{time.perf_counter() - t0:.1f} s; calibration to {cal_end}, "
          f"{args.holdout_days} days of holdout")
    out = run_batch("simulated", merchants, lambda n: cal_end, args.holdout_days, args, tmp,
                    {t["merchant"]: t for t in truths}, full)
    out["truths"] = truths
    small = [n for n, r in out["merchants"].items() if not r["eligible"]]
    bands = [("50-99", 0, 100), ("100-199", 100, 200), ("200-499", 200, SMALL)]
    groups = [(f"{b} customers", [n for n in small if lo <= out["merchants"][n]["customers"] < hi])
              for b, lo, hi in bands]
    groups = [g for g in groups if g[1]] + [(f"all < {SMALL}", small)]
    out["report"] = report("Simulated batch", out, groups, oracle=True)
    print_population_vs_truth(out, args.spread)
    if args.check_api:
        first = next((n for n, r in out["merchants"].items() if r["eligible"]), None)
        if first:

            mirror = evidence_of(first, merchants[first], cal_end,
                                 clv_params(args, args.holdout_days))
            chk = check_evidence_api(first, merchants[first], cal_end,
                                     clv_params(args, args.holdout_days), mirror, tmp)
            out["evidence_api_check"] = chk
            print(f"\n  merchant_evidence on {first} written to files: {chk}")
    return out


def cdnow(args, tmp: Path) -> dict | None:
    from hubnb.data import load_dataset

    folder = ROOT / "data" / "cdnow"
    if not folder.exists():
        print("data/cdnow is missing (make cdnow); CDNOW skipped")
        return None
    ds = load_dataset(folder)
    orders = ds.orders
    holdout = (CDNOW_AS_OF - CDNOW_CAL_END).days
    cal = calibration(orders, CDNOW_CAL_END)
    ids = np.sort(cal["profile_id"].unique().astype(str))
    rng = np.random.default_rng(args.seed + 1000)
    ids = rng.permutation(ids)
    small, used = {}, 0
    for s in range(args.cdnow_seeds):
        for size in CDNOW_SIZES:
            small[f"cdnow-n{size}-s{s}"] = ids[used:used + size]
            used += size
    rest = ids[used:]
    groups = np.array_split(rest, args.cdnow_groups)
    members = {f"cdnow-group{g}": ids_ for g, ids_ in enumerate(groups)}
    members.update(small)
    full = {n: orders[orders["profile_id"].isin(set(m))] for n, m in members.items()}
    merchants = {n: calibration(o, CDNOW_CAL_END) for n, o in full.items()}
    print(f"\nCDNOW full: {len(ids):,} customers; {len(small)} small merchants "
          f"({', '.join(map(str, CDNOW_SIZES))} customers x {args.cdnow_seeds} draws) and the "
          f"other {len(rest):,} customers split into {args.cdnow_groups} pseudo-merchants of "
          f"{min(map(len, groups)):,}-{max(map(len, groups)):,}; calibration to "
          f"{CDNOW_CAL_END}, {holdout} days of holdout")
    out = run_batch("cdnow", merchants, lambda n: CDNOW_CAL_END, holdout, args, tmp,
                    None, full)
    names = [n for n, r in out["merchants"].items() if not r["eligible"]]
    tab = [(f"{size} customers", [n for n in names if n.startswith(f"cdnow-n{size}-")])
           for size in CDNOW_SIZES]
    tab = [g for g in tab if g[1]] + [(f"all < {SMALL}", names)]
    out["report"] = report("CDNOW subsets, pooled with the rest of CDNOW", out, tab,
                           oracle=False)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 10 merchants up to 4,000 customers, 1 CDNOW draw")
    ap.add_argument("--merchants", type=int, default=40)
    ap.add_argument("--min-customers", type=int, default=50)
    ap.add_argument("--max-customers", type=int, default=20_000)
    ap.add_argument("--spread", type=float, default=0.3,
                    help="sd of each log parameter between merchants")
    ap.add_argument("--cal-days", type=int, default=730)
    ap.add_argument("--holdout-days", type=int, default=180)
    ap.add_argument("--draws", type=int, default=500, help="NUTS draws (and tuning) per chain")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cdnow-seeds", type=int, default=3)
    ap.add_argument("--cdnow-groups", type=int, default=6)
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--skip-cdnow", action="store_true")
    ap.add_argument("--skip-one-stage", action="store_true",
                    help="skip the one-stage model (benchmarks/pooling_onestage.py)")
    ap.add_argument("--one-stage-merchants", type=int, default=6,
                    help="the one-stage comparison's eligible merchants (the smallest)")
    ap.add_argument("--check-api", action="store_true",
                    help="compare merchant_evidence on files with the in-memory mirror")
    args = ap.parse_args()
    if args.quick:
        args.merchants, args.max_customers, args.cdnow_seeds = 10, 4000, 1
    tmp = Path(tempfile.mkdtemp(prefix="hubnb-pooling-"))
    t0 = time.perf_counter()
    warm_up(args)
    results = {"when": dt.datetime.now(dt.UTC).isoformat(),
               "settings": {k: v for k, v in vars(args).items()},
               "warm_up_seconds": time.perf_counter() - t0}
    if not args.skip_sim:
        results["simulated"] = simulated(args, tmp)
    if not args.skip_cdnow:
        results["cdnow"] = cdnow(args, tmp)
    results["seconds"] = time.perf_counter() - t0
    print(f"\nwhole benchmark {results['seconds']:.0f} s (warm-up "
          f"{results['warm_up_seconds']:.0f} s); scratch files in {tmp}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"pooling_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results written to {path}")
    return 0


def warm_up(args) -> None:
    """One small fit of each kind, untimed: imports, numba and nutpie compilation are not
    what the population step or a merchant's run cost in a warm batch."""
    from hubnb.clv.compute import compute_clv

    t = {"merchant": "warm", "customers": 300, "seed": 99, "r": 0.25, "alpha": 60.0,
         "a": 0.8, "b": 2.5, "p": 6.0, "q": 3.5, "v": 30.0}
    cal_end = START + dt.timedelta(days=args.cal_days - 1)
    orders = calibration(simulate_orders(t, args.cal_days, 0), cal_end)
    p = replace(clv_params(args, args.holdout_days), force=True, pooling="off", draws=50,
                tune=50)
    compute_clv(orders, None, None, p, cal_end, TIMEZONE)
    evidence_of("warm", orders, cal_end, p)


if __name__ == "__main__":
    sys.exit(main())
