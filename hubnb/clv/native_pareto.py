"""Pareto/NBD + Gamma-Gamma log density and gradient in numba, cached on disk.

The joint model of :func:`hubnb.clv.models.build_model` with ``ParetoNBDModel`` (same
priors, same compressed likelihood, same unconstrained parametrisation: the log of r, alpha,
s, beta, p, q - 1 and v_scaled), as numba loops that return the log density and its
gradient in one pass; nutpie samples it as it samples :mod:`hubnb.clv.native`'s BG/NBD.
Tested against the PyMC model's compiled logp and gradient, scipy's adaptive quadrature and
the 2F1 closed form (``tests/test_clv_native_pareto.py``).

Per customer (FH05 eq. 22), with I the dropout integral of :mod:`hubnb.clv.pareto`,

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) [(alpha+T)^-(r+x) (beta+T)^-s + s I(x, t_x, T)],
    I(x, t_x, T) = int_{t_x}^{T} f_x(tau) dtau,  f_x(tau) = (alpha+tau)^-(r+x) (beta+tau)^-(s+1).

**Tails, built from pieces.** I = G_x(t_x) - G_x(T) with the tail G_x(y) = int_y^inf f_x,
so only the distinct (x, y) pairs (y a t_x or a T) need a tail: 4,433 pairs on the full
CDNOW for 11,102 rows. For one x, with its pairs' y sorted, y_0 < y_1 < ... < y_K,

    G_x(y_K) = int_{y_K}^inf f_x,    G_x(y_i) = int_{y_i}^{y_(i+1)} f_x + G_x(y_(i+1)),

a sum of positive terms (no cancellation: each tail is as accurate, relatively, as its
least accurate piece), accumulated in logs relative to f_x(y_i) so nothing under- or
overflows. Every piece is integrated in v = log((c+tau)/(c+y_i)), c = min(alpha, beta),
where the integrand is f_x(y_i) (c+y_i) exp(-m v) (1 - z(1 - e^-v))^-e (m = r+s+x, e the
exponent of the larger one's factor, z = |alpha-beta|/(max(alpha, beta)+y_i): FH05's 2F1
argument), analytic in the strip |Im v| < pi, and whose log has a slope of at most
max(m, 1) in absolute value. A piece of width dv in v therefore needs the Gauss-Legendre
rule that integrates exp(-lam t) on [0, 1] to 1e-13 for lam = max(m, 1) dv (2 nodes up to
lam = 0.004, 3 up to 0.076, 4 up to 0.34, ..., 8 up to 4.2; pieces with lam above that, or
wider than :data:`MAX_PIECE` in v, are cut into equal sub-pieces of 8 nodes). Successive
days of a 75-day alpha are pieces of dv ~ 0.01, lam ~ 0.01-0.1: 2 or 3 nodes, against 32
per row for :mod:`hubnb.clv.pareto`. A piece (the last one, to infinity, or a piece in which
the integrand falls by more than that) is cut where the integrand's bound exp(-m v)
(1-z)^-e has fallen below e^-:data:`TAIL` of its start, as in :mod:`hubnb.clv.pareto`; what
is dropped is below 1e-15 of the tail.

**Rows.** With R = G_x(T)/G_x(t_x), a row's bracket is alive + s G_x(t_x) (1 - R): two
table look-ups (log(alpha+y), log(beta+y), 1/(alpha+y), 1/(beta+y) are tabulated once per
evaluation over the distinct days), an expm1, an exp and a log. The difference of two tails
loses relative precision when t_x is close to T, but then the dropout term is small against
the alive term and the row keeps full precision (tested).

**Gradient under the integral sign.** d/dr f = -log(alpha+tau) f, d/dalpha f =
-(r+x)/(alpha+tau) f, d/ds f = -log(beta+tau) f, d/dbeta f = -(s+1)/(beta+tau) f: the same
nodes give each piece's gradient, and d log G(y_i) = w d log P_i + (1-w) d log G(y_(i+1)),
w = P_i / G(y_i). The gradient is that of the computed log density up to the quadrature
error (~1e-13 relative); the rule chosen per piece depends on the parameters, so the log
density has steps of that size where a rule changes, far below anything HMC notices.

Accuracy (tested against scipy's adaptive quadrature at rtol 1e-13 and the 2F1 closed form
where it is finite): a row's log-likelihood to ~1e-11 relative over r, s in [0.02, 20],
alpha, beta in [0.5, 1e5] days, x <= 200, T <= 5,000 days, alpha = beta included.

The Gamma-Gamma part is a private copy of :func:`hubnb.clv.native.logp_grad`'s loop (that
function fuses it with BG/NBD, so it cannot be called alone).
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
# (the log transform's Jacobian turns a LogNormal density into a Normal one)
PRIOR_MU = np.array([np.log(0.5), np.log(100.0), np.log(0.5), np.log(500.0), np.log(2.0),
                     np.log(2.0), 0.0])
PRIOR_SIGMA = np.array([1.5, 2.0, 1.5, 2.5, 1.5, 1.5, 2.0])

#: A piece ends where the integrand's bound is below exp(-TAIL) of its start.
TAIL = 35.0
#: Widest piece in v (only m = r+s+x < 35/600 reaches it: e^(-m v) is then still > e^-35).
MAX_WIDTH = 600.0
#: Widest single Gauss-Legendre interval in v (the integrand's singularities are pi away).
MAX_PIECE = 1.0


def _rules():
    """Gauss-Legendre rules on [0, 1], padded to 8 nodes, and the largest lam each integrates
    exp(-lam t) with to a relative 1e-13 (found by scanning lam; see the module docstring)."""
    sizes = (2, 3, 4, 5, 6, 8)
    lams = (0.004, 0.076, 0.34, 0.87, 1.70, 4.2)
    nodes = np.zeros((len(sizes), 8))
    weights = np.zeros((len(sizes), 8))
    for i, n in enumerate(sizes):
        y, w = np.polynomial.legendre.leggauss(n)
        nodes[i, :n] = (y + 1.0) / 2.0
        weights[i, :n] = w / 2.0
    return (np.array(sizes, dtype=np.int64), np.array(lams), nodes, weights)


RULE_N, RULE_LAM, RULE_U, RULE_W = _rules()


@njit(cache=True, nogil=True, error_model="numpy")
def tails(r, alpha, s, beta, grp_x, grp_start, pair_k, ys, la, lb, rule_n, rule_lam, rule_u,
          rule_w, log_g, dlog_g, want_grad):
    """log G_x(y) of every (x, y) pair into ``log_g``; with ``want_grad``, its derivatives
    in (r, alpha, s, beta) into the rows of ``dlog_g`` (pairs x 4).

    Pairs are grouped by x (group g: pairs ``grp_start[g]:grp_start[g+1]``, x =
    ``grp_x[g]``), sorted by y within a group; ``pair_k`` indexes ``ys`` (the distinct days)
    and the tables ``la`` = log(alpha + ys), ``lb`` = log(beta + ys).
    """
    beta_big = beta >= alpha
    small = alpha if beta_big else beta
    gap = abs(beta - alpha)
    n_rules = rule_n.shape[0]
    top = n_rules - 1
    for g in range(grp_x.shape[0]):
        x = grp_x[g]
        e_a = r + x            # exponent of (alpha + tau)
        e_bt = s + 1.0         # exponent of (beta + tau)
        e_small = e_a if beta_big else e_bt
        e_big = e_bt if beta_big else e_a
        m = r + s + x
        slope = max(m, 1.0)
        last = grp_start[g + 1] - 1
        for j in range(last, grp_start[g] - 1, -1):
            k = pair_k[j]
            lc = la[k] if beta_big else lb[k]      # log(small + y)
            l_big0 = lb[k] if beta_big else la[k]  # log(big + y)
            cy = small + ys[k]
            # the bound exp(-m v) (1-z)^-e_big falls below e^-TAIL at v = cut
            cut = min((TAIL + e_big * (l_big0 - lc)) / m, MAX_WIDTH)
            dv = cut
            if j < last:
                k1 = pair_k[j + 1]
                dv = min((la[k1] if beta_big else lb[k1]) - lc, cut)
            lam = slope * dv
            rule = top
            n_sub = 1
            if dv <= MAX_PIECE and lam <= rule_lam[top]:
                rule = 0
                while lam > rule_lam[rule]:
                    rule += 1
            else:
                n_sub = int(math.ceil(max(lam / rule_lam[top], dv / MAX_PIECE)))
            n = rule_n[rule]
            h = dv / n_sub
            s0 = 0.0
            s_ls = 0.0   # sums of f log(small + tau), f log(big + tau), f / (small + tau),
            s_lb = 0.0   # f / (big + tau)
            s_is = 0.0
            s_ib = 0.0
            for i in range(n_sub):
                for q in range(n):
                    v = h * (i + rule_u[rule, q])
                    c_tau = cy * math.exp(v)        # small + tau
                    b_tau = c_tau + gap             # big + tau
                    l_big = math.log(b_tau)
                    f = rule_w[rule, q] * math.exp((1.0 - e_small) * v
                                                   - e_big * (l_big - l_big0))
                    s0 += f
                    if want_grad:
                        s_ls += f * (lc + v)
                        s_lb += f * l_big
                        s_is += f / c_tau
                        s_ib += f / b_tau
            # the piece is f(y) (c+y) h s0; f(y) = exp(log_f)
            big_piece = cy * h * s0
            log_f = -e_a * la[k] - e_bt * lb[k]
            if j == last:
                log_g[j] = log_f + math.log(big_piece)
                w = 1.0
            else:
                rest = math.exp(log_g[j + 1] - log_f)   # G(y_(j+1)) / f(y)
                tot = big_piece + rest
                log_g[j] = log_f + math.log(tot)
                w = big_piece / tot
            if want_grad:
                inv = 1.0 / s0
                l_alpha = s_ls if beta_big else s_lb
                l_beta = s_lb if beta_big else s_ls
                i_alpha = s_is if beta_big else s_ib
                i_beta = s_ib if beta_big else s_is
                d0 = -l_alpha * inv
                d1 = -e_a * i_alpha * inv
                d2 = -l_beta * inv
                d3 = -e_bt * i_beta * inv
                if j < last:
                    u = 1.0 - w
                    d0 = w * d0 + u * dlog_g[j + 1, 0]
                    d1 = w * d1 + u * dlog_g[j + 1, 1]
                    d2 = w * d2 + u * dlog_g[j + 1, 2]
                    d3 = w * d3 + u * dlog_g[j + 1, 3]
                dlog_g[j, 0] = d0
                dlog_g[j, 1] = d1
                dlog_g[j, 2] = d2
                dlog_g[j, 3] = d3


@njit(cache=True, nogil=True, error_model="numpy")
def logp_grad(theta, grad, mu, sigma, x_uniq, x_count, n_customers, ys, grp_x, grp_start,
              pair_k, row_g, row_kT, row_lo, row_hi, row_w, rule_n, rule_lam, rule_u, rule_w,
              gx_uniq, gx_count, n_spenders, gx, gz, gw, g_s1, g_s0):
    """Log density at ``theta`` (unconstrained), its gradient written into ``grad``.

    Rows: ``row_g`` the group (distinct x) of each row, ``row_kT`` the index of its T in
    ``ys``, ``row_lo``/``row_hi`` its (x, t_x) and (x, T) pairs (equal when t_x = T: no
    dropout term), ``row_w`` its weight.
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

    # ---- Pareto/NBD: Gamma terms per distinct x
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

    # ---- tables over the distinct days, then the tails per (x, y) pair
    n_y = ys.shape[0]
    la = np.empty(n_y)
    lb = np.empty(n_y)
    ia = np.empty(n_y)
    ib = np.empty(n_y)
    for k in range(n_y):
        la[k] = math.log(alpha + ys[k])
        lb[k] = math.log(beta + ys[k])
        ia[k] = 1.0 / (alpha + ys[k])
        ib[k] = 1.0 / (beta + ys[k])
    n_pairs = pair_k.shape[0]
    log_g = np.empty(n_pairs)
    dlog_g = np.empty((n_pairs, 4))
    tails(r, alpha, s, beta, grp_x, grp_start, pair_k, ys, la, lb, rule_n, rule_lam, rule_u,
          rule_w, log_g, dlog_g, True)

    # ---- rows: log[alive + s G(t_x) (1 - R)], R = G(T) / G(t_x)
    log_s = math.log(s)
    inv_s = 1.0 / s
    for j in range(row_w.shape[0]):
        rx = r + grp_x[row_g[j]]
        kT = row_kT[j]
        w = row_w[j]
        alive = -rx * la[kT] - s * lb[kT]
        da0 = -la[kT]
        da1 = -rx * ia[kT]
        da2 = -lb[kT]
        da3 = -s * ib[kT]
        lo = row_lo[j]
        hi = row_hi[j]
        if lo == hi:
            ll += w * alive
            g_r += w * da0
            g_alpha += w * da1
            g_s += w * da2
            g_beta += w * da3
            continue
        em = math.expm1(log_g[hi] - log_g[lo])
        one_m = -em                       # 1 - R
        ratio = 1.0 + em                  # R
        died0 = log_s + log_g[lo]         # log s G(t_x)
        delta = alive - died0
        e = math.exp(-abs(delta))
        if delta > 0.0:                   # bracket = exp(alive) (1 + (1-R) e)
            n_a = 1.0
            n_g = e
            base = alive
        else:                             # bracket = s G(t_x) (e + 1 - R)
            n_a = e
            n_g = 1.0
            base = died0
        den = n_a + one_m * n_g
        ll += w * (base + math.log(den))
        k_den = w / den
        p_a = n_a * k_den
        p_lo = n_g * k_den
        p_hi = ratio * p_lo
        g_r += p_a * da0 + p_lo * dlog_g[lo, 0] - p_hi * dlog_g[hi, 0]
        g_alpha += p_a * da1 + p_lo * dlog_g[lo, 1] - p_hi * dlog_g[hi, 1]
        g_s += p_a * da2 + p_lo * dlog_g[lo, 2] - p_hi * dlog_g[hi, 2] + one_m * p_lo * inv_s
        g_beta += p_a * da3 + p_lo * dlog_g[lo, 3] - p_hi * dlog_g[hi, 3]

    # ---- Gamma-Gamma, FH13 over weighted distinct (x, z_bar) (as in hubnb.clv.native)
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

    # chain rule to the unconstrained scale: d/d log(y) = y d/dy
    grad[0] += r * g_r
    grad[1] += alpha * g_alpha
    grad[2] += s * g_s
    grad[3] += beta * g_beta
    grad[4] += p * g_p
    grad[5] += qm1 * g_q
    grad[6] += v * g_v
    return lp + ll


