"""Pareto/NBD + Gamma-Gamma log density and gradient in numba, cached on disk.

The joint model of :func:`hubnb.clv.models.build_model` with ``ParetoNBDModel`` (same
priors, same compressed likelihood, same unconstrained parametrisation: the log of r, alpha,
s, beta, p, q - 1 and v_scaled), as numba loops that return the log density and its
gradient; nutpie samples it as it samples :mod:`hubnb.clv.native`'s BG/NBD. Tested against
the PyMC model's compiled logp and gradient (``tests/test_clv_native_pareto.py``).

Per customer (FH05 eq. 22), with I the dropout integral of :mod:`hubnb.clv.pareto`,

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) [(alpha+T)^-(r+x) (beta+T)^-s + s I(x, t_x, T)],
    I(x, t_x, T) = int_{t_x}^{T} f_x(tau) dtau,  f_x(tau) = (alpha+tau)^-(r+x) (beta+tau)^-(s+1).

**Tails instead of rows.** I = G_x(t_x) - G_x(T) with the tail G_x(y) = int_y^inf f_x, so
the quadrature runs once per distinct (x, y) pair (y a t_x or a T) instead of once per
distinct (x, t_x, T) row: on the full CDNOW data 5,100 pairs instead of 11,102 rows. Each
tail is integrated as :mod:`hubnb.clv.pareto` integrates a row: in v = log((c+tau)/(c+y)),
c = min(alpha, beta), the integrand is exp(-m v) times a factor between 1 and
(1-z)^-e (m = r+s+x, z = |alpha-beta|/(max(alpha, beta)+y)), analytic in a strip of
half-width pi, cut where it has fallen below e^-TAIL of its start, and summed by
Gauss-Legendre with :data:`NODES` nodes. G_x(t_x) - G_x(T) loses relative precision when
t_x is close to T, but then I is small against the alive term: the row's log-likelihood
keeps full precision (tested).

**Gradient under the integral sign.** d/dr f = -log(alpha+tau) f, d/dalpha f =
-(r+x)/(alpha+tau) f, d/ds f = -log(beta+tau) f, d/dbeta f = -(s+1)/(beta+tau) f: the same
nodes give the tails' gradients, one pass. (The truncation of the range moves the integral
by less than e^-TAIL of it, so the gradient is the derivative of the computed log density up
to that and the quadrature error, both far below what HMC notices.)
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit
from numba.core.caching import NullCache

from .native import digamma, drop_cache_entries

#: Names and order of the unconstrained parameters (nutpie's flat vector).
UNCONSTRAINED = ("r_log__", "alpha_log__", "s_log__", "beta_log__", "p_log__",
                 "q_minus_1_log__", "v_scaled_log__")
#: Names of the values stored per draw.
STORED = ("r", "alpha", "s", "beta", "p", "q_minus_1", "q", "v_scaled")

# the LogNormal priors of ParetoNBDModel.priors and GammaGammaModel.priors, on the log scale
PRIOR_MU = np.array([np.log(0.5), np.log(100.0), np.log(0.5), np.log(500.0), np.log(2.0),
                     np.log(2.0), 0.0])
PRIOR_SIGMA = np.array([1.5, 2.0, 1.5, 2.5, 1.5, 1.5, 2.0])

#: Gauss-Legendre nodes per tail integral, and where the range is cut (as hubnb.clv.pareto).
NODES = 32
TAIL = 35.0
MAX_WIDTH = 600.0
_Y, _W = np.polynomial.legendre.leggauss(NODES)
U_NODES = (_Y + 1.0) / 2.0
U_WEIGHTS = _W / 2.0


@njit(cache=True, nogil=True)
def tail_integrals(r, alpha, s, beta, pair_x, pair_y, u_nodes, u_weights, log_g, grad_g):
    """log G_x(y) for each (x, y) pair into ``log_g``, and d log G / d(r, alpha, s, beta)
    into the rows of ``grad_g`` (pairs x 4)."""
    beta_big = beta >= alpha
    small = alpha if beta_big else beta
    big = beta if beta_big else alpha
    gap = big - small
    for j in range(pair_x.shape[0]):
        x = pair_x[j]
        y = pair_y[j]
        e_alpha = r + x          # exponent of (alpha + tau)
        e_beta = s + 1.0         # exponent of (beta + tau)
        e_small = e_alpha if beta_big else e_beta
        e_big = e_beta if beta_big else e_alpha
        m = r + s + x
        cy = small + y
        z = gap / (big + y)
        # capped so exp(v) stays finite: beyond v = 600 only e^-(600 m) of the tail is left,
        # which matters only for r + s far below any fitted value
        width = min((TAIL - e_big * math.log1p(-z)) / m, MAX_WIDTH)
        log_cy = math.log(cy)
        log_by = math.log(big + y)
        # the integrand in v, relative to its value at v = 0:
        # (c+tau)^(1-e_small) (C+tau)^(-e_big) / [(c+y)^(1-e_small) (C+y)^(-e_big)]
        s0 = 0.0
        s_ls = 0.0   # sum of f log(small + tau)
        s_lb = 0.0   # sum of f log(big + tau)
        s_is = 0.0   # sum of f / (small + tau)
        s_ib = 0.0   # sum of f / (big + tau)
        for k in range(u_nodes.shape[0]):
            v = width * u_nodes[k]
            ev = math.exp(v)
            c_tau = cy * ev                 # small + tau
            b_tau = c_tau + gap             # big + tau
            l_small = log_cy + v
            l_big = math.log(b_tau)
            f = u_weights[k] * math.exp((1.0 - e_small) * v - e_big * (l_big - log_by))
            s0 += f
            s_ls += f * l_small
            s_lb += f * l_big
            s_is += f / c_tau
            s_ib += f / b_tau
        log_g[j] = ((1.0 - e_small) * log_cy - e_big * log_by + math.log(width * s0))
        l_alpha = s_ls if beta_big else s_lb
        l_beta = s_lb if beta_big else s_ls
        i_alpha = s_is if beta_big else s_ib
        i_beta = s_ib if beta_big else s_is
        grad_g[j, 0] = -l_alpha / s0
        grad_g[j, 1] = -e_alpha * i_alpha / s0
        grad_g[j, 2] = -l_beta / s0
        grad_g[j, 3] = -e_beta * i_beta / s0


@njit(cache=True, nogil=True)
def logp_grad(theta, grad, mu, sigma, x_uniq, x_count, n_customers, row_x, row_T, row_w,
              row_lo, row_hi, pair_x, pair_y, u_nodes, u_weights, gx_uniq, gx_count,
              n_spenders, gx, gz, gw, g_s1, g_s0):
    """Log density at ``theta`` (unconstrained), its gradient written into ``grad``.

    ``row_lo``/``row_hi`` index each row's (x, t_x) and (x, T) pairs; a row with t_x = T
    (``row_lo == row_hi``) has no dropout term.
    """
    lp = 0.0
    for i in range(7):
        d = (theta[i] - mu[i]) / sigma[i]
        lp += -0.5 * d * d - math.log(sigma[i]) - 0.5 * math.log(2.0 * math.pi)
        grad[i] = -d / sigma[i]
    r = math.exp(theta[0])
    alpha = math.exp(theta[1])
    s = math.exp(theta[2])
    beta = math.exp(theta[3])
    p = math.exp(theta[4])
    qm1 = math.exp(theta[5])
    q = 1.0 + qm1
    v = math.exp(theta[6])

    # ---- Pareto/NBD: Gamma terms per distinct x, the rest per row
    g_r = 0.0
    g_alpha = 0.0
    g_s = 0.0
    g_beta = 0.0
    ll = 0.0
    lg_r, dg_r = math.lgamma(r), digamma(r)
    for j in range(x_uniq.shape[0]):
        xx = x_uniq[j]
        c = x_count[j]
        ll += c * (math.lgamma(r + xx) - lg_r)
        g_r += c * (digamma(r + xx) - dg_r)
    log_alpha = math.log(alpha)
    log_beta = math.log(beta)
    ll += n_customers * (r * log_alpha + s * log_beta)
    g_r += n_customers * log_alpha
    g_alpha += n_customers * r / alpha
    g_s += n_customers * log_beta
    g_beta += n_customers * s / beta

    n_pairs = pair_x.shape[0]
    log_g = np.empty(n_pairs)
    grad_g = np.empty((n_pairs, 4))
    tail_integrals(r, alpha, s, beta, pair_x, pair_y, u_nodes, u_weights, log_g, grad_g)
    log_s = math.log(s)
    for j in range(row_x.shape[0]):
        xx = row_x[j]
        T = row_T[j]
        w = row_w[j]
        la = math.log(alpha + T)
        lb = math.log(beta + T)
        alive = -(r + xx) * la - s * lb
        da0 = -la
        da1 = -(r + xx) / (alpha + T)
        da2 = -lb
        da3 = -s / (beta + T)
        lo = row_lo[j]
        hi = row_hi[j]
        if lo == hi:
            ll += w * alive
            g_r += w * da0
            g_alpha += w * da1
            g_s += w * da2
            g_beta += w * da3
            continue
        # log I = log(G_lo - G_hi) = log G_lo + log(1 - R), R = G_hi / G_lo
        ratio = math.exp(log_g[hi] - log_g[lo])
        one_minus = -math.expm1(log_g[hi] - log_g[lo])
        died = log_s + log_g[lo] + math.log(one_minus)
        mx = max(alive, died)
        e = math.exp(-abs(alive - died))
        lse = mx + math.log(1.0 + e)
        p_died = (1.0 if died >= alive else e) / (1.0 + e)
        p_alive = 1.0 - p_died
        ll += w * lse
        # d log I = (d log G_lo - R d log G_hi) / (1 - R)
        k = 1.0 / one_minus
        di0 = (grad_g[lo, 0] - ratio * grad_g[hi, 0]) * k
        di1 = (grad_g[lo, 1] - ratio * grad_g[hi, 1]) * k
        di2 = (grad_g[lo, 2] - ratio * grad_g[hi, 2]) * k + 1.0 / s
        di3 = (grad_g[lo, 3] - ratio * grad_g[hi, 3]) * k
        g_r += w * (p_alive * da0 + p_died * di0)
        g_alpha += w * (p_alive * da1 + p_died * di1)
        g_s += w * (p_alive * da2 + p_died * di2)
        g_beta += w * (p_alive * da3 + p_died * di3)

    # ---- Gamma-Gamma, FH13 over weighted distinct (x, z_bar) (as hubnb.clv.native)
    lg_q, dg_q = math.lgamma(q), digamma(q)
    g_p = g_s1
    g_q = 0.0
    g_v = 0.0
    for j in range(gx_uniq.shape[0]):
        xx = gx_uniq[j]
        c = gx_count[j]
        px = p * xx
        dg_pxq = digamma(px + q)
        ll += c * (math.lgamma(px + q) - math.lgamma(px) - lg_q)
        g_p += c * xx * (dg_pxq - digamma(px))
        g_q += c * (dg_pxq - dg_q)
    log_v = math.log(v)
    ll += n_spenders * q * log_v + p * g_s1 - g_s0
    g_q += n_spenders * log_v
    g_v += n_spenders * q / v
    for j in range(gx.shape[0]):
        xx = gx[j]
        vz = v + xx * gz[j]
        lvz = math.log(vz)
        ww = gw[j]
        pxq = p * xx + q
        ll -= ww * pxq * lvz
        g_p -= ww * xx * lvz
        g_q -= ww * lvz
        g_v -= ww * pxq / vz

    grad[0] += r * g_r
    grad[1] += alpha * g_alpha
    grad[2] += s * g_s
    grad[3] += beta * g_beta
    grad[4] += p * g_p
    grad[5] += qm1 * g_q
    grad[6] += v * g_v
    return lp + ll


def _pairs(x, t_x, T):
    """Distinct (x, y) pairs of the rows' (x, t_x) and (x, T), and each row's two indices."""
    keys = np.concatenate([np.stack([x, t_x], 1), np.stack([x, T], 1)])
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    n = len(x)
    return (np.ascontiguousarray(uniq[:, 0]), np.ascontiguousarray(uniq[:, 1]),
            inverse[:n].astype(np.int64), inverse[n:].astype(np.int64))


def _data_args(arrays: dict) -> tuple:
    a = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    zeros = np.zeros_like(a["T0"])
    x = np.concatenate([zeros, a["x1"]])
    t_x = np.concatenate([zeros, a["tx1"]])
    T = np.concatenate([a["T0"], a["T1"]])
    w = np.concatenate([a["w0"], a["w1"]])
    pair_x, pair_y, lo, hi = _pairs(x, t_x, T)
    return (a["x_uniq"], a["x_count"], float(a["n_customers"]), x, T, w, lo, hi, pair_x,
            pair_y, U_NODES, U_WEIGHTS, a["gx_uniq"], a["gx_count"], float(a["n_spenders"]),
            a["gx"], a["gz"], a["gw"], float(a["g_s1"]), float(a["g_s0"]))


def make_logp(arrays: dict):
    """``logp(theta) -> (log density, gradient)`` on a compressed data set's arrays."""
    args = _data_args(arrays)

    def logp(theta, **_shared):
        grad = np.empty(7)
        val = logp_grad(np.asarray(theta, dtype=np.float64), grad, PRIOR_MU, PRIOR_SIGMA, *args)
        return val, grad

    return logp


