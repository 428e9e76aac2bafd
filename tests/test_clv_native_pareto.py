"""hubnb.clv.native_pareto: the numba Pareto/NBD + Gamma-Gamma density nutpie samples is the
PyMC model's, its rows are the closed form integrated by scipy, and its tails-by-pair
quadrature keeps full precision where t_x is close to T."""

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gammaln

from hubnb.clv import native_pareto as NP
from hubnb.clv.models import ParetoNBDModel, build_model, compress

from test_clv_models import _cdnow_sample_rfm


def reference_row_loglik(r, alpha, s, beta, x, t_x, T):
    """FH05 eq. (22) with the dropout integral by adaptive quadrature (scipy)."""
    log_f = lambda tau: -(r + x) * np.log(alpha + tau) - (s + 1) * np.log(beta + tau)  # noqa: E731
    log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    total = log_alive
    if T > t_x:   # the integrand relative to its largest value, at t_x, so nothing underflows
        rel = quad(lambda tau: np.exp(log_f(tau) - log_f(t_x)), t_x, T, epsabs=0,
                   epsrel=1e-12, limit=400)[0]
        total = np.logaddexp(log_alive, np.log(s) + log_f(t_x) + np.log(rel))
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + total


def test_rows_equal_the_closed_form_integrated_by_scipy():
    rng = np.random.default_rng(4)
    rows = [(0, 0.0, 30.0), (0, 0.0, 3000.0), (1, 5.0, 6.0), (3, 250.0, 250.0),
            (40, 10.0, 400.0), (200, 2999.0, 3000.0), (7, 100.0, 5000.0)]
    for _ in range(12):
        x = int(rng.integers(0, 60))
        T = float(rng.integers(1, 2000))
        rows.append((x, 0.0 if x == 0 else float(rng.integers(0, T + 1)), T))
    x, t_x, T = (np.array(c, dtype=float) for c in zip(*rows))
    for _ in range(6):
        r, s = np.exp(rng.uniform(np.log(0.05), np.log(10), 2))
        alpha, beta = np.exp(rng.uniform(np.log(1.0), np.log(5e4), 2))
        got = NP.row_loglik(r, alpha, s, beta, x, t_x, T)[0]
        for i in range(len(rows)):
            ref = reference_row_loglik(r, alpha, s, beta, x[i], t_x[i], T[i])
            assert got[i] == pytest.approx(ref, rel=1e-9, abs=1e-7), (r, alpha, s, beta, rows[i])


def test_alpha_equal_to_beta_and_draws_broadcast():
    x, t_x, T = np.array([0.0, 2.0]), np.array([0.0, 20.0]), np.array([50.0, 60.0])
    got = NP.row_loglik(np.array([0.5, 0.7]), np.array([30.0, 30.0]), np.array([0.6, 0.6]),
                        np.array([30.0, 40.0]), x, t_x, T)
    assert got.shape == (2, 2)
    for d, (r, beta) in enumerate([(0.5, 30.0), (0.7, 40.0)]):
        for i in range(2):
            assert got[d, i] == pytest.approx(
                reference_row_loglik(r, 30.0, 0.6, beta, x[i], t_x[i], T[i]), rel=1e-10)


def test_native_logp_and_gradient_equal_the_pymc_model():
    data = compress(_cdnow_sample_rfm())
    m = build_model(ParetoNBDModel, data)
    names = [v.name for v in m.value_vars]
    assert tuple(names) == NP.UNCONSTRAINED
    logp, dlogp = m.compile_logp(jacobian=True), m.compile_dlogp(jacobian=True)
    mine = NP.make_logp(data.arrays)
    rng = np.random.default_rng(0)
    # around the posterior (days: r ~ 0.5, alpha ~ 75, s ~ 0.6, beta ~ 80) and further out
    centre = np.log([0.55, 75.0, 0.6, 80.0, 5.0, 3.0, 1.0])
    for scale in (0.1, 0.1, 0.5, 0.5, 1.0):
        theta = centre + rng.normal(0, scale, 7)
        point = dict(zip(names, theta))
        val, grad = mine(theta)
        assert val == pytest.approx(float(logp(point)), rel=1e-9, abs=1e-6)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-6, atol=1e-6)


def test_gradient_matches_finite_differences_far_from_the_posterior():
    data = compress(_cdnow_sample_rfm())
    mine = NP.make_logp(data.arrays)
    rng = np.random.default_rng(1)
    for _ in range(3):
        theta = NP.PRIOR_MU + rng.normal(0, 1.0, 7)
        _, grad = mine(theta)
        h = 1e-5
        for i in range(7):
            e = np.zeros(7)
            e[i] = h
            fd = (mine(theta + e)[0] - mine(theta - e)[0]) / (2 * h)
            assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-4), (i, theta)
