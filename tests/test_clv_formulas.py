"""Closed forms against independent references; the compressed likelihood against one row
per profile; the purchase simulator against the closed-form mean."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import gammaln, hyp2f1

from hubnb.clv import formulas as F
from hubnb.clv import bg_nbd, mbg_nbd, pareto_nbd
from hubnb.clv.histories import compress, uncompressed
from hubnb.clv.models import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel, build_model
from hubnb.clv.predict import predict

BG = {"r": 0.6, "alpha": 25.0, "a": 0.8, "b": 2.5}
PARETO = {"r": 0.6, "alpha": 25.0, "s": 0.7, "beta": 40.0}
PARETO_B = {"r": 0.6, "alpha": 60.0, "s": 0.7, "beta": 40.0}    # the alpha >= beta branch
GG = {"p": 5.0, "q": 3.0, "v": 20.0}
# (x, t_x, T, mean spend)
CUSTOMERS = np.array([(0, 0, 30), (0, 0, 300), (1, 20, 100), (3, 250, 260), (5, 40, 300),
                      (12, 290, 300)], dtype=float)
SPEND = np.array([0.0, 0.0, 18.0, 25.0, 9.5, 60.0])
HORIZON = 90.0


def rfm_frame(rows=CUSTOMERS, spend=SPEND):
    return pd.DataFrame({"frequency": rows[:, 0].astype(int), "recency": rows[:, 1].astype(int),
                         "T": rows[:, 2].astype(int), "monetary_value": spend},
                        index=pd.Index(range(len(rows)), name="profile_id"))


def degenerate(params, n=4):
    return {k: np.full(n, v) for k, v in params.items()}


# ---- references written from the papers, independently of hubnb.clv.formulas

def ref_bgnbd_p_alive(r, alpha, a, b, x, t_x, T):
    odds = np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
    return 1 / (1 + odds)


def ref_bgnbd_expected(r, alpha, a, b, x, t_x, T, t):
    """FHL05 eq. (10)."""
    num = (a + b + x - 1) / (a - 1) * (
        1 - ((alpha + T) / (alpha + T + t)) ** (r + x)
        * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t)))
    den = 1 + np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
    return num / den


LOG_LAM = np.linspace(-45, 4, 3000)


def _gamma_weights(shape, rate, log_grid):
    # density of exp(u) times the Jacobian exp(u), normalised on the grid
    w = np.exp(shape * log_grid - rate * np.exp(log_grid) + shape * np.log(rate) - gammaln(shape))
    return w / w.sum()


def ref_pareto_by_integration(r, alpha, s, beta, x, t_x, T, t):
    """P(alive) and E[X(T, T+t)] integrating the individual-level model over lambda and mu."""
    lam = np.exp(LOG_LAM)[:, None]
    mu = np.exp(LOG_LAM)[None, :]
    g = _gamma_weights(r, alpha, LOG_LAM)[:, None] * _gamma_weights(s, beta, np.log(mu[0]))[None, :]
    alive = lam ** x * np.exp(-(lam + mu) * T)
    dead = lam ** x * mu / (lam + mu) * (np.exp(-(lam + mu) * t_x) - np.exp(-(lam + mu) * T))
    total = np.sum(g * (alive + dead))
    p_alive = np.sum(g * alive) / total
    expected = np.sum(g * alive * lam / mu * (1 - np.exp(-mu * t))) / total
    return p_alive, expected


def ref_bgnbd_loglik_by_integration(r, alpha, a, b, x, t_x, T):
    lam = np.exp(LOG_LAM)[:, None]
    # p on a logit grid: Beta(a < 1, b) piles its mass near 0
    u = np.linspace(-60, 30, 6000)
    p = (1 / (1 + np.exp(-u)))[None, :]
    wp = np.exp(a * np.log(p) + b * np.log1p(-p) - (gammaln(a) + gammaln(b) - gammaln(a + b)))
    g = _gamma_weights(r, alpha, LOG_LAM)[:, None] * wp * (u[1] - u[0])
    lik = (1 - p) ** x * lam ** x * np.exp(-lam * T)
    if x > 0:
        lik = lik + p * (1 - p) ** (x - 1) * lam ** x * np.exp(-lam * t_x)
    return np.log(np.sum(g * lik))


def ref_gamma_gamma_loglik_by_integration(p, q, v, x, z):
    # z_bar | nu ~ Gamma(p x, rate x nu); nu ~ Gamma(q, rate v)
    log_nu = np.linspace(-12, 6, 20000)
    w = _gamma_weights(q, v, log_nu)
    dens = stats.gamma.pdf(z, p * x, scale=1 / (x * np.exp(log_nu)))
    return np.log(np.sum(w * dens))


# ---- tests

def test_bgnbd_likelihood_matches_integrating_the_individual_model():
    for x, t_x, T in CUSTOMERS[:5]:
        got = bg_nbd.loglik(**BG, x=x, t_x=t_x, T=T)
        assert got == pytest.approx(ref_bgnbd_loglik_by_integration(**BG, x=x, t_x=t_x, T=T),
                                    abs=2e-3)


@pytest.mark.parametrize("params", [PARETO, PARETO_B])
def test_pareto_closed_forms_match_integration(params):
    for x, t_x, T in CUSTOMERS[:5]:
        p_alive, expected = ref_pareto_by_integration(**params, x=x, t_x=t_x, T=T, t=HORIZON)
        assert pareto_nbd.p_alive(**params, x=x, t_x=t_x, T=T) == pytest.approx(p_alive, rel=2e-3)
        assert pareto_nbd.expected_purchases(**params, x=x, t_x=t_x, T=T, t=HORIZON) == \
            pytest.approx(expected, rel=2e-3)


def test_gamma_gamma_likelihood_matches_integration():
    for x, z in [(1, 18.0), (3, 25.0), (12, 60.0)]:
        assert F.gamma_gamma_loglik(**GG, x=x, mean_spend=z) == pytest.approx(
            ref_gamma_gamma_loglik_by_integration(**GG, x=x, z=z), abs=1e-4)


def test_bgnbd_predictions_at_fixed_parameters_are_the_published_formulas():
    pred = predict({**degenerate(BG), **degenerate(GG)}, rfm_frame(), HORIZON,
                   model_name="bg_nbd").profiles
    x, t_x, T = CUSTOMERS.T
    expected = ref_bgnbd_expected(**BG, x=x, t_x=t_x, T=T, t=HORIZON)
    p_alive = ref_bgnbd_p_alive(**BG, x=x, t_x=t_x, T=T)
    np.testing.assert_allclose(pred["predicted_orders_mean"], expected, rtol=1e-10)
    np.testing.assert_allclose(pred["predicted_orders_lower"], expected, rtol=1e-10)
    np.testing.assert_allclose(pred["churn_probability_mean"], 1 - p_alive, atol=1e-12)
    # FH13: a weighted average of the population mean and the customer's own mean spend
    p, q, v = GG["p"], GG["q"], GG["v"]
    pop = p * v / (q - 1)
    own_weight = p * x / (p * x + q - 1)
    aov = np.where(SPEND > 0, (1 - own_weight) * pop + own_weight * SPEND, pop)
    np.testing.assert_allclose(pred["aov_mean"], aov, rtol=1e-12)
    np.testing.assert_allclose(pred["predicted_clv_mean"], aov * expected, rtol=1e-10)
    # median wait to the next order given alive: the Lomax median, solved by hand from
    # P(W > w) = ((alpha+T)/(alpha+T+w))^(r+x) = 1/2, for every profile (x = 0 too)
    wait = (BG["alpha"] + T) * (0.5 ** (-1 / (BG["r"] + x)) - 1)
    np.testing.assert_allclose(pred["days_to_next_order_mean"], wait, rtol=1e-12)
    # P(order within 30 days) = P(alive) (1 - ((alpha+T)/(alpha+T+30))^(r+x))
    p30 = p_alive * (1 - ((BG["alpha"] + T) / (BG["alpha"] + T + 30)) ** (BG["r"] + x))
    np.testing.assert_allclose(pred["p_order_30d_mean"], p30, rtol=1e-10)


def test_pareto_predictions_at_fixed_parameters_are_the_published_formulas():
    pred = predict({**degenerate(PARETO), **degenerate(GG)}, rfm_frame(), HORIZON,
                   model_name="pareto_nbd").profiles
    for i, (x, t_x, T) in enumerate(CUSTOMERS[:5]):
        p_alive, expected = ref_pareto_by_integration(**PARETO, x=x, t_x=t_x, T=T, t=HORIZON)
        assert pred["predicted_orders_mean"].iloc[i] == pytest.approx(expected, rel=2e-3)
        assert pred["churn_probability_mean"].iloc[i] == pytest.approx(1 - p_alive, abs=2e-3)


@pytest.mark.parametrize("model,params", [(BetaGeoModel, BG), (ModifiedBetaGeoModel, BG),
                                          (ParetoNBDModel, PARETO)])
def test_simulated_purchases_average_to_the_closed_form(model, params):
    rng = np.random.default_rng(3)
    n = 200_000
    p = {k: np.full((n, 1), v) for k, v in params.items()}
    for x, t_x, T in [(0, 0, 100), (2, 150, 200), (6, 50, 300)]:
        xs, Ts = np.array([x], float), np.array([T], float)
        alive = rng.random((n, 1)) < model.probability_alive(params, x, t_x, T)
        sims = np.where(alive, model.simulate_purchases_alive(
            p, xs, np.array([t_x], float), Ts, HORIZON, rng), 0)
        closed = (model.expected_purchases_alive(params, x, T, HORIZON)
                  * model.probability_alive(params, x, t_x, T))
        se = sims.std() / np.sqrt(n)
        assert abs(sims.mean() - closed) < 4 * se + 1e-9


def test_totals_mean_is_the_sum_of_closed_form_expectations():
    rfm = rfm_frame()
    pred = predict({**degenerate(BG, 400), **degenerate(GG, 400)}, rfm, HORIZON,
                   model_name="bg_nbd", seed=5)
    x, t_x, T = CUSTOMERS.T
    closed = ref_bgnbd_expected(**BG, x=x, t_x=t_x, T=T, t=HORIZON).sum()
    np.testing.assert_allclose(pred.total_draws["expected_orders"], closed, rtol=1e-10)
    draws = pred.total_draws["predicted_orders"]
    # purchase randomness widens the predictive interval even with no parameter uncertainty
    assert pred.totals["predicted_orders"]["upper"] > closed > pred.totals["predicted_orders"]["lower"]
    assert abs(draws.mean() - closed) < 4 * draws.std() / np.sqrt(len(draws)) + 0.05 * closed


def _random_rfm(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 120, n)
    x = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 6, n))
    tx = np.where(x > 0, (rng.random(n) * T).astype(int), 0)
    z = np.where(x > 0, np.round(rng.gamma(4, 5, n), 1), 0.0)
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T, "monetary_value": z})


def test_compressed_likelihood_equals_one_row_per_profile():
    rfm = _random_rfm()
    comp, full = compress(rfm), uncompressed(rfm)
    assert comp.purchase_rows < full.purchase_rows / 2
    points = [{"r": 0.3, "alpha": 10.0, "a": 0.7, "b": 3.0, "s": 0.5, "beta": 30.0,
               "p": 4.0, "q": 2.5, "v": 0.6},
              {"r": 1.7, "alpha": 80.0, "a": 2.5, "b": 0.6, "s": 1.4, "beta": 9.0,
               "p": 1.2, "q": 7.0, "v": 3.0}]
    x, tx, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    spender = x > 0
    z = rfm["monetary_value"].to_numpy()[spender] / comp.spend_scale
    for model_cls, loglik in [(BetaGeoModel, bg_nbd.loglik), (ModifiedBetaGeoModel, mbg_nbd.loglik),
                              (ParetoNBDModel, pareto_nbd.loglik)]:
        fns = {}
        for label, data in (("compressed", comp), ("full", full)):
            m = build_model(model_cls, data)
            outs = m.replace_rvs_by_values([m["purchase_loglike"], m["spend_loglike"]])
            fns[label] = m.compile_fn(outs, inputs=m.value_vars)
            names = {v.name for v in m.value_vars}
        for pt in points:
            point = {f"{k}_log__": np.log(v) for k, v in pt.items()}
            point["q_minus_1_log__"] = np.log(pt["q"] - 1)
            point["v_scaled_log__"] = np.log(pt["v"])
            point = {k: v for k, v in point.items() if k in names}
            got = fns["compressed"](point)
            ref = fns["full"](point)
            np.testing.assert_allclose(got, ref, rtol=1e-9)
            args = [pt[n] for n in model_cls.param_names]
            per_profile = loglik(*args, x, tx, T).sum()
            assert got[0] == pytest.approx(per_profile, rel=1e-9)
            gg = F.gamma_gamma_loglik(pt["p"], pt["q"], pt["v"], x[spender], z).sum()
            assert got[1] == pytest.approx(gg, rel=1e-9)


def test_column_stats_kernel_equals_numpy_quantile():
    """The numba kernel behind the prediction intervals gives numpy.quantile's values."""
    from hubnb.clv.native import column_stats

    rng = np.random.default_rng(0)
    for draws, cols in ((1000, 50), (250, 40), (1, 3), (2, 5), (7, 9)):
        values = rng.standard_normal((draws, cols))
        values[:, 1] = 1.0
        values[:, 2] = np.nan
        counts = rng.poisson(2, (draws, cols)).astype(float)
        for lo, hi in ((0.05, 0.95), ((1 - 0.9) / 2, 1 - (1 - 0.9) / 2), (0.0, 1.0)):
            m, l, u = (np.empty(cols) for _ in range(3))
            column_stats(values, lo, hi, True, m, l, u, 0, cols)
            with np.errstate(invalid="ignore"):
                ref = np.quantile(values, [lo, hi], axis=0)
            np.testing.assert_allclose(m, values.mean(axis=0), rtol=1e-12, equal_nan=True)
            np.testing.assert_array_equal(l, ref[0])
            np.testing.assert_array_equal(u, ref[1])
            column_stats(counts, lo, hi, False, m, l, u, 0, cols)
            ref = np.quantile(counts, [lo, hi], axis=0, method="inverted_cdf")
            np.testing.assert_array_equal(l, ref[0])
            np.testing.assert_array_equal(u, ref[1])


