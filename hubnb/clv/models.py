"""The Bayesian CLV models: Pareto/NBD, MBG/NBD or BG/NBD for purchases, Gamma-Gamma for spend.

Time is in days. Both likelihoods are written on *compressed* data: one row per distinct
(x, t_x, T) for purchases and per distinct (x, z_bar) for spend, each weighted by how many
profiles share it. The log-likelihood of n identical rows is n times the log-likelihood of
one, so the posterior is exactly the one of a row per profile; what changes is the cost.
Gamma-function terms depend only on x and are evaluated once per distinct x; a row costs a
few logs and an exp.

The two models are sampled together in one PyMC model: their posteriors are independent
(no shared parameter), so draw i of the joint sample pairs a purchase-model draw with a
spend-model draw, which is what the intervals of predicted CLV need.

Priors (weakly informative, on the scale of days and of the mean repeat spend):

=========  =======================================  ==========================
parameter  prior                                    90% prior range
=========  =======================================  ==========================
r          LogNormal(log 0.5, 1.5)                  0.04 to 5.9
(a, b: BG/NBD and MBG/NBD)
alpha      LogNormal(log 100, 2)  (days)            3.7 to 2,700 days
a          LogNormal(0, 1.5)                        0.08 to 12
b          LogNormal(log 2, 1.5)                    0.17 to 24
s          LogNormal(log 0.5, 1.5)                  0.04 to 5.9
beta       LogNormal(log 500, 2.5) (days)           8 to 30,000 days
p          LogNormal(log 2, 1.5)                    0.17 to 24
q          1 + LogNormal(log 2, 1.5)                1.17 to 25 (q > 1: finite mean spend)
v          LogNormal(0, 2) x mean repeat spend      0.04 to 27 x mean spend
=========  =======================================  ==========================
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from ..cores import cpu_budget
from ..i18n import N_
from ..messages import Message
from . import formulas as F
from .bg_nbd import BetaGeoModel
from .histories import CompressedData
from .mbg_nbd import ModifiedBetaGeoModel
from .pareto_nbd import ParetoNBDModel
from .purchase import PurchaseModel

# ----------------------------------------------------------------------------- data


# ----------------------------------------------------------------------------- models


class GammaGammaModel:
    """Gamma-Gamma spend model (Fader and Hardie 2013): a customer's transaction values are
    Gamma(p, nu) with nu ~ Gamma(q, v) across customers; fit on repeat transactions."""

    name = "gamma_gamma"
    param_names = ("p", "q", "v")

    @staticmethod
    def priors():
        p = pm.LogNormal("p", mu=np.log(2.0), sigma=1.5)
        q_minus_1 = pm.LogNormal("q_minus_1", mu=np.log(2.0), sigma=1.5)
        q = pm.Deterministic("q", 1.0 + q_minus_1)
        v = pm.LogNormal("v_scaled", mu=0.0, sigma=2.0)
        return {"p": p, "q": q, "v": v}

    @staticmethod
    def loglike(v, d):
        """FH13's density of z_bar, over weighted distinct (x, z_bar) rows."""
        p, q, vv = v["p"], v["q"], v["v"]
        xu = d["gx_uniq"]
        ll = pt.sum(d["gx_count"] * (pt.gammaln(p * xu + q) - pt.gammaln(p * xu)
                                     - pt.gammaln(q)))
        ll += d["n_spenders"] * q * pt.log(vv) + p * d["g_s1"] - d["g_s0"]
        ll -= pt.sum(d["gw"] * (p * d["gx"] + q) * pt.log(vv + d["gx"] * d["gz"]))
        return ll

    @staticmethod
    def expected_spend(p, x, mean_spend):
        """Conditional expected transaction value; the population mean where x = 0."""
        return F.gamma_gamma_expected_spend(p["p"], p["q"], p["v"], x, mean_spend)


class _Models(dict):
    """The purchase models by name; ``mbg_cnbd_k<K>`` is MBG/CNBD-k with regularity K."""

    def __missing__(self, name):
        from .mbg_cnbd import model_for

        model = model_for(name)
        if model is None:
            raise KeyError(name)
        self[name] = model
        return model

    def __contains__(self, name):
        try:
            self[name]
        except KeyError:
            return False
        return True