def row_loglik(r, alpha, s, beta, x, t_x, T):
    """The full per-customer Pareto/NBD log-likelihood (FH05 eq. 22), broadcasting
    parameters shaped (draws, 1) against rows shaped (rows,): (draws, rows)."""
    r, alpha, s, beta = (np.atleast_1d(np.asarray(v, dtype=float)).reshape(-1)
                         for v in (r, alpha, s, beta))
    x, t_x, T = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, t_x, T))
    pair_x, pair_y, lo, hi = _pairs(x, t_x, T)
    out = np.empty((len(r), len(x)))
    _row_loglik(r, alpha, s, beta, x, T, lo, hi, pair_x, pair_y, U_NODES, U_WEIGHTS, out)
    return out


@njit(cache=True, nogil=True)
def _row_loglik(r, alpha, s, beta, x, T, lo, hi, pair_x, pair_y, u_nodes, u_weights, out):
    n_pairs = pair_x.shape[0]
    log_g = np.empty(n_pairs)
    grad_g = np.empty((n_pairs, 4))
    for d in range(r.shape[0]):
        tail_integrals(r[d], alpha[d], s[d], beta[d], pair_x, pair_y, u_nodes, u_weights,
                       log_g, grad_g)
        common = r[d] * math.log(alpha[d]) + s[d] * math.log(beta[d]) - math.lgamma(r[d])
        for j in range(x.shape[0]):
            xx = x[j]
            alive = -(r[d] + xx) * math.log(alpha[d] + T[j]) - s[d] * math.log(beta[d] + T[j])
            val = alive
            if lo[j] != hi[j]:
                died = (math.log(s[d]) + log_g[lo[j]]
                        + math.log(-math.expm1(log_g[hi[j]] - log_g[lo[j]])))
                mx = max(alive, died)
                val = mx + math.log1p(math.exp(-abs(alive - died)))
            out[d, j] = math.lgamma(r[d] + xx) + common + val


