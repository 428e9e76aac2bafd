"""Per-profile predictions and totals from posterior draws.

Everything is computed per distinct *key* (x, t_x, T, z_bar) — profiles sharing a key share
every prediction — in chunks of keys, so memory stays bounded (a chunk holds at most
``MAX_CELLS`` draw x key cells) whatever the number of profiles. Within a chunk the
hypergeometric part of the expected purchases is computed once per distinct (x, T).

Per key and posterior draw d (``PosteriorDraws``: purchase draw d paired with spend draw d):

- ``predicted_orders`` = E[X(T, T + horizon) | x, t_x, T; draw d];
- ``aov`` = Gamma-Gamma conditional expected spend; the population mean p v / (q - 1)
  for profiles without a repeat transaction;
- ``predicted_clv`` = predicted_orders x aov (no discounting);
- ``churn_probability`` = 1 - P(alive | x, t_x, T);
- ``days_to_next_order`` = (alpha + T)(2^(1/(r+x)) - 1), the median wait to the next order
  given the profile is alive (lambda | alive ~ Gamma(r+x, alpha+T) and an exponential wait
  make the wait Lomax), defined for every profile;
- ``p_order_30d`` = P(alive) x P(at least one order in the next 30 days | alive), dropout
  during those days included.

Each gets its posterior mean and the equal-tailed credible interval over draws.

Posterior predictive intervals per profile (``predicted_orders_pred_lower/_upper`` and
``predicted_clv_pred_lower/_upper``): quantiles over the simulation draws of one simulated
future of the profile (alive drawn from P(alive), then purchases from the conditional
posterior of its rates, and for CLV the spend of those purchases from the conditional
posterior of its mean spend): where its actual orders and spend fall, purchase randomness
included. ``predicted_orders_pred_mass`` is the share of the simulated counts inside the
profile's interval: the coverage the model itself expects, which the backtest compares with
what happened (counts are whole numbers, so it is at least the nominal level).

Totals (posterior predictive, purchase randomness included), for each of up to
``MAX_SIM_DRAWS`` evenly spaced draws d: the expected total
M_d = sum over keys of count x E[X], and a variance V_d = sum of count x (X_sim - E[X])^2,
where X_sim is one simulated future purchase count of one profile of the key (alive drawn
from P(alive), then the model's purchase process from the conditional posterior of its
rates). (X_sim - E[X])^2 is an unbiased estimate of the profile's variance, so V_d is
unbiased for the variance of the total given draw d. The total of draw d is drawn from
Normal(M_d, V_d) (floored at 0), a moment-matched approximation that is accurate once a
total is a sum over many profiles. CLV totals do the same with simulated spend
(nu ~ its Gamma posterior, then the sum of X_sim Gamma(p, nu) transaction values).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cores import cpu_budget
from .models import PURCHASE_MODELS, FitResult, GammaGammaModel

#: Upper bound of draws x keys cells per chunk (about 16 MB per float array).
MAX_CELLS = 2_000_000
#: At most this many posterior draws are used for predictions (evenly thinned).
MAX_DRAWS = 1000
#: ... and fewer for very many distinct keys: at most this many draw x key cells per
#: quantity over all keys (100,000 keys still get all 1,000 draws; a million profiles with
#: about 380,000 keys get 265), never fewer than :data:`MIN_DRAWS`. The per-profile
#: means and interval ends then carry a larger Monte Carlo error (with 250 draws, a 5% or
#: 95% quantile is off by about 2 draws' spacing), the price of predicting millions of
#: profiles in minutes; totals are sums over so many profiles that they are unaffected.
DRAW_CELLS = 100_000_000
#: The fewest posterior draws per-profile predictions use.
MIN_DRAWS = 250
#: Of those, at most this many carry the simulation behind the posterior predictive totals
#: and count intervals (simulation is the costliest step; 250 draws put the 5% and 95%
#: quantiles of a total within a small fraction of its interval's width).
MAX_SIM_DRAWS = 250

#: Chunks are processed by this many threads (numpy and the numba kernels release the GIL).
PREDICT_THREADS = min(2, cpu_budget())

QUANTITIES = ("predicted_orders", "predicted_clv", "aov", "churn_probability",
              "days_to_next_order", "p_order_30d")
#: Quantities with a posterior predictive interval (``<q>_pred_lower/_pred_upper``).
PREDICTIVE = ("predicted_orders", "predicted_clv")
#: The window of ``p_order_30d``.
P_ORDER_DAYS = 30


@dataclass(frozen=True)
class Predictions:
    """Per-profile predictions and totals.

    Profiles with the same purchase history and spend share their predictions: they are
    kept once per distinct key and spread to the profiles only when asked (10,000,000
    profiles would otherwise hold a second 2.5 GB table of the same numbers).

    Attributes
    ----------
    per_key : DataFrame
        One row per distinct key: ``<quantity>_mean/_lower/_upper`` for each of
        :data:`QUANTITIES`, plus ``<q>_pred_lower/_pred_upper`` for each of
        :data:`PREDICTIVE`, the posterior predictive interval of the profile's number of
        orders and of its spend over the horizon.
    key_of_profile : ndarray of int
        Each profile's row of ``per_key``, in the order of ``index``.
    index : Index
        The profile ids.
    totals : dict
        ``predicted_orders`` and ``predicted_clv``, each ``{"mean", "lower", "upper"}``.
    total_draws : dict of ndarray
        The per-draw totals behind ``totals`` (and ``expected_orders``: M_d).
    """

    per_key: pd.DataFrame
    key_of_profile: np.ndarray
    index: pd.Index
    totals: dict
    total_draws: dict

    def rows(self, profile_ids) -> np.ndarray:
        """The ``per_key`` row of each of ``profile_ids`` (-1: no predictions), for
        :meth:`column`."""
        pos = self.index.get_indexer(profile_ids)
        return np.where(pos >= 0, self.key_of_profile[pos], -1)

    def column(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """One statistic per profile: in the order of :attr:`index`, or of the profiles
        whose :meth:`rows` are given (NaN for a profile without predictions)."""
        values = self.per_key[name].to_numpy()
        if rows is None:
            return values[self.key_of_profile]
        out = values[rows]
        out[rows < 0] = np.nan
        return out

    @property
    def profiles(self) -> pd.DataFrame:
        """Every statistic per profile, indexed by profile_id."""
        return self.per_key.iloc[self.key_of_profile].set_index(self.index)


def posterior_draws(fit: FitResult, max_draws: int = MAX_DRAWS) -> dict:
    """The fit's draws, thinned evenly to at most ``max_draws``, shaped ``(draws, 1)``."""
    n = len(next(iter(fit.draws.values())))
    idx = np.linspace(0, n - 1, min(n, max_draws)).round().astype(int)
    return {k: np.asarray(v, dtype=float)[idx][:, None] for k, v in fit.draws.items()}


