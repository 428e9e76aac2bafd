"""Partial pooling across the merchants of a batch: the population model and its prior.

A merchant below Klaviyo's eligibility bar has too few customers to pin down its own
purchase, dropout and spend parameters; the eligible merchants of the same batch say what
merchants are like. The population model learns that, and a small merchant's fit uses it
as its prior, so its estimates borrow strength from its peers as far as its own data are
silent.

Every fit of hubnb places independent Normal priors on seven unconstrained coordinates of
a purchase model + Gamma-Gamma: the logs of the four purchase parameters (BG/NBD and
MBG/NBD: r, alpha, a, b; Pareto/NBD: r, alpha, s, beta) and of p, q - 1 and v / the
merchant's mean repeat spend (unit-free, so merchants in different currencies and price
ranges compare). The population model is a hierarchical Normal model on those coordinates,
fitted in two stages (the "equivalent two-stage approximation" of the issue; the benchmark
compares it with the one-stage model on every merchant's rows):

1. *What each eligible merchant says* (:func:`merchant_summary`): its posterior under the
   default priors, from the importance-weighted draws of its Laplace approximation (the
   same approximation ``auto`` makes anyway, :mod:`hubnb.clv.laplace`), as a mean and
   covariance of the seven coordinates; the default prior is divided out (precisions
   subtract), which leaves a Normal approximation of the merchant's likelihood,
   ``theta_hat_m ~ N(theta_m, V_m)``.
2. *The population* (:func:`fit_population`): ``theta_m ~ N(mu, diag(tau^2))``, so
   ``theta_hat_m ~ N(mu, diag(tau^2) + V_m)`` once ``theta_m`` is integrated out, with
   ``mu`` under the default priors and ``tau ~ HalfNormal(TAU_SCALE)``; its exact log
   density and gradient (:func:`population_logp`, numpy) are sampled with NUTS by nutpie,
   PyMC's sampler, as the merchants' own models are.

The prior of a new merchant is the population's predictive distribution of ``theta``,
summarised per coordinate as a Normal with mean E[mu] and variance Var(mu) + E[tau^2]
(:attr:`Population.prior`): a wider population, or fewer peers, make a wider prior. The
small merchant's fit then runs exactly as any other, with this prior in place of the
default one (:func:`~hubnb.clv.histories.with_prior`), so its intervals are the posterior's: wide where its own
data say little. How much the peers decided is the share of the posterior precision of
each coordinate that comes from the prior (:func:`prior_share`).

Pooled per model: each purchase model has its own population (its coordinates mean
different things), for the models ``auto`` compares (Pareto/NBD and MBG/NBD) and BG/NBD.
MBG/CNBD-k is not pooled: a merchant under the bar has too few repeat gaps to choose k, so a
pooled ``auto`` compares Pareto/NBD and MBG/NBD (MBG/CNBD-1).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .histories import with_prior  # noqa: F401  (a pooled fit's data)

#: Written beside the merchants' folders by ``hubnb batch``.
POPULATION_FILE = "population.json"
#: A merchant under the eligibility bar gets a pooled CLV from this many customers with a
#: counted order on; below it the report says "not eligible" as before.
FLOOR_CUSTOMERS = 30
#: ... and at least this many of them with a repeat purchase, an order on another day than
#: their first (else nothing about repeat buying, or repeat spend, is the merchant's own).
FLOOR_REPEAT_CUSTOMERS = 1
#: A population needs at least this many eligible merchants.
MIN_MERCHANTS = 3
#: The purchase models that have a population.
POOLED_MODELS = ("pareto_nbd", "mbg_nbd", "bg_nbd")
#: Scale of the HalfNormal prior of each coordinate's merchant-to-merchant spread (log
#: scale: 1 is a factor e between typical merchants).
TAU_SCALE = 1.0
#: Draws of the population model (per chain, 2 chains, as many tuning steps).
POPULATION_DRAWS = 500
#: Bumped when population.json's layout changes; an older file is refused.
FORMAT = 1
#: The names of the seven coordinates, after the purchase parameters.
SPEND_COORDINATES = ("log p", "log (q - 1)", "log v_scaled")


def coordinates(model: str) -> tuple[str, ...]:
    """The seven unconstrained coordinates of ``model`` + Gamma-Gamma, named."""
    from .models import PURCHASE_MODELS

    return tuple(f"log {n}" for n in PURCHASE_MODELS[model].param_names) + SPEND_COORDINATES


def default_prior(model: str) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` of the default Normal priors of the seven coordinates."""
    if model == "pareto_nbd":
        from .native_pareto import PRIOR_MU, PRIOR_SIGMA
    else:                       # the BG family's (BG/NBD, MBG/NBD, MBG/CNBD-k)
        from .native import PRIOR_MU, PRIOR_SIGMA
    return np.asarray(PRIOR_MU, dtype=float), np.asarray(PRIOR_SIGMA, dtype=float)