# ---- MBG/NBD (Batislam et al. 2007), next order date, p_order_30d


def ref_mbgnbd_loglik_by_integration(r, alpha, a, b, x, t_x, T):
    """The individual-level MBG/NBD likelihood mixed over lambda and p on grids: alive at T
    after surviving x + 1 dropout chances, or dropped out right after the last purchase."""
    lam = np.exp(LOG_LAM)[:, None]
    u = np.linspace(-60, 30, 6000)
    p = (1 / (1 + np.exp(-u)))[None, :]
    wp = np.exp(a * np.log(p) + b * np.log1p(-p) - (gammaln(a) + gammaln(b) - gammaln(a + b)))
    g = _gamma_weights(r, alpha, LOG_LAM)[:, None] * wp * (u[1] - u[0])
    lik = ((1 - p) ** (x + 1) * lam ** x * np.exp(-lam * T)
           + p * (1 - p) ** x * lam ** x * np.exp(-lam * t_x))
    return np.log(np.sum(g * lik))


def test_mbgnbd_likelihood_matches_integrating_the_individual_model():
    for x, t_x, T in CUSTOMERS:
        got = mbg_nbd.loglik(**BG, x=x, t_x=t_x, T=T)
        ref = ref_mbgnbd_loglik_by_integration(**BG, x=x, t_x=t_x, T=T)
        assert got == pytest.approx(ref, abs=2e-3), (x, t_x, T)


