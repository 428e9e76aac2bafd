"""BG/NBD (Fader, Hardie and Lee 2005): everything about the model in one place.

Its closed forms in numpy (likelihood, P(alive), expectations; each broadcasts: parameters
shaped ``(draws, 1)`` and data ``(rows,)`` give ``(draws, rows)``), and
:class:`BetaGeoModel`, its :class:`~hubnb.clv.purchase.PurchaseModel`: priors and PyMC
likelihood, native log density (:mod:`hubnb.clv.native`, the kernel it shares with
MBG/NBD), conditional expectations and simulation.

FHL05: Fader, Hardie and Lee (2005), "Counting Your Customers the Easy Way: An Alternative
to the Pareto/NBD Model", Marketing Science 24(2); and the note "Computing P(alive) using
the BG/NBD model" (2008).
"""

from __future__ import annotations

import sys

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy.special import betaln, gammaln, hyp2f1

from .purchase import PurchaseModel

def loglik(r, alpha, a, b, x, t_x, T):
    """Log-likelihood of one customer's (x, t_x, T), FHL05 eq. (6)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    common = (gammaln(r + x) - gammaln(r) + r * np.log(alpha)
              + betaln(a, b + x) - betaln(a, b))
    term_T = -(r + x) * np.log(alpha + T)
    # B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1): the second term, present only when x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        term_tx = np.log(a / (b + x - 1)) - (r + x) * np.log(alpha + t_x)
    term_tx = np.where(x > 0, term_tx, -np.inf)
    return common + np.logaddexp(term_T, term_tx)


def distinct_loglik(r, alpha, a, b, x, t_x, T, modified: bool = False):
    """:func:`loglik` (``modified``: MBG/NBD's, :func:`hubnb.clv.mbg_nbd.loglik`) for
    parameters of one value per draw and rows ``x``, ``t_x``, ``T``: ``(draws, rows)``, the
    same numbers term by term. The terms of x alone (the Gamma and Beta functions) are
    computed once per distinct x and the logs of alpha + T and alpha + t_x once per distinct
    day, then gathered, a block of draws at a time (the block's arrays stay in cache):
    PSIS-LOO scores thousands of rows at a thousand draws, and the rows have a few tens of
    distinct x and a few hundred distinct days."""
    r, alpha, a, b = (np.asarray(v, dtype=float).reshape(-1, 1) for v in (r, alpha, a, b))
    x, t_x, T = (np.asarray(v, dtype=float).reshape(-1) for v in (x, t_x, T))
    n_draws = max(len(r), len(alpha), len(a), len(b))
    r, alpha, a, b = (np.broadcast_to(v, (n_draws, 1)) for v in (r, alpha, a, b))
    xu, ix = np.unique(x, return_inverse=True)
    Tu, iT = np.unique(T, return_inverse=True)
    tu, it = np.unique(t_x, return_inverse=True)
    out = np.empty((n_draws, len(x)))
    step = max(1, DRAW_BLOCK_CELLS // max(len(x), 1))
    for lo in range(0, n_draws, step):
        d = slice(lo, lo + step)
        rd, ad, bd, al = r[d], a[d], b[d], alpha[d]
        beta_x = betaln(ad, bd + xu + 1) if modified else betaln(ad, bd + xu)
        common = (gammaln(rd + xu) - gammaln(rd) + rd * np.log(al) + beta_x
                  - betaln(ad, bd))[:, ix]
        rx = rd + x
        term_T = -rx * np.log(al + Tu)[:, iT]
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = np.log(ad / (bd + xu)) if modified else np.log(ad / (bd + xu - 1))
            term_tx = odds[:, ix] - rx * np.log(al + tu)[:, it]
        if not modified:
            term_tx = np.where(x > 0, term_tx, -np.inf)
        out[d] = common + np.logaddexp(term_T, term_tx)
    return out


#: Cells (draws x rows) per block of :func:`distinct_loglik`.
DRAW_BLOCK_CELLS = 200_000


def p_alive(r, alpha, a, b, x, t_x, T):
    """P(alive | x, t_x, T), FHL05 eq. (A2) / the 2008 note."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(a / (b + x - 1)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    odds = np.where(x > 0, np.exp(np.minimum(log_ratio, 700.0)), 0.0)
    return 1.0 / (1.0 + odds)


def expected_purchases_alive(r, alpha, a, b, x, T, t):
    """E[X(T, T+t) | x, T, alive]: FHL05 eq. (10) without its P(alive) factor.

    FHL05 eq. (10) is ``E[X(t) | x, t_x, T] = this * P(alive | x, t_x, T)``; the split
    puts the hypergeometric function on distinct (x, T) only.
    """
    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    z = t / (alpha + T + t)
    f = hyp2f1(r + x, b + x, a + b + x - 1, z)
    return ((a + b + x - 1) / (a - 1)) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * f)


def expected_purchases(r, alpha, a, b, x, t_x, T, t):
    """E[X(T, T+t) | x, t_x, T], FHL05 eq. (10)."""
    return (expected_purchases_alive(r, alpha, a, b, x, T, t)
            * p_alive(r, alpha, a, b, x, t_x, T))


def expected_purchases_new(r, alpha, a, b, t):
    """E[X(t)] for a customer just acquired (repeat purchases in (0, t]), FHL05 eq. (9)."""
    t = np.asarray(t, dtype=float)
    return ((a + b - 1) / (a - 1)) * (
        1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))