def theta_of(draws: dict, model: str, spend_scale: float) -> np.ndarray:
    """The seven coordinates of each draw of a fit's stored values (draws x 7)."""
    from .models import PURCHASE_MODELS

    cols = [np.log(np.asarray(draws[n], dtype=float)) for n in PURCHASE_MODELS[model].param_names]
    cols += [np.log(np.asarray(draws["p"], dtype=float)),
             np.log(np.asarray(draws["q"], dtype=float) - 1.0),
             np.log(np.asarray(draws["v"], dtype=float) / spend_scale)]
    return np.stack(cols, axis=1)


@dataclass(frozen=True)
class Summary:
    """What one merchant's data say about its coordinates: the Normal approximation of its
    likelihood, ``mean`` and covariance ``cov`` (the default prior divided out)."""

    model: str
    mean: np.ndarray
    cov: np.ndarray


def merchant_summary(quick, spend_scale: float) -> Summary | None:
    """:class:`Summary` of a Laplace fit (:class:`hubnb.clv.laplace.LaplaceFit`, made under
    the default priors), or None when it is missing or not trusted.

    The posterior's mean and covariance come from the draws weighted by their smoothed
    importance weights p / q; the prior's precision is then subtracted from the posterior's
    (and its precision-weighted mean from the posterior's), and negative eigenvalues that the
    subtraction can leave where the data say nothing are lifted to a tiny precision."""
    from .psis import smoothed_log_weights

    if quick is None or not quick.reliable:
        return None
    theta = theta_of(quick.draws, quick.model_name, spend_scale)
    log_w, _ = smoothed_log_weights((quick.log_p - quick.log_q)[:, None])
    w = np.exp(log_w[:, 0])
    w /= w.sum()
    mean = w @ theta
    dev = theta - mean
    cov = (dev * w[:, None]).T @ dev
    return likelihood_of(quick.model_name, mean, cov)


def likelihood_of(model: str, post_mean: np.ndarray, post_cov: np.ndarray) -> Summary:
    """The Normal likelihood that, times the default prior, gives the Normal posterior
    ``N(post_mean, post_cov)``."""
    mu0, sigma0 = default_prior(model)
    post_prec = np.linalg.inv(post_cov)
    prec = post_prec - np.diag(1.0 / sigma0 ** 2)
    prec = (prec + prec.T) / 2
    vals, vecs = np.linalg.eigh(prec)
    floor = 1e-6 * max(float(vals.max()), 1e-6)
    vals = np.maximum(vals, floor)
    prec = (vecs * vals) @ vecs.T
    cov = np.linalg.inv(prec)
    mean = cov @ (post_prec @ post_mean - mu0 / sigma0 ** 2)
    return Summary(model, mean, (cov + cov.T) / 2)


