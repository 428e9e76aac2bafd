"""Pareto/NBD + Gamma-Gamma log density and gradient in numba, cached on disk.

The joint model of :func:`hubnb.clv.models.build_model` with ``ParetoNBDModel`` (same
priors, same compressed likelihood, same unconstrained parametrisation: the log of r, alpha,
s, beta, p, q - 1 and v_scaled) as numba loops returning the log density and its gradient in
one pass; nutpie samples it through ``from_pyfunc`` as it samples :mod:`hubnb.clv.native`'s
BG/NBD, and the functions are ``njit(cache=True)`` with :mod:`hubnb.clv.native`'s cache
locator (``$HUBNB_CACHE_DIR/numba``). Tested against the PyMC model's compiled logp and
gradient, scipy's adaptive quadrature, the 2F1 closed form and finite differences
(``tests/test_clv_native_pareto.py``).

Per customer (FH05 eq. 22), with I the dropout integral of :mod:`hubnb.clv.pareto_nbd`,

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) [(alpha+T)^-(r+x) (beta+T)^-s + s I],
    I = int_{t_x}^{T} f_x(tau) dtau,   f_x(tau) = (alpha+tau)^-(r+x) (beta+tau)^-(s+1).

**Tails, built from pieces.** I = G_x(t_x) - G_x(T) with the tail G_x(y) = int_y^inf f_x,
so only the distinct (x, y) pairs (y a t_x or a T) need a tail: 4,433 pairs on the full
CDNOW for its 11,102 distinct rows. For one x, with its pairs' days sorted, y_0 < ... < y_K,

    G_x(y_K) = int_{y_K}^inf f_x,    G_x(y_i) = int_{y_i}^{y_(i+1)} f_x + G_x(y_(i+1)),

a sum of positive terms (no cancellation: a tail is as accurate, relatively, as its least
accurate piece), carried as G_x(y) / f_x(y) so nothing under- or overflows. Most pieces
are one day long: between two successive distinct days that at least two x's share, log
(alpha+tau) and log(beta+tau) at 3 Gauss-Legendre nodes are tabulated once per evaluation,
and such a piece costs 3 exps (taken when (r+s+x+1) (day gap) / (min(alpha, beta) + day) <=
:data:`TABLE_LAM`, the same lam bound as below). The other pieces and the last one (to
infinity) are integrated in v = log((c+tau)/(c+y_i)), c = min(alpha, beta), where the
integrand is f_x(y_i) (c+y_i) exp(psi(v)), psi concave, with slope 1 - e_s - e_b q(v)
(e_s, e_b the exponents of the smaller and larger of alpha + tau, beta + tau, q = (c+tau) /
(max(alpha, beta)+tau) = 1 / (1 + e^(v* - v)) rising from FH05's 1 - z to 1) and
singularities at v* +- i pi. A piece is walked through in intervals, each integrated by the
smallest Gauss-Legendre rule (2 to 16 nodes) whose two error bounds it meets: h S <= lam_n
(the rule integrates exp(-lam t) on [0, 1] to 1e-13; S bounds |psi'| over the interval
widened by :data:`REACH`) and h <= c_n d (the rule integrates |t - z|^-10 to 1e-13 with z
at distance d / h from the interval; d the distance to the singularities). A tail stops
when what is left, at most exp(psi) / |psi'| (psi concave), is below :data:`STOP` of its
sum; where e^v would overflow (a small r + s + x reaches v ~ 700) it is computed from e^-v.

**Rows.** With E = f_x(T) / f_x(t_x) <= 1, a row's bracket is f_x(t_x) D,
D = (beta+T) E + s (G(t_x) - G(T) E) / f_x(t_x): an exp and a log per row, the logs and
inverses of alpha + y and beta + y tabulated once per evaluation over the distinct days.
The difference of two tails loses relative precision when t_x is close to T, but then the
dropout term is small against the alive term and the row keeps full precision (tested).

**Gradient under the integral sign.** d/dr f = -log(alpha+tau) f, d/dalpha f =
-(r+x)/(alpha+tau) f, d/ds f = -log(beta+tau) f, d/dbeta f = -(s+1)/(beta+tau) f: the same
nodes give each piece's gradient, and d log G(y_i) = w d log P_i + (1-w) d log G(y_(i+1)),
w = P_i / G(y_i). This is the gradient of the computed log density up to the quadrature
error; the rule chosen per interval depends on the parameters, so the log density has
steps of ~1e-13 relative where a rule changes, far below anything HMC notices.

Accuracy (tests; sweeps of thousands of random rows): a row's log-likelihood agrees with
scipy's adaptive quadrature to ~1e-13 relative (worst seen 1.4e-12) over r, s in
[0.005, 50], alpha, beta in [0.1, 1e6] days (alpha = beta included), x <= 1,000,
T <= 20,000 days, whole or fractional days; with the 2F1 closed form to 1e-8 wherever that
is finite and accurate; with :mod:`hubnb.clv.pareto_nbd`'s per-row quadrature (the PyMC
path) to ~1e-12 over r, s in [0.02, 20], alpha, beta in [0.5, 1e5], x < 200, T < 5,000.

Speed (benchmarks/pareto_native_bench.py, 2 shared cores): logp + gradient on the full
CDNOW 0.6 ms against 10.5 ms for nutpie's compilation of the PyMC model; a fit of 2 chains x
1000 draws after 1000 tune ~7 s against ~120 s.

The Gamma-Gamma part is :func:`hubnb.clv.native.gamma_gamma_logp_grad`, shared with BG/NBD and
MBG/NBD (the disk cache's stamp of this module includes native.py, so a change there
recompiles this module too).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..cores import cpu_budget
from .histories import history_rows
from .native import (
    digamma,
    gamma_gamma_logp_grad,
    log_prior_grad,
    nutpie_model,
    prior_of,
    warm_up_functions,
)
from .native import expand as native_expand

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

#: Gauss-Legendre rules of the intervals in v: nodes, the largest lam = (bound on the
#: log-integrand's slope) x (width) with which each integrates exp(-lam t) on [0, 1] to
#: 1e-13 relative, and the largest (width) / (distance to the integrand's singularities)
#: with which each integrates |t - z|^-10 on [0, 1] to 1e-13 (both found by scanning).
RULE_SIZES = (2, 3, 4, 5, 6, 8, 12, 16)
RULE_LAMS = (0.004, 0.07, 0.32, 0.85, 1.65, 4.0, 12.0, 24.0)
RULE_SING = (0.0009, 0.0125, 0.048, 0.11, 0.2, 0.44, 0.9, 1.5)
#: Gauss-Legendre nodes of the tabulated pieces between successive distinct days (in tau),
#: and the largest (r+s+x+1) (day gap) / (min(alpha, beta) + day) they take (lam above).
TABLE_NODES = 3
TABLE_LAM = 0.07
#: How far (in v) around an interval the log-integrand's slope is bounded.
REACH = 3.0
#: A tail stops where what is left is provably below STOP of what has been summed.
STOP = 1e-17
#: Intervals per piece, at most (a guard; never reached at finite parameters).
MAX_SUB = 100_000


def _gauss(n):
    y, w = np.polynomial.legendre.leggauss(n)
    return (y + 1.0) / 2.0, w / 2.0


_RULE_N = np.array(RULE_SIZES, dtype=np.int64)
_RULE_LAM = np.array(RULE_LAMS)
_RULE_SING = np.array(RULE_SING)
_RULE_U = np.zeros((len(RULE_SIZES), max(RULE_SIZES)))
_RULE_W = np.zeros((len(RULE_SIZES), max(RULE_SIZES)))
for _i, _n in enumerate(RULE_SIZES):
    _RULE_U[_i, :_n], _RULE_W[_i, :_n] = _gauss(_n)
_TABLE_U, _TABLE_W = _gauss(TABLE_NODES)
_TOP = len(RULE_SIZES) - 1
_PI2 = math.pi * math.pi


@njit(cache=True, nogil=True)
def _slope_bound(one_m_es, e_b, v_star, lo, hi):
    """max |psi'| over [lo, hi]: psi' = 1 - e_s - e_b q(v), q(v) = 1 / (1 + e^(v* - v))
    increasing, so the largest |psi'| is at an end."""
    q_lo = 1.0 / (1.0 + math.exp(min(v_star - lo, 700.0)))
    q_hi = 1.0 / (1.0 + math.exp(min(v_star - hi, 700.0)))
    return max(abs(one_m_es - e_b * q_lo), abs(one_m_es - e_b * q_hi))


