"""BG/NBD + Gamma-Gamma log-density and gradient written by hand in numba, cached on disk.

The joint model of :func:`hubnb.clv.models.build_model` with ``BetaGeoModel`` (the same
priors, the same compressed likelihoods, the same unconstrained parametrisation: the log of
r, alpha, a, b, p, q - 1 and v_scaled), as one fused loop over the compressed rows that
returns the log density and its gradient. Tested against the PyMC model's compiled logp and
gradient (``tests/test_clv_formulas.py``).

Why: nutpie's compilation of the PyMC model (pytensor -> numba ``cfunc``) takes ~9 s and
cannot be cached across processes (the cfunc embeds the data pointers), so every notebook
kernel paid it. These functions are plain ``@njit(cache=True, nogil=True)`` functions: the
first process compiles them (~2 s) and writes numba's cache; later processes load it.

The cache lives in ``$HUBNB_CACHE_DIR/numba`` (default ``~/.cache/hubnb/numba``). Numba keys
each entry by the function, its signature, the CPU and numba's version; the source stamp is
a hash of this file's contents (not its mtime), so any edit invalidates the entries. An
entry that cannot be loaded (corrupt file) is discarded and the functions are compiled again
without the cache (:func:`warm_up`). Gradients are ~2x faster than the pytensor graph's
(one pass over the rows, shared logs).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path

import numpy as np
from numba import njit
from numba.core.caching import CacheImpl, NullCache, _CacheLocator

from .histories import prior_keys

#: Names and order of the unconstrained parameters (nutpie's flat vector).
UNCONSTRAINED = ("r_log__", "alpha_log__", "a_log__", "b_log__", "p_log__",
                 "q_minus_1_log__", "v_scaled_log__")
#: Names of the values stored per draw (``expand``).
STORED = ("r", "alpha", "a", "b", "p", "q_minus_1", "q", "v_scaled")


def cache_dir() -> Path:
    """``$HUBNB_CACHE_DIR`` or ``~/.cache/hubnb`` (created on demand)."""
    root = os.environ.get("HUBNB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hubnb")
    return Path(root)


_THIS_FILE = os.path.abspath(__file__)
_CLV_DIR = os.path.dirname(_THIS_FILE)
_SOURCE_HASHES: dict = {}


def _source_hash(py_file: str) -> str:
    """SHA-256 of a module's contents and of this module's (numba's default stamp is the
    file's mtime, and it would not see a change of a function called from another module:
    the other native models call this module's digamma and Gamma-Gamma functions)."""
    if py_file not in _SOURCE_HASHES:
        digest = hashlib.sha256()
        for path in dict.fromkeys((py_file, _THIS_FILE)):
            with open(path, "rb") as fh:
                digest.update(fh.read())
        _SOURCE_HASHES[py_file] = digest.hexdigest()
    return _SOURCE_HASHES[py_file]


class _HubnbCacheLocator(_CacheLocator):
    """Numba cache locator for the modules of :mod:`hubnb.clv` (this one and the other
    native models): entries in :func:`cache_dir` / numba, stamped with the hash of the
    module's contents."""

    def __init__(self, py_func, py_file):
        self._py_file = os.path.abspath(py_file)
        self._lineno = py_func.__code__.co_firstlineno
        self._path = cache_dir() / "numba"

    def ensure_cache_path(self):
        self._path.mkdir(parents=True, exist_ok=True)
        # numba's own check that the directory is writable
        import tempfile
        tempfile.TemporaryFile(dir=self._path).close()

    def get_cache_path(self):
        return str(self._path)

    def get_source_stamp(self):
        return _source_hash(self._py_file)

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != _CLV_DIR:
            return None
        return cls(py_func, py_file)


if _HubnbCacheLocator not in CacheImpl._locator_classes:
    CacheImpl._locator_classes.insert(0, _HubnbCacheLocator)


def drop_cache_entries(module_file: str) -> None:
    """Delete the disk-cache entries of one module's functions (an unreadable entry)."""
    for f in (cache_dir() / "numba").glob(f"{Path(module_file).stem}.*"):
        f.unlink(missing_ok=True)

# ----------------------------------------------------------------------------- priors

# (mu, sigma) of the Normal prior of each unconstrained parameter: the LogNormal priors of
# hubnb.clv.models (BetaGeoModel.priors, GammaGammaModel.priors) on the log scale, where
# the log-transform's Jacobian turns a LogNormal density into a Normal one.
PRIOR_MU = np.array([np.log(0.5), np.log(100.0), 0.0, np.log(2.0), np.log(2.0), np.log(2.0),
                     0.0])
PRIOR_SIGMA = np.array([1.5, 2.0, 1.5, 1.5, 1.5, 1.5, 2.0])


def prior_of(arrays: dict, model: str, mu=PRIOR_MU, sigma=PRIOR_SIGMA):
    """``(mu, sigma)`` of the Normal prior of ``model``'s seven unconstrained coordinates:
    the arrays' own (:func:`prior_keys`) when they carry one, else ``mu`` and ``sigma``."""
    k_mu, k_sigma = prior_keys(model)
    if k_mu not in arrays:
        return mu, sigma
    return (np.ascontiguousarray(arrays[k_mu], dtype=np.float64),
            np.ascontiguousarray(arrays[k_sigma], dtype=np.float64))


@njit(cache=True, nogil=True)
def digamma(x):
    """psi(x) for x > 0: recurrence up to x >= 6, then the asymptotic series (error < 1e-13)."""
    res = 0.0
    while x < 6.0:
        res -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))))
    return res + math.log(x) - 0.5 / x - series


