"""MBG/NBD closed forms, the next-order median and the 30-day order probability, each
against a reference worked out here independently of hubnb.clv.formulas: numerical
integration of the individual-level model, simulation of the individual-level process,
the MBG/NBD pmf, adaptive quadrature, and the published CDNOW maximum-likelihood fits."""

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, log1p

from hubnb.clv import formulas as F
from hubnb.clv import bg_nbd, mbg_nbd, pareto_nbd
from hubnb.clv.orders import counted_orders, rfm_summary
from hubnb.datasets import load_cdnow
from hubnb.params import OrderFilter

# time in days; a < 1 (infinite mean of 1/p) and a > 1
MBG = {"r": 0.6, "alpha": 25.0, "a": 0.8, "b": 2.5}
MBG2 = {"r": 1.3, "alpha": 40.0, "a": 2.2, "b": 3.5}
PARETO = {"r": 0.6, "alpha": 25.0, "s": 0.7, "beta": 40.0}
# (x, t_x, T), one-order customers included
ROWS = [(0, 0, 30), (0, 0, 300), (1, 20, 100), (3, 250, 260), (5, 40, 300), (12, 290, 300),
        (30, 100, 400)]


def _z(got, want, se):
    """Distance in standard errors."""
    return abs(got - want) / se


# ---- the likelihood by numerical integration of the individual-level model


def _gamma_integral(power, decay):
    """int_0^inf lam^(power-1) e^(-decay lam) dlam by quadrature: lam^(power-1) as quad's
    algebraic weight up to the mean, plain quad beyond."""
    m = power / decay
    head = quad(lambda lam: np.exp(-decay * lam), 0, m, weight="alg", wvar=(power - 1, 0),
                epsabs=0, epsrel=1e-12, limit=200)[0]
    tail = quad(lambda lam: np.exp((power - 1) * np.log(lam) - decay * lam), m, np.inf,
                epsabs=0, epsrel=1e-12, limit=200)[0]
    return head + tail


def _gamma_mean(shape, rate, x, t):
    """E[lam^x e^(-lam t)] over lam ~ Gamma(shape, rate), normaliser by quadrature too."""
    return _gamma_integral(shape + x, rate + t) / _gamma_integral(shape, rate)


def _beta_mean(a, b, fn):
    """E[fn(p)] over p ~ Beta(a, b), by quadrature with the Beta kernel as weight."""
    num = quad(fn, 0, 1, weight="alg", wvar=(a - 1, b - 1), epsabs=0, epsrel=1e-12)[0]
    den = quad(lambda p: 1.0, 0, 1, weight="alg", wvar=(a - 1, b - 1), epsabs=0, epsrel=1e-12)[0]
    return num / den


def _mbg_terms(r, alpha, a, b, x, t_x, T):
    """The individual-level MBG/NBD likelihood of (x, t_x, T) given (lam, p) is
    lam^x e^{-lam T} (1-p)^(x+1)  [survived time 0 and the x repeat purchases, alive at T]
    + lam^x e^{-lam t_x} p (1-p)^x  [dropped out right after the last purchase: at time 0
    when x = 0], mixed here over lam ~ Gamma(r, alpha) and p ~ Beta(a, b)."""
    alive = (_gamma_mean(r, alpha, x, T)
             * _beta_mean(a, b, lambda p: (1 - p) ** (x + 1)))
    dropped = (_gamma_mean(r, alpha, x, t_x)
               * _beta_mean(a, b, lambda p: p * (1 - p) ** x))
    return alive, dropped


@pytest.mark.parametrize("params", [MBG, MBG2])
def test_likelihood_and_p_alive_are_the_integrated_individual_model(params):
    for x, t_x, T in ROWS:
        alive, dropped = _mbg_terms(**params, x=x, t_x=t_x, T=T)
        assert mbg_nbd.loglik(**params, x=x, t_x=t_x, T=T) == pytest.approx(
            np.log(alive + dropped), abs=1e-9), (x, t_x, T)
        # Bayes: P(alive) is the alive term's share of the likelihood
        assert mbg_nbd.p_alive(**params, x=x, t_x=t_x, T=T) == pytest.approx(
            alive / (alive + dropped), rel=1e-9), (x, t_x, T)