@njit(cache=True, nogil=True)
def _log_big(v, cy, lc, gap):
    """log(big + tau) = log(cy e^v + gap), also where e^v overflows."""
    if v < 600.0:
        return math.log(cy * math.exp(v) + gap)
    return lc + v + math.log1p(gap * math.exp(-v) / cy)


@njit(cache=True, nogil=True)
def _piece_v(cy, lc, l_big0, gap, v_star, e_s, e_b, width, want_grad):
    """int_0^width exp(psi(v)) dv, psi(v) = (1 - e_s) v - e_b log((cy e^v + gap) / (cy + gap))
    (width may be inf), and the integrand-weighted means of log(small+tau), log(big+tau),
    1/(small+tau), 1/(big+tau), where small + tau = cy e^v and big + tau = cy e^v + gap.

    psi is concave, psi' = 1 - e_s - e_b q(v) with q = (small+tau) / (big+tau) =
    1 / (1 + e^(v* - v)) increasing, and the integrand's singularities sit at v* +- i pi.
    The piece is walked through in intervals [a, a+h], each as wide as the largest rule
    allows (h S <= lam_n, h <= c_n d; :data:`RULE_LAMS`, :data:`RULE_SING`) and integrated
    with the smallest rule that takes it: S the largest |psi'| over
    [a - REACH, a + h + REACH], d the distance from the interval to the singularities. A
    short piece is one interval; a tail stops when the rest, at most
    exp(psi(a)) / |psi'(a)| (psi concave), is below STOP of the sum.
    """
    one_m_es = 1.0 - e_s
    acc = 0.0
    s_ls = 0.0
    s_lb = 0.0
    s_is = 0.0
    s_ib = 0.0
    a = 0.0
    for _ in range(MAX_SUB):
        dist = abs(a - v_star)
        h = min(_RULE_SING[_TOP] * math.sqrt(dist * dist + _PI2), width - a, 700.0)
        if a < v_star:   # moving towards the singularities: their distance at the end
            dist = max(v_star - a - h, 0.0)
            h = min(h, _RULE_SING[_TOP] * math.sqrt(dist * dist + _PI2))
        sl = _slope_bound(one_m_es, e_b, v_star, a - REACH, a + h + REACH)
        h = min(h, _RULE_LAM[_TOP] / sl)
        lam = h * sl
        reach = h / math.sqrt(dist * dist + _PI2)
        rule = 0
        while rule < _TOP and (lam > _RULE_LAM[rule] or reach > _RULE_SING[rule]):
            rule += 1
        for q in range(_RULE_N[rule]):
            v = a + h * _RULE_U[rule, q]
            if v < 600.0:
                c_tau = cy * math.exp(v)
                b_tau = c_tau + gap
                l_big = math.log(b_tau)
                i_small = 1.0 / c_tau
                i_big = 1.0 / b_tau
            else:   # e^v would overflow
                i_small = math.exp(-v) / cy
                l_big = lc + v + math.log1p(gap * i_small)
                i_big = i_small / (1.0 + gap * i_small)
            f = h * _RULE_W[rule, q] * math.exp(one_m_es * v - e_b * (l_big - l_big0))
            acc += f
            if want_grad:
                s_ls += f * (lc + v)
                s_lb += f * l_big
                s_is += f * i_small
                s_ib += f * i_big
        a += h
        if a >= width:
            break
        slope = one_m_es - e_b / (1.0 + math.exp(min(v_star - a, 700.0)))
        if slope < 0.0:
            psi = one_m_es * a - e_b * (_log_big(a, cy, lc, gap) - l_big0)
            if math.exp(psi) < STOP * acc * (-slope):
                break
    inv = 1.0 / acc
    return cy * acc, s_ls * inv, s_lb * inv, s_is * inv, s_ib * inv