def _weeks_rfm():
    from test_clv_models import _cdnow_sample_rfm

    rfm = _cdnow_sample_rfm()
    return (rfm["frequency"].to_numpy(float), rfm["recency"].to_numpy(float) / 7,
            rfm["T"].to_numpy(float) / 7)


def _mle(loglik, x, tx, T):
    from scipy.optimize import minimize

    res = minimize(lambda th: -np.sum(loglik(*np.exp(th), x, tx, T)), np.log([0.5, 5, 1, 2]),
                   method="Nelder-Mead", options={"maxiter": 20000, "xatol": 1e-9, "fatol": 1e-9})
    return np.exp(res.x), -res.fun


def test_mbgnbd_and_bgnbd_maximum_likelihood_on_cdnow_reproduce_the_published_fits():
    """CDNOW 1/10 sample, 39-week calibration, time in weeks. MBG/NBD: r 0.525, alpha 6.183,
    a 0.891, b 1.614, LL -9582.1; BG/NBD (FHL05): r 0.243, alpha 4.414, a 0.793, b 2.426,
    LL -9582.4. hubnb's days are whole local days and zero-value purchases are left out, so
    the data differ slightly from the papers' (weeks with fractions)."""
    x, tx, T = _weeks_rfm()
    mbg, ll_mbg = _mle(mbg_nbd.loglik, x, tx, T)
    bg, ll_bg = _mle(bg_nbd.loglik, x, tx, T)
    # measured: MBG/NBD 0.527, 6.197, 0.895, 1.627, LL -9578.0; BG/NBD 0.244, 4.422, 0.793,
    # 2.423, LL -9578.2
    np.testing.assert_allclose(mbg, [0.525, 6.183, 0.891, 1.614], rtol=0.015)
    np.testing.assert_allclose(bg, [0.243, 4.414, 0.793, 2.426], rtol=0.015)
    assert ll_mbg == pytest.approx(-9582.1, abs=6)
    assert ll_bg == pytest.approx(-9582.4, abs=6)
    # the two models fit this sample about equally well, as published (0.3 apart)
    assert abs(ll_mbg - ll_bg) < 2


