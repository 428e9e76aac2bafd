"""MBG/CNBD-k (Reutterer, Platzer and Schröder 2020): customers who buy at regular intervals.

MBG/NBD with Erlang-k instead of exponential times between orders. While alive, a customer
orders after every k-th event of a Poisson process of rate lambda (an Erlang-k gap of mean
k / lambda: the larger k, the more regular the gaps), lambda ~ Gamma(r, alpha) across
customers; right after each order, the first included, the customer drops out with
probability p ~ Beta(a, b). k = 1 is MBG/NBD (:mod:`hubnb.clv.mbg_nbd`).

**Likelihood.** A customer with x repeat orders at gaps g_1..g_x (t_x = their sum), seen
until T:

    L = C_i * Gamma(r+kx) alpha^r / Gamma(r) * B(a, b+x+1) / B(a, b)
          * [ a/(b+x) (alpha+t_x)^-(r+kx)
              + sum_{j=0}^{k-1} (r+kx)_j (T-t_x)^j / (j! (alpha+T)^(r+kx+j)) ],

    C_i = prod_m g_m^(k-1) / ((k-1)!)^x,  log C_i = (k-1) litt - x log((k-1)!),

with litt = sum_m log g_m. The first term is "dropped out right after the last order", the
j-th of the sum "alive, with j of the k phases of the open gap passed" ((r+kx)_j the rising
factorial). C_i depends on no parameter, so the fit runs on the weighted distinct
(x, t_x, T) rows as the other models do; PSIS-LOO adds C_i to each customer's pointwise
score (:meth:`MBGCNBDModel.customer_constant`), so MBG/CNBD-k and the Poisson models are
compared on the same observations. This is BTYDplus's ``mbgcnbd.LL`` (Platzer's R package),
written independently here as a log-sum-exp.

**Given a history and a draw** the likelihood's terms are the posterior of the customer's
state: dropped out (weight w_D), or alive with j phases passed (w_j), and given alive and j,
lambda ~ Gamma(r+kx+j, alpha+T) and p ~ Beta(a, b+x+1), independent. So, exactly:

- P(alive) = sum_j w_j / (w_D + sum_j w_j);
- the number of phase events in the next t days is Negative Binomial
  NB(r+kx+j, (alpha+T)/(alpha+T+t)), and the n-th next order needs k n - j of them and the
  survival of n - 1 dropout chances, E[(1-p)^(n-1)] = B(a, b+x+n)/B(a, b+x+1); so
  E[orders in t | alive, j] = sum_m NB(m) C(floor((m+j)/k)), C(n) the sum of those n
  survival chances, summed until the Negative Binomial's mass left is below 1e-12
  (not BTYDplus's approximation of the conditional expectation and its bias correction);
- P(an order within d days | alive, j) = P(NB(r+kx+j, (alpha+T)/(alpha+T+d)) >= k-j):
  dropout only follows an order;
- the next order date: the median of the rest of the open gap, a mixture over j of the
  waits for k - j more phase events, solved per draw (regula falsi, to a hundredth of a
  day) for at most :data:`WAIT_DRAWS` evenly spaced draws;
- a new customer's expected repeat orders: sum_m NB(r, alpha/(alpha+t))(m) C0(floor(m/k)),
  with C0 the sum of E[(1-p)^n] = B(a, b+n)/B(a, b).

The native log density and gradient (:func:`logp_grad`) and these per-(draw, history)
quantities (:func:`_history`) are numba functions cached on disk like
:mod:`hubnb.clv.native`'s, whose priors and parametrisation (log r, alpha, a, b and the
Gamma-Gamma spend model's) they share.

Reference: Reutterer, Platzer and Schröder (2020), "Leveraging purchase regularity for
predicting customer behavior the easy way", International Journal of Research in
Marketing 38(1); Platzer's BTYDplus (R) for MLE.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytensor.tensor as pt
from numba import njit
from scipy.special import betaln, gammaln

from . import native
from .mbg_nbd import ModifiedBetaGeoModel

#: The grid of k that ``clv.model: auto`` and ``mbg_cnbd`` without a fixed k search.
K_GRID = (1, 2, 3, 4, 5, 6)
#: Negative Binomial mass left unsummed in the expectations.
TAIL_MASS = 1e-12
#: At most this many Negative Binomial terms per (draw, history).
MAX_TERMS = 200_000
#: The median wait to the next order is solved to this many days...
WAIT_TOLERANCE_DAYS = 0.01
#: ... for at most this many posterior draws (evenly spaced).
WAIT_DRAWS = 250


def model_name(k: int) -> str:
    """The purchase-model name of MBG/CNBD-k (``mbg_cnbd_k2``); k = 1 is ``mbg_nbd``."""
    return "mbg_nbd" if int(k) == 1 else f"mbg_cnbd_k{int(k)}"


def regularity_of(name: str) -> int:
    """k of a purchase model's name: 1 for the Poisson-timing models."""
    m = re.fullmatch(r"mbg_cnbd_k(\d+)", name)
    return int(m.group(1)) if m else 1