# ----------------------------------------------------------------------------- data


def _structure(x, t_x, T):
    """The tails' layout for rows (x, t_x, T): distinct days ``ys``, groups of pairs by x
    (``grp_x``, ``grp_start``), each pair's day index ``pair_k``, and per row its group, the
    index of its T in ``ys`` and its (x, t_x) and (x, T) pairs."""
    x, t_x, T = (np.ascontiguousarray(v, dtype=np.float64) for v in (x, t_x, T))
    if np.any(t_x > T) or np.any(t_x < 0) or np.any(x < 0):
        raise ValueError("rows need 0 <= t_x <= T and x >= 0")
    ys = np.unique(np.concatenate([t_x, T]))
    k_tx = np.searchsorted(ys, t_x)
    k_T = np.searchsorted(ys, T)
    grp_x, row_g = np.unique(x, return_inverse=True)
    row_g = row_g.ravel().astype(np.int64)
    n_y = len(ys)
    keys = np.concatenate([row_g * n_y + k_tx, row_g * n_y + k_T])
    pairs, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.ravel().astype(np.int64)
    pair_g = pairs // n_y
    pair_k = (pairs % n_y).astype(np.int64)
    grp_start = np.searchsorted(pair_g, np.arange(len(grp_x) + 1)).astype(np.int64)
    n = len(x)
    return (ys, grp_x, grp_start, pair_k, row_g, k_T.astype(np.int64), inverse[:n].copy(),
            inverse[n:].copy())