@njit(cache=True, nogil=True)
def log_prior_grad(theta, grad, mu, sigma):
    """The Normal(mu, sigma) log density of the unconstrained parameters (the LogNormal
    priors with the log transform's Jacobian), its gradient written into ``grad``."""
    lp = 0.0
    for i in range(theta.shape[0]):
        d = (theta[i] - mu[i]) / sigma[i]
        lp += -0.5 * d * d - math.log(sigma[i]) - 0.5 * math.log(2.0 * math.pi)
        grad[i] = -d / sigma[i]
    return lp


@njit(cache=True, nogil=True)
def gamma_gamma_logp_grad(p, q, v, gx_uniq, gx_count, n_spenders, gx, gz, gw, g_s1, g_s0):
    """The Gamma-Gamma log-likelihood (FH13) over weighted distinct (x, z_bar) rows, and its
    derivatives in p, q and v: ``(ll, d/dp, d/dq, d/dv)``. Shared by every native model."""
    ll = 0.0
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
    return ll, g_p, g_q, g_v


@njit(cache=True, nogil=True)
def logp_grad(theta, grad, mu, sigma, x_uniq, x_count, n_customers, T0, w0, x1, tx1, T1, w1,
              gx_uniq, gx_count, n_spenders, gx, gz, gw, g_s1, g_s0, idx_T0, idx_x1, idx_tx1,
              idx_T1, n_days, n_x, mbg):
    """Log density at ``theta`` (unconstrained), its gradient written into ``grad``.

    ``mbg`` 0 is BG/NBD (FHL05 eq. 6: dropout after each repeat purchase); 1 is MBG/NBD
    (Batislam et al. 2007: dropout also right after the first purchase), whose likelihood
    is BG/NBD's with b + x + 1 for b + x in the Beta terms and the "dropped out at t_x"
    term present for x = 0 as well:

        Gamma(r+x) alpha^r / Gamma(r) B(a, b+x+1)/B(a, b)
            [(alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x)].

    ``idx_*`` are the days (T, t_x) and repeat counts (x) as integers when they all are
    (``n_days`` > 0, ``n_x`` > 0): log(alpha + day), 1 / (alpha + day) and log(b + x - 1)
    are then tabulated once per call instead of computed per row.
    """
    lp = log_prior_grad(theta, grad, mu, sigma)
    # the log transform's Jacobian is inside the Normal densities of the prior
    r = math.exp(theta[0])
    alpha = math.exp(theta[1])
    a = math.exp(theta[2])
    b = math.exp(theta[3])
    p = math.exp(theta[4])
    qm1 = math.exp(theta[5])
    q = 1.0 + qm1
    v = math.exp(theta[6])

    # ---- BG/NBD, FHL05 eq. (6) over weighted distinct rows
    g_r = 0.0
    g_alpha = 0.0
    g_a = 0.0
    g_b = 0.0
    ll = 0.0
    k = float(mbg)  # MBG/NBD: one more chance to drop out (b + x + k)
    lg_r, lg_ab, lg_b = math.lgamma(r), math.lgamma(a + b), math.lgamma(b)
    dg_r, dg_ab, dg_b = digamma(r), digamma(a + b), digamma(b)
    for j in range(x_uniq.shape[0]):
        xx = x_uniq[j]
        c = x_count[j]
        dg_abx = digamma(a + b + xx + k)
        ll += c * (math.lgamma(r + xx) - lg_r + math.lgamma(b + xx + k)
                   - math.lgamma(a + b + xx + k) + lg_ab - lg_b)
        g_r += c * (digamma(r + xx) - dg_r)
        g_a += c * (dg_ab - dg_abx)
        g_b += c * (digamma(b + xx + k) - dg_abx + dg_ab - dg_b)
    log_alpha = math.log(alpha)
    ll += n_customers * r * log_alpha
    g_r += n_customers * log_alpha
    g_alpha += n_customers * r / alpha
    tabulated = n_days > 0 and n_x > 0
    log_at = np.empty(max(n_days, 1))
    inv_at = np.empty(max(n_days, 1))
    log_bx = np.empty(max(n_x, 1))
    inv_bx = np.empty(max(n_x, 1))
    if tabulated:
        for i in range(n_days):
            log_at[i] = math.log(alpha + i)
            inv_at[i] = 1.0 / (alpha + i)
        for i in range(1, n_x):
            log_bx[i] = math.log(b + i - 1.0 + k)
            inv_bx[i] = 1.0 / (b + i - 1.0 + k)
    s_w0 = 0.0
    s_w0_log = 0.0
    s_w0_inv = 0.0
    for j in range(T0.shape[0]):
        if tabulated:
            l_T = log_at[idx_T0[j]]
            i_T = inv_at[idx_T0[j]]
        else:
            l_T = math.log(alpha + T0[j])
            i_T = 1.0 / (alpha + T0[j])
        s_w0 += w0[j]
        s_w0_log += w0[j] * l_T
        s_w0_inv += w0[j] * i_T
    log_a = math.log(a)
    inv_a = 1.0 / a
    if mbg:
        # x = 0 rows: logaddexp(-r log(alpha+T), log a - log b - r log alpha)
        w = log_a - math.log(b) - r * log_alpha
        for j in range(T0.shape[0]):
            if tabulated:
                l_T = log_at[idx_T0[j]]
                i_T = inv_at[idx_T0[j]]
            else:
                l_T = math.log(alpha + T0[j])
                i_T = 1.0 / (alpha + T0[j])
            u = -r * l_T
            m = max(u, w)
            e = math.exp(-abs(u - w))
            pw = (1.0 if w >= u else e) / (1.0 + e)
            pu = 1.0 - pw
            ww = w0[j]
            ll += ww * (m + math.log(1.0 + e))
            g_r -= ww * (pu * l_T + pw * log_alpha)
            g_alpha -= ww * r * (pu * i_T + pw / alpha)
            g_a += ww * pw * inv_a
            g_b -= ww * pw / b
    else:
        ll -= r * s_w0_log
        g_r -= s_w0_log
        g_alpha -= r * s_w0_inv
    for j in range(x1.shape[0]):
        xx = x1[j]
        rx = r + xx
        if tabulated:
            l_T = log_at[idx_T1[j]]
            l_tx = log_at[idx_tx1[j]]
            i_T = inv_at[idx_T1[j]]
            i_tx = inv_at[idx_tx1[j]]
            l_bx = log_bx[idx_x1[j]]
            i_bx = inv_bx[idx_x1[j]]
        else:
            l_T = math.log(alpha + T1[j])
            l_tx = math.log(alpha + tx1[j])
            i_T = 1.0 / (alpha + T1[j])
            i_tx = 1.0 / (alpha + tx1[j])
            l_bx = math.log(b + xx - 1.0 + k)
            i_bx = 1.0 / (b + xx - 1.0 + k)
        u = -rx * l_T
        w = log_a - l_bx - rx * l_tx
        # logaddexp(u, w) and the weight of its second term, pw = exp(w - logaddexp),
        # branch-free (the branch is unpredictable)
        m = max(u, w)
        e = math.exp(-abs(u - w))
        lse = m + math.log(1.0 + e)  # e in (0, 1]: as exact as log1p here
        pw = (1.0 if w >= u else e) / (1.0 + e)
        pu = 1.0 - pw
        ww = w1[j]
        ll += ww * lse
        g_r -= ww * (pu * l_T + pw * l_tx)
        g_alpha -= ww * rx * (pu * i_T + pw * i_tx)
        g_a += ww * pw * inv_a
        g_b -= ww * pw * i_bx
    # ---- Gamma-Gamma, FH13 over weighted distinct (x, z_bar)
    ll_gg, g_p, g_q, g_v = gamma_gamma_logp_grad(p, q, v, gx_uniq, gx_count, n_spenders, gx,
                                                 gz, gw, g_s1, g_s0)
    ll += ll_gg

    # chain rule to the unconstrained scale: d/d log(y) = y d/dy
    grad[0] += r * g_r
    grad[1] += alpha * g_alpha
    grad[2] += a * g_a
    grad[3] += b * g_b
    grad[4] += p * g_p
    grad[5] += qm1 * g_q
    grad[6] += v * g_v
    return lp + ll