@dataclass(frozen=True)
class ModelPopulation:
    """One purchase model's population: the posterior of ``mu`` and ``tau`` (means and sds
    per coordinate) and the prior it gives a new merchant."""

    model: str
    coordinates: tuple
    mu_mean: np.ndarray
    mu_sd: np.ndarray
    tau_mean: np.ndarray
    tau_sd: np.ndarray
    prior_mu: np.ndarray
    prior_sigma: np.ndarray
    merchants: int
    diagnostics: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"coordinates": list(self.coordinates), "merchants": self.merchants,
                "mu": {"mean": _list(self.mu_mean), "sd": _list(self.mu_sd)},
                "tau": {"mean": _list(self.tau_mean), "sd": _list(self.tau_sd)},
                "prior": {"mu": _list(self.prior_mu), "sigma": _list(self.prior_sigma)},
                "diagnostics": self.diagnostics}

    @classmethod
    def from_dict(cls, model: str, d: dict) -> "ModelPopulation":
        arr = lambda v: np.asarray(v, dtype=float)  # noqa: E731
        return cls(model, tuple(d["coordinates"]), arr(d["mu"]["mean"]), arr(d["mu"]["sd"]),
                   arr(d["tau"]["mean"]), arr(d["tau"]["sd"]), arr(d["prior"]["mu"]),
                   arr(d["prior"]["sigma"]), int(d["merchants"]), dict(d.get("diagnostics", {})))


def population_logp(means: np.ndarray, covs: np.ndarray, mu0: np.ndarray,
                    sigma0: np.ndarray):
    """``logp(phi) -> (log density, gradient)`` of the population model, ``phi`` = (mu,
    log tau), with every merchant's ``theta_m`` integrated out:

        log p = sum_m log N(mean_m | mu, V_m + diag(tau^2)) + log N(mu | mu0, sigma0)
                + log HalfNormal(tau | TAU_SCALE) + log tau          (the Jacobian)

    The gradient is exact: with S_m = V_m + diag(tau^2) and u_m = S_m^-1 (mean_m - mu),
    d/d mu = sum_m u_m, d/d tau_j^2 = sum_m (u_mj^2 - (S_m^-1)_jj) / 2."""
    k = means.shape[1]

    def logp(phi, **_shared):
        phi = np.asarray(phi, dtype=np.float64)
        mu, log_tau = phi[:k], phi[k:]
        tau2 = np.exp(2 * log_tau)
        S = covs + tau2[None, :] * np.eye(k)[None, :, :]
        try:
            chol = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            return -np.inf, np.zeros(2 * k)
        d = means - mu
        inv = np.linalg.inv(S)
        u = np.einsum("mij,mj->mi", inv, d)
        logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
        val = -0.5 * (np.einsum("mi,mi->", d, u) + logdet + len(means) * k * np.log(2 * np.pi))
        z = (mu - mu0) / sigma0
        val += float(np.sum(-0.5 * z ** 2 - np.log(sigma0) - 0.5 * np.log(2 * np.pi)))
        tau = np.sqrt(tau2)
        val += float(np.sum(0.5 * np.log(2 / np.pi) - np.log(TAU_SCALE)
                            - 0.5 * (tau / TAU_SCALE) ** 2 + log_tau))
        g_mu = u.sum(axis=0) - z / sigma0
        g_tau2 = 0.5 * (np.sum(u ** 2, axis=0) - np.einsum("mjj->j", inv))
        g_log_tau = g_tau2 * 2 * tau2 - tau2 / TAU_SCALE ** 2 + 1.0
        return float(val), np.concatenate([g_mu, g_log_tau])

    return logp