@njit(cache=True, nogil=True)
def tables(alpha, beta, ys, gap_k, la, lb, ia, ib, ga, gb, gia, gib, want_grad):
    """log(alpha + y), log(beta + y) (and their inverses with ``want_grad``) at the distinct
    days, and at the nodes of the tabulated gaps ys[k] .. ys[k+1], k in ``gap_k``."""
    for k in range(ys.shape[0]):
        la[k] = math.log(alpha + ys[k])
        lb[k] = math.log(beta + ys[k])
        if want_grad:
            ia[k] = 1.0 / (alpha + ys[k])
            ib[k] = 1.0 / (beta + ys[k])
    for i in range(gap_k.shape[0]):
        k = gap_k[i]
        y0 = ys[k]
        d = ys[k + 1] - y0
        for q in range(TABLE_NODES):
            tau = y0 + d * _TABLE_U[q]
            ga[i, q] = math.log(alpha + tau)
            gb[i, q] = math.log(beta + tau)
            if want_grad:
                gia[i, q] = 1.0 / (alpha + tau)
                gib[i, q] = 1.0 / (beta + tau)


@njit(cache=True, nogil=True)
def tails(r, alpha, s, beta, grp_x, grp_start, pair_k, pair_gap, ys, la, lb, ga, gb, gia, gib,
          lf, tot, dlog_g, want_grad):
    """The tails G_x(y) of every (x, y) pair: ``lf`` = log f_x(y), ``tot`` = G_x(y) / f_x(y)
    and, with ``want_grad``, d log G_x(y) / d(r, alpha, s, beta) in the rows of ``dlog_g``.

    Pairs are grouped by x (group g: pairs ``grp_start[g]:grp_start[g+1]``, x =
    ``grp_x[g]``), sorted by y within a group; ``pair_k`` indexes ``ys`` (the distinct days)
    and ``la``, ``lb``; ``pair_gap`` is the row of ``ga``, ``gb`` (logs at tabulated nodes
    between ys[k] and ys[k+1]) for a pair whose next pair is the next day, -1 otherwise.
    """
    beta_big = beta >= alpha
    small = alpha if beta_big else beta
    gap = abs(beta - alpha)
    log_gap = math.log(gap) if gap > 0.0 else -math.inf
    for g in range(grp_x.shape[0]):
        x = grp_x[g]
        e_a = r + x            # exponent of (alpha + tau)
        e_bt = s + 1.0         # exponent of (beta + tau)
        e_small = e_a if beta_big else e_bt
        e_big = e_bt if beta_big else e_a
        m1 = r + s + x + 1.0   # bounds the slope of log f in tau, times (small + tau)
        last = grp_start[g + 1] - 1
        for j in range(last, grp_start[g] - 1, -1):
            k = pair_k[j]
            lf_j = -e_a * la[k] - e_bt * lb[k]
            lf[j] = lf_j
            width = math.inf
            i = -1
            if j < last:
                k1 = pair_k[j + 1]
                i = pair_gap[j]
                if i >= 0 and m1 * (ys[k1] - ys[k]) > TABLE_LAM * (small + ys[k]):
                    i = -1
                if i < 0:
                    width = (la[k1] - la[k]) if beta_big else (lb[k1] - lb[k])
            if i >= 0:
                # Gauss-Legendre in tau between successive days, logs from the tables
                acc = 0.0
                m_la = 0.0
                m_lb = 0.0
                m_ia = 0.0
                m_ib = 0.0
                for q in range(TABLE_NODES):
                    f = _TABLE_W[q] * math.exp(-e_a * (ga[i, q] - la[k])
                                               - e_bt * (gb[i, q] - lb[k]))
                    acc += f
                    if want_grad:
                        m_la += f * ga[i, q]
                        m_lb += f * gb[i, q]
                        m_ia += f * gia[i, q]
                        m_ib += f * gib[i, q]
                rel = (ys[k1] - ys[k]) * acc
                inv = 1.0 / acc
                m_la *= inv
                m_lb *= inv
                m_ia *= inv
                m_ib *= inv
            else:
                lc = la[k] if beta_big else lb[k]
                rel, m_ls, m_lbig, m_is, m_ibig = _piece_v(
                    small + ys[k], lc, lb[k] if beta_big else la[k], gap, log_gap - lc,
                    e_small, e_big, width, want_grad)
                m_la = m_ls if beta_big else m_lbig
                m_lb = m_lbig if beta_big else m_ls
                m_ia = m_is if beta_big else m_ibig
                m_ib = m_ibig if beta_big else m_is
            if j == last:
                tot[j] = rel
                w = 1.0
            else:
                t = rel + tot[j + 1] * math.exp(lf[j + 1] - lf_j)
                tot[j] = t
                w = rel / t
            if want_grad:
                d0 = -m_la
                d1 = -e_a * m_ia
                d2 = -m_lb
                d3 = -e_bt * m_ib
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


