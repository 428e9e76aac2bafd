"""The cheap first pass of ``clv.model: auto``: a Laplace approximation of every candidate.

Full NUTS costs thousands of evaluations of a model's log density and gradient; a Laplace
approximation costs about a hundred, plus one per draw it is scored on. So ``auto`` first
approximates every candidate, compares them by PSIS-LOO on the approximations, and samples
with NUTS only the models the comparison needs (:func:`hubnb.clv.compute.compute_clv`):

1. **Mode.** The posterior mode of the model's unconstrained parameters (the log of every
   positive parameter: the same log density, Jacobian included, that nutpie samples, from
   :mod:`hubnb.clv.native` and :mod:`hubnb.clv.native_pareto`), by BFGS with the exact
   gradient, started where the sampler starts (the priors' support points).
2. **Curvature.** The Hessian at the mode by central differences of the exact gradient;
   its negative inverse is the covariance of the normal approximation. A Hessian that is
   not negative definite means there is no usable approximation (the model is then
   sampled in full).
3. **Draws and their quality.** ``draws`` draws from q, a Student t with
   :data:`PROPOSAL_DF` degrees of freedom around the mode with that covariance as its
   scale (a little heavier-tailed than the normal), each weighted by p / q (the
   unnormalised posterior over q). The Pareto k of those weights says whether q is close
   enough to the posterior for importance sampling. Above :data:`ADAPT_UNTIL_K`, q moves
   to the weighted draws' mean and covariance and draws again (adaptive importance
   sampling, at most :data:`ADAPT_STEPS` times; a skewed posterior such as Pareto/NBD's
   dropout parameters usually needs one or two); the draws with the smallest k are kept.
   Above :data:`K_GOOD` the approximation is not trusted and the model is sampled in full.
4. **Model comparison.** PSIS-LOO with the approximate-posterior correction (ArviZ's
   ``loo_approximate_posterior``; Magnusson et al. 2019): each history's leave-one-out
   ratios are p / (q p(y_i)), Pareto-smoothed, so the scores are those of the posterior,
   not of q.

5. **The posterior of large data** (:func:`importance_posterior`). With many distinct
   histories (:data:`LARGE_ROWS` or more) the posterior is close to normal (Bernstein-von
   Mises) and NUTS costs minutes per fit. When the chosen model's weights have Pareto k at
   most :data:`K_POSTERIOR` (0.5: the importance weights have finite variance, Vehtari et
   al. 2024), its draws, Pareto-smoothed and resampled by their weights (sampling
   importance resampling), are the posterior the predictions use: the same draws, with
   the same quality check, as ArviZ's ``loo_approximate_posterior`` relies on. Otherwise
   the model is sampled with NUTS as always.

This is the standard Laplace approximation (e.g. Gelman et al., BDA3, ch. 13.3) with
importance-sampling diagnostics (Vehtari et al. 2024, PSIS).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .histories import CompressedData

#: Draws from the normal approximation (as many as PSIS-LOO uses of a NUTS fit).
LAPLACE_DRAWS = 1000
#: Above this Pareto k of the importance weights p / q, the approximation is not trusted.
K_GOOD = 0.7
#: Degrees of freedom of the Student-t proposal around the mode.
PROPOSAL_DF = 7
#: Proposal moves towards the weighted draws while the weights' Pareto k is above this...
ADAPT_UNTIL_K = 0.5
#: ... at most this many times.
ADAPT_STEPS = 2
#: Relative step of the central differences of the gradient.
HESSIAN_STEP = 1e-5
#: Draws of a backtest's other candidates' approximation (hubnb.clv.backtest).
CANDIDATE_LAPLACE_DRAWS = 400
#: From this many distinct purchase histories on, a trusted approximation is the posterior...
LARGE_ROWS = 50_000
#: ... when the Pareto k of its importance weights is at most this.
K_POSTERIOR = 0.5


@dataclass(frozen=True)
class LaplaceFit:
    """A candidate's normal approximation and its draws.

    Attributes
    ----------
    model_name : str
    mode, cov : ndarray
        The unconstrained mode and the covariance of the proposal the draws came from.
    draws : dict
        Stored values per draw (as a NUTS fit's ``draws``): purchase and spend parameters.
    log_p, log_q : ndarray
        The unnormalised log posterior and the approximation's log density at each draw.
    pareto_k : float
        Pareto k of the importance weights p / q (infinite when they could not be fitted).
    seconds : float
    evaluations : int
        Log density and gradient evaluations used.
    data : CompressedData
    """

    model_name: str
    mode: np.ndarray
    cov: np.ndarray
    draws: dict
    log_p: np.ndarray
    log_q: np.ndarray
    pareto_k: float
    seconds: float
    evaluations: int
    data: CompressedData

    @property
    def reliable(self) -> bool:
        return bool(np.isfinite(self.pareto_k) and self.pareto_k <= K_GOOD)


def _native(model_name: str, arrays: dict):
    """``(logp, prior_mu, prior_sigma, expand)`` of the model's native log density."""
    from .models import PURCHASE_MODELS

    return PURCHASE_MODELS[model_name].native(arrays)


def laplace_fit(model_name: str, data: CompressedData, draws: int = LAPLACE_DRAWS,
                seed: int = 1) -> LaplaceFit | None:
    """The Laplace approximation of ``model_name`` (+ Gamma-Gamma) on ``data``, or None
    when there is none (no finite mode, or a Hessian that is not negative definite)."""
    t0 = time.perf_counter()
    logp, mu, sigma, expand = _native(model_name, data.arrays)
    mode, _, calls = _mode(logp, mu, sigma)
    if mode is None:
        return None
    k = len(mode)
    hessian = np.empty((k, k))
    for j in range(k):
        h = HESSIAN_STEP * max(1.0, abs(mode[j]))
        step = np.zeros(k)
        step[j] = h
        hessian[j] = (logp(mode + step)[1] - logp(mode - step)[1]) / (2 * h)
        calls += 2
    precision = -(hessian + hessian.T) / 2
    try:
        np.linalg.cholesky(precision)       # negative definite Hessian: a maximum
    except np.linalg.LinAlgError:
        return None
    # Student-t draws around the mode with the normal approximation's scale (heavier tails
    # than the normal), weighted by p / q. Where the weights' Pareto k says the posterior
    # is not that close to normal (skewed, as Pareto/NBD's dropout parameters often are),
    # the proposal moves to the weighted draws' mean and covariance and draws again
    # (adaptive importance sampling), at most ADAPT_STEPS times.
    rng = np.random.default_rng(seed)
    centre, cov = mode, np.linalg.inv(precision)
    theta, pareto_k = None, float("inf")
    for step in range(ADAPT_STEPS + 1):
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            break
        z = rng.standard_normal((draws, k))
        w = rng.chisquare(PROPOSAL_DF, draws) / PROPOSAL_DF
        proposal = centre + (z @ chol.T) / np.sqrt(w)[:, None]
        proposal_log_q = _log_t(np.sum(z ** 2, axis=1) / w, k, PROPOSAL_DF,
                                -2 * np.sum(np.log(np.diag(chol))))
        proposal_log_p = np.array([logp(t)[0] for t in proposal])
        calls += draws
        proposal_k = _pareto_k(proposal_log_p - proposal_log_q)
        if theta is None or proposal_k < pareto_k:
            theta, log_p, log_q, pareto_k, used = (proposal, proposal_log_p, proposal_log_q,
                                                   proposal_k, cov)
        if pareto_k <= ADAPT_UNTIL_K or not np.isfinite(proposal_k):
            break
        weights = np.exp(proposal_log_p - proposal_log_q
                         - np.max(proposal_log_p - proposal_log_q))
        weights /= weights.sum()
        if 1.0 / np.sum(weights ** 2) < 10 * k:     # too few effective draws to move on
            break
        centre = weights @ proposal
        deviation = proposal - centre
        cov = (deviation * weights[:, None]).T @ deviation
    if theta is None:
        return None
    values = [expand(t) for t in theta]
    stored = {name: np.array([float(v[name]) for v in values]) for name in values[0]}
    stored["v"] = stored.pop("v_scaled") * data.spend_scale
    stored.pop("q_minus_1", None)
    return LaplaceFit(model_name, mode, used, stored, log_p, log_q, pareto_k,
                      round(time.perf_counter() - t0, 3), calls, data)


def _mode(logp, mu, sigma, start=None):
    """``(mode, log density there, evaluations)`` by BFGS with the exact gradient, started
    at ``start`` or where the sampler starts (the priors' support points); mode None when
    not finite."""
    from scipy.optimize import minimize

    calls = 0

    def negative(theta):
        nonlocal calls
        calls += 1
        value, grad = logp(theta)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(theta)
        return -value, -grad

    start = mu + 0.5 * sigma ** 2 if start is None else np.asarray(start, dtype=float)
    found = minimize(negative, start, jac=True, method="BFGS",
                     options={"gtol": 1e-6, "maxiter": 2000})
    mode = found.x
    if not np.all(np.isfinite(mode)) or not np.isfinite(found.fun) or found.fun >= 1e300:
        return None, float("-inf"), calls
    return mode, -float(found.fun), calls


def mode_score(model_name: str, data: CompressedData, start=None) -> tuple:
    """``(score, mode)``: the log posterior density at its mode plus every customer's
    parameter-free likelihood constant, what the grid over MBG/CNBD-k's k compares
    (BTYDplus searches k by the maximised likelihood; here the priors, the same for every
    k, come with it), and the mode. BFGS starts at ``start`` when given (the previous k's
    mode: the parameters are the same). (-inf, None) when no mode is found."""
    from .histories import history_litt, history_rows
    from .models import PURCHASE_MODELS

    model = PURCHASE_MODELS[model_name]
    logp, mu, sigma, _ = _native(model_name, data.arrays)
    mode, value, _ = _mode(logp, mu, sigma, start)
    if mode is None:
        return float("-inf"), None
    x, _, _, n = history_rows(data.arrays)
    s1, _ = history_litt(data.arrays)
    return (value + float(n @ model.customer_constant(x, np.zeros_like(x)))
            + float((model.k - 1) * s1.sum()), mode)


def _log_t(mahalanobis2: np.ndarray, k: int, df: float, log_det_precision: float) -> np.ndarray:
    """Log density of a k-variate Student t with ``df`` degrees of freedom at points whose
    squared Mahalanobis distances from its centre are ``mahalanobis2``."""
    from scipy.special import gammaln

    return (gammaln((df + k) / 2) - gammaln(df / 2) - k / 2 * np.log(df * np.pi)
            + 0.5 * log_det_precision - (df + k) / 2 * np.log1p(mahalanobis2 / df))


def _pareto_k(log_weights: np.ndarray) -> float:
    """Pareto k of importance weights (ArviZ's PSIS); infinite when not finite or flat."""
    import arviz_stats  # noqa: F401  (registers the .azstats accessor)
    import xarray as xr

    if not np.all(np.isfinite(log_weights)):
        return float("inf")
    shifted = log_weights - np.max(log_weights)   # PSIS exponentiates: keep it in range
    try:
        # ArviZ's psislw takes a log likelihood and smooths its negative (the LOO ratios)
        _, k = xr.DataArray(-shifted[None, :], dims=("chain", "draw")).azstats.psislw()
    except ValueError:
        return float("inf")
    k = float(np.asarray(k))
    return k if np.isfinite(k) else float("inf")


def importance_posterior(quick: LaplaceFit, seed: int = 1):
    """The posterior of ``quick``'s model as a :class:`~hubnb.clv.models.FitResult`: its
    draws, Pareto-smoothed importance weights p / q, resampled by those weights
    (systematic resampling, then shuffled), as one chain.

    Diagnostics: ``posterior`` is ``"laplace-is"``; ``ess_bulk_min`` is the importance
    sampling's effective number of draws, 1 / sum(w^2) of the normalised smoothed weights;
    ``pareto_k`` the weights' Pareto k; R-hat does not apply (None). The fit is flagged,
    like a NUTS fit, when the effective draws are below ``ESS_MIN`` or k above
    :data:`K_POSTERIOR`.
    """
    import pandas as pd
    import xarray as xr

    from ..i18n import N_
    from ..messages import Message
    from .models import ESS_MIN, PURCHASE_MODELS, FitResult, GammaGammaModel
    from .psis import smoothed_log_weights

    log_w, _ = smoothed_log_weights((quick.log_p - quick.log_q)[:, None])
    w = np.exp(log_w[:, 0])
    w /= w.sum()
    n = len(w)
    ess = float(1.0 / np.sum(w ** 2))
    rng = np.random.default_rng(seed)
    positions = (rng.random() + np.arange(n)) / n
    idx = np.minimum(np.searchsorted(np.cumsum(w), positions), n - 1)
    idx = rng.permutation(idx)
    names = PURCHASE_MODELS[quick.model_name].param_names + GammaGammaModel.param_names
    draws = {name: np.asarray(quick.draws[name], dtype=float)[idx] for name in names}
    posterior = xr.Dataset({name: (("chain", "draw"), draws[name][None, :]) for name in names})
    idata = xr.DataTree.from_dict({"posterior": posterior})
    summary = pd.DataFrame([{"parameter": name, "mean": float(v.mean()),
                             "sd": float(v.std(ddof=1)), "q05": float(np.quantile(v, 0.05)),
                             "q95": float(np.quantile(v, 0.95)), "ess_bulk": ess}
                            for name, v in draws.items()]).set_index("parameter")
    reasons = []
    if ess < ESS_MIN:
        reasons.append(Message(N_("bulk ESS {ess} < {limit}: too few effective draws; run "
                                  "more draws"), ess=int(round(ess)), limit=ESS_MIN))
    if not quick.pareto_k <= K_POSTERIOR:
        reasons.append(Message(N_("Pareto k {k} > {limit}: the approximation is not close "
                                  "enough to the posterior"),
                               k=round(float(quick.pareto_k), 2), limit=K_POSTERIOR))
    diagnostics = {"r_hat_max": None, "ess_bulk_min": ess, "divergences": 0,
                   "fit_seconds": quick.seconds, "compile_seconds": 0.0,
                   "flagged": bool(reasons), "flag_reasons": reasons,
                   "posterior": "laplace-is", "pareto_k": float(quick.pareto_k),
                   "proposal_draws": n}
    return FitResult(quick.model_name, idata, draws, diagnostics, summary, quick.data)