_ARGS = ("x_uniq", "x_count", "n_customers", "T0", "w0", "x1", "tx1", "T1", "w1",
         "gx_uniq", "gx_count", "n_spenders", "gx", "gz", "gw", "g_s1", "g_s0")
#: Tables of log(alpha + day) are used up to this many days / repeat transactions.
MAX_TABLE = 1_000_000


def _as_index(*arrays):
    """The arrays as int64 when every value is a whole number in [0, MAX_TABLE), with the
    table size; otherwise zero-length indices and size 0 (per-row logs)."""
    whole = all(np.all((v >= 0) & (v < MAX_TABLE) & (v == np.floor(v))) for v in arrays)
    if not whole:
        return [np.zeros(0, np.int64) for _ in arrays], 0
    size = int(max((v.max() for v in arrays if v.size), default=0)) + 1
    return [v.astype(np.int64) for v in arrays], size


def _data_args(arrays: dict) -> tuple:
    out = []
    for k in _ARGS:
        v = np.asarray(arrays[k], dtype=np.float64)
        out.append(float(v) if v.ndim == 0 else np.ascontiguousarray(v))
    a = dict(zip(_ARGS, out))
    (i_T0, i_tx1, i_T1), n_days = _as_index(a["T0"], a["tx1"], a["T1"])
    (i_x1,), n_x = _as_index(a["x1"])
    if n_days == 0 or n_x == 0:
        n_days = n_x = 0
    return tuple(out) + (i_T0, i_x1, i_tx1, i_T1, n_days, n_x)


