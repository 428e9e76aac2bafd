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