# ----------------------------------------------------------------------------- numpy


def customer_constant(k, x, litt):
    """log C_i = (k-1) litt - x log((k-1)!): the parameter-free part of the likelihood."""
    return (k - 1) * np.asarray(litt, dtype=float) - np.asarray(x, dtype=float) * gammaln(k)


def _terms(k, r, alpha, a, b, x, t_x, T):
    """The k + 1 log terms of the likelihood's bracket: dropped out, then alive with j
    phases of the open gap passed (j = 0..k-1); and the common factor."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    rk = r + k * x
    common = gammaln(rk) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x + 1) - betaln(a, b)
    dropped = np.log(a) - np.log(b + x) - rk * np.log(alpha + t_x)
    gap = T - t_x
    with np.errstate(divide="ignore"):
        log_gap = np.log(gap)
    alive = []
    for j in range(k):
        lj = gammaln(rk + j) - gammaln(rk) - gammaln(j + 1.0) - (rk + j) * np.log(alpha + T)
        alive.append(lj + (j * log_gap if j else 0.0) + np.zeros_like(gap))
    return common, dropped, np.stack(np.broadcast_arrays(*alive))


def loglik(k, r, alpha, a, b, x, t_x, T):
    """Each history's log-likelihood without the customer constant log C_i."""
    from scipy.special import logsumexp

    common, dropped, alive = _terms(k, r, alpha, a, b, x, t_x, T)
    return common + np.logaddexp(dropped, logsumexp(alive, axis=0))


def state_weights(k, r, alpha, a, b, x, t_x, T):
    """``(P(alive), P(j phases passed | alive) for j = 0..k-1)`` per draw and history."""
    from scipy.special import logsumexp, softmax

    _, dropped, alive = _terms(k, r, alpha, a, b, x, t_x, T)
    la = logsumexp(alive, axis=0)
    p_alive = np.exp(la - np.logaddexp(dropped, la))
    return p_alive, softmax(alive, axis=0)


# ----------------------------------------------------------------------------- native