#: The purchase models of this module: the value of ``logp_grad``'s ``mbg`` flag.
MODELS = {"bg_nbd": 0, "mbg_nbd": 1}


def make_logp(arrays: dict, model: str = "bg_nbd"):
    """``logp(theta) -> (log density, gradient)`` on a compressed data set's arrays, for
    ``model`` ``bg_nbd`` or ``mbg_nbd`` (+ Gamma-Gamma)."""
    args = _data_args(arrays) + (MODELS[model],)
    mu, sigma = prior_of(arrays, model)

    def logp(theta, **_shared):
        grad = np.empty(7)
        val = logp_grad(np.asarray(theta, dtype=np.float64), grad, mu, sigma, *args)
        return val, grad

    return logp


def expand(theta, stored=STORED) -> dict:
    """The stored values of a draw (the PyMC model's free variables and q), named by
    ``stored``: the four purchase parameters, p, q - 1, q, v_scaled."""
    e = np.exp(np.asarray(theta, dtype=np.float64))
    vals = (e[0], e[1], e[2], e[3], e[4], e[5], 1.0 + e[5], e[6])
    return {k: np.array(v) for k, v in zip(stored, vals)}


def warm_up_functions(run, funcs, module_file: str, state: dict) -> dict:
    """Compile (or load from the disk cache) a native model's numba ``funcs`` once per
    process by calling ``run()``; ``state`` is the module's record of the first call.

    Returns ``{"seconds", "cache_hit", "first_in_process"}`` of the first call of the
    process (later calls return the same with 0 seconds). An unreadable cache entry is
    dropped and the functions compiled again; if that fails too (e.g. a read-only cache),
    they are compiled without a disk cache.
    """
    if state:
        return dict(state, seconds=0.0, first_in_process=False)
    t0 = time.perf_counter()
    try:
        run()
    except Exception:  # an unreadable cache entry: drop this module's entries, compile again
        drop_cache_entries(module_file)
        try:
            run()
        except Exception:  # still failing: no disk cache at all
            for f in funcs:
                f._cache = NullCache()
            run()
    hits = sum(sum(f.stats.cache_hits.values()) for f in funcs)
    misses = sum(sum(f.stats.cache_misses.values()) for f in funcs)
    state.update(seconds=time.perf_counter() - t0, cache_hit=hits > 0 and misses == 0,
                 first_in_process=True)
    return dict(state)


