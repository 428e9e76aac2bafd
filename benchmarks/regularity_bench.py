"""Customers who buy at regular intervals: MBG/CNBD-k against MBG/NBD and Pareto/NBD.

For each data set (CDNOW sample and full, the demo merchant, the k = 2 demo merchant), each
candidate of ``clv.model: auto`` (Pareto/NBD, MBG/NBD, and MBG/CNBD-k with the k the grid
picks on the calibration data) is fitted with NUTS on the calibration period and scored on
the holdout, as the backtest card does: holdout MAE per customer, error of the holdout
total, coverage of the 90% predictive intervals, the calibration error of p_order_30d and
the churn AUC. PSIS-LOO on the calibration data gives each candidate's elpd, the winner
(what ``auto`` would choose) and the LOO stacking weights (Yao, Vehtari, Simpson and Gelman
2018, "Using stacking to average Bayesian predictive distributions"): the stacked
prediction of a customer's holdout orders is the weighted mean of the candidates'. The
table says whether stacking beats the winner.

With ``--ref REV`` it also times ``hubnb run`` on CDNOW full (auto, backtest, both
notebooks, HTML) at REV and at this checkout, alternately, ``--repeat`` times each:
issue 19's target is at most 1.3x the time before the regularity candidates.

    python benchmarks/regularity_bench.py [--ref b3b93bc] [--repeat 2] [--draws 1000]

Needs data/cdnow (``make cdnow``), data/demo (``make demo``) and data/regular
(``make regular``); writes benchmarks/results/regularity_<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TIME_TARGET = 1.3
MAE_TARGET = 0.05        # MBG/CNBD-2 at least 5% better than MBG/NBD on the k = 2 merchant


def datasets():
    from hubnb.data import load_dataset
    from hubnb.params import load_params

    out = []
    for name, params in (("CDNOW sample", "params/cdnow/cdnow.yaml"),
                         ("CDNOW full", "params/cdnow/cdnow.yaml"),
                         ("demo (20,000 profiles)", "params/demo.yaml"),
                         ("k = 2 demo (20,000 profiles)", "params/regular/regular.yaml")):
        p = load_params(ROOT / params)
        data = p.data
        if name == "CDNOW sample":
            data = ROOT / "data" / "cdnow_sample"
            if not (data / ".complete").exists():
                subprocess.run([sys.executable, "-m", "hubnb.cli", "cdnow-data", "--out",
                                str(data), "--kind", "sample"], check=True)
                (data / ".complete").touch()
        if not Path(data).exists():
            print(f"{name}: {data} missing (see the docstring); skipped")
            continue
        out.append((name, p, load_dataset(data)))
    return out


def history_index(rfm: pd.DataFrame, arrays: dict) -> np.ndarray:
    """Each profile's row in :func:`hubnb.clv.histories.history_rows` (compress's order)."""
    x = rfm["frequency"].to_numpy(np.int64)
    zero = x == 0
    out = np.empty(len(rfm), np.int64)
    out[zero] = np.searchsorted(arrays["T0"], rfm["T"].to_numpy(float)[zero])
    stack = np.stack([x[~zero], rfm["recency"].to_numpy(np.int64)[~zero],
                      rfm["T"].to_numpy(np.int64)[~zero]], axis=1)
    _, inverse = np.unique(stack, axis=0, return_inverse=True)
    out[~zero] = len(arrays["T0"]) + inverse.reshape(-1)
    return out


def pointwise_elpd(fit, rfm: pd.DataFrame) -> np.ndarray:
    """Each calibration customer's PSIS-LOO elpd under ``fit`` (its history's, plus its own
    likelihood constant)."""
    from hubnb.clv.selection import loo

    lo = loo(fit)
    return (lo.elpd_i[history_index(rfm, fit.data.arrays)]
            + lo.litt_coef * rfm["litt"].to_numpy(float))


def stacking_weights(elpd: np.ndarray) -> np.ndarray:
    """argmax_w sum_i log sum_m w_m exp(elpd_im) over the simplex (softmax parameters)."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp, softmax

    def negative(z):
        w = softmax(z)
        value = logsumexp(elpd + np.log(np.maximum(w, 1e-300))[None, :], axis=1)
        resp = np.exp(elpd + np.log(np.maximum(w, 1e-300))[None, :] - value[:, None])
        grad_w = resp.sum(axis=0) / np.maximum(w, 1e-300)
        grad_z = w * (grad_w - w @ grad_w)
        return -value.sum(), -grad_z

    found = minimize(negative, np.zeros(elpd.shape[1]), jac=True, method="BFGS")
    return softmax(found.x)


def scores(actual: pd.Series, predicted: pd.Series) -> dict:
    return {"mae": float((actual - predicted).abs().mean()),
            "total_error_pct": float(100 * (predicted.sum() - actual.sum()) / actual.sum())}


