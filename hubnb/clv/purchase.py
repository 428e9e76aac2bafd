"""The interface every purchase model implements: one class per model, one module per class.

A purchase model (:mod:`hubnb.clv.bg_nbd`, :mod:`~hubnb.clv.mbg_nbd`,
:mod:`~hubnb.clv.pareto_nbd`, :mod:`~hubnb.clv.mbg_cnbd`) holds, behind
:class:`PurchaseModel`:

- its priors and PyMC log-likelihood over the weighted distinct (x, t_x, T) rows
  (:meth:`~PurchaseModel.priors`, :meth:`~PurchaseModel.loglike`);
- its native log density and gradient, what nutpie samples and the Laplace pass climbs
  (:meth:`~PurchaseModel.native`, :meth:`~PurchaseModel.compile_native`);
- its numpy reference log-likelihood per customer, for PSIS-LOO and the tests
  (:meth:`~PurchaseModel.loglik_rows`);
- its conditional distributions given a history and a draw: P(alive), expected orders,
  the chance of an order within days, the median wait to the next order
  (:meth:`~PurchaseModel.per_history`), and the expected orders of a new customer;
- its simulation of an alive customer's future orders (posterior predictive intervals).

Fitting (:mod:`hubnb.clv.models`, :mod:`~hubnb.clv.laplace`), prediction
(:mod:`~hubnb.clv.predict`), model choice (:mod:`~hubnb.clv.selection`) and the backtest
use only this interface; :data:`hubnb.clv.models.PURCHASE_MODELS` finds a model by name.
Parameters passed as ``p`` are dicts of draws shaped ``(draws, 1)`` (or scalars); data
are vectors of rows; results are ``(draws, rows)``.
"""

from __future__ import annotations

import numpy as np


class PurchaseModel:
    """A buy-till-you-die purchase model (see the module's docstring)."""

    #: Its name in params files and metrics (``clv.model``).
    name = ""
    #: Its name in reports.
    label = ""
    #: Its global parameters, in the order of the native parameter vector.
    param_names: tuple[str, ...] = ()
    #: The model holds every one-order customer active (churn 0): never chosen by ``auto``.
    holds_one_order_alive = False
    #: Regularity k of the Erlang-k inter-purchase times (1: exponential, Poisson timing).
    k = 1

    # ------------------------------------------------------------------ fitting

    @staticmethod
    def priors():
        """The PyMC random variables of the global parameters (inside a model context)."""
        raise NotImplementedError

    @staticmethod
    def loglike(v, d):
        """PyMC log-likelihood over the weighted distinct rows ``d`` (pm.Data)."""
        raise NotImplementedError

    @classmethod
    def native(cls, arrays: dict):
        """``(logp, prior_mu, prior_sigma, expand)``: the native log density and gradient
        on the unconstrained parameters (with Gamma-Gamma), and how a point expands into
        stored values."""
        raise NotImplementedError

    @classmethod
    def compile_native(cls, arrays: dict):
        """``(nutpie model, info)`` of the native log density, or None (PyMC path)."""
        return None

    @staticmethod
    def loglik_rows(p, x, t_x, T):
        """Each history's log-likelihood (draws x rows) without per-customer constants."""
        raise NotImplementedError

    @classmethod
    def customer_constant(cls, x, litt):
        """The part of a customer's log-likelihood that no parameter touches and the
        weighted rows leave out (0 but for MBG/CNBD-k): counted in PSIS-LOO's pointwise
        scores, so that models with different constants compare fairly."""
        return np.zeros(np.shape(x))

    # ------------------------------------------------------------------ predictions

    @staticmethod
    def probability_alive(p, x, t_x, T):
        raise NotImplementedError

    @staticmethod
    def expected_purchases_alive(p, x, T, t):
        """E[orders in (T, T+t] | x, T, alive] (a Poisson-timing model's: t_x does not
        enter once alive)."""
        raise NotImplementedError

    @staticmethod
    def expected_purchases_new(p, t):
        """E[repeat orders in (0, t]] of a customer just acquired."""
        raise NotImplementedError

    @staticmethod
    def p_order_alive(p, x, T, t):
        """P(at least one order in (T, T+t] | x, T, alive)."""
        raise NotImplementedError

    @staticmethod
    def next_order_days(p, x, t_x, T):
        """Median wait to the next order given alive: with Poisson timing,
        lambda | alive ~ Gamma(r + x, alpha + T) and the wait is Lomax,
        (alpha + T)(2^(1/(r+x)) - 1)."""
        from .formulas import next_order_median_days

        return next_order_median_days(p["r"], p["alpha"], x, T)

    @classmethod
    def per_history(cls, p, x, t_x, T, t, order_days) -> dict:
        """Per distinct history and draw: ``p_alive``, ``expected`` (orders in (T, T+t]),
        ``p_order`` (P(an order within ``order_days``), dropout included) and
        ``next_days``. The expectation given alive is computed once per distinct (x, T)."""
        p_alive, expected = cls._alive_and_expected(p, x, t_x, T, t)
        return {"p_alive": p_alive, "expected": expected,
                "p_order": p_alive * cls.p_order_alive(p, x, T, order_days),
                "next_days": cls.next_order_days(p, x, t_x, T)}

    @classmethod
    def _alive_and_expected(cls, p, x, t_x, T, t):
        """``(P(alive), E[orders in (T, T+t]])``, the expectation given alive computed once
        per distinct (x, T)."""
        pair, inverse = np.unique(np.stack([x, T]), axis=1, return_inverse=True)
        e_alive = cls.expected_purchases_alive(p, pair[0], pair[1], t)[:, inverse.ravel()]
        p_alive = cls.probability_alive(p, x, t_x, T)
        return p_alive, e_alive * p_alive

    @classmethod
    def expected_orders(cls, p, x, t_x, T, t):
        """E[orders in (T, T+t] | x, t_x, T] per draw and history (P(alive) included)."""
        return cls._alive_and_expected(p, x, t_x, T, t)[1]

    @staticmethod
    def simulate_purchases_alive(p, x, t_x, T, t, rng):
        """Orders in (T, T+t] of one alive customer per (draw, row)."""
        raise NotImplementedError


_LABELS = {"bg_nbd": "BG/NBD", "mbg_nbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD",
           "mbg_cnbd": "MBG/CNBD-k"}


def label_of(name: str) -> str:
    """A purchase model's name in reports (``mbg_cnbd_k2`` is "MBG/CNBD-2"), without
    importing the models."""
    import re

    m = re.fullmatch(r"mbg_cnbd_k(\d+)", name)
    return f"MBG/CNBD-{m.group(1)}" if m else _LABELS.get(name, name)


def param_names_of(name: str) -> tuple[str, ...]:
    """A purchase model's global parameters, without importing the models."""
    return ("r", "alpha", "s", "beta") if name == "pareto_nbd" else ("r", "alpha", "a", "b")


class ModelNames(dict):
    """``MODEL_NAMES[name]`` (and ``.get``): :func:`label_of` for every model name."""

    def __missing__(self, name):
        return label_of(name)

    def get(self, name, default=None):
        return label_of(name)


MODEL_NAMES = ModelNames()
