"""The population model of a batch and the pooled fit of a small merchant (issue 20).

Expected numbers come from closed forms: Normal-Normal conjugacy for the likelihood that is
left when the default prior is divided out, and for the share of the posterior precision
that comes from the prior."""

import dataclasses
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


# --------------------------------------------------------------------------- pooled fits

AS_OF = "2026-11-22"


def _population(peers=4, sigma=0.3):
    """A population centred on the demo generator's truth (BG/NBD's r, alpha, a, b for
    MBG/NBD and Pareto/NBD alike: only its spread matters here)."""
    from hubnb.demo import TRUE_BG_NBD, TRUE_GAMMA_GAMMA

    t, g = TRUE_BG_NBD, TRUE_GAMMA_GAMMA
    centre = np.log([t["r"], t["alpha"], t["a"], t["b"], g["p"], g["q"] - 1, 1.0])
    models = {m: P.ModelPopulation(m, P.coordinates(m), centre, np.full(7, 0.05),
                                   np.full(7, sigma), np.full(7, 0.05), centre,
                                   np.full(7, sigma), peers)
              for m in ("mbg_nbd", "pareto_nbd")}
    return P.Population(models, [{"merchant": f"peer{i}"} for i in range(peers)], "0.1",
                        "2026-12-06T06:00:00+00:00")


def _merchant(tmp_path_factory, profiles, seed):
    from hubnb.data import load_dataset
    from hubnb.demo import generate_demo_data

    folder = tmp_path_factory.mktemp(f"m{profiles}")
    generate_demo_data(folder / "data", profiles, seed, as_of=AS_OF)
    return load_dataset(folder / "data")


def _clv(ds, population=None, **settings):
    import datetime as dt

    from hubnb.clv.compute import compute_clv
    from hubnb.params import ClvParams

    p = ClvParams(**{"draws": 150, "tune": 150, "seed": 2, **settings})
    return compute_clv(ds.orders, ds.refunds, ds.profiles, p, dt.date.fromisoformat(AS_OF),
                       "America/New_York", population=population)


def test_an_eligible_merchant_gives_the_same_numbers_with_a_population(tmp_path_factory):
    """Merchants above the bar are not touched by pooling: every number equal."""
    ds = _merchant(tmp_path_factory, 700, 5)
    alone, given = _clv(ds), _clv(ds, _population())
    assert alone.eligible and given.eligible
    assert given.metrics["pooling"]["used"] is False
    assert "eligible" in given.metrics["pooling"]["reason"]
    a, b = dict(alone.metrics), dict(given.metrics)
    a.pop("pooling"), b.pop("pooling")
    a["model"].pop("fit_seconds"), b["model"].pop("fit_seconds")
    a["model"].pop("fit_cache_hit"), b["model"].pop("fit_cache_hit")
    assert a == b
    cols = [c for c in alone.profiles.columns if c.endswith(("_mean", "_lower", "_upper"))]
    assert alone.profiles[cols].equals(given.profiles[cols])


def test_a_small_merchant_is_pooled_and_its_peers_decide_more_the_less_it_has(tmp_path_factory):
    """Below the bar: fitted under the population prior, the peers' share of the posterior
    precision larger for the smaller merchant, and the posterior of its parameters wider."""
    small, smaller = _merchant(tmp_path_factory, 240, 8), _merchant(tmp_path_factory, 60, 9)
    pop = _population()
    res = {n: _clv(ds, pop) for n, ds in (("small", small), ("smaller", smaller))}
    for r in res.values():
        pooling = r.metrics["pooling"]
        assert not r.eligible and pooling["used"] and pooling["peers"] == 4
        assert r.fit is not None and r.metrics["model"]["name"] in ("mbg_nbd", "pareto_nbd")
        assert 0 < pooling["prior_share"] < 1
        assert not r.metrics["forced"]
        assert r.profiles["predicted_orders_mean"].notna().all()
    assert res["smaller"].metrics["pooling"]["prior_share"] > \
        res["small"].metrics["pooling"]["prior_share"]
    # the posterior sd of log r: wider with less data, never wider than the prior
    sd = {n: np.std(np.log(r.fit.draws["r"])) for n, r in res.items()}
    assert sd["smaller"] > sd["small"] and sd["smaller"] < 0.3 * 1.1
    # unpooled and not forced: no fit, as before
    alone = _clv(small)
    assert alone.fit is None and not alone.metrics["pooling"]["used"]
    assert "no population" in alone.metrics["pooling"]["reason"]


def test_pooling_off_and_the_floor_leave_a_small_merchant_unfitted(tmp_path_factory):
    tiny = _merchant(tmp_path_factory, 20, 4)
    below = _clv(tiny, _population())
    assert below.fit is None and not below.metrics["pooling"]["used"]
    assert "below the floor" in below.metrics["pooling"]["reason"]
    small = _merchant(tmp_path_factory, 120, 6)
    # every customer's orders on one day: no repeat purchase as the model counts them
    # (x = 0), so no repeat spend either; below the floor, however many orders
    one_day = small.orders.copy()
    first = one_day.groupby("profile_id")["placed_at"].transform("min")
    one_day["placed_at"] = first + (one_day["placed_at"] - first) / 1e6
    flat = dataclasses.replace(small, tables={**small.tables, "orders": one_day})
    assert (one_day.groupby("profile_id").size() >= 2).sum() > 0
    same_day = _clv(flat, _population())
    assert same_day.fit is None and "0 with a repeat order on another day" in \
        same_day.metrics["pooling"]["reason"]
    off = _clv(small, _population(), pooling="off")
    assert off.fit is None and off.metrics["pooling"]["reason"] == "clv.pooling is off"
    hand = _clv(small, _population(), model="mbg_cnbd")
    assert hand.fit is None and "no prior for clv.model mbg_cnbd" in \
        hand.metrics["pooling"]["reason"]


def test_hubnb_run_refuses_a_missing_or_broken_population_before_running(tmp_path, capsys):
    """`hubnb run --population FILE`: a bad file is one line naming it, and nothing runs."""
    from hubnb.cli import main

    params = tmp_path / "shop.yaml"
    params.write_text("merchant: shop\ndata: nowhere\ntimezone: UTC\nas_of: 2026-03-10\n")
    assert main(["run", str(params), "--out", str(tmp_path / "out"), "--population",
                 str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert f"population file {tmp_path / 'none.json'} does not exist" in err
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["run", str(params), "--out", str(tmp_path / "out"), "--population",
                 str(tmp_path / "bad.json")]) == 2
    assert "not a population file" in capsys.readouterr().err
    assert not (tmp_path / "out" / "shop").exists()


def test_a_broken_merchant_brings_an_error_and_too_few_peers_no_population(tmp_path):
    """One merchant's bad params or data never stops the batch's population step."""
    params = tmp_path / "gone.yaml"
    params.write_text("merchant: gone\ndata: nowhere\ntimezone: UTC\nas_of: 2026-03-10\n")
    evidence = P.merchant_evidence(params)
    assert "error" in evidence and "does not exist" in evidence["error"]
    assert P.learn_population([evidence]) is None
    two = [{"merchant": f"m{i}", "params": f"m{i}.yaml", "eligible": True,
            "summaries": {"mbg_nbd": P.Summary("mbg_nbd", np.zeros(7), np.eye(7) * 0.01)}}
           for i in range(P.MIN_MERCHANTS - 1)]
    assert P.learn_population(two + [evidence]) is None
