"""MBG/NBD (Batislam, Denizel and Filiztekin 2007): everything about the model in one place.

BG/NBD in which a customer may also drop out right after the first purchase (at time 0):
an alive customer with x repeat purchases has survived x + 1 dropout chances, so the
Beta(a, b) terms of BG/NBD read b + x + 1 where BG/NBD has b + x. Its closed forms in numpy
and :class:`ModifiedBetaGeoModel`, its :class:`~hubnb.clv.purchase.PurchaseModel`. It is
MBG/CNBD-k with k = 1 (:mod:`hubnb.clv.mbg_cnbd`).

BDF07: Batislam, Denizel and Filiztekin (2007), "Empirical validation and comparison of
models for customer base analysis", International Journal of Research in Marketing 24(3).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from scipy.special import betaln, gammaln, hyp2f1

from . import bg_nbd
from .bg_nbd import BetaGeoModel

# BG/NBD in which a customer may also drop out right after the first purchase (at time 0):
# an alive customer with x repeat purchases has survived x + 1 dropout chances, so the
# Beta(a, b) terms of BG/NBD read b + x + 1 where BG/NBD has b + x.


def loglik(r, alpha, a, b, x, t_x, T):
    """Log-likelihood of one customer's (x, t_x, T), BDF07 eq. (2):

    Gamma(r+x) alpha^r / Gamma(r) B(a, b+x+1)/B(a, b)
        [(alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x)],

    the second term (dropped out right after the last purchase) for x = 0 too (t_x = 0).
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    common = (gammaln(r + x) - gammaln(r) + r * np.log(alpha)
              + betaln(a, b + x + 1) - betaln(a, b))
    return common + np.logaddexp(-(r + x) * np.log(alpha + T),
                                 np.log(a / (b + x)) - (r + x) * np.log(alpha + t_x))


def p_alive(r, alpha, a, b, x, t_x, T):
    """P(alive | x, t_x, T), BDF07 eq. (4): 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)),
    for every x, 0 included: a one-order customer's churn rises with T."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    log_odds = np.log(a / (b + x)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return 1.0 / (1.0 + np.exp(np.minimum(log_odds, 700.0)))


def expected_purchases_alive(r, alpha, a, b, x, T, t):
    """E[X(T, T+t) | x, T, alive], BDF07 eq. (5) without its P(alive) factor:

    (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))],

    i.e. :func:`bg_nbd.expected_purchases_alive` with b + 1 for b (given alive, the dropout
    probability's posterior is Beta(a, b+x+1)).
    """
    return bg_nbd.expected_purchases_alive(r, alpha, a, b + 1.0, x, T, t)


def expected_purchases(r, alpha, a, b, x, t_x, T, t):
    """E[X(T, T+t) | x, t_x, T], BDF07 eq. (5)."""
    return (expected_purchases_alive(r, alpha, a, b, x, T, t)
            * p_alive(r, alpha, a, b, x, t_x, T))


def expected_purchases_new(r, alpha, a, b, t):
    """E[X(t)] of a customer just acquired (repeat purchases in (0, t]):

    b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))].

    Derivation: given (lambda, p), an alive customer's expected purchases in (0, t] are
    (1 - e^{-lambda p t}) / p, and the customer survives time 0 with probability 1 - p, so
    E[X(t)] = E[(1-p)/p (1 - (alpha/(alpha + p t))^r)]; over p ~ Beta(a, b) this is
    B(a-1, b+1)/B(a, b) = b/(a-1) times [1 - 2F1(r, a-1; a+b; -t/alpha)], and Pfaff's
    transformation gives the form above. It is BG/NBD's eq. (9) with b + 1 for b times the
    probability b/(a+b) of surviving time 0.

    The prefactor is b/(a-1), not (a+b)/(a-1): BTYDplus's MBG/NBD conditional expectation
    has (a+b+x)/(a-1), which at x = 0 is (a+b)/(a-1) and is multiplied there by
    P(alive | x = 0, T = 0) = b/(a+b) (its unconditional expectation sums the pmf
    numerically instead). A simulation of 200,000 new customers agrees with b/(a-1) (within
    2 standard errors) and puts (a+b)/(a-1) 70 or more standard errors off; the mean of the
    MBG/NBD pmf (BTYDplus's mbgcnbd.pmf, k = 1) equals this to 1e-9 (tests/test_clv_mbg.py).
    """
    t = np.asarray(t, dtype=float)
    return (b / (a - 1)) * (
        1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b + 1, a + b, t / (alpha + t)))


class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD (Batislam, Denizel and Filiztekin 2007): BG/NBD in which a customer may also
    drop out right after the first purchase (at time 0), so a one-order customer's chance of
    being alive falls with silence. Same parameters and priors as BG/NBD."""

    name = "mbg_nbd"
    label = "MBG/NBD"
    first_purchase_dropout = 1
    holds_one_order_alive = False

    @staticmethod
    def loglike(v, d):
        """Batislam et al. (2007) eq. (2) summed over weighted distinct rows: BG/NBD's with
        B(a, b+x+1) for B(a, b+x), and the "dropped out at t_x" term for x = 0 too."""
        r, alpha, a, b = v["r"], v["alpha"], v["a"], v["b"]
        xu = d["x_uniq"]
        per_x = (pt.gammaln(r + xu) - pt.gammaln(r) + pt.gammaln(b + xu + 1)
                 - pt.gammaln(a + b + xu + 1) + pt.gammaln(a + b) - pt.gammaln(b))
        ll = pt.sum(d["x_count"] * per_x) + d["n_customers"] * r * pt.log(alpha)
        ll += pt.sum(d["w0"] * pt.logaddexp(-r * pt.log(alpha + d["T0"]),
                                            pt.log(a) - pt.log(b) - r * pt.log(alpha)))
        x1 = d["x1"]
        u = -(r + x1) * pt.log(alpha + d["T1"])
        w = pt.log(a) - pt.log(b + x1) - (r + x1) * pt.log(alpha + d["tx1"])
        ll += pt.sum(d["w1"] * pt.logaddexp(u, w))
        return ll