@njit(cache=True, nogil=True)
def _row_terms(k, r, alpha, a, b, x, t_x, T, w, acc):
    """Add one weighted row's bracket log-sum-exp and its gradient to ``acc``
    (ll, d/dr, d/dalpha, d/da, d/db)."""
    rk = r + k * x
    la_tx = math.log(alpha + t_x)
    la_T = math.log(alpha + T)
    gap = T - t_x
    log_gap = math.log(gap) if gap > 0 else 0.0
    # dropped out right after the last order
    t_d = math.log(a) - math.log(b + x) - rk * la_tx
    m = t_d
    # alive terms: G_j + j log gap - (rk + j) log(alpha + T), G_j = log((rk)_j / j!)
    g = 0.0
    h = 0.0
    jmax = k if gap > 0 else 1
    for j in range(jmax):
        t_j = g + j * log_gap - (rk + j) * la_T
        if t_j > m:
            m = t_j
        g += math.log(rk + j) - math.log(j + 1.0)
    s = math.exp(t_d - m)
    e_d = s
    dr = e_d * (-la_tx)
    dal = e_d * (-rk / (alpha + t_x))
    g = 0.0
    h = 0.0
    for j in range(jmax):
        e_j = math.exp(g + j * log_gap - (rk + j) * la_T - m)
        s += e_j
        dr += e_j * (h - la_T)
        dal += e_j * (-(rk + j) / (alpha + T))
        g += math.log(rk + j) - math.log(j + 1.0)
        h += 1.0 / (rk + j)
    acc[0] += w * (m + math.log(s))
    acc[1] += w * dr / s
    acc[2] += w * dal / s
    acc[3] += w * (e_d / s) / a
    acc[4] -= w * (e_d / s) / (b + x)


@njit(cache=True, nogil=True)
def logp_grad(theta, grad, mu, sigma, k, x_uniq, x_count, n_customers, T0, w0, x1, tx1, T1, w1,
              gx_uniq, gx_count, n_spenders, gx, gz, gw, g_s1, g_s0):
    """Log density of MBG/CNBD-k + Gamma-Gamma at ``theta`` (log r, alpha, a, b, p, q - 1,
    v_scaled) over the weighted distinct rows, its gradient written into ``grad``."""
    lp = native.log_prior_grad(theta, grad, mu, sigma)
    r = math.exp(theta[0])
    alpha = math.exp(theta[1])
    a = math.exp(theta[2])
    b = math.exp(theta[3])
    p = math.exp(theta[4])
    qm1 = math.exp(theta[5])
    q = 1.0 + qm1
    v = math.exp(theta[6])
    ll = 0.0
    g_r = 0.0
    g_a = 0.0
    g_b = 0.0
    lg_r, lg_ab, lg_b = math.lgamma(r), math.lgamma(a + b), math.lgamma(b)
    dg_r, dg_ab, dg_b = native.digamma(r), native.digamma(a + b), native.digamma(b)
    for j in range(x_uniq.shape[0]):
        xx = x_uniq[j]
        c = x_count[j]
        dg_abx = native.digamma(a + b + xx + 1.0)
        ll += c * (math.lgamma(r + k * xx) - lg_r + math.lgamma(b + xx + 1.0)
                   - math.lgamma(a + b + xx + 1.0) + lg_ab - lg_b)
        g_r += c * (native.digamma(r + k * xx) - dg_r)
        g_a += c * (dg_ab - dg_abx)
        g_b += c * (native.digamma(b + xx + 1.0) - dg_abx + dg_ab - dg_b)
    log_alpha = math.log(alpha)
    ll += n_customers * r * log_alpha
    g_r += n_customers * log_alpha
    g_alpha = n_customers * r / alpha
    acc = np.zeros(5)
    for j in range(T0.shape[0]):
        _row_terms(k, r, alpha, a, b, 0.0, 0.0, T0[j], w0[j], acc)
    for j in range(x1.shape[0]):
        _row_terms(k, r, alpha, a, b, x1[j], tx1[j], T1[j], w1[j], acc)
    ll += acc[0]
    g_r += acc[1]
    g_alpha += acc[2]
    g_a += acc[3]
    g_b += acc[4]
    ll_gg, g_p, g_q, g_v = native.gamma_gamma_logp_grad(p, q, v, gx_uniq, gx_count, n_spenders,
                                                        gx, gz, gw, g_s1, g_s0)
    ll += ll_gg
    grad[0] += r * g_r
    grad[1] += alpha * g_alpha
    grad[2] += a * g_a
    grad[3] += b * g_b
    grad[4] += p * g_p
    grad[5] += qm1 * g_q
    grad[6] += v * g_v
    return lp + ll