@pytest.mark.parametrize("p_alive,params", [(mbg_nbd.p_alive, BG),
                                            (pareto_nbd.p_alive, PARETO)])
def test_churn_rises_with_silence_one_order_customers_included(p_alive, params):
    T = np.arange(0.0, 2000.0, 7.0)
    for x, t_x in [(0, 0.0), (1, 0.0), (4, 0.0)]:
        churn = 1 - p_alive(**params, x=x, t_x=t_x, T=T + t_x)
        assert churn[0] >= 0 and np.all(np.diff(churn) > 0), x
    # MBG/NBD's one-order customer, by hand: odds a/b ((alpha+T)/alpha)^r at T = 100
    r, alpha, a, b = BG.values()
    odds = a / b * ((alpha + 100) / alpha) ** r
    assert mbg_nbd.p_alive(**BG, x=0, t_x=0, T=100) == pytest.approx(1 / (1 + odds))
    # BG/NBD holds them alive whatever the silence
    assert bg_nbd.p_alive(**BG, x=0, t_x=0, T=T).min() == 1.0


def _simulate_mbg_new(r, alpha, a, b, t_values, n, rng):
    """Repeat purchases in (0, t] of n new MBG/NBD customers: dropout right after each
    purchase (the first at time 0 included) with probability p."""
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    counts = np.zeros((len(t_values), n))
    alive = rng.random(n) >= p          # survived the first purchase
    clock = np.zeros(n)
    while alive.any():
        clock = clock + rng.exponential(1 / lam)
        for i, t in enumerate(t_values):
            counts[i] += alive & (clock <= t)
        alive &= (clock <= max(t_values)) & (rng.random(n) >= p)
    return counts