def _data_args(arrays: dict) -> tuple:
    a = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    zeros = np.zeros_like(a["T0"])
    x = np.concatenate([zeros, a["x1"]])
    t_x = np.concatenate([zeros, a["tx1"]])
    T = np.concatenate([a["T0"], a["T1"]])
    w = np.ascontiguousarray(np.concatenate([a["w0"], a["w1"]]))
    ys, grp_x, grp_start, pair_k, row_g, row_kT, lo, hi = _structure(x, t_x, T)
    c = np.ascontiguousarray
    return (c(a["x_uniq"]), c(a["x_count"]), float(a["n_customers"]), ys, grp_x, grp_start,
            pair_k, row_g, row_kT, lo, hi, w, RULE_N, RULE_LAM, RULE_U, RULE_W,
            c(a["gx_uniq"]), c(a["gx_count"]), float(a["n_spenders"]), c(a["gx"]), c(a["gz"]),
            c(a["gw"]), float(a["g_s1"]), float(a["g_s0"]))


def make_logp(arrays: dict):
    """``logp(theta) -> (log density, gradient)`` on a compressed data set's arrays
    (:func:`hubnb.clv.models.compress`)."""
    args = _data_args(arrays)

    def logp(theta, **_shared):
        grad = np.empty(7)
        val = logp_grad(np.asarray(theta, dtype=np.float64), grad, PRIOR_MU, PRIOR_SIGMA, *args)
        if not (np.isfinite(val) and np.isfinite(grad).all()):
            # an extreme point of the warm-up where a tail underflows: the sampler treats
            # -inf as a divergence and moves on
            return -np.inf, np.zeros(7)
        return val, grad

    return logp