@njit(cache=True, nogil=True)
def logp_grad(theta, grad, mu, sigma, x_uniq, x_count, n_customers, ys, gap_k, grp_x,
              grp_start, pair_k, pair_gap, row_g, row_kT, row_lo, row_hi, row_w, gx_uniq,
              gx_count, n_spenders, gx, gz, gw, g_s1, g_s0):
    """Log density at ``theta`` (unconstrained), its gradient written into ``grad``.

    Rows: ``row_g`` the group (distinct x) of each row, ``row_kT`` the index of its T in
    ``ys``, ``row_lo``/``row_hi`` its (x, t_x) and (x, T) pairs (equal when t_x = T: no
    dropout term), ``row_w`` its weight.
    """
    lp = log_prior_grad(theta, grad, mu, sigma)
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

    # ---- tables, then the tails per (x, y) pair
    n_y = ys.shape[0]
    la = np.empty(n_y)
    lb = np.empty(n_y)
    ia = np.empty(n_y)
    ib = np.empty(n_y)
    n_gaps = gap_k.shape[0]
    n_tab = TABLE_NODES
    ga = np.empty((n_gaps, n_tab))
    gb = np.empty((n_gaps, n_tab))
    gia = np.empty((n_gaps, n_tab))
    gib = np.empty((n_gaps, n_tab))
    tables(alpha, beta, ys, gap_k, la, lb, ia, ib, ga, gb, gia, gib, True)
    n_pairs = pair_k.shape[0]
    lf = np.empty(n_pairs)
    tot = np.empty(n_pairs)
    dlog_g = np.empty((n_pairs, 4))
    tails(r, alpha, s, beta, grp_x, grp_start, pair_k, pair_gap, ys, la, lb, ga, gb, gia, gib,
          lf, tot, dlog_g, True)

    # ---- rows: log[e^alive + s (G(t_x) - G(T))] = log f(t_x) + log D,
    # D = (beta+T) E + s (tot(t_x) - tot(T) E), E = f(T) / f(t_x) <= 1
    for j in range(row_w.shape[0]):
        rx = r + grp_x[row_g[j]]
        kT = row_kT[j]
        w = row_w[j]
        da0 = -la[kT]
        da1 = -rx * ia[kT]
        da2 = -lb[kT]
        da3 = -s * ib[kT]
        lo = row_lo[j]
        hi = row_hi[j]
        if lo == hi:
            ll += w * (rx * da0 + s * da2)
            g_r += w * da0
            g_alpha += w * da1
            g_s += w * da2
            g_beta += w * da3
            continue
        e = math.exp(lf[hi] - lf[lo])
        big_a = (beta + ys[kT]) * e
        t_hi = tot[hi] * e
        dd = tot[lo] - t_hi
        den = big_a + s * dd
        ll += w * (lf[lo] + math.log(den))
        k_den = w / den
        p_a = big_a * k_den
        p_lo = s * tot[lo] * k_den
        p_hi = s * t_hi * k_den
        g_r += p_a * da0 + p_lo * dlog_g[lo, 0] - p_hi * dlog_g[hi, 0]
        g_alpha += p_a * da1 + p_lo * dlog_g[lo, 1] - p_hi * dlog_g[hi, 1]
        g_s += p_a * da2 + p_lo * dlog_g[lo, 2] - p_hi * dlog_g[hi, 2] + dd * k_den
        g_beta += p_a * da3 + p_lo * dlog_g[lo, 3] - p_hi * dlog_g[hi, 3]

    # ---- Gamma-Gamma, FH13 over weighted distinct (x, z_bar) (hubnb.clv.native's)
    ll_gg, g_p, g_q, g_v = gamma_gamma_logp_grad(p, q, v, gx_uniq, gx_count, n_spenders, gx,
                                                 gz, gw, g_s1, g_s0)
    ll += ll_gg

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
    """The tails' layout for rows (x, t_x, T).

    Returns the distinct days ``ys``; the tabulated gaps ``gap_k`` (ys[k] .. ys[k+1] is
    tabulated when at least two x's have pairs on both days: its node logs then serve them
    all); the groups of pairs by x (``grp_x``, ``grp_start``), each pair's day index
    ``pair_k`` and tabulated gap ``pair_gap`` (-1: none); per row its group, the index of
    its T in ``ys`` and its (x, t_x) and (x, T) pairs.
    """
    x, t_x, T = (np.ascontiguousarray(v, dtype=np.float64) for v in (x, t_x, T))
    if not all(np.all(np.isfinite(v)) for v in (x, t_x, T)):
        raise ValueError("rows need finite x, t_x, T")
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
    # a pair followed, in its group, by the next distinct day
    nxt = np.zeros(len(pairs), dtype=bool)
    nxt[:-1] = (pair_g[1:] == pair_g[:-1]) & (pair_k[1:] == pair_k[:-1] + 1)
    users = np.bincount(pair_k[nxt], minlength=n_y)
    gap_k = np.flatnonzero(users >= 2).astype(np.int64)
    gap_of = np.full(n_y, -1, dtype=np.int64)
    gap_of[gap_k] = np.arange(len(gap_k))
    pair_gap = np.where(nxt, gap_of[pair_k], -1).astype(np.int64)
    n = len(x)
    return (ys, gap_k, grp_x, grp_start, pair_k, pair_gap, row_g, k_T.astype(np.int64),
            inverse[:n].copy(), inverse[n:].copy())