def test_p_alive_falls_with_silence_for_one_order_and_repeat_customers():
    silence = np.arange(0.0, 3000.0, 5.0)
    for params in (MBG, MBG2):
        for x, t_x in [(0, 0.0), (1, 30.0), (4, 200.0), (20, 500.0)]:
            p = mbg_nbd.p_alive(**params, x=x, t_x=t_x, T=t_x + silence)
            assert np.all(np.diff(p) < 0) and 0 < p[-1] < p[0] < 1, (params, x)
    # a one-order customer seen today: alive iff it survived time 0, P = b/(a+b)
    assert mbg_nbd.p_alive(**MBG, x=0, t_x=0, T=0) == pytest.approx(2.5 / 3.3, rel=1e-12)


# ---- CDNOW: the published maximum-likelihood fits


def _cdnow_weeks(exclude_zero_value):
    """Calibration RFM of the CDNOW 1/10 sample as tests/test_clv_models.py builds it, in
    weeks. The literature keeps the 8 customers whose only purchase was worth $0; hubnb's
    default order filter leaves them out."""
    tx = load_cdnow("sample")
    orders = pd.DataFrame({
        "order_id": np.arange(len(tx)), "profile_id": tx["customer_id"],
        "placed_at": (tx["date"] + pd.Timedelta(hours=12)).dt.tz_localize("UTC"),
        "value": tx["dollar_value"]})
    counted = counted_orders(orders, None, OrderFilter(exclude_zero_value=exclude_zero_value),
                             dt.date(1997, 9, 30), "UTC", 1500)
    rfm = rfm_summary(counted, dt.date(1997, 9, 30))
    return (rfm["frequency"].to_numpy(float), rfm["recency"].to_numpy(float) / 7,
            rfm["T"].to_numpy(float) / 7)


def _mle(loglik, x, t_x, T):
    def nll(theta):
        return -np.sum(loglik(*np.exp(theta), x, t_x, T))
    res = minimize(nll, np.log([0.5, 5.0, 1.0, 2.0]), method="Nelder-Mead",
                   options={"maxiter": 20000, "xatol": 1e-9, "fatol": 1e-9})
    assert res.success
    return np.exp(res.x), -res.fun


def test_cdnow_fits_reproduce_the_published_mbgnbd_and_bgnbd_estimates():
    """39-week calibration, weeks. BDF07's MBG/NBD: r 0.525, alpha 6.183, a 0.891, b 1.614,
    LL -9582.1; FHL05's BG/NBD: r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4.
    Measured: MBG/NBD 0.5248, 6.1831, 0.8914, 1.6140, -9582.14; BG/NBD 0.2426, 4.4136,
    0.7929, 2.4259, -9582.43. The tolerances are the papers' rounding."""
    x, t_x, T = _cdnow_weeks(exclude_zero_value=False)
    assert len(x) == 2357 and x.sum() == 2457           # FHL05's 2,357 customers, 2,457 repeats
    mbg, ll_mbg = _mle(mbg_nbd.loglik, x, t_x, T)
    bg, ll_bg = _mle(bg_nbd.loglik, x, t_x, T)
    np.testing.assert_allclose(mbg, [0.525, 6.183, 0.891, 1.614], rtol=2e-3)
    np.testing.assert_allclose(bg, [0.243, 4.414, 0.793, 2.426], rtol=2e-3)
    assert ll_mbg == pytest.approx(-9582.1, abs=0.1)
    assert ll_bg == pytest.approx(-9582.4, abs=0.1)
    # hubnb's default filter drops the 8 $0 one-order customers (2,349 left): the fit moves
    # by under 1% (measured 0.527, 6.197, 0.895, 1.627) and the log-likelihood loses their
    # terms, about -0.5 each (measured -9577.98)
    x0, t_x0, T0 = _cdnow_weeks(exclude_zero_value=True)
    assert len(x0) == 2349 and x0.sum() == 2457
    mbg0, ll_mbg0 = _mle(mbg_nbd.loglik, x0, t_x0, T0)
    np.testing.assert_allclose(mbg0, mbg, rtol=1e-2)
    assert 8 * 0.4 < ll_mbg0 - ll_mbg < 8 * 0.6