@njit(cache=True, nogil=True)
def _row_loglik(k, r, alpha, a, b, x, t_x, T, out, start, stop):
    """:func:`loglik` per (draw i, row c), rows [start, stop): what PSIS-LOO scores."""
    acc = np.zeros(5)
    for i in range(r.shape[0]):
        ri, al, ai, bi = r[i], alpha[i], a[i], b[i]
        lg_r, lg_ab, lg_b = math.lgamma(ri), math.lgamma(ai + bi), math.lgamma(bi)
        l_al = math.log(al)
        for c in range(start, stop):
            xx = x[c]
            acc[0] = 0.0
            _row_terms(k, ri, al, ai, bi, xx, t_x[c], T[c], 1.0, acc)
            out[i, c] = (acc[0] + math.lgamma(ri + k * xx) - lg_r + ri * l_al
                         + math.lgamma(bi + xx + 1.0) - math.lgamma(ai + bi + xx + 1.0)
                         + lg_ab - lg_b)


def row_loglik(k, p, x, t_x, T) -> np.ndarray:
    """:func:`loglik` (draws x rows) by :func:`_row_loglik`, rows split over the run's
    cores."""
    from concurrent.futures import ThreadPoolExecutor

    from ..cores import cpu_budget

    warm_up()
    r, alpha, a, b = (_as_draws(p, name) for name in ("r", "alpha", "a", "b"))
    x, t_x, T = (np.ascontiguousarray(np.asarray(v, dtype=float).reshape(-1))
                 for v in (x, t_x, T))
    out = np.empty((len(r), len(x)))
    threads = max(1, min(cpu_budget(), len(x) // 2000 or 1))
    bounds = np.linspace(0, len(x), threads + 1).astype(int)

    def run(j):
        _row_loglik(int(k), r, alpha, a, b, x, t_x, T, out, bounds[j], bounds[j + 1])

    if threads == 1:
        run(0)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, range(threads)))
    return out


_ARGS = ("x_uniq", "x_count", "n_customers", "T0", "w0", "x1", "tx1", "T1", "w1",
         "gx_uniq", "gx_count", "n_spenders", "gx", "gz", "gw", "g_s1", "g_s0")


def make_logp(arrays: dict, k: int):
    """``logp(theta) -> (log density, gradient)`` of MBG/CNBD-k + Gamma-Gamma."""
    args = []
    for name in _ARGS:
        v = np.asarray(arrays[name], dtype=np.float64)
        args.append(float(v) if v.ndim == 0 else np.ascontiguousarray(v))
    mu, sigma, kk = native.PRIOR_MU, native.PRIOR_SIGMA, int(k)

    def logp(theta, **_shared):
        grad = np.empty(7)
        val = logp_grad(np.asarray(theta, dtype=np.float64), grad, mu, sigma, kk, *args)
        return val, grad

    return logp


@njit(cache=True, nogil=True)
def _nb_at_least(s, log_theta, log_1m, need):
    """P(NB(s, theta) >= need): one minus its first ``need`` terms."""
    if need <= 0:
        return 1.0
    lp = s * log_theta
    below = 0.0
    for m in range(need):
        below += math.exp(lp)
        lp += math.log((s + m) / (m + 1.0)) + log_1m
    return max(0.0, 1.0 - below)