_WARM: dict = {}
_FUNCS = (digamma, log_prior_grad, gamma_gamma_logp_grad, logp_grad)


def warm_up() -> dict:
    """Compile (or load from the disk cache) once per process (:func:`warm_up_functions`)."""
    def run():
        tiny = {k: np.ones(1) for k in _ARGS}
        tiny.update(n_customers=1.0, n_spenders=1.0, g_s1=0.0, g_s0=0.0)
        make_logp(tiny)(np.zeros(7))
        tiny["T1"] = np.array([0.5])  # the per-row (untabulated) branch: same function
        make_logp(tiny)(np.zeros(7))

    return warm_up_functions(run, _FUNCS, _THIS_FILE, _WARM)


def nutpie_model(logp, stored, prior_mu, prior_sigma):
    """A nutpie model sampling ``logp`` (unconstrained theta -> log density, gradient),
    storing :func:`expand`'s values named ``stored``, started as PyMC starts: the
    LogNormal priors' support points exp(mu + sigma^2 / 2), jittered by U(-1, 1) on the log
    scale."""
    from nutpie.compiled_pyfunc import from_pyfunc

    n = len(prior_mu)

    def make_logp_fn():
        return logp

    def make_expand_fn(seed1, seed2, chain):
        def fn(theta, **_shared):
            return expand(theta, stored)
        return fn

    def initial_point(seed):
        rng = np.random.default_rng(seed)
        return prior_mu + 0.5 * prior_sigma ** 2 + rng.uniform(-1.0, 1.0, n)

    return from_pyfunc(n, make_logp_fn, make_expand_fn, [np.dtype("float64")] * len(stored),
                       [()] * len(stored), list(stored), make_initial_point_fn=initial_point)


def compile_model(arrays: dict, model: str = "bg_nbd"):
    """A nutpie model of the joint BG/NBD (or MBG/NBD) + Gamma-Gamma posterior on ``arrays``,
    with :func:`warm_up`'s info."""
    info = warm_up()
    return nutpie_model(make_logp(arrays, model), STORED, *prior_of(arrays, model)), info


