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

**Large data.** Above :data:`SUBSAMPLE_ABOVE` distinct histories, the exact PSIS-LOO of every
history costs draws x histories evaluations of the likelihood (a minute per candidate at a
million profiles). It is then estimated from a simple random sample (without replacement) of
:data:`SUBSAMPLE_PROFILES` profiles, the same sample for every candidate, by Magnusson,
Riis Andersen, Jonasson and Vehtari's difference estimator (2019, "Bayesian leave-one-out
cross-validation for large data", ICML; ArviZ's ``loo_subsample`` with ``method="plpd"``):
a cheap surrogate of every history's elpd_i, its log-likelihood at the posterior mean of
the parameters, summed over all profiles, plus N times the sample's mean difference
between the exact elpd_i and the surrogate. Its standard error for sampling the profiles
(``subsample_se``) is reported beside the usual one, and both enter the standard error of
a difference between candidates (the difference estimator applied to the pointwise
differences, Magnusson et al. 2020), on which *clear* is decided.

The winner is the candidate with the higher elpd_loo. The difference is called
*clear* when it exceeds 4 and twice its standard error (Sivula, Magnusson and Vehtari's
rule of thumb); otherwise the two models predict these customers about equally well and
the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .histories import history_litt, history_rows
from .laplace import LaplaceFit
from .models import PURCHASE_MODELS, FitResult
from .psis import logsumexp, psis_loo
from .purchase import MODEL_NAMES as LABELS

#: A Pareto k above this makes the history's PSIS estimate unreliable (Vehtari et al. 2024).
K_THRESHOLD = 0.7
#: Draws per chain used for LOO (evenly thinned).
LOO_DRAWS_PER_CHAIN = 500
#: Histories per ArviZ call (bounds memory to draws x this many cells).
ROWS_PER_CHUNK = 20_000
#: Below this many draws PSIS cannot fit its Pareto tails (ArviZ needs 5 tail draws); the
#: score is then the in-sample log predictive density, and the report says so.
MIN_PSIS_DRAWS = 100
#: Above this many distinct histories PSIS-LOO is estimated from a subsample of profiles...
SUBSAMPLE_ABOVE = 50_000
#: ... of this many profiles (drawn without replacement, the same for every candidate).
SUBSAMPLE_PROFILES = 10_000
#: The subsample's seed: fixed, so a rerun and every candidate see the same customers.
SUBSAMPLE_SEED = 20190601


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
    #: Subsampled (large data): each history's surrogate elpd (the log-likelihood at the
    #: posterior mean), the profiles of each history in the sample (elpd_i is exact only
    #: where this is positive), and the standard error of sampling the profiles.
    approx_i: np.ndarray | None = None
    sample: np.ndarray | None = None
    subsample_se: float | None = None
    #: MBG/CNBD-k: each customer's score is elpd_i of its history plus this times its
    #: litt (k - 1; the x part of the constant is inside elpd_i), and the histories' sums
    #: of litt and litt squared.
    litt_coef: float = 0.0
    litt1: np.ndarray | None = None
    litt2: np.ndarray | None = None


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
    #: The winner's posterior is its importance-sampled Laplace approximation (large data).
    approximate_posterior: bool = False

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
    sample = (subsample(n, SUBSAMPLE_PROFILES, SUBSAMPLE_SEED) if len(x) > SUBSAMPLE_ABOVE
              else None)
    rows = np.arange(len(x)) if sample is None else np.flatnonzero(sample)
    elpd_i = np.full(len(x), np.nan)
    p_loo_i = np.full(len(x), np.nan)
    k_i = np.full(len(x), np.nan)
    for start in range(0, len(rows), ROWS_PER_CHUNK):
        sl = rows[start:start + ROWS_PER_CHUNK]
        ll = model.loglik_rows(flat, x[sl], t_x[sl], T[sl])
        if not psis:
            elpd_i[sl] = logsumexp(ll, axis=0) - np.log(ll.shape[0])
            k_i[sl], p_loo_i[sl] = np.nan, 0.0
            continue
        elpd_i[sl], k_i[sl], p_loo_i[sl] = psis_loo(ll, **options)
    # the per-customer constant of the likelihood (MBG/CNBD-k): its x part per history
    # here, its litt part (the same coefficient for every customer) in the sums below
    shift = model.customer_constant(x, np.zeros_like(x))
    elpd_i = elpd_i + shift
    coef = float(model.k - 1)
    s1, s2 = history_litt(fit.data.arrays)
    litt = {"litt_coef": coef, "litt1": s1, "litt2": s2}
    if sample is not None:
        point = {k: np.array([[float(np.mean(v))]]) for k, v in flat.items()}
        approx_i = np.concatenate([
            model.loglik_rows(point, x[s:s + ROWS_PER_CHUNK], t_x[s:s + ROWS_PER_CHUNK],
                              T[s:s + ROWS_PER_CHUNK])[0]
            for s in range(0, len(x), ROWS_PER_CHUNK)]) + shift
        elpd, sub_se, se = difference_estimate(elpd_i, approx_i, sample, n)
        elpd += coef * float(s1.sum())     # known for every customer: not estimated
        m = float(sample.sum())
        return Loo(elpd=elpd, se=se, p_loo=float(n.sum() * (sample[rows] @ p_loo_i[rows]) / m),
                   pareto_k_over_0_7=(float(sample[rows] @ (k_i[rows] > K_THRESHOLD) / m)
                                      if psis else None),
                   pareto_k_max=float(np.max(k_i[rows])) if psis else None, elpd_i=elpd_i,
                   weights=n, psis=psis, approx_i=approx_i, sample=sample,
                   subsample_se=sub_se, **litt)
    total = float(n.sum())
    elpd = float(n @ elpd_i) + coef * float(s1.sum())
    return Loo(elpd=elpd, se=litt_se(elpd_i, n, coef, s1, s2), p_loo=float(n @ p_loo_i),
               pareto_k_over_0_7=float(n[k_i > K_THRESHOLD].sum() / total) if psis else None,
               pareto_k_max=float(np.max(k_i)) if psis else None, elpd_i=elpd_i, weights=n,
               psis=psis, **litt)


