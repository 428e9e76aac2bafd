"""The population model of a batch and the pooled fit of a small merchant (issue 20).

Expected numbers come from closed forms: Normal-Normal conjugacy for the likelihood that is
left when the default prior is divided out, and for the share of the posterior precision
that comes from the prior."""

import json

import numpy as np
import pytest

from hubnb.clv import population as P
from hubnb.errors import HubnbError


def test_dividing_out_the_prior_leaves_the_likelihood_that_gives_the_posterior_back():
    """Prior N(mu0, sigma0^2) times likelihood N(m, V) is N(post_mean, post_cov): from the
    posterior, likelihood_of must return m and V."""
    rng = np.random.default_rng(1)
    mu0, sigma0 = P.default_prior("mbg_nbd")
    a = rng.normal(size=(7, 7))
    V = a @ a.T / 7 * 0.05 + np.eye(7) * 0.01          # the likelihood's covariance
    m = rng.normal(size=7)
    prior_prec = np.diag(1 / sigma0 ** 2)
    post_cov = np.linalg.inv(np.linalg.inv(V) + prior_prec)
    post_mean = post_cov @ (np.linalg.solve(V, m) + prior_prec @ mu0)
    lik = P.likelihood_of("mbg_nbd", post_mean, post_cov)
    np.testing.assert_allclose(lik.cov, V, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(lik.mean, m, rtol=1e-8, atol=1e-10)


def test_the_population_recovers_a_known_spread_of_merchants():
    """40 merchants whose coordinates are drawn from N(mu, tau^2), each seen through a
    Normal likelihood of known covariance: the population's mu and tau cover the truth,
    and its prior for a new merchant has the variance Var(mu) + E[tau^2]."""
    rng = np.random.default_rng(7)
    mu = np.array([-0.5, 2.0, -0.3, 1.0, 1.5, 0.8, 0.2])
    tau = np.array([0.3, 0.6, 0.2, 0.4, 0.3, 0.5, 0.25])
    summaries = []
    for _ in range(40):
        theta = mu + tau * rng.standard_normal(7)
        se = rng.uniform(0.05, 0.3, 7)
        summaries.append(P.Summary("mbg_nbd", theta + se * rng.standard_normal(7),
                                   np.diag(se ** 2)))
    pop = P.fit_population(summaries, seed=3, draws=500)
    assert pop.merchants == 40 and pop.diagnostics["r_hat_max"] < 1.02
    # the population mean within 3 posterior sds of the truth, coordinate by coordinate
    assert np.all(np.abs(pop.mu_mean - mu) < 3 * pop.mu_sd + 1e-9), (pop.mu_mean, pop.mu_sd)
    # the spread: the right order of magnitude for each coordinate, and close on average
    assert np.all((pop.tau_mean > tau / 2.5) & (pop.tau_mean < tau * 2.5)), pop.tau_mean
    assert np.mean(pop.tau_mean / tau) == pytest.approx(1.0, abs=0.3)
    np.testing.assert_allclose(pop.prior_sigma ** 2, pop.mu_sd ** 2 + pop.tau_mean ** 2
                               + pop.tau_sd ** 2, rtol=0.02)
    np.testing.assert_allclose(pop.prior_mu, pop.mu_mean)


def test_fewer_peers_give_a_wider_prior():
    rng = np.random.default_rng(2)
    summaries = [P.Summary("pareto_nbd", rng.normal(0, 0.5, 7), np.diag(np.full(7, 0.01)))
                 for _ in range(30)]
    many = P.fit_population(summaries, seed=1, draws=400)
    few = P.fit_population(summaries[:3], seed=1, draws=400)
    # the population mean is known about sqrt(10) times less well from 3 merchants than
    # from 30; their spread too, so the prior of a new merchant is wider on average
    assert np.all(few.mu_sd > 1.5 * many.mu_sd), (few.mu_sd, many.mu_sd)
    assert few.prior_sigma.mean() > many.prior_sigma.mean()


def test_the_prior_share_is_the_priors_weight_in_a_normal_posterior():
    """Prior sd s and a likelihood of sd l give a posterior variance 1 / (1/s^2 + 1/l^2):
    the prior's share of the precision is l^2 / (s^2 + l^2)."""
    rng = np.random.default_rng(5)
    s = np.array([0.5, 1.0, 0.3, 0.8, 0.4, 0.6, 0.7])
    lik = np.array([0.1, 2.0, 0.3, 0.05, 1.0, 0.6, 0.2])
    post_sd = 1 / np.sqrt(1 / s ** 2 + 1 / lik ** 2)
    theta = rng.normal(0, post_sd, (200_000, 7))
    e = np.exp(theta)
    draws = {"r": e[:, 0], "alpha": e[:, 1], "a": e[:, 2], "b": e[:, 3], "p": e[:, 4],
             "q": 1 + e[:, 5], "v": 3.0 * e[:, 6]}
    share = P.prior_share(draws, "mbg_nbd", 3.0, s)
    np.testing.assert_allclose(share, lik ** 2 / (s ** 2 + lik ** 2), atol=0.01)


def test_population_file_round_trip_and_bad_files(tmp_path):
    pop = P.ModelPopulation("mbg_nbd", P.coordinates("mbg_nbd"), np.zeros(7), np.ones(7),
                            np.ones(7), np.ones(7), np.arange(7.0), np.full(7, 0.5), 4,
                            {"r_hat_max": 1.0})
    whole = P.Population({"mbg_nbd": pop}, [{"merchant": "a"}], "0.1", "2026-12-06")
    path = whole.write(tmp_path / P.POPULATION_FILE)
    back = P.read_population(path)
    assert back.peers == 1 and list(back.models) == ["mbg_nbd"]
    np.testing.assert_array_equal(back.models["mbg_nbd"].prior_mu, np.arange(7.0))
    assert back.models["mbg_nbd"].coordinates[0] == "log r"
    with pytest.raises(HubnbError, match="does not exist"):
        P.read_population(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(HubnbError, match="cannot read the population file"):
        P.read_population(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"models": {}}))
    with pytest.raises(HubnbError, match="not a population file"):
        P.read_population(tmp_path / "old.json")
    raw = whole.as_dict()
    raw["models"]["mbg_nbd"]["prior"]["sigma"] = [0.5] * 6 + [0.0]
    (tmp_path / "zero.json").write_text(json.dumps(raw))
    with pytest.raises(HubnbError, match="positive"):
        P.read_population(tmp_path / "zero.json")