def evaluate(name, p, ds, draws: int) -> dict:
    from hubnb.clv.backtest import run_backtest
    from hubnb.clv.compute import candidate_models, regularity
    from hubnb.clv.histories import compress
    from hubnb.clv.orders import counted_orders, rfm_summary

    clv = replace(p.clv, draws=draws, tune=draws, model="auto",
                  backtest_days=p.clv.backtest_days or 90)
    as_of = p.as_of
    cal_end = as_of - dt.timedelta(days=clv.backtest_days)
    counted = counted_orders(ds.orders, ds.refunds, clv.orders, cal_end, p.timezone,
                             clv.history_days)
    cal_rfm = rfm_summary(counted, cal_end)
    t0 = time.perf_counter()
    reg = regularity(compress(cal_rfm), clv)
    grid_s = time.perf_counter() - t0
    models = candidate_models("auto", reg["k"] if reg else 1)
    if reg and reg["k"] == 1:         # show MBG/CNBD-2 beside them all the same
        models = models + ("mbg_cnbd_k2",)
    rows, elpd, per = {}, {}, {}
    for model in models:
        t0 = time.perf_counter()
        bt = run_backtest(ds.orders, ds.refunds, clv, as_of, p.timezone, model=model)
        s = bt.summary
        rows[model] = {
            "mae": s["mae"], "total_error_pct": s["total_error_pct"],
            "coverage": s["coverage"]["orders"],
            "p_order_30d_calibration_error": s["p_order_30d_calibration_error"],
            "churn_auc": s["auc"]["churn"], "next_order_auc": s["auc"]["next_order_date"],
            "seconds": round(time.perf_counter() - t0, 1)}
        elpd[model] = pointwise_elpd(bt.fit, cal_rfm.loc[cal_rfm.index])
        rows[model]["elpd_loo"] = float(elpd[model].sum())
        per[model] = bt.per_profile
    candidates = [m for m in models if m in candidate_models("auto", reg["k"] if reg else 1)]
    winner = max(candidates, key=lambda m: rows[m]["elpd_loo"])
    matrix = np.stack([elpd[m] for m in candidates], axis=1)
    weights = stacking_weights(matrix)
    actual = per[winner]["actual"]
    stacked = sum(w * per[m]["predicted_mean"].reindex(actual.index)
                  for w, m in zip(weights, candidates))
    return {"profiles": int(len(cal_rfm)), "regularity": reg, "grid_seconds": grid_s,
            "models": rows, "winner": winner,
            "stacking": {"weights": dict(zip(candidates, map(float, weights))),
                         "stacked": scores(actual, stacked),
                         "winner": scores(actual, per[winner]["predicted_mean"])}}


def time_runs(ref: str, repeat: int) -> dict:
    """``hubnb run`` on CDNOW full at ``ref`` and here, alternately; the fit cache off."""
    wt = Path(tempfile.mkdtemp(prefix="hubnb-ref-")) / "ref"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), ref],
                   check=True, capture_output=True)
    (wt / "data").mkdir(exist_ok=True)
    (wt / "data" / "cdnow").symlink_to(ROOT / "data" / "cdnow")
    env = dict(os.environ, HUBNB_FIT_CACHE="0")
    times = {"ref": [], "this checkout": []}
    try:
        for _ in range(repeat):
            for label, where in (("ref", wt), ("this checkout", ROOT)):
                out = Path(tempfile.mkdtemp(prefix="hubnb-cdnow-"))
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "hubnb.cli", "run",
                                "params/cdnow/cdnow.yaml", "--out", str(out)], cwd=where,
                               env=dict(env, PYTHONPATH=str(where)), check=True,
                               capture_output=True)
                times[label].append(time.perf_counter() - t0)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)],
                       capture_output=True)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", help="time hubnb run on CDNOW full at this revision too")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--only", help="a data set's name starts with this")
    args = ap.parse_args()
    os.environ.setdefault("HUBNB_FIT_CACHE", "0")     # every fit timed is a fit made
    results = {"when": dt.datetime.now(dt.timezone.utc).isoformat(), "datasets": {}}
    for name, p, ds in datasets():
        if args.only and not name.lower().startswith(args.only.lower()):
            continue
        r = evaluate(name, p, ds, args.draws)
        results["datasets"][name] = r
        reg = r["regularity"] or {}
        print(f"\n{name}: {r['profiles']:,} calibration customers; grid k = {reg.get('k')} "
              f"({r['grid_seconds']:.1f} s); auto would choose {r['winner']}")
        print(f"  {'model':14s} {'elpd_loo':>12s} {'MAE':>7s} {'total':>8s} {'cover':>6s} "
              f"{'ECE30':>6s} {'AUCch':>6s} {'s':>6s}")
        for m, row in r["models"].items():
            print(f"  {m:14s} {row['elpd_loo']:12,.1f} {row['mae']:7.4f} "
                  f"{row['total_error_pct']:+7.1f}% {row['coverage']:6.3f} "
                  f"{(row['p_order_30d_calibration_error'] or float('nan')):6.3f} "
                  f"{row['churn_auc']:6.3f} {row['seconds']:6.1f}")
        st = r["stacking"]
        print(f"  stacking weights {', '.join(f'{m} {w:.3f}' for m, w in st['weights'].items())}:"
              f" MAE {st['stacked']['mae']:.4f} (winner {st['winner']['mae']:.4f}), total "
              f"{st['stacked']['total_error_pct']:+.1f}% (winner "
              f"{st['winner']['total_error_pct']:+.1f}%)")
        if name.startswith("k = 2") and "mbg_cnbd_k2" in r["models"]:
            gain = 1 - r["models"]["mbg_cnbd_k2"]["mae"] / r["models"]["mbg_nbd"]["mae"]
            ok = "met" if gain >= MAE_TARGET and r["winner"] == "mbg_cnbd_k2" else "MISSED"
            print(f"  MBG/CNBD-2's holdout MAE is {100 * gain:.1f}% below MBG/NBD's, auto "
                  f"chooses {r['winner']} ({ok}: target >= {100 * MAE_TARGET:.0f}% and "
                  "MBG/CNBD-2)")
    if args.ref:
        t = time_runs(args.ref, args.repeat)
        before, now = min(t["ref"]), min(t["this checkout"])
        ok = "met" if now / before <= TIME_TARGET else "MISSED"
        print(f"\nCDNOW full, hubnb run (auto, backtest, both notebooks, HTML): {now:.1f} s "
              f"against {before:.1f} s at {args.ref} (best of {args.repeat}): "
              f"{now / before:.2f}x ({ok}: target <= {TIME_TARGET}x)")
        results["cdnow_run_seconds"] = t
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"regularity_{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