PURCHASE_MODELS: dict[str, type[PurchaseModel]] = _Models(
    {"pareto_nbd": ParetoNBDModel, "mbg_nbd": ModifiedBetaGeoModel, "bg_nbd": BetaGeoModel})
#: What ``clv.model: auto`` fits and chooses between (BG/NBD holds one-order customers
#: active, so it is never chosen automatically).
AUTO_CANDIDATES = ("pareto_nbd", "mbg_nbd")


def build_model(purchase: type, data: CompressedData) -> pm.Model:
    """The joint PyMC model of purchases and spend, data in ``pm.Data`` containers."""
    with pm.Model() as model:
        d = {k: pm.Data(k, v) for k, v in data.arrays.items()}
        pv = purchase.priors()
        gv = GammaGammaModel.priors()
        pm.Potential("purchase_loglike", purchase.loglike(pv, d))
        pm.Potential("spend_loglike", GammaGammaModel.loglike(gv, d))
    return model


# ----------------------------------------------------------------------------- fitting

#: R-hat above this flags a fit (Vehtari et al. 2021).
RHAT_MAX = 1.01
#: Bulk ESS below this flags a fit: too few effective draws for 90% intervals.
ESS_MIN = 100

_COMPILED: dict = {}


@dataclass
class FitResult:
    """A fitted joint model.

    Attributes
    ----------
    model_name : str
        ``bg_nbd`` or ``pareto_nbd``.
    idata : xarray.DataTree
        nutpie's output (``posterior`` holds every parameter, v in money units).
    draws : dict of ndarray
        Each global parameter's draws, chains concatenated (shape ``(chains * draws,)``).
    diagnostics : dict
        ``r_hat_max``, ``ess_bulk_min``, ``divergences``, ``fit_seconds``,
        ``compile_seconds``, ``flagged``, ``flag_reasons``.
    params_summary : DataFrame
        Mean, sd, 5% and 95% quantiles, R-hat and bulk ESS per parameter.
    """

    model_name: str
    idata: object
    draws: dict
    diagnostics: dict
    params_summary: pd.DataFrame
    data: CompressedData | None = field(default=None, repr=False)

    @property
    def param_names(self) -> tuple[str, ...]:
        return PURCHASE_MODELS[self.model_name].param_names + GammaGammaModel.param_names