def test_the_population_density_and_its_gradient_are_the_closed_form():
    """population_logp against a direct sum of multivariate Normal log densities, and its
    gradient against central differences."""
    from scipy import stats

    rng = np.random.default_rng(11)
    k, m = 7, 5
    means = rng.normal(size=(m, k))
    covs = np.stack([np.diag(rng.uniform(0.01, 0.2, k)) + 0.01 for _ in range(m)])
    mu0, sigma0 = P.default_prior("mbg_nbd")
    logp = P.population_logp(means, covs, mu0, sigma0)
    mu, log_tau = rng.normal(size=k), rng.normal(-1, 0.3, k)
    tau = np.exp(log_tau)
    direct = sum(stats.multivariate_normal(mu, covs[i] + np.diag(tau ** 2)).logpdf(means[i])
                 for i in range(m))
    direct += stats.norm(mu0, sigma0).logpdf(mu).sum()
    direct += (stats.halfnorm(scale=P.TAU_SCALE).logpdf(tau) + log_tau).sum()
    phi = np.concatenate([mu, log_tau])
    value, grad = logp(phi)
    assert value == pytest.approx(direct, rel=1e-10)
    h = 1e-6
    numeric = [(logp(phi + h * e)[0] - logp(phi - h * e)[0]) / (2 * h) for e in np.eye(2 * k)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)
