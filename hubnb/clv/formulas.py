"""Closed forms shared by the purchase models, and the Gamma-Gamma spend model's, in numpy.

Each purchase model's own likelihood, P(alive) and expectations live in its module
(:mod:`hubnb.clv.bg_nbd`, :mod:`~hubnb.clv.mbg_nbd`, :mod:`~hubnb.clv.pareto_nbd`,
:mod:`~hubnb.clv.mbg_cnbd`). Each function broadcasts: parameters shaped ``(draws, 1)``
and data ``(rows,)`` give ``(draws, rows)``.

FH13: Fader and Hardie (2013), "The Gamma-Gamma Model of Monetary Value".
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln


# ---------------------------------------------------------------- next order (hubnb rules)


def next_order_median_days(r, alpha, x, T):
    """Median wait to the next order given alive: (alpha + T)(2^(1/(r+x)) - 1).

    Given alive, lambda | x, T ~ Gamma(r + x, alpha + T) in BG/NBD, MBG/NBD and Pareto/NBD,
    and the wait is Exponential(lambda); mixed over lambda the wait is Lomax:
    P(W > w) = ((alpha+T)/(alpha+T+w))^(r+x). Its median is defined for every r + x > 0,
    unlike the mean (alpha+T)/(r+x-1), which is infinite for r + x <= 1.
    """
    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    return (alpha + T) * np.expm1(np.log(2.0) / (r + x))


# ---------------------------------------------------------------- expected wait (hubnb rule)


def expected_days_to_next_purchase(r, alpha, x, T):
    """E[1/lambda | x, T, alive] = (alpha + T) / (r + x - 1): the mean wait to the next order.

    Given the customer is alive, lambda's posterior is Gamma(r + x, alpha + T) in both
    BG/NBD and Pareto/NBD; the wait to the next purchase is Exponential(lambda), whose mean
    averaged over that posterior is finite only for r + x > 1 (NaN otherwise).
    """
    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    shape = r + x
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(shape > 1, (alpha + T) / (shape - 1), np.nan)


# ---------------------------------------------------------------- Gamma-Gamma (FH13)


def gamma_gamma_loglik(p, q, v, x, mean_spend):
    """Log-density of a customer's mean spend z over x transactions: FH13, the marginal of z_bar."""
    x, z = np.asarray(x, dtype=float), np.asarray(mean_spend, dtype=float)
    return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
            + (p * x - 1) * np.log(z) + p * x * np.log(x) - (p * x + q) * np.log(v + x * z))


def gamma_gamma_expected_spend(p, q, v, x, mean_spend):
    """E[Z | p, q, v, x, z_bar]: FH13's conditional expectation; p v / (q - 1) for x = 0."""
    x, z = np.asarray(x, dtype=float), np.asarray(mean_spend, dtype=float)
    return p * (v + x * z) / (p * x + q - 1)