_WARM: dict = {}
_FUNCS = (tail_integrals, logp_grad, _row_loglik)


def _tiny():
    return {"x_uniq": np.array([0.0, 1.0]), "x_count": np.array([1.0, 1.0]),
            "n_customers": 2.0, "T0": np.array([5.0]), "w0": np.ones(1),
            "x1": np.array([1.0]), "tx1": np.array([2.0]), "T1": np.array([5.0]),
            "w1": np.ones(1), "gx_uniq": np.ones(1), "gx_count": np.ones(1),
            "n_spenders": 1.0, "gx": np.ones(1), "gz": np.ones(1), "gw": np.ones(1),
            "g_s1": 0.0, "g_s0": 0.0}


def warm_up() -> dict:
    """Compile (or load from the disk cache) once per process; as :func:`hubnb.clv.native.warm_up`."""
    if _WARM:
        return dict(_WARM, seconds=0.0, first_in_process=False)
    t0 = time.perf_counter()

    def run():
        make_logp(_tiny())(np.zeros(7))
        row_loglik(np.ones(1), np.ones(1), np.ones(1), np.ones(1), np.ones(1), np.zeros(1),
                   np.ones(1))

    try:
        run()
    except Exception:  # an unreadable cache entry: drop this module's entries, compile again
        drop_cache_entries(__file__)
        try:
            run()
        except Exception:  # still failing (e.g. a read-only cache): no disk cache at all
            for f in _FUNCS:
                f._cache = NullCache()
            run()
    hits = sum(sum(f.stats.cache_hits.values()) for f in _FUNCS)
    misses = sum(sum(f.stats.cache_misses.values()) for f in _FUNCS)
    _WARM.update(seconds=time.perf_counter() - t0, cache_hit=hits > 0 and misses == 0,
                 first_in_process=True)
    return dict(_WARM)