def p_order_alive(r, alpha, x, T, t):
    """P(at least one order in (T, T+t] | alive), BG/NBD and MBG/NBD:
    1 - ((alpha+T)/(alpha+T+t))^(r+x). Dropout only happens right after a purchase, so the
    first purchase of the window is never prevented by it."""
    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    return -np.expm1((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))


class BetaGeoModel(PurchaseModel):
    """BG/NBD (Fader, Hardie and Lee 2005): purchases at rate lambda ~ Gamma(r, alpha) while
    alive, dropping out after any purchase with probability p ~ Beta(a, b)."""

    name = "bg_nbd"
    label = "BG/NBD"
    param_names = ("r", "alpha", "a", "b")

    @staticmethod
    def priors():
        r = pm.LogNormal("r", mu=np.log(0.5), sigma=1.5)
        alpha = pm.LogNormal("alpha", mu=np.log(100.0), sigma=2.0)
        a = pm.LogNormal("a", mu=0.0, sigma=1.5)
        b = pm.LogNormal("b", mu=np.log(2.0), sigma=1.5)
        return {"r": r, "alpha": alpha, "a": a, "b": b}

    @staticmethod
    def loglike(v, d):
        """FHL05 eq. (6) summed over weighted distinct rows."""
        r, alpha, a, b = v["r"], v["alpha"], v["a"], v["b"]
        xu = d["x_uniq"]
        per_x = (pt.gammaln(r + xu) - pt.gammaln(r) + pt.gammaln(b + xu)
                 - pt.gammaln(a + b + xu) + pt.gammaln(a + b) - pt.gammaln(b))
        ll = pt.sum(d["x_count"] * per_x) + d["n_customers"] * r * pt.log(alpha)
        ll += pt.sum(d["w0"] * (-r * pt.log(alpha + d["T0"])))
        x1 = d["x1"]
        u = -(r + x1) * pt.log(alpha + d["T1"])
        w = pt.log(a) - pt.log(b + x1 - 1) - (r + x1) * pt.log(alpha + d["tx1"])
        ll += pt.sum(d["w1"] * pt.logaddexp(u, w))
        return ll

    #: Dropout chances survived by an alive customer with x repeat purchases: x + this.
    first_purchase_dropout = 0
    #: The model holds every one-order customer active (churn 0).
    holds_one_order_alive = True

    @classmethod
    def closed_forms(cls):
        """The module of the model's closed forms (MBG/NBD's are its own module's)."""
        return sys.modules[cls.__module__]

    @classmethod
    def expected_purchases_alive(cls, p, x, T, t):
        return cls.closed_forms().expected_purchases_alive(p["r"], p["alpha"], p["a"], p["b"],
                                                           x, T, t)

    @classmethod
    def probability_alive(cls, p, x, t_x, T):
        return cls.closed_forms().p_alive(p["r"], p["alpha"], p["a"], p["b"], x, t_x, T)

    @classmethod
    def expected_purchases_new(cls, p, t):
        return cls.closed_forms().expected_purchases_new(p["r"], p["alpha"], p["a"], p["b"], t)

    @classmethod
    def loglik_rows(cls, p, x, t_x, T):
        """Per-customer log-likelihood (draws x rows), for PSIS-LOO: the closed form's
        ``loglik``, value for value (:func:`distinct_loglik`)."""
        return distinct_loglik(p["r"], p["alpha"], p["a"], p["b"], x, t_x, T,
                               modified=cls.first_purchase_dropout == 1)

    @staticmethod
    def p_order_alive(p, x, T, t):
        """P(at least one order in (T, T+t] | alive): dropout only follows a purchase."""
        return p_order_alive(p["r"], p["alpha"], x, T, t)

    @classmethod
    def native(cls, arrays: dict):
        from . import native

        native.warm_up()
        return (native.make_logp(arrays, cls.name), *native.prior_of(arrays, cls.name),
                native.expand)

    @classmethod
    def compile_native(cls, arrays: dict):
        from . import native

        return native.compile_model(arrays, cls.name)

    @classmethod
    def simulate_purchases_alive(cls, p, x, t_x, T, t, rng):
        """Purchases in (T, T+t] of one alive customer per (draw, row): lambda ~ Gamma(r+x,
        alpha+T), p ~ Beta(a, b+x) (MBG/NBD: Beta(a, b+x+1), one more dropout chance
        survived); Poisson(lambda t) purchases cut at the first dropout (a Geometric(p)
        number of purchases, the dropout purchase included)."""
        shape = np.broadcast_shapes(np.shape(p["r"]), np.shape(x))
        lam = rng.gamma(p["r"] + x, 1.0 / (p["alpha"] + T), size=shape)
        drop = rng.beta(np.broadcast_to(p["a"], shape),
                        p["b"] + x + cls.first_purchase_dropout, size=shape)
        k = rng.poisson(lam * t)
        m = rng.geometric(np.clip(drop, 1e-12, 1.0))
        return np.minimum(k, m)