def fit_population(summaries: list[Summary], seed: int = 1,
                   draws: int = POPULATION_DRAWS) -> ModelPopulation:
    """The hierarchical Normal model of one purchase model's coordinates over the
    merchants' :class:`Summary` s (:func:`population_logp`, ``theta_m`` integrated out),
    sampled with NUTS (nutpie, 2 chains, as many tuning steps as draws)."""
    import time

    import arviz as az
    import nutpie
    import xarray as xr
    from nutpie.compiled_pyfunc import from_pyfunc

    model = summaries[0].model
    names = coordinates(model)
    k = len(names)
    mu0, sigma0 = default_prior(model)
    means = np.stack([s.mean for s in summaries])
    covs = np.stack([s.cov for s in summaries])
    logp = population_logp(means, covs, mu0, sigma0)
    start = np.concatenate([np.median(means, axis=0), np.log(np.full(k, 0.3))])
    t0 = time.perf_counter()

    def make_expand_fn(seed1, seed2, chain):
        def fn(phi, **_shared):
            return {"mu": np.asarray(phi[:k], dtype=float),
                    "tau": np.exp(np.asarray(phi[k:], dtype=float))}
        return fn

    def initial_point(seed_):
        rng = np.random.default_rng(seed_)
        return start + rng.uniform(-0.5, 0.5, 2 * k)

    compiled = from_pyfunc(2 * k, lambda: logp, make_expand_fn, [np.dtype("float64")] * 2,
                           [(k,), (k,)], ["mu", "tau"], make_initial_point_fn=initial_point)
    idata = nutpie.sample(compiled, draws=draws, tune=draws, chains=2, cores=1, seed=seed,
                          progress_bar=False, target_accept=0.95)
    post = idata["posterior"]
    mu_d = post["mu"].to_numpy().reshape(-1, k)
    tau_d = post["tau"].to_numpy().reshape(-1, k)
    rhat = az.rhat(xr.Dataset({"mu": post["mu"], "tau": post["tau"]}))
    diagnostics = {"r_hat_max": float(max(float(rhat["mu"].max()), float(rhat["tau"].max()))),
                   "divergences": int(idata["sample_stats"]["diverging"].sum()),
                   "seconds": round(time.perf_counter() - t0, 3), "draws": draws, "chains": 2}
    prior_var = mu_d.var(axis=0) + (tau_d ** 2).mean(axis=0)
    return ModelPopulation(model, names, mu_d.mean(axis=0), mu_d.std(axis=0),
                           tau_d.mean(axis=0), tau_d.std(axis=0), mu_d.mean(axis=0),
                           np.sqrt(prior_var), len(summaries), diagnostics)


def prior_share(fit_draws: dict, model: str, spend_scale: float,
                prior_sigma: np.ndarray) -> np.ndarray:
    """Per coordinate, the share of the posterior precision that comes from the prior:
    (1 / prior variance) / (1 / posterior variance), in [0, 1]. With a Normal prior and a
    Normal likelihood it is exactly the prior's weight in the posterior mean."""
    theta = theta_of(fit_draws, model, spend_scale)
    post_var = theta.var(axis=0, ddof=1)
    return np.clip(post_var / np.asarray(prior_sigma, dtype=float) ** 2, 0.0, 1.0)


def pooling_plan(eligible: bool, counted, p, population) -> tuple[dict, dict]:
    """``(priors by model, metrics["pooling"])`` for a merchant: the population priors it is
    fitted under (empty: its own data alone, or no fit) and what metrics.json says.

    Pooled only when all hold: ``clv.pooling`` is ``auto``; a population is given; the
    merchant is below the eligibility bar; it has at least :data:`FLOOR_CUSTOMERS`
    customers with a counted order, :data:`FLOOR_REPEAT_CUSTOMERS` of them with a repeat
    order; and its model has a population (``auto``: Pareto/NBD and MBG/NBD, whichever
    the population has; MBG/CNBD-k is not pooled). ``reason`` says which did not hold.
    """
    from ..i18n import N_
    from ..messages import Message
    from .models import AUTO_CANDIDATES

    plan = {"used": False, "floor_customers": FLOOR_CUSTOMERS}
    if p.pooling == "off":
        return {}, dict(plan, reason=Message(N_("clv.pooling is off")))
    if eligible:
        return {}, dict(plan, reason=Message(N_("eligible: the merchant's own data alone")))
    if population is None:
        return {}, dict(plan, reason=Message(N_(
            "no population of peers was given (hubnb batch learns one; hubnb run takes it "
            "with --population)")))
    # a repeat *purchase* as the model counts it: orders on another local day (x >= 1), so
    # the merchant's own data hold repeat buying and repeat spend
    per = counted.groupby("profile_id")["local_date"].nunique()
    customers, repeaters = int(len(per)), int((per >= 2).sum())
    if customers < FLOOR_CUSTOMERS or repeaters < FLOOR_REPEAT_CUSTOMERS:
        return {}, dict(plan, reason=Message(N_(
            "below the floor of pooling: {customers} customers with a counted order, "
            "{repeaters} with a repeat order on another day (it needs {floor} and "
            "{floor_repeat})"),
            customers=customers, repeaters=repeaters, floor=FLOOR_CUSTOMERS,
            floor_repeat=FLOOR_REPEAT_CUSTOMERS))
    wanted = AUTO_CANDIDATES if p.model == "auto" else (p.model,)
    priors = {m: population.models[m] for m in wanted if m in population.models}
    if not priors:
        return {}, dict(plan, reason=Message(N_(
            "the population has no prior for clv.model {model}"), model=p.model))
    return priors, {"used": True, "floor_customers": FLOOR_CUSTOMERS,
                    "peers": population.peers, "models": list(priors),
                    "population_generated_at": population.generated_at}