@njit(cache=True, nogil=True)
def _expected_orders(s, log_theta, log_1m, j, k, c_ratio_b, a):
    """sum_m NB(m; s, theta) C(floor((m + j) / k)), C(n) = sum_{i=1}^n c_i, c_1 = 1,
    c_{i+1} = c_i (B + i) / (a + B + i) with B = ``c_ratio_b`` (b + x, or b - 1 for a new
    customer's E[(1-p)^n] = prod_{i<n} (b+i)/(a+b+i), shifted to the same recursion)."""
    lp = s * log_theta
    mean = s * math.exp(log_1m - log_theta)
    last = mean + 40.0 * math.sqrt(mean * math.exp(-log_theta)) + 50.0
    one_m = math.exp(log_1m)
    # the pmf by its recursion, in linear space where theta^s does not underflow, else in
    # log space (a customer with hundreds of orders)
    linear = lp > -600.0
    pm_ = math.exp(lp)
    total = 0.0
    mass = 0.0
    n_done = 0
    c = 1.0
    cum = 0.0
    for m in range(MAX_TERMS):
        n = (m + j) // k
        while n_done < n:
            n_done += 1
            cum += c
            c *= (c_ratio_b + n_done) / (a + c_ratio_b + n_done)
        total += pm_ * cum
        mass += pm_
        if m > mean and (1.0 - mass < TAIL_MASS or m > last):
            break
        if linear:
            pm_ *= (s + m) / (m + 1.0) * one_m
        else:
            lp += math.log((s + m) / (m + 1.0)) + log_1m
            pm_ = math.exp(lp)
    return total


@njit(cache=True, nogil=True)
def _wait_cdf(u, k, alpha_T, shapes, probs):
    """P(next order within u days | alive) for the phase mixture."""
    lt = math.log(alpha_T / (alpha_T + u))
    l1 = math.log(u / (alpha_T + u)) if u > 0 else -math.inf
    f = 0.0
    for j in range(k):
        if probs[j] > 0:
            f += probs[j] * _nb_at_least(shapes[j], lt, l1, k - j)
    return f


@njit(cache=True, nogil=True)
def _median_wait(k, alpha_T, rk, shapes, probs):
    """The median of the phase mixture's wait to the next order: the root of
    F(u) - 1/2 (F rises from 0 to 1), bracketed by doubling, then by the Illinois variant
    of regula falsi to :data:`WAIT_TOLERANCE_DAYS` (the report rounds to days)."""
    lo, f_lo = 0.0, -0.5
    hi = alpha_T / max(rk, 1e-3) * k + 1.0
    f_hi = _wait_cdf(hi, k, alpha_T, shapes, probs) - 0.5
    while f_hi < 0.0 and hi < 1e12:
        lo, f_lo = hi, f_hi
        hi *= 2.0
        f_hi = _wait_cdf(hi, k, alpha_T, shapes, probs) - 0.5
    side = 0
    for _ in range(200):
        if hi - lo <= max(WAIT_TOLERANCE_DAYS, 1e-9 * hi):
            break
        mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        if not lo < mid < hi:
            mid = 0.5 * (lo + hi)
        f_mid = _wait_cdf(mid, k, alpha_T, shapes, probs) - 0.5
        if f_mid == 0.0:
            return mid
        if f_mid < 0.0:
            lo, f_lo = mid, f_mid
            if side == -1:
                f_hi *= 0.5
            side = -1
        else:
            hi, f_hi = mid, f_mid
            if side == 1:
                f_lo *= 0.5
            side = 1
        # a step that lands within the tolerance of a bound: close the bracket around it
        if side == -1 and hi - lo > WAIT_TOLERANCE_DAYS:
            probe = min(lo + WAIT_TOLERANCE_DAYS, hi)
            f_probe = _wait_cdf(probe, k, alpha_T, shapes, probs) - 0.5
            if f_probe >= 0.0:
                hi, f_hi = probe, f_probe
        elif side == 1 and hi - lo > WAIT_TOLERANCE_DAYS:
            probe = max(hi - WAIT_TOLERANCE_DAYS, lo)
            f_probe = _wait_cdf(probe, k, alpha_T, shapes, probs) - 0.5
            if f_probe < 0.0:
                lo, f_lo = probe, f_probe
    return 0.5 * (lo + hi)