class ClvModel:
    """BG/NBD or Pareto/NBD with Gamma-Gamma, sampled jointly with nutpie.

    BG/NBD and MBG/NBD + Gamma-Gamma sample :mod:`hubnb.clv.native`'s hand-written numba log
    density and gradient of the same model, Pareto/NBD + Gamma-Gamma
    :mod:`hubnb.clv.native_pareto`'s (each tested equal to the PyMC model's), compiled once
    and cached on disk (``$HUBNB_CACHE_DIR``, default ``~/.cache/hubnb``): a new process
    loads them in well under a second. The PyMC path for Pareto/NBD (``native_pareto=False``)
    compiles the PyMC model with nutpie, cached per purchase model in the process, a new
    data set swapped in with nutpie's ``with_data``.
    """

    def __init__(self, purchase: str = "bg_nbd"):
        if purchase not in PURCHASE_MODELS:
            raise ValueError(f"unknown purchase model {purchase!r}")
        self.purchase = PURCHASE_MODELS[purchase]

    def compiled(self, data: CompressedData, native_pareto: bool = True):
        """``(nutpie model, compile seconds, cache info)`` for ``data``.

        ``native_pareto=False`` compiles Pareto/NBD's PyMC model with nutpie instead of
        using :mod:`hubnb.clv.native_pareto` (the reference path, for tests and benchmarks).
        """
        import nutpie

        t0 = time.perf_counter()
        native = (self.purchase.compile_native(data.arrays)
                  if native_pareto or self.purchase is not ParetoNBDModel else None)
        if native is not None:
            model, info = native
            return model, time.perf_counter() - t0, {
                "compile_cache_hit": bool(info["cache_hit"]),
                "compiled_in_process": not info["first_in_process"]}
        key = self.purchase.name
        if key not in _COMPILED:
            model = build_model(self.purchase, data)
            _COMPILED[key] = nutpie.compile_pymc_model(model, freeze_model=False)
            return _COMPILED[key], time.perf_counter() - t0, {
                "compile_cache_hit": False, "compiled_in_process": False}
        return (_COMPILED[key].with_data(**data.arrays), time.perf_counter() - t0,
                {"compile_cache_hit": False, "compiled_in_process": True})

    def fit(self, data: CompressedData, chains: int = 2, draws: int = 1000, tune: int = 1000,
            seed: int = 1, progress: bool = False, native_pareto: bool = True) -> FitResult:
        """Sample the posterior with NUTS (nutpie, low-rank mass-matrix adaptation, which
        copes with the strong a-b and q-v correlations in a fraction of the steps)."""
        import nutpie

        t0 = time.perf_counter()
        compiled, compile_seconds, cache_info = self.compiled(data, native_pareto)
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=min(chains, cpu_budget()),
                              seed=seed, progress_bar=progress, adaptation="low_rank")
        fit_seconds = time.perf_counter() - t0
        post = idata["posterior"].to_dataset()
        post["v"] = post["v_scaled"] * data.spend_scale
        idata["posterior"] = post
        names = self.purchase.param_names + GammaGammaModel.param_names
        divergences = int(idata["sample_stats"]["diverging"].sum())
        diagnostics, summary = diagnose(post[list(names)], divergences)
        diagnostics["fit_seconds"] = round(fit_seconds, 3)
        diagnostics["compile_seconds"] = round(compile_seconds, 3)
        diagnostics.update(cache_info)
        draws_ = {k: post[k].to_numpy().reshape(-1) for k in names}
        return FitResult(self.purchase.name, idata, draws_, diagnostics, summary, data)


def diagnose(posterior, divergences: int) -> tuple[dict, pd.DataFrame]:
    """R-hat, bulk ESS and divergences of a posterior ``xarray.Dataset``; flags a bad fit.

    A fit is flagged when any R-hat exceeds :data:`RHAT_MAX`, any divergence occurred or a
    bulk ESS is below :data:`ESS_MIN`; ``flag_reasons`` says which, in words.
    """
    import arviz as az

    rhat = az.rhat(posterior)
    ess = az.ess(posterior, method="bulk")
    rows = []
    for name in posterior.data_vars:
        vals = posterior[name].to_numpy().reshape(-1)
        rows.append({"parameter": name, "mean": float(vals.mean()), "sd": float(vals.std(ddof=1)),
                     "q05": float(np.quantile(vals, 0.05)), "q95": float(np.quantile(vals, 0.95)),
                     "r_hat": float(rhat[name]), "ess_bulk": float(ess[name])})
    summary = pd.DataFrame(rows).set_index("parameter")
    r_hat_max = float(np.nanmax(summary["r_hat"])) if len(summary) else float("nan")
    ess_min = float(np.nanmin(summary["ess_bulk"])) if len(summary) else float("nan")
    reasons = []
    if not np.isfinite(r_hat_max) or r_hat_max > RHAT_MAX:
        worst = summary["r_hat"].idxmax() if np.isfinite(r_hat_max) else "?"
        reasons.append(Message(N_("R-hat {r_hat} > {limit} (parameter {name}): the chains "
                                  "disagree; run more tune/draws"),
                               r_hat=round(r_hat_max, 3), limit=RHAT_MAX, name=str(worst)))
    if divergences > 0:
        reasons.append(Message(N_("{n} divergent transitions: the posterior may be biased"),
                               n=int(divergences)))
    if not np.isfinite(ess_min) or ess_min < ESS_MIN:
        reasons.append(Message(N_("bulk ESS {ess} < {limit}: too few effective draws; run "
                                  "more draws"), ess=int(round(ess_min)) if np.isfinite(ess_min) else "nan",
                               limit=ESS_MIN))
    diagnostics = {"r_hat_max": r_hat_max, "ess_bulk_min": ess_min, "divergences": divergences,
                   "flagged": bool(reasons), "flag_reasons": reasons}
    return diagnostics, summary
