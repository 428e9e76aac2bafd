"""MBG/CNBD-k (hubnb.clv.mbg_cnbd): its likelihood against numerical integration of the
individual-level model, k = 1 against MBG/NBD, the native and PyMC log densities against
each other, and every per-profile quantity against a simulation of the generative story."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from hubnb.clv import mbg_cnbd as C
from hubnb.clv import mbg_nbd
from hubnb.clv.histories import compress
from hubnb.clv.models import PURCHASE_MODELS

P = {"r": 0.9, "alpha": 25.0, "a": 0.8, "b": 3.5}
HISTORIES = [(0, 0.0, 60.0), (1, 20.0, 100.0), (3, 90.0, 150.0), (4, 120.0, 121.0),
             (2, 30.0, 300.0)]


def _p(params):
    return {k: np.array([[v]]) for k, v in params.items()}


def _individual_lik(k, lam, p, x, t_x, T, gaps_log):
    """The individual-level likelihood: x Erlang-k gaps (their product through
    ``gaps_log``), each order followed by a dropout chance (the first included), then
    either dropout right after the last order or an open gap longer than T - t_x."""
    dens = math.exp(x * (k * math.log(lam) - math.lgamma(k)) + (k - 1) * gaps_log - lam * t_x)
    g = lam * (T - t_x)
    survive_open = math.exp(-g) * sum(g ** j / math.factorial(j) for j in range(k))
    return dens * (1 - p) ** x * (p + (1 - p) * survive_open)


@pytest.mark.parametrize("k, history", [(2, HISTORIES[1]), (3, HISTORIES[2]),
                                        (2, HISTORIES[3])])
def test_the_likelihood_is_the_individual_model_integrated_over_lambda_and_p(k, history):
    x, t_x, T = history
    gaps_log = x * math.log(t_x / x)          # equal gaps: litt = x log(t_x / x)
    r, alpha, a, b = P.values()
    log_gamma_c = r * math.log(alpha) - math.lgamma(r)
    log_beta_c = -(math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))

    def integrand(p, lam):
        prior = math.exp(log_gamma_c + (r - 1) * math.log(lam) - alpha * lam + log_beta_c
                         + (a - 1) * math.log(p) + (b - 1) * math.log1p(-p))
        return _individual_lik(k, lam, p, x, t_x, T, gaps_log) * prior

    ref, _ = integrate.dblquad(integrand, 0, 5.0, 0, 1, epsabs=1e-300, epsrel=1e-9)
    mine = C.loglik(k, r, alpha, a, b, x, t_x, T) + C.customer_constant(k, x, gaps_log)
    assert float(mine) == pytest.approx(math.log(ref), abs=1e-6)


def test_k1_is_mbg_nbd_in_every_quantity():
    x, t_x, T = (np.array(v, float) for v in zip(*HISTORIES))
    k1 = type("K1", (C.MBGCNBDModel,), {"k": 1})
    np.testing.assert_allclose(C.loglik(1, *P.values(), x, t_x, T),
                               mbg_nbd.loglik(*P.values(), x, t_x, T), rtol=1e-12)
    mine = k1.per_history(_p(P), x, t_x, T, 365.0, 30.0)
    ref = PURCHASE_MODELS["mbg_nbd"].per_history(_p(P), x, t_x, T, 365.0, 30.0)
    for name in ("p_alive", "expected", "p_order"):
        np.testing.assert_allclose(mine[name], ref[name], rtol=1e-8, err_msg=name)
    # the median wait is solved to a hundredth of a day
    np.testing.assert_allclose(mine["next_days"], ref["next_days"], rtol=1e-9, atol=0.01)
    t = np.array([7.0, 90.0, 365.0, 1000.0])
    np.testing.assert_allclose(k1.expected_purchases_new(_p(P), t),
                               mbg_nbd.expected_purchases_new(*P.values(), t)[None], rtol=1e-9)
    assert C.customer_constant(1, x, np.ones_like(x)).tolist() == [0.0] * len(x)


def _rfm():
    rng = np.random.default_rng(5)
    n = 400
    x = rng.poisson(2.0, n)
    T = rng.integers(60, 400, n).astype(float)
    t_x = np.where(x > 0, np.floor(T * rng.uniform(0.2, 1.0, n)), 0.0)
    import pandas as pd

    return pd.DataFrame({"frequency": x, "recency": t_x.astype(np.int64),
                         "T": T.astype(np.int64),
                         "monetary_value": np.where(x > 0, rng.gamma(3, 10, n), 0.0)})


@pytest.mark.parametrize("k", [2, 4])
def test_native_logp_and_gradient_equal_the_pymc_model(k):
    from hubnb.clv import native
    from hubnb.clv.models import build_model

    data = compress(_rfm())
    model = PURCHASE_MODELS[C.model_name(k)]
    m = build_model(model, data)
    names = [v.name for v in m.value_vars]
    assert tuple(names) == native.UNCONSTRAINED
    logp, dlogp = m.compile_logp(jacobian=True), m.compile_dlogp(jacobian=True)
    mine = model.native(data.arrays)[0]
    rng = np.random.default_rng(0)
    for _ in range(5):
        theta = native.PRIOR_MU + rng.normal(0, 1.0, 7)
        point = dict(zip(names, theta))
        val, grad = mine(theta)
        assert val == pytest.approx(float(logp(point)), rel=1e-10)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-7, atol=1e-7)


def test_the_weighted_rows_sum_the_per_customer_likelihood():
    rfm = _rfm()
    data = compress(rfm)
    model = PURCHASE_MODELS["mbg_cnbd_k3"]
    from hubnb.clv import native

    theta = native.PRIOR_MU + 0.3
    e = np.exp(theta)
    per = C.loglik(3, e[0], e[1], e[2], e[3], rfm["frequency"].to_numpy(float),
                   rfm["recency"].to_numpy(float), rfm["T"].to_numpy(float)).sum()
    # the purchase part: the native density minus the prior and the Gamma-Gamma part
    full = model.native(data.arrays)[0](theta)[0]
    no_purchase = dict(data.arrays, x_uniq=np.zeros(0), x_count=np.zeros(0),
                       n_customers=np.array(0.0), T0=np.zeros(0), w0=np.zeros(0),
                       x1=np.zeros(0), tx1=np.zeros(0), T1=np.zeros(0), w1=np.zeros(0))
    rest = model.native(no_purchase)[0](theta)[0]
    assert full - rest == pytest.approx(per, rel=1e-10)


def _simulate_conditional(k, params, x, t_x, T, horizon, days, n, rng):
    """The generative story, conditioned on the history by importance weights: lambda and p
    from the priors, the customer's state at T (dropped out after the last order, or alive
    with j phases of the open gap passed) drawn with its likelihood, then the future."""
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    gap = T - t_x
    w_dropped = lam ** (k * x) * np.exp(-lam * t_x) * (1 - p) ** x * p
    phases = np.stack([np.exp(-lam * gap) * (lam * gap) ** j / math.factorial(j)
                       for j in range(k)])
    w_alive = lam ** (k * x) * np.exp(-lam * t_x) * (1 - p) ** (x + 1) * phases
    total = w_dropped + w_alive.sum(axis=0)
    # resample (lambda, p, state) by weight
    weights = np.concatenate([w_dropped, *w_alive]) / total.sum()
    pick = rng.choice(len(weights), size=n, p=weights)
    state, who = pick // n, pick % n     # state 0: dropped, 1 + j: alive with j passed
    lam, p = lam[who], p[who]
    alive = state > 0
    j = np.maximum(state - 1, 0)
    # the future of the alive: phase events of rate lambda, an order every k-th (the
    # first after k - j), a dropout chance after each order
    first = rng.gamma(np.maximum(k - j, 1), 1 / lam)
    orders = np.zeros(n, int)
    ordered_within = first <= days
    t_next = first.copy()
    active = alive.copy()
    while active.any():
        inside = active & (t_next <= horizon)
        orders += inside
        active = inside & (rng.random(n) >= p)
        t_next = t_next + rng.gamma(k, 1 / lam)
    return {"p_alive": alive.mean(), "expected": orders.mean(),
            "p_order": (alive & ordered_within).mean(),
            "next_days": np.median(first[alive]), "orders": orders, "alive": alive}


@pytest.mark.parametrize("k", [2, 3])
def test_every_conditional_quantity_agrees_with_a_simulation(k):
    rng = np.random.default_rng(11 + k)
    n = 400_000
    model = PURCHASE_MODELS[C.model_name(k)]
    for x, t_x, T in [(0, 0.0, 60.0), (2, 40.0, 100.0), (3, 90.0, 150.0)]:
        sim = _simulate_conditional(k, P, x, t_x, T, 200.0, 30.0, n, rng)
        h = model.per_history(_p(P), np.array([x], float), np.array([t_x]), np.array([T]),
                              200.0, 30.0)
        for name in ("p_alive", "p_order"):
            se = math.sqrt(max(sim[name] * (1 - sim[name]), 1e-4) / n)
            assert abs(float(h[name][0, 0]) - sim[name]) < 5 * se + 1e-4, (name, x)
        se = sim["orders"].std() / math.sqrt(n)
        assert abs(float(h["expected"][0, 0]) - sim["expected"]) < 5 * se, (x, t_x, T)
        # the median of the alive customers' wait: a quantile's sampling error
        assert float(h["next_days"][0, 0]) == pytest.approx(sim["next_days"], rel=0.03)
        # the simulation of the alive, as the prediction intervals use it
        p = {key: np.full((n, 1), v) for key, v in P.items()}
        orders = model.simulate_purchases_alive(p, np.array([x], float), np.array([t_x]),
                                                np.array([T]), 200.0, rng)[:, 0]
        alive_mean = float(h["expected"][0, 0] / h["p_alive"][0, 0])
        assert abs(orders.mean() - alive_mean) < 5 * orders.std() / math.sqrt(n)


def test_a_new_customers_expected_orders_agree_with_a_simulation():
    rng = np.random.default_rng(3)
    n, k, t = 400_000, 2, 180.0
    lam = rng.gamma(P["r"], 1 / P["alpha"], n)
    p = rng.beta(P["a"], P["b"], n)
    orders = np.zeros(n, int)
    active = rng.random(n) >= p           # the dropout chance right after the first order
    t_next = rng.gamma(k, 1 / lam)
    while active.any():
        inside = active & (t_next <= t)
        orders += inside
        active = inside & (rng.random(n) >= p)
        t_next = t_next + rng.gamma(k, 1 / lam)
    mine = float(PURCHASE_MODELS["mbg_cnbd_k2"].expected_purchases_new(_p(P), [t])[0, 0])
    assert abs(mine - orders.mean()) < 5 * orders.std() / math.sqrt(n)


def test_names_and_k():
    assert C.model_name(1) == "mbg_nbd" and C.model_name(3) == "mbg_cnbd_k3"
    assert C.regularity_of("mbg_cnbd_k4") == 4 and C.regularity_of("pareto_nbd") == 1
    assert "mbg_cnbd_k1" not in PURCHASE_MODELS and "mbg_cnbd_x" not in PURCHASE_MODELS
    assert PURCHASE_MODELS["mbg_cnbd_k5"].k == 5


# ------------------------------------------------------------------ data, LOO and auto


@pytest.fixture(scope="module")
def regular(tmp_path_factory):
    """A simulated merchant whose customers reorder at Erlang-2 gaps (hubnb demo-data
    --regularity 2), its counted orders and RFM summary."""
    import datetime as dt

    from hubnb.clv.orders import counted_orders, rfm_summary
    from hubnb.data import load_dataset
    from hubnb.demo import MODEL_SOURCES, generate_demo_data
    from hubnb.params import OrderFilter

    out = tmp_path_factory.mktemp("regular") / "data"
    truth = generate_demo_data(out, 2500, seed=4, regularity=2)
    ds = load_dataset(out)
    as_of = dt.date(2026, 11, 22)
    # the orders the truth covers (truth.json's model_orders)
    model_orders = OrderFilter(sources=MODEL_SOURCES, exclude_subscriptions=True)
    counted = counted_orders(ds.orders, ds.refunds, model_orders, as_of,
                             "America/New_York", 1500)
    return {"truth": truth, "rfm": rfm_summary(counted, as_of), "counted": counted,
            "ds": ds, "orders": model_orders}


def test_litt_is_the_sum_of_log_days_between_orders():
    import datetime as dt

    import pandas as pd

    from hubnb.clv.orders import rfm_summary

    counted = pd.DataFrame({
        "profile_id": ["a", "a", "a", "b", "c", "c"],
        "local_date": pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-13", "2026-02-01",
                                      "2026-01-05", "2026-03-06"]),
        "net_value": [10.0, 20, 30, 5, 7, 9]})
    rfm = rfm_summary(counted, dt.date(2026, 4, 1))
    assert rfm.loc["a", "litt"] == pytest.approx(math.log(2) + math.log(10))
    assert rfm.loc["b", "litt"] == 0.0
    assert rfm.loc["c", "litt"] == pytest.approx(math.log(60))


def test_loo_counts_every_customers_constant(regular):
    """PSIS-LOO on the weighted histories equals PSIS-LOO customer by customer (one column
    per customer, each with its own log C_i), in elpd and in its standard error."""
    from hubnb.clv.laplace import laplace_fit
    from hubnb.clv.psis import psis_loo
    from hubnb.clv.selection import loo

    rfm = regular["rfm"]
    data = compress(rfm)
    fit = laplace_fit("mbg_cnbd_k2", data, draws=400, seed=2)
    assert fit is not None
    mine = loo(fit)
    x, t_x, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    p = {k: np.asarray(fit.draws[k], float)[:, None] for k in ("r", "alpha", "a", "b")}
    ll = C.loglik(2, p["r"], p["alpha"], p["a"], p["b"], x, t_x, T)
    ll = ll + C.customer_constant(2, x, rfm["litt"].to_numpy(float))[None, :]
    elpd_i, _, _ = psis_loo(ll, log_correction=fit.log_p - fit.log_q)
    n = len(elpd_i)
    assert mine.elpd == pytest.approx(elpd_i.sum(), rel=1e-9)
    assert mine.se == pytest.approx(math.sqrt(n * elpd_i.var(ddof=1)), rel=1e-6)


def test_demo_data_recovers_k_and_the_parameters(regular):
    """The grid finds the simulated k; the fitted MBG/CNBD-2 recovers the true r / alpha
    (the mean phase rate) and a / (a + b) (the mean dropout chance) within 10%."""
    from hubnb.clv.compute import regularity
    from hubnb.clv.laplace import laplace_fit
    from hubnb.params import ClvParams

    data = compress(regular["rfm"])
    reg = regularity(data, ClvParams())
    assert reg["k"] == 2 and not reg["fixed"]
    assert reg["grid"][2] > reg["grid"][1] and reg["grid"][2] > reg["grid"][3]
    fit = laplace_fit("mbg_cnbd_k2", data, seed=1)
    est = {k: float(np.mean(v)) for k, v in fit.draws.items()}
    true = regular["truth"]["mbg_cnbd"]
    assert est["r"] / est["alpha"] == pytest.approx(true["r"] / true["alpha"], rel=0.1)
    assert est["a"] / (est["a"] + est["b"]) == pytest.approx(
        true["a"] / (true["a"] + true["b"]), rel=0.15)


def test_auto_finds_the_regularity_and_says_so(regular):
    """clv.model: auto on the regular merchant: MBG/CNBD-2 among the candidates and chosen,
    the grid and the typical gap in metrics; the model-choice card says it in words."""
    import datetime as dt

    from hubnb.clv import compute_clv
    from hubnb.params import ClvParams

    ds = regular["ds"]
    res = compute_clv(ds.orders, ds.refunds, ds.profiles,
                      ClvParams(draws=200, tune=200, orders=regular["orders"]),
                      dt.date(2026, 11, 22), "America/New_York")
    assert res.fit.model_name == "mbg_cnbd_k2"
    m = res.metrics["model"]      # the data contract's names: mbg_cnbd with regularity_k
    assert (m["name"], m["regularity_k"]) == ("mbg_cnbd", 2)
    assert set(m["selection"]["candidates"]) == {"pareto_nbd", "mbg_nbd", "mbg_cnbd"}
    assert m["selection"]["winner"] == "mbg_cnbd"
    assert m["selection"]["candidates"]["mbg_cnbd"]["regularity_k"] == 2
    assert m["selection"]["clear"]
    reg = m["regularity"]
    assert reg["k"] == 2 and set(reg["grid"]) >= {"1", "2", "3"}
    gaps = regular["rfm"].query("frequency > 0")
    assert reg["median_gap_days"] == pytest.approx(
        float(np.median(gaps["recency"] / gaps["frequency"])))
    # the predictions are MBG/CNBD-2's: one profile checked against the model directly
    row = res.profiles.dropna(subset=["churn_probability_mean"]).iloc[0]
    r = regular["rfm"].loc[row["profile_id"]]
    draws = {k: np.asarray(res.fit.draws[k])[:, None] for k in ("r", "alpha", "a", "b")}
    p_alive = C.state_weights(2, draws["r"], draws["alpha"], draws["a"], draws["b"],
                              r["frequency"], r["recency"], r["T"])[0]
    assert row["churn_probability_mean"] == pytest.approx(1 - p_alive.mean(), abs=0.02)


def test_a_merchant_without_regularity_keeps_two_candidates():
    """CDNOW-like Poisson timing (the BG/NBD demo): the grid's best k is 1, so auto
    compares Pareto/NBD and MBG/NBD only, as before."""
    import datetime as dt

    from hubnb.clv.compute import candidate_models, regularity
    from hubnb.clv.orders import counted_orders, rfm_summary
    from hubnb.demo import generate_demo_data
    from hubnb.data import load_dataset
    from hubnb.params import ClvParams, OrderFilter
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        generate_demo_data(Path(tmp) / "d", 2500, seed=4)
        ds = load_dataset(Path(tmp) / "d")
    as_of = dt.date(2026, 11, 22)
    counted = counted_orders(ds.orders, ds.refunds, OrderFilter(), as_of, "America/New_York",
                             1500)
    reg = regularity(compress(rfm_summary(counted, as_of)), ClvParams())
    assert reg["k"] == 1
    assert candidate_models("auto", reg["k"]) == ("pareto_nbd", "mbg_nbd")


def test_regularity_k_params():
    from hubnb.clv.compute import candidate_models
    from hubnb.params import ParamsError, _clv

    assert _clv({"model": "mbg_cnbd", "regularity_k": 3}).regularity_k == 3
    assert candidate_models("mbg_cnbd", 3) == ("mbg_cnbd_k3",)
    assert candidate_models("mbg_cnbd", 1) == ("mbg_nbd",)
    for bad in (0, 7, 2.5, True, "2"):
        with pytest.raises(ParamsError, match="regularity_k"):
            _clv({"model": "mbg_cnbd", "regularity_k": bad})
    for other in ("auto", "pareto_nbd"):
        with pytest.raises(ParamsError, match="applies to clv.model mbg_cnbd only"):
            _clv({"model": other, "regularity_k": 2})


def test_mbg_cnbd_by_hand_and_the_cards_of_a_regular_merchant(regular):
    """clv.model: mbg_cnbd with clv.regularity_k: 2 fits MBG/CNBD-2 alone; under auto with a
    backtest every candidate is backtested with its calibration, and the cards show the
    regularity and the calibration of every candidate."""
    import datetime as dt

    from test_cards_clv import FakeReport

    from hubnb.cards import clv as cards
    from hubnb.clv import compute_clv
    from hubnb.params import ClvParams

    ds, as_of = regular["ds"], dt.date(2026, 11, 22)
    fixed = compute_clv(ds.orders, ds.refunds, ds.profiles,
                        ClvParams(model="mbg_cnbd", regularity_k=2, draws=100, tune=100,
                                  orders=regular["orders"]), as_of, "America/New_York")
    assert fixed.fit.model_name == "mbg_cnbd_k2" and fixed.selection is None
    reg = fixed.metrics["model"]["regularity"]
    assert (reg["k"], reg["fixed"], reg["grid"]) == (2, True, {})
    assert (fixed.metrics["model"]["name"], fixed.metrics["model"]["regularity_k"]) == (
        "mbg_cnbd", 2)
    res = compute_clv(ds.orders, ds.refunds, ds.profiles,
                      ClvParams(draws=100, tune=100, backtest_days=60,
                                orders=regular["orders"]), as_of, "America/New_York")
    assert set(res.backtests) == {"pareto_nbd", "mbg_nbd", "mbg_cnbd_k2"}
    for name, bt in res.backtests.items():
        s = bt.summary
        assert sum(b["profiles"] for b in s["reliability"]) == s["profiles"]
        assert 0 <= s["p_order_30d_calibration_error"] < 0.1
        assert [w["day"] for w in s["weekly_tracking"]][-1] == 60
        assert bt.summary["posterior"] == ("nuts" if name == "mbg_cnbd_k2" else "laplace-is")
    report = FakeReport(model="auto")
    choice = cards.model_choice_card(res, report).html()
    assert "Regular reorders" in choice and "steady intervals" in choice
    assert "MBG/CNBD-2 (best)" in choice and "about every" in choice
    backtest = cards.backtest_card(res, report).html()
    assert backtest.count("<img") >= 4          # reliability, tracking, and the chosen's two
    assert "Calibration error" in backtest and "Pareto/NBD, MBG/NBD: fitted on their quick" in backtest