def expand(theta) -> dict:
    """The stored values of a draw (the PyMC model's free variables and q)."""
    e = np.exp(np.asarray(theta, dtype=np.float64))
    vals = (e[0], e[1], e[2], e[3], e[4], e[5], 1.0 + e[5], e[6])
    return {k: np.array(v) for k, v in zip(STORED, vals)}


def compile_model(arrays: dict):
    """A nutpie model of the joint Pareto/NBD + Gamma-Gamma posterior on ``arrays``."""
    from nutpie.compiled_pyfunc import from_pyfunc

    info = warm_up()
    logp = make_logp(arrays)

    def make_logp_fn():
        return logp

    def make_expand_fn(seed1, seed2, chain):
        def fn(theta, **_shared):
            return expand(theta)
        return fn

    def initial_point(seed):
        # PyMC's default: the LogNormal priors' support points, jittered by U(-1, 1)
        rng = np.random.default_rng(seed)
        return PRIOR_MU + 0.5 * PRIOR_SIGMA ** 2 + rng.uniform(-1.0, 1.0, 7)

    model = from_pyfunc(7, make_logp_fn, make_expand_fn, [np.dtype("float64")] * len(STORED),
                        [()] * len(STORED), list(STORED), make_initial_point_fn=initial_point)
    return model, info