def test_mbgnbd_expected_purchases_of_a_new_customer_match_simulation():
    rng = np.random.default_rng(5)
    t_values = [30.0, 180.0, 720.0]
    sims = _simulate_mbg_new(**BG, t_values=t_values, n=200_000, rng=rng)
    for i, t in enumerate(t_values):
        se = sims[i].std() / np.sqrt(sims.shape[1])
        assert abs(sims[i].mean() - mbg_nbd.expected_purchases_new(**BG, t=t)) < 4 * se


def test_next_order_median_is_the_median_of_simulated_waits():
    rng = np.random.default_rng(6)
    for x, T in [(0, 0.0), (0, 300.0), (3, 120.0), (12, 40.0)]:
        lam = rng.gamma(BG["r"] + x, 1 / (BG["alpha"] + T), 400_000)
        waits = rng.exponential(1 / lam)
        closed = F.next_order_median_days(BG["r"], BG["alpha"], x, T)
        # half the simulated waits fall below it (binomial sd 0.0008); the heavy Lomax tail
        # makes the sample median itself noisier, hence its looser check
        assert np.mean(waits <= closed) == pytest.approx(0.5, abs=0.003), (x, T)
        assert np.median(waits) == pytest.approx(closed, rel=0.03), (x, T)


def test_p_order_within_30_days_given_alive_matches_simulation():
    rng = np.random.default_rng(7)
    n, t = 400_000, 30.0
    for x, T in [(0, 10.0), (2, 200.0), (8, 60.0)]:
        # BG/NBD and MBG/NBD: dropout only after a purchase, so an order comes iff W < t
        lam = rng.gamma(BG["r"] + x, 1 / (BG["alpha"] + T), n)
        sim = np.mean(rng.exponential(1 / lam) < t)
        assert bg_nbd.p_order_alive(BG["r"], BG["alpha"], x, T, t) == pytest.approx(sim, abs=0.004)
        # Pareto/NBD: the order must also come before death
        lam = rng.gamma(PARETO["r"] + x, 1 / (PARETO["alpha"] + T), n)
        mu = rng.gamma(PARETO["s"], 1 / (PARETO["beta"] + T), n)
        wait, life = rng.exponential(1 / lam), rng.exponential(1 / mu)
        sim = np.mean(wait < np.minimum(t, life))
        got = pareto_nbd.p_order_alive(*PARETO.values(), x, T, t)
        assert got == pytest.approx(sim, abs=0.004)