# ----------------------------------------------------------------------------- predictions


@njit(cache=True, nogil=True)
def _select(buf, lo, hi, k):
    """Rearrange buf[lo:hi] so buf[k] is its k-th smallest, smaller ones before it and larger
    ones after (Hoare's quickselect, median-of-three pivots)."""
    hi -= 1
    while hi > lo:
        mid = (lo + hi) // 2
        # median of three to buf[mid]
        if buf[mid] < buf[lo]:
            buf[mid], buf[lo] = buf[lo], buf[mid]
        if buf[hi] < buf[lo]:
            buf[hi], buf[lo] = buf[lo], buf[hi]
        if buf[hi] < buf[mid]:
            buf[hi], buf[mid] = buf[mid], buf[hi]
        pivot = buf[mid]
        i, j = lo, hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@njit(cache=True, nogil=True)
def _min_from(buf, start):
    m = buf[start]
    for i in range(start + 1, buf.shape[0]):
        if buf[i] < m:
            m = buf[i]
    return m


@njit(cache=True, nogil=True)
def _lerp(a, b, t):
    # numpy's quantile interpolation (numpy.lib._function_base_impl._lerp)
    d = b - a
    return b - d * (1.0 - t) if t >= 0.5 else a + d * t


@njit(cache=True, nogil=True)
def column_stats(values, q_lo, q_hi, linear, mean, lower, upper, start, stop):
    """Mean and the q_lo / q_hi quantiles of each column ``start:stop`` of ``values``
    (draws x columns), as ``numpy.quantile``'s ``linear`` method (``linear`` true) or its
    ``inverted_cdf`` method; NaN for a column holding a NaN (like numpy)."""
    n = values.shape[0]
    B = 16  # columns gathered together: row-wise reads of a C-ordered (draws, keys) array
    block = np.empty((B, n))
    for c0 in range(start, stop, B):
        nb = min(B, stop - c0)
        for i in range(n):
            for b in range(nb):
                block[b, i] = values[i, c0 + b]
        for b in range(nb):
            _column_stats(block[b], q_lo, q_hi, linear, mean, lower, upper, c0 + b)


@njit(cache=True, nogil=True)
def _column_stats(buf, q_lo, q_hi, linear, mean, lower, upper, c):
    n = buf.shape[0]
    if True:
        s = 0.0
        nan = False
        for i in range(n):
            v = buf[i]
            if v != v:
                nan = True
                break
            s += v
        if nan:
            mean[c] = np.nan
            lower[c] = np.nan
            upper[c] = np.nan
            return
        mean[c] = s / n
        if linear:
            h_lo = (n - 1) * q_lo
            h_hi = (n - 1) * q_hi
            k_lo = min(int(math.floor(h_lo)), n - 1)
            k_hi = min(int(math.floor(h_hi)), n - 1)
            _select(buf, 0, n, k_lo)
            a_lo = buf[k_lo]
            b_lo = _min_from(buf, k_lo + 1) if k_lo + 1 < n else a_lo
            if k_hi > k_lo:
                _select(buf, k_lo + 1, n, k_hi)
            a_hi = buf[k_hi]
            b_hi = _min_from(buf, k_hi + 1) if k_hi + 1 < n else a_hi
            lower[c] = _lerp(a_lo, b_lo, h_lo - k_lo)
            upper[c] = _lerp(a_hi, b_hi, h_hi - k_hi)
        else:
            ks = [0, 0]
            for j, q in enumerate((q_lo, q_hi)):
                g = n * q
                f = math.floor(g)
                k = int(f) if g - f > 0 else int(f) - 1
                ks[j] = min(max(k, 0), n - 1)
            _select(buf, 0, n, ks[0])
            lower[c] = buf[ks[0]]
            if ks[1] > ks[0]:
                _select(buf, ks[0] + 1, n, ks[1])
            upper[c] = buf[ks[1]]
