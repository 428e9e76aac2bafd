"""The one-stage population model, for benchmarks only: partial pooling in PyMC on the
weighted distinct-history rows of every eligible merchant at once.

hubnb learns its population in two stages (hubnb/clv/population.py: each merchant's
likelihood summarised as a Normal, then a hierarchical Normal model over the summaries).
This is the model that two-stage approximation stands for:

    mu_j ~ the default prior of coordinate j      tau_j ~ HalfNormal(TAU_SCALE)
    theta_mj = mu_j + tau_j z_mj,  z_mj ~ N(0, 1)  (non-centred)
    each merchant's rows ~ the purchase model + Gamma-Gamma at exp(theta_m)

with the same seven coordinates (log r, log alpha, log a|s, log b|beta, log p, log(q - 1),
log v_scaled) and the same likelihoods (the PyMC ``loglike`` of each model class, which the
tests hold equal to the native ones). ``pooling_bench.py`` compares its population with the
two-stage one: the population mean and spread, and the prior a new merchant gets.
"""

from __future__ import annotations

import time

import numpy as np


def one_stage_population(datas: list, model: str, draws: int = 500, seed: int = 1):
    """A :class:`hubnb.clv.population.ModelPopulation` from the one-stage model on the
    merchants' :class:`~hubnb.clv.histories.CompressedData`."""
    import pymc as pm
    import pytensor.tensor as pt

    from hubnb.clv import population as P
    from hubnb.clv.models import PURCHASE_MODELS, GammaGammaModel

    purchase = PURCHASE_MODELS[model]
    mu0, sigma0 = P.default_prior(model)
    names = purchase.param_names
    m_count = len(datas)
    t0 = time.perf_counter()
    with pm.Model():
        mu = pm.Normal("mu", mu=mu0, sigma=sigma0, shape=7)
        tau = pm.HalfNormal("tau", sigma=P.TAU_SCALE, shape=7)
        z = pm.Normal("z", 0.0, 1.0, shape=(m_count, 7))
        e = pt.exp(mu[None, :] + tau[None, :] * z)
        for m, data in enumerate(datas):
            d = {k: pt.as_tensor_variable(np.asarray(v, dtype=float))
                 for k, v in data.arrays.items() if not k.startswith("prior_")}
            pv = {n: e[m, i] for i, n in enumerate(names)}
            gv = {"p": e[m, 4], "q": 1.0 + e[m, 5], "v": e[m, 6]}
            pm.Potential(f"merchant_{m}", purchase.loglike(pv, d) + GammaGammaModel.loglike(gv, d))
        idata = pm.sample(draws=draws, tune=draws, chains=2, cores=1, random_seed=seed,
                          nuts_sampler="nutpie", progressbar=False, target_accept=0.9)
    post = idata.posterior
    mu_d = post["mu"].to_numpy().reshape(-1, 7)
    tau_d = post["tau"].to_numpy().reshape(-1, 7)
    prior_var = mu_d.var(axis=0) + (tau_d ** 2).mean(axis=0)
    diagnostics = {"divergences": int(idata.sample_stats["diverging"].sum()),
                   "seconds": round(time.perf_counter() - t0, 3), "draws": draws}
    return P.ModelPopulation(model, P.coordinates(model), mu_d.mean(axis=0), mu_d.std(axis=0),
                             tau_d.mean(axis=0), tau_d.std(axis=0), mu_d.mean(axis=0),
                             np.sqrt(prior_var), m_count, diagnostics)


def agreement(two, one) -> dict:
    """How far the two-stage population is from the one-stage one, per coordinate: the
    difference of the population means in units of the one-stage posterior sd, and the
    ratio of the new-merchant prior sds."""
    return {"mu_diff_in_sd": list(np.round((two.mu_mean - one.mu_mean)
                                           / np.maximum(one.mu_sd, 1e-9), 2)),
            "prior_sigma_ratio": list(np.round(two.prior_sigma / one.prior_sigma, 2)),
            "tau_two": list(np.round(two.tau_mean, 3)), "tau_one": list(np.round(one.tau_mean, 3))}