def subsample(weights: np.ndarray, profiles: int = SUBSAMPLE_PROFILES,
              seed: int = SUBSAMPLE_SEED) -> np.ndarray:
    """How many of each history's ``weights[i]`` profiles a simple random sample of
    ``profiles`` profiles (without replacement) holds: a multivariate hypergeometric draw."""
    counts = np.asarray(weights, dtype=np.int64)
    take = min(int(profiles), int(counts.sum()))
    return np.random.default_rng(seed).multivariate_hypergeometric(counts, take,
                                                                   method="marginals")


def difference_estimate(exact: np.ndarray, approx: np.ndarray, sample: np.ndarray,
                        weights: np.ndarray) -> tuple[float, float, float]:
    """``(estimate, subsampling se, se)`` of sum over profiles of ``exact``, known only for
    the sampled profiles (``sample[i]`` of history i's ``weights[i]``), with ``approx``
    known for every history: Magnusson et al. (2019)'s difference estimator under simple
    random sampling without replacement, as ArviZ's ``_diff_srs_estimator``, with a row per
    profile written as weighted sums over histories. ``se`` estimates sqrt(N Var(exact_i))
    over all N profiles (the usual standard error of elpd_loo)."""
    n = np.asarray(weights, dtype=float)
    c = np.asarray(sample, dtype=float)
    s = c > 0
    N, m = float(n.sum()), float(c.sum())
    e = exact[s] - approx[s]
    mean_e = float(c[s] @ e) / m
    scaled = N * mean_e
    a_sum = float(n @ approx)
    estimate = a_sum + scaled
    if m <= 1:
        return estimate, float("inf"), float("inf")
    var_e = float(c[s] @ (e - mean_e) ** 2) / (m - 1)
    sub_var = N ** 2 * max(0.0, 1.0 - m / N) * var_e / m
    mean_sq = float(c[s] @ (exact[s] ** 2 - approx[s] ** 2)) / m
    total = (float(n @ approx ** 2) + N * mean_sq
             - (scaled ** 2 - sub_var + 2 * a_sum * estimate - a_sum ** 2) / N)
    return estimate, float(np.sqrt(sub_var)), float(np.sqrt(max(total, 0.0)))


def litt_se(values: np.ndarray, weights: np.ndarray, coef: float, s1: np.ndarray,
            s2: np.ndarray) -> float:
    """:func:`weighted_se` of per-customer scores values[h] + coef * litt_i (customer i of
    history h), from the histories' sums of litt (``s1``) and of litt squared (``s2``)."""
    if coef == 0.0:
        return weighted_se(values, weights)
    total = float(weights.sum())
    first = float(weights @ values) + coef * float(s1.sum())
    second = (float(weights @ values ** 2) + 2 * coef * float(values @ s1)
              + coef ** 2 * float(s2.sum()))
    var = (second - first ** 2 / total) / max(total - 1.0, 1.0)
    return float(np.sqrt(total * max(var, 0.0)))