@njit(cache=True, nogil=True)
def _history(k, r, alpha, a, b, x, t_x, T, t, d, out_alive, out_exp, out_order, out_days,
             start, stop, full):
    """Per (draw i, history c) for c in [start, stop): P(alive), E[orders in (T, T+t]],
    with ``full`` >= 1 P(an order within d days), and with ``full`` 2 only the median wait
    to the next order given alive."""
    n_draws = r.shape[0]
    shapes = np.empty(k)
    logw = np.empty(k)
    probs = np.empty(k)
    for c in range(start, stop):
        xx, tx, TT = x[c], t_x[c], T[c]
        gap = TT - tx
        log_gap = math.log(gap) if gap > 0 else 0.0
        jmax = k if gap > 0 else 1
        for i in range(n_draws):
            ri, al, ai, bi = r[i], alpha[i], a[i], b[i]
            rk = ri + k * xx
            la_T = math.log(al + TT)
            t_d = math.log(ai) - math.log(bi + xx) - rk * math.log(al + tx)
            g = 0.0
            top = -math.inf
            for j in range(k):
                shapes[j] = rk + j
                if j < jmax:
                    logw[j] = g + j * log_gap - (rk + j) * la_T
                    if logw[j] > top:
                        top = logw[j]
                else:
                    logw[j] = -math.inf
                g += math.log(rk + j) - math.log(j + 1.0)
            tot = 0.0
            for j in range(k):
                probs[j] = math.exp(logw[j] - top)
                tot += probs[j]
            for j in range(k):
                probs[j] /= tot
            l_alive = top + math.log(tot)
            hi_ = max(l_alive, t_d)
            p_al = math.exp(l_alive - hi_) / (math.exp(l_alive - hi_) + math.exp(t_d - hi_))
            out_alive[i, c] = p_al
            if full == 2:
                out_days[i, c] = _median_wait(k, al + TT, rk, shapes, probs)
                continue
            lt = math.log((al + TT) / (al + TT + t))
            l1 = math.log(t / (al + TT + t))
            e = 0.0
            for j in range(jmax):
                if probs[j] > 0:
                    e += probs[j] * _expected_orders(shapes[j], lt, l1, j, k, bi + xx, ai)
            out_exp[i, c] = p_al * e
            if not full:
                continue
            ltd = math.log((al + TT) / (al + TT + d))
            l1d = math.log(d / (al + TT + d))
            po = 0.0
            for j in range(jmax):
                if probs[j] > 0:
                    po += probs[j] * _nb_at_least(shapes[j], ltd, l1d, k - j)
            out_order[i, c] = p_al * po


@njit(cache=True, nogil=True)
def _new_customer(k, r, alpha, a, b, t, out):
    """E[repeat orders in (0, t]] of a new customer per draw i and time j."""
    for i in range(r.shape[0]):
        for j in range(t.shape[0]):
            if t[j] <= 0:
                out[i, j] = 0.0
                continue
            lt = math.log(alpha[i] / (alpha[i] + t[j]))
            l1 = math.log(t[j] / (alpha[i] + t[j]))
            # n-th repeat order: k n phases and n survived chances, E[(1-p)^n] =
            # prod_{i<n} (b+i)/(a+b+i): C(n) with c_1 = b/(a+b), i.e. (b/(a+b)) times the
            # recursion from B = b
            out[i, j] = b[i] / (a[i] + b[i]) * _expected_orders(r[i], lt, l1, 0, k, b[i], a[i])


_WARM: dict = {}
_FUNCS = (_row_terms, logp_grad, _nb_at_least, _expected_orders, _wait_cdf, _median_wait,
          _history,
          _new_customer, _row_loglik)


