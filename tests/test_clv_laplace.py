"""The quick pass of clv.model: auto (hubnb.clv.laplace) and the fit cache (fitcache).

The Laplace approximation is checked against the NUTS posterior of the same model on the
CDNOW sample (means, spreads and the PSIS-LOO score it gives), against an independent
maximum a posteriori by Nelder-Mead on the PyMC model's own log density, and the auto
path's decisions (sample only a clear winner; sample all when the approximation is not
trusted) and the cache's hits and misses are checked directly.
"""

import numpy as np
import pytest

from hubnb.clv import fitcache
from hubnb.clv import laplace as L
from hubnb.clv.compute import choose_and_fit
from hubnb.clv.histories import compress
from hubnb.clv.models import ClvModel, ParetoNBDModel, ModifiedBetaGeoModel, build_model
from hubnb.clv.selection import loo
from hubnb.params import ClvParams
from test_clv_models import _cdnow_sample_rfm

SETTINGS = dict(chains=2, draws=300, tune=300, seed=3)


@pytest.fixture(scope="module")
def data():
    return compress(_cdnow_sample_rfm())


@pytest.fixture(scope="module")
def nuts(data):
    """Both candidates sampled, through the fit cache (the auto test below reuses them)."""
    p = ClvParams(**SETTINGS)
    return {name: fitcache.nuts_fit(name, data, p) for name in ("pareto_nbd", "mbg_nbd")}


@pytest.mark.parametrize("name", ["pareto_nbd", "mbg_nbd"])
def test_laplace_agrees_with_the_nuts_posterior_and_its_loo(data, nuts, name):
    quick = L.laplace_fit(name, data, seed=5)
    assert quick is not None and quick.reliable, quick and quick.pareto_k
    fit = nuts[name]
    # importance-weighted moments of the approximation's draws are the posterior's
    w = np.exp(quick.log_p - quick.log_q - np.max(quick.log_p - quick.log_q))
    w /= w.sum()
    for param, draws in fit.draws.items():
        mean, sd = float(np.mean(draws)), float(np.std(draws))
        approx = float(w @ quick.draws[param])
        assert abs(approx - mean) < 0.25 * sd, (param, approx, mean, sd)
    exact, approximate = loo(fit), loo(quick)
    assert approximate.elpd == pytest.approx(exact.elpd, abs=max(1.0, 0.05 * exact.se))
    assert approximate.se == pytest.approx(exact.se, rel=0.02)


def test_the_mode_is_the_maximum_a_posteriori_of_the_pymc_model(data):
    """An independent MAP: Nelder-Mead on the log density PyMC compiles for the model
    (not hubnb's native code, which the Laplace pass uses)."""
    from scipy.optimize import minimize

    model = build_model(ModifiedBetaGeoModel, data)
    logp = model.compile_logp(jacobian=True)
    names = [v.name for v in model.value_vars]
    quick = L.laplace_fit("mbg_nbd", data)
    order = ["r_log__", "alpha_log__", "a_log__", "b_log__", "p_log__", "q_minus_1_log__",
             "v_scaled_log__"]
    assert sorted(names) == sorted(order)

    def negative(theta):
        return -float(logp(dict(zip(order, theta))))

    found = minimize(negative, quick.mode + 0.3, method="Nelder-Mead",
                     options={"maxiter": 40000, "xatol": 1e-9, "fatol": 1e-10})
    np.testing.assert_allclose(quick.mode, found.x, atol=2e-3)


def test_auto_samples_only_the_winner_of_trusted_approximations(data, nuts, monkeypatch):
    p = ClvParams(**{**SETTINGS, "model": "auto"})
    fits, choice, quick = choose_and_fit(data, p)
    assert set(quick) == {"pareto_nbd", "mbg_nbd"}
    assert all(q.reliable for q in quick.values())
    assert choice.method == "psis-loo (laplace)" and list(fits) == [choice.winner]
    assert "only the chosen model was then sampled" in choice.reason
    # the same winner as the comparison on the NUTS draws of both
    from hubnb.clv.selection import choose_model

    assert choose_model(nuts).winner == choice.winner
    # an approximation that is not trusted: every candidate is sampled, scored on NUTS
    monkeypatch.setattr(L, "K_GOOD", -10.0)
    fits, choice, _ = choose_and_fit(data, p)
    assert set(fits) == {"pareto_nbd", "mbg_nbd"} and choice.method == "psis-loo"