def _data_args(arrays: dict) -> tuple:
    a = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    x, t_x, T, w = history_rows(a)
    layout = _structure(x, t_x, T)
    # rows without a dropout term (t_x = T) first, then by pair: a predictable branch and
    # ordered reads
    row_g, row_kT, lo, hi = layout[6:]
    order = np.lexsort((hi, lo, lo != hi))
    c = np.ascontiguousarray
    rows = tuple(c(v[order]) for v in (row_g, row_kT, lo, hi, w))
    return ((c(a["x_uniq"]), c(a["x_count"]), float(a["n_customers"])) + layout[:6] + rows
            + (c(a["gx_uniq"]), c(a["gx_count"]), float(a["n_spenders"]), c(a["gx"]),
               c(a["gz"]), c(a["gw"]), float(a["g_s1"]), float(a["g_s0"])))


def make_logp(arrays: dict):
    """``logp(theta) -> (log density, gradient)`` on a compressed data set's arrays
    (:func:`hubnb.clv.histories.compress`)."""
    args = _data_args(arrays)
    mu, sigma = prior(arrays)

    def logp(theta, **_shared):
        grad = np.empty(7)
        val = logp_grad(np.asarray(theta, dtype=np.float64), grad, mu, sigma, *args)
        return val, grad

    return logp