def population_flagged(pop: ModelPopulation) -> bool:
    """Whether the population model's sampler says its prior is not to be trusted blindly:
    R-hat above 1.01 or divergent transitions (the eligibility card then says so)."""
    d = pop.diagnostics or {}
    return bool((d.get("r_hat_max") or 1.0) > 1.01 or (d.get("divergences") or 0) > 0)


def pooled_share(fit, data, pop: ModelPopulation) -> dict:
    """How much the peers decided in a pooled fit: the prior's share of the posterior
    precision (:func:`prior_share`) per coordinate, its mean over the seven, over the four
    purchase coordinates and over the three spend ones."""
    share = prior_share(fit.draws, fit.model_name, data.spend_scale, pop.prior_sigma)
    return {"peers": int(pop.merchants),            # those the chosen model's population had
            "population_diagnostics": dict(pop.diagnostics),
            "population_flagged": population_flagged(pop),
            "prior_share": float(share.mean()),
            "prior_share_purchase": float(share[:4].mean()),
            "prior_share_spend": float(share[4:].mean()),
            "prior_share_by_coordinate": dict(zip(pop.coordinates,
                                                  (float(v) for v in share)))}


# ------------------------------------------------------------------ a batch's population

def merchant_evidence(params_path) -> dict:
    """What one merchant (its params file) brings to the population: its name, params and
    data fingerprints, whether it is eligible, its customers and, when eligible, its
    :class:`Summary` per pooled model (:func:`merchant_summary` of the Laplace fit that
    ``auto`` makes, through the fit cache). A merchant whose params or data cannot be read,
    or whose evidence fails in any way, brings an ``error`` instead: its own run then fails
    with the whole story, and the batch goes on."""
    from ..errors import HubnbError

    params_path = Path(params_path).resolve()
    try:
        return _evidence(params_path)
    except HubnbError as exc:
        return {"params": str(params_path), "error": str(exc)}
    except Exception as exc:
        return {"params": str(params_path), "error": f"{type(exc).__name__}: {exc}"}


def _evidence(params_path: Path) -> dict:
    from ..data import load_dataset
    from ..params import load_params
    from ..provenance import provenance
    from .eligibility import eligibility_reasons
    from .histories import compress
    from .orders import counted_orders, rfm_summary

    params = load_params(params_path)
    prov = provenance(params)
    ds = load_dataset(params.data, tables=("orders", "refunds"))
    p = params.clv
    counted = counted_orders(ds.orders, ds.refunds, p.orders, params.as_of, params.timezone,
                             p.history_days)
    eligible = not eligibility_reasons(counted, params.as_of)
    out = {"merchant": params.merchant, "params": str(params_path), "model": p.model,
           "params_fingerprint": prov.params_fingerprint,
           "data_fingerprint": prov.data_fingerprint, "eligible": eligible,
           "customers": int(counted["profile_id"].nunique()), "summaries": {}}
    if eligible:
        out["summaries"] = summaries_of(compress(rfm_summary(counted, params.as_of)), p.seed)
    return out