# ----------------------------------------------------------------------------- per row


@njit(cache=True, nogil=True, error_model="numpy")
def _row_loglik(r, alpha, s, beta, ys, grp_x, grp_start, pair_k, u_g, u_kT, u_lo, u_hi,
                row_u, rule_n, rule_lam, rule_u, rule_w, out):
    """out[d, j] = log-likelihood of row j at draw d; rows are computed once per distinct
    row (``u_*``, ``row_u`` maps a row to its distinct row)."""
    n_y = ys.shape[0]
    la = np.empty(n_y)
    lb = np.empty(n_y)
    n_pairs = pair_k.shape[0]
    log_g = np.empty(n_pairs)
    dlog_g = np.empty((1, 4))
    n_grp = grp_x.shape[0]
    lg = np.empty(n_grp)
    vals = np.empty(u_g.shape[0])
    for d in range(r.shape[0]):
        rd, ad, sd, bd = r[d], alpha[d], s[d], beta[d]
        for k in range(n_y):
            la[k] = math.log(ad + ys[k])
            lb[k] = math.log(bd + ys[k])
        tails(rd, ad, sd, bd, grp_x, grp_start, pair_k, ys, la, lb, rule_n, rule_lam,
              rule_u, rule_w, log_g, dlog_g, False)
        common = rd * math.log(ad) + sd * math.log(bd) - math.lgamma(rd)
        for g in range(n_grp):
            lg[g] = math.lgamma(rd + grp_x[g]) + common
        log_s = math.log(sd)
        for j in range(u_g.shape[0]):
            kT = u_kT[j]
            alive = -(rd + grp_x[u_g[j]]) * la[kT] - sd * lb[kT]
            lo = u_lo[j]
            hi = u_hi[j]
            val = alive
            if lo != hi:
                one_m = -math.expm1(log_g[hi] - log_g[lo])
                died = log_s + log_g[lo]
                delta = alive - died
                e = math.exp(-abs(delta))
                if delta > 0.0:
                    val = alive + math.log1p(one_m * e)
                else:
                    val = died + math.log(e + one_m)
            vals[j] = lg[u_g[j]] + val
        for j in range(row_u.shape[0]):
            out[d, j] = vals[row_u[j]]


