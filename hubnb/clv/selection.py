"""``clv.model: auto``: choose the purchase model by PSIS-LOO (Vehtari, Gelman and Gabry 2017).

Each candidate (:data:`hubnb.clv.models.AUTO_CANDIDATES`) is fitted to the same compressed
data, so both have the same distinct purchase histories (x, t_x, T) with the same weights
n_i (the number of profiles sharing history i; N = sum of n_i). For each history, ArviZ
computes the PSIS-LOO expected log predictive density elpd_i, its effective number of
parameters p_loo_i and the Pareto k of its importance weights, from the pointwise
log-likelihood of that history over the posterior draws (the purchase model's only: the
Gamma-Gamma spend model is the same in both candidates and cancels in the difference).

The n_i profiles of a history are n_i identical observations; leaving one of them out
gives each the same elpd_i (the posterior without one copy is, to the order PSIS
approximates, the posterior without any other copy). So the profile-level sums are
weighted sums over histories:

    elpd_loo = sum_i n_i elpd_i,
    se       = sqrt(N * sum_i n_i (elpd_i - elpd_loo / N)^2 / (N - 1))  (ArviZ's
               sqrt(N Var(elpd_i)), sample variance, with a row per profile),

and for the difference of two models, d_i = elpd_i(winner) - elpd_i(other):
d_elpd = sum_i n_i d_i with d_se = sqrt(N Var_n(d_i)), the same weighted variance. The
Pareto k share is the share of *profiles* whose history has k > 0.7.

The winner is the candidate with the higher elpd_loo. The difference is called
*clear* when it exceeds 4 and twice its standard error (Sivula, Magnusson and Vehtari's
rule of thumb); otherwise the two models predict these customers about equally well and
the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from .histories import history_rows
from .laplace import LaplaceFit
from .models import PURCHASE_MODELS, FitResult
from .psis import psis_loo

#: A Pareto k above this makes the history's PSIS estimate unreliable (Vehtari et al. 2024).
K_THRESHOLD = 0.7
#: Draws per chain used for LOO (evenly thinned).
LOO_DRAWS_PER_CHAIN = 500
#: Histories per ArviZ call (bounds memory to draws x this many cells).
ROWS_PER_CHUNK = 20_000
#: Below this many draws PSIS cannot fit its Pareto tails (ArviZ needs 5 tail draws); the
#: score is then the in-sample log predictive density, and the report says so.
MIN_PSIS_DRAWS = 100


@dataclass(frozen=True)
class Loo:
    """PSIS-LOO of one fit, per distinct history and summed over profiles."""

    elpd: float
    se: float
    p_loo: float
    pareto_k_over_0_7: float
    pareto_k_max: float
    elpd_i: np.ndarray
    weights: np.ndarray
    psis: bool = True


@dataclass(frozen=True)
class ModelChoice:
    """The outcome of ``clv.model: auto``.

    Attributes
    ----------
    winner : str
        The chosen purchase model.
    candidates : dict
        Per model: ``elpd_loo``, ``se``, ``p_loo``, ``d_elpd``, ``d_se`` (difference to the
        winner and its standard error; 0 for the winner), ``pareto_k_over_0_7`` (share of
        profiles), ``pareto_k_max``, ``weight`` (the relative LOO weight exp(elpd) of the
        candidates).
    clear : bool
        The winner's lead is more than 4 and more than twice its standard error.
    reason : str
        Why the winner won, in plain words.
    """

    winner: str
    candidates: dict
    clear: bool
    reason: str
    method: str = "psis-loo"

    def as_metrics(self) -> dict:
        """metrics.json's ``clv.model.selection``."""
        return {"method": self.method, "winner": self.winner, "clear": self.clear,
                "reason": self.reason, "candidates": self.candidates}


def thinned_draws(fit: FitResult, per_chain: int = LOO_DRAWS_PER_CHAIN) -> dict:
    """The purchase model's draws as (chain, draw) arrays, each chain thinned evenly."""
    post = fit.idata["posterior"]
    names = PURCHASE_MODELS[fit.model_name].param_names
    out = {}
    for name in names:
        values = np.asarray(post[name].to_numpy(), dtype=float)
        keep = np.unique(np.linspace(0, values.shape[1] - 1,
                                     min(per_chain, values.shape[1])).round().astype(int))
        out[name] = values[:, keep]
    return out


def relative_efficiency(draws: dict) -> float:
    """ArviZ's r_eff: the mean over parameters of ESS / number of draws."""
    import arviz_stats  # noqa: F401  (registers the .azstats accessor)
    import xarray as xr

    ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in draws.items()})
    n = next(iter(draws.values())).size
    if ds.sizes["chain"] == 1:
        return 1.0
    ess = ds.azstats.ess(method="mean")
    return float(np.mean([float(ess[k]) for k in ess.data_vars]) / n)