def test_the_fit_cache_hits_for_the_same_fit_and_misses_for_another(data, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("HUBNB_CACHE_DIR", str(tmp_path))
    calls = []

    def counting(model, *args, **kwargs):
        calls.append(model)
        return original(model, *args, **kwargs)

    original = ClvModel.fit
    monkeypatch.setattr(ClvModel, "fit", lambda self, *a, **k: counting(self, *a, **k))
    p = ClvParams(chains=1, draws=100, tune=100, seed=2, model="mbg_nbd")
    first = fitcache.nuts_fit("mbg_nbd", data, p)
    again = fitcache.nuts_fit("mbg_nbd", data, p)
    assert len(calls) == 1
    assert not first.diagnostics["fit_cache_hit"] and again.diagnostics["fit_cache_hit"]
    for name in first.draws:
        np.testing.assert_array_equal(first.draws[name], again.draws[name])
    # other settings, other data: a new fit each
    fitcache.nuts_fit("mbg_nbd", data, ClvParams(chains=1, draws=120, tune=100, seed=2))
    other = compress(_cdnow_sample_rfm().iloc[:-5])
    fitcache.nuts_fit("mbg_nbd", other, p)
    assert len(calls) == 3
    # an unreadable entry is replaced, not fatal; HUBNB_FIT_CACHE=0 always fits
    for entry in (tmp_path / "fits").glob("*.pickle"):
        entry.write_bytes(b"cut short")
    assert not fitcache.nuts_fit("mbg_nbd", data, p).diagnostics["fit_cache_hit"]
    assert len(calls) == 4
    monkeypatch.setenv("HUBNB_FIT_CACHE", "0")
    fitcache.nuts_fit("mbg_nbd", data, p)
    assert len(calls) == 5


def test_pareto_laplace_uses_the_pareto_density(data):
    quick = L.laplace_fit("pareto_nbd", data)
    assert set(ParetoNBDModel.param_names) <= set(quick.draws)


# ------------------------------------------------------------------ large data (issue 18)

def test_the_difference_estimator_is_arvizs_over_one_row_per_profile():
    """hubnb's weighted difference estimator (histories with profile counts) against
    ArviZ's own ``_diff_srs_estimator`` on the same numbers expanded to a row per profile;
    with every profile in the sample it is the exact sum, with no sampling error."""
    from arviz_stats.loo.loo_helper import _diff_srs_estimator

    from hubnb.clv.selection import difference_estimate, subsample

    rng = np.random.default_rng(3)
    n = rng.integers(1, 30, 400)
    exact = rng.normal(-5.0, 2.0, 400)
    approx = exact + rng.normal(0.1, 0.3, 400)
    sample = subsample(n, 1000, seed=5)
    assert sample.sum() == 1000 and np.all(sample <= n)
    ours = difference_estimate(exact, approx, sample, n)
    theirs = _diff_srs_estimator(exact[np.repeat(np.arange(400), sample)],
                                 approx[np.repeat(np.arange(400), sample)],
                                 approx[np.repeat(np.arange(400), n)], int(n.sum()))
    assert ours == pytest.approx(tuple(float(v) for v in theirs), rel=1e-12)
    whole = difference_estimate(exact, approx, n, n)
    assert whole[0] == pytest.approx(float(n @ exact), rel=1e-12) and whole[1] == 0.0


def test_subsampled_loo_estimates_the_full_loo_and_keeps_the_choice(data, nuts, monkeypatch):
    """PSIS-LOO from 1,000 of the sample's 2,349 customers: each candidate's elpd within
    three subsampling standard errors of the full computation's, the same winner, and the
    difference's standard error at least the full one's (sampling adds uncertainty)."""
    from hubnb.clv import selection as S

    full = S.choose_model(nuts)
    monkeypatch.setattr(S, "SUBSAMPLE_ABOVE", 0)
    monkeypatch.setattr(S, "SUBSAMPLE_PROFILES", 1000)
    part = S.choose_model(nuts)
    assert part.winner == full.winner
    for name, c in part.candidates.items():
        exact = full.candidates[name]["elpd_loo"]
        assert c["subsample_profiles"] == 1000
        assert abs(c["elpd_loo"] - exact) < 3 * c["subsample_se"] + 1e-9, (name, c, exact)
        assert c["se"] == pytest.approx(full.candidates[name]["se"], rel=0.1)
    other = next(n for n in part.candidates if n != part.winner)
    assert part.candidates[other]["d_se"] >= 0.99 * full.candidates[other]["d_se"]
    assert "random sample of 1,000 customers" in part.reason


def test_importance_resampling_reweights_the_proposal_to_the_target(data):
    """Proposal N(0, 1), target N(0.5, 1): resampled by the smoothed weights p / q, the
    draws' mean and sd are the target's (closed form), and the effective draws are below
    the proposal's count."""
    from dataclasses import replace

    quick = L.laplace_fit("mbg_nbd", data, seed=5)
    rng = np.random.default_rng(0)
    z = rng.standard_normal(4000)
    log_q = -0.5 * z ** 2
    log_p = -0.5 * (z - 0.5) ** 2
    draws = {k: np.full(4000, float(np.mean(v))) for k, v in quick.draws.items()}
    draws["r"] = z
    fake = replace(quick, draws=draws, log_p=log_p, log_q=log_q, pareto_k=0.2)
    fit = L.importance_posterior(fake, seed=1)
    assert np.mean(fit.draws["r"]) == pytest.approx(0.5, abs=0.06)
    assert np.std(fit.draws["r"]) == pytest.approx(1.0, abs=0.06)
    ess = fit.diagnostics["ess_bulk_min"]
    # the closed-form effective share of N(0.5,1) weights over N(0,1) is exp(-0.25)
    assert ess / 4000 == pytest.approx(np.exp(-0.25), abs=0.05)
    assert fit.diagnostics["posterior"] == "laplace-is" and fit.diagnostics["r_hat_max"] is None
    assert not fit.diagnostics["flagged"]
    flagged = L.importance_posterior(replace(fake, pareto_k=0.6), seed=1)
    assert flagged.diagnostics["flagged"]
    assert "Pareto k 0.6 > 0.5" in str(flagged.diagnostics["flag_reasons"][0])


def test_large_data_takes_the_importance_sampled_posterior_close_to_nuts(data, nuts,
                                                                        monkeypatch):
    """With the large-data limit lowered to this sample, the posterior of MBG/NBD comes
    from its importance-sampled Laplace approximation (no NUTS run), and its means are
    within a quarter of a posterior sd of the NUTS fit's, its sds within 20%."""
    monkeypatch.setattr(L, "LARGE_ROWS", 1)
    monkeypatch.setattr(fitcache.ClvModel, "fit", lambda *a, **k: pytest.fail("NUTS ran"))
    fit = fitcache.posterior_fit("mbg_nbd", data, ClvParams(**SETTINGS))
    assert fit.diagnostics["posterior"] == "laplace-is"
    ref = nuts["mbg_nbd"]
    for param, draws in ref.draws.items():
        mean, sd = float(np.mean(draws)), float(np.std(draws))
        got = fit.draws[param]
        assert abs(np.mean(got) - mean) < 0.25 * sd, (param, np.mean(got), mean, sd)
        assert np.std(got) == pytest.approx(sd, rel=0.2), param


def test_large_data_samples_with_nuts_when_the_approximation_is_not_close(data, monkeypatch):
    """A Pareto k above 0.5 sends the fit to NUTS even for large data."""
    from dataclasses import replace

    quick = L.laplace_fit("mbg_nbd", data, seed=5)
    monkeypatch.setattr(L, "LARGE_ROWS", 1)
    ran = []
    monkeypatch.setattr(fitcache, "nuts_fit", lambda *a, **k: ran.append(a[0]) or "nuts")
    got = fitcache.posterior_fit("mbg_nbd", data, ClvParams(**SETTINGS),
                                 quick=replace(quick, pareto_k=0.55))
    assert got == "nuts" and ran == ["mbg_nbd"]


def test_a_large_merchants_backtest_scores_a_fixed_random_sample_of_its_customers(
        monkeypatch):
    """Past the large-data limit the backtest fits on every calibration customer but scores
    a seeded random sample: the sample's per-customer predictions and holdout orders are
    those of the same customers in the backtest of everyone, and the holdout total is the
    sample's own."""
    import datetime as dt

    from hubnb.clv import backtest as B
    from test_clv_models import _cdnow_sample_orders

    orders = _cdnow_sample_orders()
    params = ClvParams(model="mbg_nbd", backtest_days=180, **SETTINGS)
    as_of = dt.date(1998, 6, 30)
    monkeypatch.setattr(L, "LARGE_ROWS", 1)               # the importance-sampled posterior
    everyone = B.run_backtest(orders, None, params, as_of, "UTC")
    monkeypatch.setattr(B, "SCORED_PROFILES", 500)
    sampled = B.run_backtest(orders, None, params, as_of, "UTC")
    n = everyone.summary["profiles"]
    assert n > 500 and "sample_of" not in everyone.summary
    assert sampled.summary["profiles"] == 500 and sampled.summary["sample_of"] == n
    ids = sampled.per_profile.index
    assert ids.is_monotonic_increasing and ids.isin(everyone.per_profile.index).all()
    # the same 500 every time (the seed), and not simply the first 500
    again = B.run_backtest(orders, None, params, as_of, "UTC")
    assert list(again.per_profile.index) == list(ids)
    assert list(ids) != list(everyone.per_profile.index[:500])
    same = everyone.per_profile.loc[ids]
    np.testing.assert_array_equal(sampled.per_profile["actual"], same["actual"])
    np.testing.assert_allclose(sampled.per_profile["predicted_mean"], same["predicted_mean"])
    assert sampled.summary["actual_orders"] == int(same["actual"].sum())
    # the tracking plot still counts every customer
    assert sampled.cumulative["actual"].iloc[-1] == everyone.cumulative["actual"].iloc[-1]