def row_loglik(r, alpha, s, beta, x, t_x, T):
    """The full per-customer Pareto/NBD log-likelihood (FH05 eq. 22, Gamma terms included).

    Parameters broadcast as (draws, 1) (or scalars / (draws,)); rows x, t_x, T shaped
    (rows,). Returns (draws, rows). Each distinct (x, t_x, T) row is computed once per draw
    and copied to its rows; besides the output only arrays of the size of the rows (the
    layout, built once) and of the distinct rows are allocated.
    """
    r, alpha, s, beta = (np.ascontiguousarray(np.asarray(v, dtype=np.float64).reshape(-1))
                         for v in (r, alpha, s, beta))
    n_draws = max(len(r), len(alpha), len(s), len(beta))
    r, alpha, s, beta = (np.ascontiguousarray(np.broadcast_to(v, n_draws))
                         for v in (r, alpha, s, beta))
    x, t_x, T = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=np.float64))
                                      for v in (x, t_x, T)))
    x, t_x, T = (v.reshape(-1) for v in (x, t_x, T))
    out = np.empty((n_draws, len(x)))
    if len(x) == 0 or n_draws == 0:
        return out
    ys, grp_x, grp_start, pair_k, row_g, row_kT, lo, hi = _structure(x, t_x, T)
    # distinct rows: (x, t_x, T) <-> (group, pair lo, index of T)
    key = lo * len(ys) + row_kT
    _, first, row_u = np.unique(key, return_index=True, return_inverse=True)
    row_u = row_u.ravel().astype(np.int64)
    _row_loglik(r, alpha, s, beta, ys, grp_x, grp_start, pair_k, row_g[first], row_kT[first],
                lo[first], hi[first], row_u, RULE_N, RULE_LAM, RULE_U, RULE_W, out)
    return out