def loo(fit: FitResult | LaplaceFit) -> Loo:
    """PSIS-LOO of a fit over its distinct purchase histories, weighted by profiles
    (:mod:`hubnb.clv.psis`, ArviZ's algorithm vectorised over the histories).

    A NUTS fit is scored on its thinned draws with their relative efficiency; a
    :class:`~hubnb.clv.laplace.LaplaceFit` on its draws with the approximate-posterior
    correction (the leave-one-out ratios of history i are p / (q p(y_i)), ArviZ's
    ``loo_approximate_posterior``), so its scores estimate the posterior's. A history whose
    tail of importance ratios is flat (e.g. a chain stuck on one value after a short
    warm-up) gets plain importance-sampling LOO and Pareto k infinite, so it counts among
    the unreliable scores instead of stopping the run.
    """
    model = PURCHASE_MODELS[fit.model_name]
    x, t_x, T, n = history_rows(fit.data.arrays)
    if isinstance(fit, LaplaceFit):
        flat = {k: np.asarray(fit.draws[k], dtype=float).reshape(-1, 1)
                for k in model.param_names}
        psis = True
        options = {"log_correction": fit.log_p - fit.log_q}
    else:
        draws = thinned_draws(fit)
        chains, per_chain = next(iter(draws.values())).shape
        flat = {k: v.reshape(-1, 1) for k, v in draws.items()}
        psis = chains * per_chain >= MIN_PSIS_DRAWS
        options = {"r_eff": relative_efficiency(draws) if psis else 1.0}
    elpd_i = np.empty(len(x))
    p_loo_i = np.empty(len(x))
    k_i = np.empty(len(x))
    for start in range(0, len(x), ROWS_PER_CHUNK):
        sl = slice(start, start + ROWS_PER_CHUNK)
        ll = model.loglik_rows(flat, x[sl], t_x[sl], T[sl])
        if not psis:
            elpd_i[sl] = logsumexp(ll, axis=0) - np.log(ll.shape[0])
            k_i[sl], p_loo_i[sl] = np.nan, 0.0
            continue
        elpd_i[sl], k_i[sl], p_loo_i[sl] = psis_loo(ll, **options)
    total = float(n.sum())
    elpd = float(n @ elpd_i)
    return Loo(elpd=elpd, se=weighted_se(elpd_i, n), p_loo=float(n @ p_loo_i),
               pareto_k_over_0_7=float(n[k_i > K_THRESHOLD].sum() / total) if psis else None,
               pareto_k_max=float(np.max(k_i)) if psis else None, elpd_i=elpd_i, weights=n,
               psis=psis)


def weighted_se(values: np.ndarray, weights: np.ndarray) -> float:
    """sqrt(N Var(values)) over N = sum(weights) observations, value i repeated weights[i]
    times, Var the sample variance (ArviZ's standard error of a sum of pointwise elpds,
    one row per profile)."""
    total = float(weights.sum())
    mean = float(weights @ values) / total
    var = float(weights @ (values - mean) ** 2) / max(total - 1.0, 1.0)
    return float(np.sqrt(total * var))


def choose_model(fits: dict[str, FitResult | LaplaceFit],
                 method: str = "psis-loo") -> ModelChoice:
    """The candidate with the higher elpd_loo, with every candidate's scores; ``method``
    names what the scores were computed on (``psis-loo (laplace)``: Laplace fits)."""
    loos = {name: loo(fit) for name, fit in fits.items()}
    winner = max(loos, key=lambda name: loos[name].elpd)
    best = loos[winner]
    top = max(v.elpd for v in loos.values())
    weights = {k: float(np.exp(v.elpd - top)) for k, v in loos.items()}
    norm = sum(weights.values())
    candidates = {}
    for name, lo in loos.items():
        d = best.elpd_i - lo.elpd_i
        candidates[name] = {
            "elpd_loo": lo.elpd, "se": lo.se, "p_loo": lo.p_loo,
            "d_elpd": float(best.weights @ d), "d_se": weighted_se(d, best.weights),
            "pareto_k_over_0_7": lo.pareto_k_over_0_7, "pareto_k_max": lo.pareto_k_max,
            "weight": weights[name] / norm,
        }
    others = [n for n in candidates if n != winner]
    clear = all(candidates[n]["d_elpd"] > 4 and candidates[n]["d_elpd"] > 2 * candidates[n]["d_se"]
                for n in others)
    reason = explain(winner, candidates, clear)
    if not all(lo.psis for lo in loos.values()):
        reason += (f" Too few posterior draws for PSIS-LOO (fewer than {MIN_PSIS_DRAWS}): the "
                   "scores are in-sample log predictive densities, which favour the more "
                   "flexible model; use more draws (clv.draws).")
        return ModelChoice(winner, candidates, clear, reason, "lppd (too few draws for psis-loo)")
    if method == "psis-loo (laplace)":
        reason += (" The candidates were compared on a quick Laplace approximation of each "
                   "(trusted: the Pareto k of its importance weights is at most 0.7), and "
                   "only the chosen model was then sampled in full.")
    return ModelChoice(winner, candidates, clear, reason, method)


LABELS = {"pareto_nbd": "Pareto/NBD", "mbg_nbd": "MBG/NBD", "bg_nbd": "BG/NBD"}


def explain(winner: str, candidates: dict, clear: bool) -> str:
    """Why ``winner`` won, in plain words."""
    others = [n for n in candidates if n != winner]
    if not others:
        return f"{LABELS[winner]} was the only candidate."
    other = others[0]
    d, se = candidates[other]["d_elpd"], candidates[other]["d_se"]
    w, o = LABELS[winner], LABELS[other]
    if clear:
        text = (f"{w} predicts each customer's purchase history from the others better than "
                f"{o}: its expected log predictive density is higher by {d:,.1f} "
                f"(standard error {se:,.1f}), more than twice the uncertainty of the "
                "difference, so the data clearly prefer it.")
    else:
        text = (f"{w} and {o} predict these customers about equally well: {w}'s expected "
                f"log predictive density is higher by {d:,.1f}, within about two standard "
                f"errors ({se:,.1f}) of no difference. hubnb keeps {w}, the higher score; "
                "the predictions of either would be much the same.")
    bad = [LABELS[n] for n, c in candidates.items() if (c["pareto_k_over_0_7"] or 0) > 0.01]
    if bad:
        text += (" Pareto k is above 0.7 for more than 1% of the customers under "
                 + " and ".join(bad) + ": those scores are less reliable.")
    return text