# ---- simulation of the individual-level MBG/NBD process


def simulate_mbg(r, alpha, a, b, n, T, cuts, rng):
    """n customers acquired at time 0, lam ~ Gamma(r, alpha), p ~ Beta(a, b); each purchase,
    the first (time 0) included, is followed by dropout with probability p; while alive,
    purchases come at rate lam. Returns repeat purchases in (0, c] for each c of cuts, and
    x, t_x and alive-at-T for the calibration period (0, T]."""
    lam, p = rng.gamma(r, 1.0 / alpha, n), rng.beta(a, b, n)
    counts = np.zeros((len(cuts), n))
    x, t_x = np.zeros(n), np.zeros(n)
    alive_T = rng.random(n) >= p                       # survived the first purchase
    idx = np.flatnonzero(alive_T)
    clock = np.zeros(idx.size)
    end = max(max(cuts), T)
    while idx.size:
        clock = clock + rng.exponential(1.0 / lam[idx])
        keep = clock <= end
        idx, clock = idx[keep], clock[keep]
        for j, c in enumerate(cuts):
            counts[j, idx] += clock <= c
        cal = clock <= T
        x[idx[cal]] += 1
        t_x[idx[cal]] = clock[cal]
        stays = rng.random(idx.size) >= p[idx]
        alive_T[idx[cal & ~stays]] = False
        idx, clock = idx[stays], clock[stays]
    return counts, x, t_x, alive_T


T_CAL, WINDOW, NEW_T = 180.0, 90.0, (30.0, 180.0, 720.0)


@pytest.fixture(scope="module", params=[MBG, MBG2], ids=["a<1", "a>1"])
def sim(request):
    rng = np.random.default_rng(20070301)
    cuts = sorted(set(NEW_T) | {T_CAL, T_CAL + WINDOW})
    counts, x, t_x, alive = simulate_mbg(**request.param, n=200_000, T=T_CAL, cuts=cuts,
                                         rng=rng)
    return request.param, dict(zip(cuts, counts)), x, t_x, alive


def test_new_customer_expectation_matches_simulation_and_its_prefactor_is_b_over_a_minus_1(sim):
    params, counts, *_ = sim
    a, b = params["a"], params["b"]
    for t in NEW_T:
        c = counts[t]
        se = c.std() / np.sqrt(c.size)
        closed = mbg_nbd.expected_purchases_new(**params, t=t)
        assert _z(c.mean(), closed, se) < 4, (t, c.mean(), closed)
        # BG/NBD's eq. (9) with b + 1 for b, i.e. prefactor (a+b)/(a-1) instead of b/(a-1):
        # too large by (a+b)/b, far outside the simulation's error
        assert _z(c.mean(), closed * (a + b) / b, se) > 20, t


def _mbg_pmf_mean(r, alpha, a, b, t, n_max=20_000):
    """E[X(t)] = sum_i i P(X(t) = i), with the MBG/NBD pmf from the individual-level model
    (as BTYDplus's mbgcnbd.pmf with k = 1): X(t) = i either alive at t after i purchases,
    B(a, b+i+1)/B(a, b) NBD(i), or dropped out right after the i-th purchase (at time 0 for
    i = 0) made by t, B(a+1, b+i)/B(a, b) P(NBD >= i)."""
    i = np.arange(n_max + 1, dtype=float)
    log_nbd = (gammaln(r + i) - gammaln(r) - gammaln(i + 1) + r * np.log(alpha / (alpha + t))
               + i * np.log(t / (alpha + t)))
    nbd = np.exp(log_nbd)
    at_least = 1.0 - np.concatenate([[0.0], np.cumsum(nbd)[:-1]])     # P(NBD >= i)
    at_least = np.maximum(at_least, 0.0)
    pmf = (np.exp(betaln(a, b + i + 1) - betaln(a, b)) * nbd
           + np.exp(betaln(a + 1, b + i) - betaln(a, b)) * at_least)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    return np.sum(i * pmf)