# ----------------------------------------------------------------------------- nutpie

_WARM: dict = {}
_FUNCS = (tails, logp_grad, _row_loglik)


def _tiny():
    return {"x_uniq": np.array([0.0, 1.0]), "x_count": np.array([1.0, 1.0]),
            "n_customers": 2.0, "T0": np.array([5.0]), "w0": np.ones(1),
            "x1": np.array([1.0]), "tx1": np.array([2.0]), "T1": np.array([5.0]),
            "w1": np.ones(1), "gx_uniq": np.ones(1), "gx_count": np.ones(1),
            "n_spenders": 1.0, "gx": np.ones(1), "gz": np.ones(1), "gw": np.ones(1),
            "g_s1": 0.0, "g_s0": 0.0}


def warm_up() -> dict:
    """Compile (or load from the disk cache) once per process; as
    :func:`hubnb.clv.native.warm_up`: ``{"seconds", "cache_hit", "first_in_process"}``."""
    if _WARM:
        return dict(_WARM, seconds=0.0, first_in_process=False)
    t0 = time.perf_counter()

    def run():
        make_logp(_tiny())(np.zeros(7))
        row_loglik(np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)),
                   np.ones(1), np.zeros(1), np.ones(1))

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
    """``(nutpie model, info)``: the joint Pareto/NBD + Gamma-Gamma posterior on ``arrays``
    (:func:`hubnb.clv.models.compress`), ``info`` as :func:`warm_up`'s."""
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
