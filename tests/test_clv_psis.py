"""hubnb.clv.psis: PSIS-LOO vectorised over observations equals ArviZ's, column by column."""

import numpy as np
import pytest
import xarray as xr

import arviz_stats  # noqa: F401  (registers the .azstats accessor)
from hubnb.clv.psis import psis_loo


def arviz_loo(ll, r_eff=1.0):
    da = xr.DataArray(ll[None], dims=("chain", "draw", "obs"))
    e, k, p = da.azstats.loo(sample_dims=["chain", "draw"], r_eff=r_eff)
    return e.to_numpy(), k.to_numpy(), p.to_numpy()


def arviz_approx(ll, log_p, log_q):
    da = xr.DataArray(ll[None], dims=("chain", "draw", "obs"))
    lp = xr.DataArray(log_p[None], dims=("chain", "draw"))
    lq = xr.DataArray(log_q[None], dims=("chain", "draw"))
    e, k, p = da.azstats.loo_approximate_posterior(log_p=lp, log_q=lq,
                                                   sample_dims=["chain", "draw"])
    return e.to_numpy(), k.to_numpy(), p.to_numpy()


def loglik_matrix(rng, draws, obs, heavy):
    """Log likelihoods of ``obs`` observations under ``draws`` posterior draws: a normal
    model whose draws of the mean are normal, with some observations far in the tail (so
    their importance ratios are heavy-tailed and PSIS has something to smooth)."""
    mu = rng.normal(0, 0.3, draws)[:, None]
    y = rng.normal(0, 1, obs)
    y[: max(1, obs // 10)] *= heavy
    return -0.5 * (y[None, :] - mu) ** 2 - 0.5 * np.log(2 * np.pi)


@pytest.mark.parametrize("draws,obs,heavy,r_eff", [(1000, 300, 8.0, 1.0), (1000, 50, 20.0, 0.7),
                                                   (200, 40, 5.0, 1.0), (100, 30, 3.0, 1.0),
                                                   (4000, 20, 12.0, 0.9)])
def test_psis_loo_equals_arviz_column_by_column(draws, obs, heavy, r_eff):
    rng = np.random.default_rng(draws + obs)
    ll = loglik_matrix(rng, draws, obs, heavy)
    mine = psis_loo(ll, r_eff=r_eff)
    theirs = arviz_loo(ll, r_eff=r_eff)
    for a, b, what in zip(mine, theirs, ("elpd", "k", "p_loo")):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=what)
    assert np.nanmax(mine[1]) > 0.3   # the heavy observations had tails to smooth


def test_approximate_posterior_correction_equals_arviz():
    rng = np.random.default_rng(3)
    ll = loglik_matrix(rng, 1000, 200, 10.0)
    # draws from a proposal a little narrower than the posterior: log p - log q varies
    z = rng.standard_normal(1000)
    log_q = -0.5 * z ** 2
    log_p = -0.5 * (z / 1.3) ** 2 - 14000.0      # any constant: only p / q matters
    mine = psis_loo(ll, log_correction=log_p - log_q)
    theirs = arviz_approx(ll, log_p, log_q)
    for a, b, what in zip(mine, theirs, ("elpd", "k", "p_loo")):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=what)


def test_flat_tail_gets_plain_importance_sampling_and_infinite_k():
    ll = np.zeros((500, 2))
    ll[:, 1] = np.linspace(-1, 0, 500)
    elpd, k, p = psis_loo(ll)
    assert np.isinf(k[0]) and elpd[0] == pytest.approx(0.0)
    assert np.isfinite(k[1])