def warm_up() -> dict:
    """Compile (or load from the disk cache) once per process."""
    def run():
        native.warm_up()
        tiny = {"x_uniq": np.array([0.0, 1.0]), "x_count": np.ones(2), "n_customers": 2.0,
                "T0": np.array([5.0]), "w0": np.ones(1), "x1": np.ones(1),
                "tx1": np.array([2.0]), "T1": np.array([5.0]), "w1": np.ones(1),
                "gx_uniq": np.ones(1), "gx_count": np.ones(1), "n_spenders": 1.0,
                "gx": np.ones(1), "gz": np.ones(1), "gw": np.ones(1), "g_s1": 0.0, "g_s0": 0.0}
        make_logp(tiny, 2)(np.zeros(7))
        one = np.ones(1)
        out = [np.zeros((1, 1)) for _ in range(4)]
        _history(2, one, one, one, one, one, one * 0.5, one, 3.0, 3.0, *out, 0, 1, 2)
        _new_customer(2, one, one, one, one, one, out[0])
        _row_loglik(2, one, one, one, one, one, one * 0.5, one, out[0], 0, 1)

    return native.warm_up_functions(run, _FUNCS, __file__, _WARM)


def _as_draws(p, name):
    return np.ascontiguousarray(np.asarray(p[name], dtype=float).reshape(-1))


# ----------------------------------------------------------------------------- model