# ----------------------------------------------------------------------------- per row


@njit(cache=True, nogil=True)
def _row_loglik(r, alpha, s, beta, ys, gap_k, grp_x, grp_start, pair_k, pair_gap, u_g, u_kT,
                u_lo, u_hi, row_u, out):
    """out[d, j] = log-likelihood of row j at draw d; rows are computed once per distinct
    row (``u_*``; ``row_u`` maps a row to its distinct row)."""
    n_y = ys.shape[0]
    la = np.empty(n_y)
    lb = np.empty(n_y)
    none = np.empty(0)
    n_gaps = gap_k.shape[0]
    n_tab = TABLE_NODES
    ga = np.empty((n_gaps, n_tab))
    gb = np.empty((n_gaps, n_tab))
    none2 = np.empty((0, n_tab))
    n_pairs = pair_k.shape[0]
    lf = np.empty(n_pairs)
    tot = np.empty(n_pairs)
    no_grad = np.empty((0, 4))
    n_grp = grp_x.shape[0]
    lg = np.empty(n_grp)
    vals = np.empty(u_g.shape[0])
    for d in range(r.shape[0]):
        rd, ad, sd, bd = r[d], alpha[d], s[d], beta[d]
        tables(ad, bd, ys, gap_k, la, lb, none, none, ga, gb, none2, none2, False)
        tails(rd, ad, sd, bd, grp_x, grp_start, pair_k, pair_gap, ys, la, lb, ga, gb, none2,
              none2, lf, tot, no_grad, False)
        common = rd * math.log(ad) + sd * math.log(bd) - math.lgamma(rd)
        for g in range(n_grp):
            lg[g] = math.lgamma(rd + grp_x[g]) + common
        for j in range(u_g.shape[0]):
            kT = u_kT[j]
            lo = u_lo[j]
            hi = u_hi[j]
            if lo == hi:
                val = -(rd + grp_x[u_g[j]]) * la[kT] - sd * lb[kT]
            else:
                e = math.exp(lf[hi] - lf[lo])
                val = lf[lo] + math.log((bd + ys[kT]) * e + sd * (tot[lo] - tot[hi] * e))
            vals[j] = lg[u_g[j]] + val
        for j in range(row_u.shape[0]):
            out[d, j] = vals[row_u[j]]