def test_pareto_p_order_quadrature_equals_adaptive_integration():
    from scipy.integrate import quad

    rng = np.random.default_rng(8)
    for _ in range(40):
        r, s = np.exp(rng.uniform(np.log(0.02), np.log(20), 2))
        alpha, beta = np.exp(rng.uniform(np.log(1.0), np.log(1e4), 2))
        x, T = rng.integers(0, 60), rng.uniform(0, 3000)
        f = lambda w: ((r + x) / (alpha + T) * ((alpha + T) / (alpha + T + w)) ** (r + x + 1)  # noqa: E731
                       * ((beta + T) / (beta + T + w)) ** s)
        ref = quad(f, 0, 30.0, epsabs=0, epsrel=1e-13)[0]
        assert pareto_nbd.p_order_alive(r, alpha, s, beta, x, T, 30.0) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("model", [BetaGeoModel, ModifiedBetaGeoModel])
def test_loglik_rows_gathered_by_distinct_values_equal_the_closed_form(model):
    """PSIS-LOO's row likelihood computes the x terms once per distinct x and the logs once
    per distinct day: the same numbers as the closed form row by row."""
    rng = np.random.default_rng(4)
    draws = {"r": rng.uniform(0.2, 2, (50, 1)), "alpha": rng.uniform(1, 30, (50, 1)),
             "a": rng.uniform(0.2, 3, (50, 1)), "b": rng.uniform(0.3, 6, (50, 1))}
    x = rng.integers(0, 8, 400).astype(float)
    T = rng.integers(30, 300, 400).astype(float)
    t_x = np.where(x > 0, np.floor(rng.uniform(0, 1, 400) * T), 0.0)
    closed = model.closed_forms().loglik(draws["r"], draws["alpha"], draws["a"], draws["b"],
                                         x, t_x, T)
    rows = model.loglik_rows(draws, x, t_x, T)
    assert rows.shape == (50, 400) and np.isfinite(rows).all()
    np.testing.assert_allclose(rows, closed, rtol=1e-13, atol=0)