class MBGCNBDModel(ModifiedBetaGeoModel):
    """MBG/CNBD-k, k fixed per class (:func:`model_for`); priors as MBG/NBD's."""

    name = "mbg_cnbd"
    label = "MBG/CNBD-k"
    k = 2
    holds_one_order_alive = False

    @classmethod
    def loglike(cls, v, d):
        """The likelihood above over weighted distinct rows, without log C_i."""
        k = cls.k
        r, alpha, a, b = v["r"], v["alpha"], v["a"], v["b"]
        xu = d["x_uniq"]
        per_x = (pt.gammaln(r + k * xu) - pt.gammaln(r) + pt.gammaln(b + xu + 1)
                 - pt.gammaln(a + b + xu + 1) + pt.gammaln(a + b) - pt.gammaln(b))
        ll = pt.sum(d["x_count"] * per_x) + d["n_customers"] * r * pt.log(alpha)
        x = pt.concatenate([pt.zeros_like(d["T0"]), d["x1"]])
        t_x = pt.concatenate([pt.zeros_like(d["T0"]), d["tx1"]])
        T = pt.concatenate([d["T0"], d["T1"]])
        w = pt.concatenate([d["w0"], d["w1"]])
        rk = r + k * x
        terms = [pt.log(a) - pt.log(b + x) - rk * pt.log(alpha + t_x)]
        log_gap = pt.log(pt.maximum(T - t_x, 1e-300))
        for j in range(k):
            g = pt.gammaln(rk + j) - pt.gammaln(rk) - math.lgamma(j + 1.0)
            terms.append(g + j * log_gap - (rk + j) * pt.log(alpha + T))
        return ll + pt.sum(w * pt.logsumexp(pt.stack(terms), axis=0))

    @classmethod
    def native(cls, arrays: dict):
        warm_up()
        return (make_logp(arrays, cls.k), native.PRIOR_MU, native.PRIOR_SIGMA, native.expand)

    @classmethod
    def compile_native(cls, arrays: dict):
        info = warm_up()
        return native.nutpie_model(make_logp(arrays, cls.k), native.STORED, native.PRIOR_MU,
                                   native.PRIOR_SIGMA), info

    @classmethod
    def loglik_rows(cls, p, x, t_x, T):
        return row_loglik(cls.k, p, x, t_x, T)

    @classmethod
    def customer_constant(cls, x, litt):
        return customer_constant(cls.k, x, litt)

    @classmethod
    def probability_alive(cls, p, x, t_x, T):
        return state_weights(cls.k, p["r"], p["alpha"], p["a"], p["b"], x, t_x, T)[0]

    @classmethod
    def per_history(cls, p, x, t_x, T, t, order_days) -> dict:
        warm_up()
        r, alpha, a, b = (_as_draws(p, k) for k in ("r", "alpha", "a", "b"))
        x, t_x, T = (np.ascontiguousarray(np.asarray(v, dtype=float).reshape(-1))
                     for v in (x, t_x, T))
        shape = (len(r), len(x))
        outs = [np.empty(shape) for _ in range(3)] + [np.empty((1, 1))]
        _history(cls.k, r, alpha, a, b, x, t_x, T, float(t), float(order_days), *outs, 0,
                 len(x), 1)
        # the median wait (a root per draw and history) on at most WAIT_DRAWS of the draws,
        # evenly spaced: its mean and interval come from those
        keep = np.unique(np.linspace(0, len(r) - 1, min(len(r), WAIT_DRAWS)).round()
                         .astype(int))
        days = np.empty((len(keep), len(x)))
        _history(cls.k, r[keep], alpha[keep], a[keep], b[keep], x, t_x, T, float(t),
                 float(order_days), np.empty((len(keep), len(x))), outs[3], outs[3], days, 0,
                 len(x), 2)
        return dict(zip(("p_alive", "expected", "p_order", "next_days"), outs[:3] + [days]))

    @classmethod
    def expected_orders(cls, p, x, t_x, T, t):
        warm_up()
        r, alpha, a, b = (_as_draws(p, k) for k in ("r", "alpha", "a", "b"))
        x, t_x, T = (np.ascontiguousarray(np.asarray(v, dtype=float).reshape(-1))
                     for v in (x, t_x, T))
        outs = [np.empty((len(r), len(x))) for _ in range(2)] + [np.empty((1, 1))] * 2
        _history(cls.k, r, alpha, a, b, x, t_x, T, float(t), 1.0, *outs, 0, len(x), 0)
        return outs[1]

    @classmethod
    def expected_purchases_new(cls, p, t):
        warm_up()
        r, alpha, a, b = (_as_draws(p, k) for k in ("r", "alpha", "a", "b"))
        t = np.ascontiguousarray(np.atleast_1d(np.asarray(t, dtype=float)))
        out = np.empty((len(r), len(t)))
        _new_customer(cls.k, r, alpha, a, b, t, out)
        return out

    @classmethod
    def expected_purchases_alive(cls, p, x, T, t):
        raise NotImplementedError("MBG/CNBD-k's expectation depends on t_x: per_history")

    @classmethod
    def p_order_alive(cls, p, x, T, t):
        raise NotImplementedError("MBG/CNBD-k's chance of an order depends on t_x: "
                                  "per_history")

    @classmethod
    def next_order_days(cls, p, x, t_x, T):
        return cls.per_history(p, x, t_x, T, 1.0, 1.0)["next_days"]

    @classmethod
    def simulate_purchases_alive(cls, p, x, t_x, T, t, rng):
        """Orders in (T, T+t] of one alive customer per (draw, row): j phases passed drawn
        from its posterior given alive, lambda ~ Gamma(r+kx+j, alpha+T), p ~ Beta(a,
        b+x+1); Poisson(lambda t) phase events make floor((events + j) / k) orders, cut at
        the first dropout (a Geometric(p) number of orders, the dropout order included)."""
        k = cls.k
        _, probs = state_weights(k, p["r"], p["alpha"], p["a"], p["b"], x, t_x, T)
        shape = probs.shape[1:]
        u = rng.random(shape)
        j = (np.cumsum(probs, axis=0) < u[None]).sum(axis=0)
        j = np.minimum(j, k - 1)
        lam = rng.gamma(p["r"] + k * np.asarray(x, float) + j, 1.0 / (p["alpha"] + T),
                        size=shape)
        drop = rng.beta(np.broadcast_to(p["a"], shape), p["b"] + np.asarray(x, float) + 1.0,
                        size=shape)
        events = rng.poisson(lam * t)
        orders = (events + j) // k
        return np.minimum(orders, rng.geometric(np.clip(drop, 1e-12, 1.0)))


def model_for(name: str):
    """The purchase model class of ``mbg_cnbd_k<K>`` (K >= 2), or None."""
    k = regularity_of(name)
    if k < 2 or name != model_name(k):
        return None
    return type(f"MBGCNBD{k}Model", (MBGCNBDModel,),
                {"k": k, "name": name, "label": f"MBG/CNBD-{k}", "__module__": __name__})