def row_loglik(r, alpha, s, beta, x, t_x, T, threads=None):
    """The full per-customer Pareto/NBD log-likelihood (FH05 eq. 22, Gamma terms included).

    Parameters broadcast as (draws, 1) (or scalars, or (draws,)); rows x, t_x, T shaped
    (rows,), any non-negative days (whole or not) with t_x <= T. Returns (draws, rows).

    Each distinct (x, t_x, T) row is computed once per draw and copied to its rows; besides
    the output only arrays the size of the rows (the layout, built once) and, per thread, of
    the distinct rows, (x, day) pairs and days are allocated. Draws are split over
    ``threads`` threads (the numba function releases the GIL); ``None``: up to 4 (the CPU
    count) when there are more than 2,000,000 cells, else 1.
    """
    r, alpha, s, beta = (np.asarray(v, dtype=np.float64).reshape(-1)
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
    ys, gap_k, grp_x, grp_start, pair_k, pair_gap, row_g, row_kT, lo, hi = _structure(x, t_x, T)
    # a distinct row is a distinct ((x, t_x) pair, T)
    _, first, row_u = np.unique(lo * len(ys) + row_kT, return_index=True, return_inverse=True)
    row_u = row_u.ravel().astype(np.int64)
    layout = (ys, gap_k, grp_x, grp_start, pair_k, pair_gap, row_g[first], row_kT[first],
              lo[first], hi[first], row_u)
    if threads is None:
        threads = min(4, cpu_budget()) if out.size > 2_000_000 else 1
    threads = max(1, min(int(threads), n_draws))
    if threads == 1:
        _row_loglik(r, alpha, s, beta, *layout, out)
        return out
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, n_draws, threads + 1).astype(int)

    def run(i):
        a, b = bounds[i], bounds[i + 1]
        _row_loglik(r[a:b], alpha[a:b], s[a:b], beta[a:b], *layout, out[a:b])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    return out


# ----------------------------------------------------------------------------- nutpie

_WARM: dict = {}
_FUNCS = (_slope_bound, _log_big, _piece_v, tables, tails, logp_grad, _row_loglik)


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
    def run():
        make_logp(_tiny())(np.zeros(7))
        row_loglik(np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)),
                   np.ones(1), np.zeros(1), np.ones(1))

    return warm_up_functions(run, _FUNCS, __file__, _WARM)


def expand(theta) -> dict:
    """The stored values of a draw (the PyMC model's free variables and q)."""
    return native_expand(theta, STORED)


def compile_model(arrays: dict):
    """``(nutpie model, info)``: the joint Pareto/NBD + Gamma-Gamma posterior on ``arrays``
    (:func:`hubnb.clv.histories.compress`), ``info`` as :func:`warm_up`'s."""
    info = warm_up()
    return nutpie_model(make_logp(arrays), STORED, *prior(arrays)), info


def prior(arrays: dict):
    """``(mu, sigma)``: the prior the arrays carry for Pareto/NBD (a batch's population,
    :func:`hubnb.clv.native.prior_of`), else the default."""
    return prior_of(arrays, "pareto_nbd", PRIOR_MU, PRIOR_SIGMA)