def summaries_of(data, seed: int) -> dict:
    """An eligible merchant's :class:`Summary` per pooled model, from the Laplace fits that
    ``auto`` makes (through the fit cache); a model whose fit is missing or not trusted is
    left out."""
    from . import fitcache

    out = {}
    for model in POOLED_MODELS:
        summary = merchant_summary(fitcache.quick_fit(model, data, seed), data.spend_scale)
        if summary is not None:
            out[model] = summary
    return out


def learn_population(evidence: list[dict], seed: int = 1) -> "Population | None":
    """The population of the eligible merchants' :func:`merchant_evidence`: one
    :class:`ModelPopulation` per pooled model that at least :data:`MIN_MERCHANTS` of them
    could summarise (BG/NBD only when a merchant below the bar chose it by hand); None
    when no model has that many."""
    from .. import __version__

    # BG/NBD only when a merchant below the bar asks for it by hand (auto never pools it)
    wanted = [m for m in POOLED_MODELS if m != "bg_nbd"
              or any(e.get("model") == "bg_nbd" and e.get("eligible") is False
                     for e in evidence)]
    models = {}
    for model in wanted:
        summaries = [e["summaries"][model] for e in evidence
                     if e.get("eligible") and model in e.get("summaries", {})]
        if len(summaries) >= MIN_MERCHANTS:
            models[model] = fit_population(summaries, seed=seed)
    if not models:
        return None
    peers = [{k: e[k] for k in ("merchant", "params_fingerprint", "data_fingerprint",
                                "customers")}
             for e in evidence if e.get("eligible")]
    return Population(models, peers, __version__, now(), inputs=inputs_of(evidence))


def inputs_of(evidence: list[dict]) -> list:
    """What a population was learned from, to tell whether it can be reused: every
    merchant of the batch (eligible or not) as ``[merchant, params fingerprint, data
    fingerprint, eligible]`` (eligible None when not known), sorted."""
    rows = [[str(e.get("merchant", e["params"])), e.get("params_fingerprint", ""),
             e.get("data_fingerprint", ""), e.get("eligible")] for e in evidence]
    return sorted(rows, key=lambda r: r[:3])


# ------------------------------------------------------------------ population.json

@dataclass(frozen=True)
class Population:
    """A batch's population (population.json): per pooled model its
    :class:`ModelPopulation`, and the merchants it was learned from with their
    fingerprints."""

    models: dict
    merchants: list
    hubnb_version: str
    generated_at: str = ""
    #: :func:`inputs_of` the merchants it was learned from.
    inputs: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"format": FORMAT, "hubnb_version": self.hubnb_version,
                "generated_at": self.generated_at, "merchants": self.merchants,
                "models": {n: m.as_dict() for n, m in self.models.items()},
                "inputs": self.inputs}

    def write(self, path) -> Path:
        from ..folders import write_atomic

        path = Path(path)
        write_atomic(path, json.dumps(self.as_dict(), indent=2) + "\n")
        return path

    @property
    def peers(self) -> int:
        return len(self.merchants)


def read_population(path) -> Population:
    """The population of ``path`` (population.json), checked; a clear error otherwise."""
    from ..errors import HubnbError

    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HubnbError(f"population file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise HubnbError(f"cannot read the population file {path}: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or "models" not in raw:
        raise HubnbError(f"{path} is not a population file of this hubnb version "
                         f"(expected format {FORMAT})")
    try:
        models = {name: ModelPopulation.from_dict(name, d) for name, d in raw["models"].items()
                  if name in POOLED_MODELS}
    except (KeyError, TypeError, ValueError) as exc:
        raise HubnbError(f"{path}: a model's population is incomplete ({exc})") from None
    for name, m in models.items():
        if len(m.prior_mu) != 7 or len(m.prior_sigma) != 7 or not np.all(m.prior_sigma > 0):
            raise HubnbError(f"{path}: the prior of {name} needs 7 coordinates with positive "
                             f"sigma")
    return Population(models, list(raw.get("merchants", [])), str(raw.get("hubnb_version", "")),
                      str(raw.get("generated_at", "")), list(raw.get("inputs", [])))


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _list(a) -> list:
    return [float(v) for v in np.asarray(a, dtype=float)]