def draw_budget(keys: int, max_draws: int = MAX_DRAWS) -> int:
    """The posterior draws predictions for ``keys`` distinct keys use: ``max_draws``, or
    fewer (down to :data:`MIN_DRAWS`) so that draws x keys stays within :data:`DRAW_CELLS`."""
    return int(min(max_draws, max(MIN_DRAWS, DRAW_CELLS // max(keys, 1))))


def interval_bounds(credible_interval: float) -> tuple[float, float]:
    lo = (1.0 - credible_interval) / 2.0
    return lo, 1.0 - lo


def predict(fit_or_draws, rfm: pd.DataFrame, horizon_days: float, credible_interval: float = 0.9,
            model_name: str | None = None, seed: int = 1, max_draws: int = MAX_DRAWS,
            max_cells: int = MAX_CELLS) -> Predictions:
    """Predictions for every profile of ``rfm`` (an :func:`~hubnb.clv.orders.rfm_summary`).

    Parameters
    ----------
    fit_or_draws : FitResult or dict
        A fit, or a dict of parameter draws (arrays of equal length; with ``model_name``).
    rfm : DataFrame
        frequency, recency, T, monetary_value per profile (index: profile_id).
    horizon_days : float
        The prediction window.
    credible_interval : float
        Mass of the equal-tailed intervals.
    """

    x_all = rfm["frequency"].to_numpy(np.int64)
    z_all = np.where(x_all > 0, rfm["monetary_value"].to_numpy(float), 0.0)
    z_all = np.where(z_all > 0, z_all, 0.0)
    frame = pd.DataFrame({"x": x_all, "tx": rfm["recency"].to_numpy(np.int64),
                          "T": rfm["T"].to_numpy(np.int64), "z": z_all})
    grouped = frame.groupby(["x", "T", "tx", "z"], sort=True)
    key_of_profile = grouped.ngroup().to_numpy()
    keys = grouped.size().rename("count").reset_index()
    if isinstance(fit_or_draws, FitResult):
        draws = posterior_draws(fit_or_draws, draw_budget(len(keys), max_draws))
        model_name = fit_or_draws.model_name
    else:
        draws = {k: np.atleast_1d(np.asarray(v, dtype=float))[:, None]
                 for k, v in fit_or_draws.items()}
    purchase = PURCHASE_MODELS[model_name]
    lo, hi = interval_bounds(credible_interval)
    t = float(horizon_days)
    n_keys, n_draws = len(keys), len(next(iter(draws.values())))
    sim_idx = np.linspace(0, n_draws - 1, min(n_draws, MAX_SIM_DRAWS)).round().astype(int)
    sim_idx = np.unique(sim_idx)
    n_sims = len(sim_idx)

    stats = {f"{q}_{s}": np.empty(n_keys) for q in QUANTITIES for s in ("mean", "lower", "upper")}
    # the model's own probability that the profile's count lands in its interval: counts
    # are whole numbers, so it is at least the nominal level and often above it
    stats["predicted_orders_pred_mass"] = np.empty(n_keys)
    for q in PREDICTIVE:
        stats[f"{q}_pred_lower"] = np.empty(n_keys)
        stats[f"{q}_pred_upper"] = np.empty(n_keys)
    tot = {k: np.zeros(n_sims) for k in ("orders_mean", "orders_var", "clv_mean", "clv_var")}

    chunk = max(1, max_cells // n_draws)
    starts = list(range(0, n_keys, chunk))
    # one generator per chunk: the result does not depend on which thread ran which chunk
    seeds = np.random.SeedSequence(seed).spawn(len(starts))
    cols = {c: keys[c].to_numpy(float) for c in ("x", "tx", "T", "z", "count")}

    def run(i):
        sl = slice(starts[i], min(starts[i] + chunk, n_keys))
        x, tx, T, z, count = (cols[c][sl] for c in ("x", "tx", "T", "z", "count"))
        return sl, _chunk(purchase, draws, x, tx, T, z, count, t, np.random.default_rng(seeds[i]),
                          sim_idx, lo, hi)

    def collect(sl, out):
        key_stats, partial = out
        for name, arr in key_stats.items():
            stats[name][sl] = arr
        for name, arr in partial.items():
            tot[name] += arr

    if PREDICT_THREADS > 1 and len(starts) > 1:
        # numpy's ufuncs and random draws and the numba statistics release the GIL
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(PREDICT_THREADS) as pool:
            for sl, out in pool.map(run, range(len(starts))):
                collect(sl, out)
    else:
        for i in range(len(starts)):
            collect(*run(i))

    per_key = pd.DataFrame(stats)
    z_draw = np.random.default_rng(seed).standard_normal((2, n_sims))
    orders = np.maximum(tot["orders_mean"] + np.sqrt(tot["orders_var"]) * z_draw[0], 0.0)
    clv = np.maximum(tot["clv_mean"] + np.sqrt(tot["clv_var"]) * z_draw[1], 0.0)
    totals = {"predicted_orders": summarize(orders, lo, hi),
              "predicted_clv": summarize(clv, lo, hi)}
    total_draws = {"predicted_orders": orders, "predicted_clv": clv,
                   "orders_var": tot["orders_var"],
                   "expected_orders": tot["orders_mean"], "expected_clv": tot["clv_mean"]}
    return Predictions(per_key, key_of_profile, pd.Index(rfm.index), totals, total_draws)


def summarize(values: np.ndarray, lo: float, hi: float) -> dict:
    """``{"mean", "lower", "upper"}`` of draws, as plain floats."""
    return {"mean": float(np.mean(values)), "lower": float(np.quantile(values, lo)),
            "upper": float(np.quantile(values, hi))}


def _stats(values, lo, hi, linear=True):
    """Mean, lower and upper quantile over draws (axis 0) of each column."""
    from .native import column_stats

    k = values.shape[1]
    mean, lower, upper = np.empty(k), np.empty(k), np.empty(k)
    column_stats(np.ascontiguousarray(values, dtype=float), lo, hi, linear, mean, lower,
                 upper, 0, k)
    return mean, lower, upper


def _chunk(purchase, p, x, tx, T, z, count, t, rng, sim_idx, lo, hi):
    """Statistics of a chunk of keys and its share of the totals' sums.

    The purchase quantities depend on (x, t_x, T) only: they are computed once per distinct
    purchase key of the chunk (keys are sorted by x, T, t_x, so equal ones are adjacent),
    the spend ones per key.
    """
    new = np.ones(len(x), bool)
    new[1:] = (np.diff(x) != 0) | (np.diff(T) != 0) | (np.diff(tx) != 0)
    pk = np.cumsum(new) - 1
    ux, utx, uT = x[new], tx[new], T[new]
    h = purchase.per_history(p, ux, utx, uT, t, P_ORDER_DAYS)
    p_alive, e_n, days, p_order = h["p_alive"], h["expected"], h["next_days"], h["p_order"]
    out = {}
    for q, arr in (("predicted_orders", e_n), ("churn_probability", 1.0 - p_alive),
                   ("days_to_next_order", days), ("p_order_30d", p_order)):
        for s_, v in zip(("mean", "lower", "upper"), _stats(arr, lo, hi)):
            out[f"{q}_{s_}"] = v[pk]
    spender = (x > 0) & (z > 0)
    aov = GammaGammaModel.expected_spend(p, np.where(spender, x, 0.0), np.where(spender, z, 0.0))
    clv = e_n[:, pk] * aov
    for q, arr in (("aov", aov), ("predicted_clv", clv)):
        for s_, v in zip(("mean", "lower", "upper"), _stats(arr, lo, hi)):
            out[f"{q}_{s_}"] = v
    # one simulated profile per (simulation draw, purchase key): the purchase randomness
    ps = {k: v[sim_idx] for k, v in p.items()}
    pa = p_alive[sim_idx]
    alive = rng.random(pa.shape) < pa
    n_sim_u = np.where(alive, purchase.simulate_purchases_alive(ps, ux, utx, uT, t, rng), 0)
    _, pl, pu = _stats(n_sim_u, lo, hi, linear=False)
    out["predicted_orders_pred_lower"], out["predicted_orders_pred_upper"] = pl[pk], pu[pk]
    out["predicted_orders_pred_mass"] = ((n_sim_u >= pl) & (n_sim_u <= pu)).mean(axis=0)[pk]
    count_u = np.bincount(pk, weights=count)
    e_n_s = e_n[sim_idx]
    partial = {"orders_mean": e_n_s @ count_u, "orders_var": ((n_sim_u - e_n_s) ** 2) @ count_u}
    # spend per key, given its purchase key's simulated count
    n_sim = n_sim_u[:, pk]
    q_post = ps["q"] + ps["p"] * np.where(spender, x, 0.0)
    v_post = ps["v"] + np.where(spender, x * z, 0.0)
    nu = rng.gamma(q_post, 1.0 / v_post)
    s_sim = np.where(n_sim > 0, rng.gamma(np.maximum(ps["p"] * n_sim, 1e-300), 1.0 / nu), 0.0)
    _, out["predicted_clv_pred_lower"], out["predicted_clv_pred_upper"] = _stats(s_sim, lo, hi)
    e_clv = clv[sim_idx]
    partial["clv_mean"] = e_clv @ count
    partial["clv_var"] = ((s_sim - e_clv) ** 2) @ count
    return out, partial