def weighted_se(values: np.ndarray, weights: np.ndarray) -> float:
    """sqrt(N Var(values)) over N = sum(weights) observations, value i repeated weights[i]
    times, Var the sample variance (ArviZ's standard error of a sum of pointwise elpds,
    one row per profile)."""
    total = float(weights.sum())
    mean = float(weights @ values) / total
    var = float(weights @ (values - mean) ** 2) / max(total - 1.0, 1.0)
    return float(np.sqrt(total * var))


def _each(fn, items: list) -> list:
    """``[fn(item) for item in items]``, the items side by side on a run's own cores (numpy's
    array work and the native likelihoods release the GIL; CDNOW: PSIS-LOO of both
    candidates 4.0 s -> about 2 s). In a batch, where each merchant has one core
    (``HUBNB_THREADS``), one after the other."""
    from .predict import PREDICT_THREADS

    if PREDICT_THREADS < 2 or len(items) < 2:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(PREDICT_THREADS, len(items))) as pool:
        return list(pool.map(fn, items))


def choose_model(fits: dict[str, FitResult | LaplaceFit],
                 method: str = "psis-loo") -> ModelChoice:
    """The candidate with the higher elpd_loo, with every candidate's scores; ``method``
    names what the scores were computed on (``psis-loo (laplace)``: Laplace fits)."""
    loos = dict(zip(fits, _each(loo, list(fits.values()))))
    winner = max(loos, key=lambda name: loos[name].elpd)
    best = loos[winner]
    top = max(v.elpd for v in loos.values())
    weights = {k: float(np.exp(v.elpd - top)) for k, v in loos.items()}
    norm = sum(weights.values())
    candidates = {}
    for name, lo in loos.items():
        d = best.elpd_i - lo.elpd_i
        coef = best.litt_coef - lo.litt_coef
        s1_total = coef * float(best.litt1.sum()) if coef else 0.0
        if best.sample is None:
            d_elpd = float(best.weights @ d) + s1_total
            d_se = litt_se(d, best.weights, coef, best.litt1, best.litt2)
        elif name == winner:
            d_elpd, d_se = 0.0, 0.0
        else:   # the same subsample for both: the difference estimator of the differences
            d_elpd, d_sub, d_total = difference_estimate(d, best.approx_i - lo.approx_i,
                                                         best.sample, best.weights)
            d_elpd += s1_total
            d_se = float(np.hypot(d_total, d_sub))
        candidates[name] = {
            "elpd_loo": lo.elpd, "se": lo.se, "p_loo": lo.p_loo,
            "d_elpd": d_elpd, "d_se": d_se,
            "pareto_k_over_0_7": lo.pareto_k_over_0_7, "pareto_k_max": lo.pareto_k_max,
            "weight": weights[name] / norm,
        }
        if lo.sample is not None:
            candidates[name].update(subsample_se=lo.subsample_se,
                                    subsample_profiles=int(lo.sample.sum()))
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
                   "(trusted: the Pareto k of its importance weights is at most 0.7),"
                   + LAPLACE_SENTENCE)
    sampled = [lo for lo in loos.values() if lo.sample is not None]
    if sampled:
        reason += (f" With {len(best.weights):,} distinct purchase histories, the scores were "
                   f"estimated from a random sample of {int(sampled[0].sample.sum()):,} "
                   "customers (PSIS-LOO subsampling); the standard errors include the "
                   "sampling.")
    return ModelChoice(winner, candidates, clear, reason, method)


LAPLACE_SENTENCE = " and only the chosen model was then sampled in full."


def with_approximate_posterior(choice: ModelChoice) -> ModelChoice:
    """``choice`` whose reason says the winner's posterior is its importance-sampled
    approximation (large data, :func:`hubnb.clv.fitcache.posterior_fit`), not NUTS."""
    from dataclasses import replace

    return replace(choice, approximate_posterior=True, reason=choice.reason.replace(
        LAPLACE_SENTENCE, "; with this much data the chosen model's approximation is also its "
        "posterior (importance-sampled, without NUTS), so no model has an R-hat."))




def explain(winner: str, candidates: dict, clear: bool) -> str:
    """Why ``winner`` won, in plain words."""
    others = sorted((n for n in candidates if n != winner), key=lambda n: candidates[n]["d_elpd"])
    if not others:
        return f"{LABELS[winner]} was the only candidate."
    other = others[0]           # the runner-up
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
    for rest in others[1:]:
        text += (f" {LABELS[rest]} comes after them, lower than {w} by "
                 f"{candidates[rest]['d_elpd']:,.1f} (standard error {candidates[rest]['d_se']:,.1f}).")
    bad = [LABELS[n] for n, c in candidates.items() if (c["pareto_k_over_0_7"] or 0) > 0.01]
    if bad:
        text += (" Pareto k is above 0.7 for more than 1% of the customers under "
                 + " and ".join(bad) + ": those scores are less reliable.")
    return text