@pytest.mark.parametrize("params", [MBG, MBG2])
def test_new_customer_expectation_is_the_mean_of_the_pmf(params):
    for t in (1.0, 30.0, 365.0, 3000.0):
        assert mbg_nbd.expected_purchases_new(**params, t=t) == pytest.approx(
            _mbg_pmf_mean(**params, t=t), rel=1e-9), t


def test_conditional_p_alive_and_expectations_match_simulated_histories(sim):
    """Among simulated customers with x repeat purchases by T: the share alive at T is the
    mean of P(alive | x, t_x, T) over their t_x, their purchases in (T, T+t] the mean of
    E[X | x, t_x, T], and those alive at T buy E[X | x, T, alive] on average (given alive
    the posterior does not depend on t_x); the share of them buying in the window is
    P(order | alive)."""
    params, counts, x, t_x, alive = sim
    future = counts[T_CAL + WINDOW] - counts[T_CAL]
    for k in (0, 1, 3):
        m = x == k
        assert m.sum() > 3000
        pa = mbg_nbd.p_alive(**params, x=k, t_x=t_x[m], T=T_CAL)
        d = alive[m] - pa
        assert _z(d.mean(), 0.0, d.std() / np.sqrt(d.size)) < 4, k
        e = mbg_nbd.expected_purchases(**params, x=k, t_x=t_x[m], T=T_CAL, t=WINDOW)
        d = future[m] - e
        assert _z(d.mean(), 0.0, d.std() / np.sqrt(d.size)) < 4, k
        ma = m & alive
        f = future[ma]
        e_alive = mbg_nbd.expected_purchases_alive(**params, x=k, T=T_CAL, t=WINDOW)
        assert _z(f.mean(), e_alive, f.std() / np.sqrt(f.size)) < 4, k
        p_order = bg_nbd.p_order_alive(params["r"], params["alpha"], k, T_CAL, WINDOW)
        bought = f > 0
        assert _z(bought.mean(), p_order, np.sqrt(p_order * (1 - p_order) / f.size)) < 4, k


# ---- next order date and the 30-day order probability


def test_next_order_median_is_the_median_of_simulated_waits():
    rng = np.random.default_rng(8)
    n = 400_000
    for r, alpha in [(0.6, 25.0), (0.05, 3.0)]:
        for x, T in [(0, 0.0), (0, 300.0), (1, 20.0), (3, 120.0), (25, 400.0)]:
            # lam | alive ~ Gamma(r + x, rate alpha + T), wait ~ Exponential(lam)
            lam = rng.gamma(r + x, 1.0 / (alpha + T), n)
            waits = rng.exponential(1.0 / lam)
            median = F.next_order_median_days(r, alpha, x, T)
            # half of the waits fall below it (binomial error 0.5/sqrt(n))
            assert _z(np.mean(waits <= median), 0.5, 0.5 / np.sqrt(n)) < 4, (r, x, T)
            # and the sample median is within its error 1/(2 f(m) sqrt(n)) of it, f the
            # density of the wait: (r+x)/(alpha+T) (1 + m/(alpha+T))^-(r+x+1)
            f_m = (r + x) / (alpha + T) * (1 + median / (alpha + T)) ** -(r + x + 1)
            assert _z(np.median(waits), median, 1 / (2 * f_m * np.sqrt(n))) < 4, (r, x, T)


def test_p_order_given_alive_matches_simulation():
    rng = np.random.default_rng(9)
    n, t = 400_000, 30.0
    pareto_sharp = {"r": 2.0, "alpha": 3.0, "s": 1.5, "beta": 6.0}    # scales below t at T = 0
    for x, T in [(0, 0.0), (0, 10.0), (2, 200.0), (8, 60.0)]:
        # BG/NBD and MBG/NBD: dropout only right after a purchase, so an order comes iff the
        # first wait is below t
        lam = rng.gamma(MBG["r"] + x, 1.0 / (MBG["alpha"] + T), n)
        sim = np.mean(rng.exponential(1.0 / lam) < t)
        got = bg_nbd.p_order_alive(MBG["r"], MBG["alpha"], x, T, t)
        assert _z(sim, got, np.sqrt(got * (1 - got) / n)) < 4, (x, T)
        # Pareto/NBD: the first purchase must also come before death
        for p in (PARETO, pareto_sharp):
            lam = rng.gamma(p["r"] + x, 1.0 / (p["alpha"] + T), n)
            mu = rng.gamma(p["s"], 1.0 / (p["beta"] + T), n)
            wait, life = rng.exponential(1.0 / lam), rng.exponential(1.0 / mu)
            sim = np.mean(wait < np.minimum(t, life))
            got = pareto_nbd.p_order_alive(*p.values(), x, T, t)
            assert _z(sim, got, np.sqrt(got * (1 - got) / n)) < 4, (p, x, T)


def _p_order_quad(r, alpha, s, beta, x, T, t):
    aT, bT, k = alpha + T, beta + T, r + x

    def f(w):
        return k / aT * np.exp(-(k + 1) * log1p(w / aT) - s * log1p(w / bT))
    # break points at the integrand's scales, so adaptive quadrature sees them
    pts = sorted({p for p in (aT / (k + 1), bT / (s + 1), aT, bT) if 0 < p < t}) or None
    return quad(f, 0, t, epsabs=0, epsrel=1e-13, limit=1000, points=pts)[0]


def test_pareto_p_order_quadrature_equals_adaptive_integration():
    rng = np.random.default_rng(10)
    cases = [(0.6, 25.0, 0.7, 40.0, 0, 0.0, 30.0), (4.3, 1.0, 0.1, 1009.0, 0, 0.0, 30.0),
             (0.08, 1.7, 0.7, 2.8, 100, 57.0, 30.0), (0.3, 1.4, 0.09, 1932.0, 100, 62.0, 30.0)]
    for _ in range(300):
        r, s = np.exp(rng.uniform(np.log(0.05), np.log(5), 2))
        alpha, beta = np.exp(rng.uniform(np.log(1.0), np.log(1e4), 2))
        x = int(rng.choice([0, 0, 0, 1, 2, 5, 20, 100]))
        T = float(rng.choice([0, 1, 7, 30, 365, 3000])) if x == 0 else rng.uniform(x / 2 + 1, 3000)
        cases.append((r, alpha, s, beta, x, T, float(rng.choice([1.0, 7.0, 30.0, 90.0]))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # no overflow or division warnings
        for case in cases:
            assert pareto_nbd.p_order_alive(*case) == pytest.approx(_p_order_quad(*case),
                                                                     rel=1e-8), case
    assert pareto_nbd.p_order_alive(*PARETO.values(), 3, 50.0, 0.0) == 0.0


def test_draws_by_rows_broadcasting():
    rng = np.random.default_rng(11)
    d = {k: v * rng.uniform(0.8, 1.25, (5, 1)) for k, v in {**MBG2, "s": 0.7, "beta": 40.0}.items()}
    x = np.array([0, 0, 1, 4, 30.0])
    t_x = np.array([0, 0, 10, 200, 380.0])
    T = np.array([0, 90, 30, 365, 400.0])
    mbg, bg_rate = (d["r"], d["alpha"], d["a"], d["b"]), (d["r"], d["alpha"])
    pareto = (d["r"], d["alpha"], d["s"], d["beta"])
    outputs = {
        "loglik": (mbg_nbd.loglik, mbg, (x, t_x, T)),
        "p_alive": (mbg_nbd.p_alive, mbg, (x, t_x, T)),
        "e_alive": (mbg_nbd.expected_purchases_alive, mbg, (x, T, 60.0)),
        "e": (mbg_nbd.expected_purchases, mbg, (x, t_x, T, 60.0)),
        "median": (F.next_order_median_days, bg_rate, (x, T)),
        "p_order": (bg_nbd.p_order_alive, bg_rate, (x, T, 30.0)),
        "p_order_pareto": (pareto_nbd.p_order_alive, pareto, (x, T, 30.0)),
    }
    for name, (fn, params, data) in outputs.items():
        got = fn(*params, *data)
        assert got.shape == (5, 5), name
        for i in range(5):
            for j in range(5):
                one = fn(*(p[i, 0] for p in params), *(v[j] if np.ndim(v) else v for v in data))
                assert got[i, j] == pytest.approx(float(one), rel=1e-12), (name, i, j)
    assert mbg_nbd.expected_purchases_new(*mbg, np.array([30.0, 90.0])).shape == (5, 2)
