"""The Pareto/NBD likelihood by quadrature (hubnb.clv.pareto_nbd) against FH05's closed form with
scipy's 2F1 (written here, independently of hubnb.clv.formulas), its gradient against finite
differences, compression, and a fit on the CDNOW sample against maximum likelihood."""

import time

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.integrate import quad
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

from hubnb.clv import ClvModel
from hubnb.clv import pareto_nbd
from hubnb.clv.histories import compress, uncompressed
from test_clv_models import _cdnow_sample_rfm  # the CDNOW sample's calibration RFM

NAMES = ("r", "alpha", "s", "beta")

# (r, alpha, s, beta), days
POINTS = [
    (0.55, 74.0, 0.61, 82.0),          # near the CDNOW MLE (alpha < beta)
    (0.55, 82.0, 0.61, 74.0),          # alpha > beta
    (0.5, 60.0, 0.8, 60.0),            # alpha = beta: 2F1 argument 0
    (0.5, 60.0, 0.8, 60.0 * (1 + 1e-9)),
    (0.25, 20.0, 1.5, 400.0),
    (2.0, 300.0, 0.2, 15.0),
    (0.05, 3.0, 3.0, 1000.0),
]
# (x, t_x, T) in days: CDNOW-like rows and edge rows (x = 0, t_x = T, large T, large x)
ROWS = np.array([(0, 0, 30), (0, 0, 272), (1, 20, 100), (3, 250, 260), (5, 40, 300),
                 (12, 290, 300), (29, 10, 272), (2, 100, 100), (1, 1, 1), (7, 199, 200),
                 (0, 0, 5000), (3, 200, 5000), (50, 400, 3000)], dtype=float)


def ref_loglik(r, alpha, s, beta, x, t_x, T):
    """FH05 eq. (22)-(24): the likelihood with A_0 as a difference of two 2F1 terms."""
    r, alpha, s, beta = map(float, (r, alpha, s, beta))
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    m = r + s + x
    if alpha >= beta:
        b, big = s + 1, alpha
    else:
        b, big = r + x, beta
    gap = abs(alpha - beta)
    a0 = (hyp2f1(m, b, m + 1, gap / (big + t_x)) / (big + t_x) ** m
          - hyp2f1(m, b, m + 1, gap / (big + T)) / (big + T) ** m)
    return (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
            + np.log((alpha + T) ** -(r + x) * (beta + T) ** -s + s / m * a0))


def quadrature_loglik_fn():
    """Compiled per-row log-likelihood of hubnb.clv.pareto_nbd at log-parameters theta."""
    theta = pt.dvector("theta")
    r, alpha, s, beta = (pt.exp(theta[i]) for i in range(4))
    x, t_x, T = pt.dvectors("x", "t_x", "T")
    ll = (pt.gammaln(r + x) - pt.gammaln(r) + r * pt.log(alpha) + s * pt.log(beta)
          + pareto_nbd.row_loglike(r, alpha, s, beta, x, t_x, T))
    return pytensor.function([theta, x, t_x, T], ll)


def compressed_loglik_fn(arrays):
    """Compiled pareto_nbd.loglike on data arrays: value and gradient at log-parameters."""
    theta = pt.dvector("theta")
    v = {n: pt.exp(theta[i]) for i, n in enumerate(NAMES)}
    d = {k: pt.constant(np.asarray(a, dtype=float)) for k, a in arrays.items()}
    ll = pareto_nbd.loglike(v, d)
    return pytensor.function([theta], [ll, pt.grad(ll, theta)])


def test_quadrature_equals_the_hypergeometric_closed_form():
    f = quadrature_loglik_fn()
    x, t_x, T = ROWS.T
    for p in POINTS:
        got = f(np.log(p), x, t_x, T)
        ref = np.array([ref_loglik(*p, *row) for row in ROWS])
        assert np.all(np.isfinite(ref))
        # an absolute error in the log is a relative error of the likelihood
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-8, err_msg=str(p))


def test_quadrature_holds_where_the_closed_form_overflows():
    # many repeat purchases with alpha << beta: 2F1(r+s+x, r+x; r+s+x+1; z -> 1) overflows,
    # the integral over the dropout time does not
    p, row = (0.1, 5.0, 0.05, 2000.0), (170.0, 20.0, 545.0)
    r, alpha, s, beta = p
    x, t_x, T = row
    with np.errstate(all="ignore"):
        assert not np.isfinite(ref_loglik(*p, *row))
    c = -(r + x) * np.log(alpha + t_x) - (s + 1) * np.log(beta + t_x)
    integral, _ = quad(lambda t: np.exp(-(r + x) * np.log(alpha + t)
                                        - (s + 1) * np.log(beta + t) - c),
                       t_x, T, epsabs=0, epsrel=1e-13, limit=500)
    ref = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
           + np.logaddexp(-(r + x) * np.log(alpha + T) - s * np.log(beta + T),
                          np.log(s) + c + np.log(integral)))
    got = quadrature_loglik_fn()(np.log(p), *(np.array([v]) for v in row))[0]
    assert got == pytest.approx(ref, abs=1e-8)


def test_gradient_matches_finite_differences():
    rows = pd.DataFrame(ROWS, columns=["frequency", "recency", "T"]).astype(int)
    rows["monetary_value"] = 10.0
    f = compressed_loglik_fn(uncompressed(rows).arrays)
    h = 1e-5
    for p in POINTS:
        theta = np.log(p)
        _, grad = f(theta)
        fd = np.array([(f(theta + h * e)[0] - f(theta - h * e)[0]) / (2 * h)
                       for e in np.eye(4)])
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-5, err_msg=str(p))
        # and the gradient of the closed form, by finite differences
        ref = [ref_loglik(*np.exp(theta + sgn * h * e), *ROWS.T).sum()
               for e in np.eye(4) for sgn in (1, -1)]
        np.testing.assert_allclose(grad, (np.array(ref[::2]) - ref[1::2]) / (2 * h),
                                   rtol=1e-6, atol=1e-5, err_msg=str(p))


def test_compressed_weighted_sum_equals_the_per_profile_sum():
    rng = np.random.default_rng(5)
    n = 3000
    x = rng.poisson(rng.gamma(0.3, 2, n))
    T = rng.integers(190, 273, n)                     # 12 weeks of acquisitions, as CDNOW
    t_x = np.where(x > 0, np.maximum(1, (rng.random(n) * T).astype(int)), 0)
    rfm = pd.DataFrame({"frequency": x, "recency": t_x, "T": T,
                        "monetary_value": np.where(x > 0, 20.0, 0.0)})
    comp, full = compress(rfm), uncompressed(rfm)
    assert comp.purchase_rows < full.purchase_rows / 2
    f_comp, f_full = compressed_loglik_fn(comp.arrays), compressed_loglik_fn(full.arrays)
    for p in POINTS[:3]:
        got, got_grad = f_comp(np.log(p))
        ref, ref_grad = f_full(np.log(p))
        assert got == pytest.approx(ref, rel=1e-12)
        np.testing.assert_allclose(got_grad, ref_grad, rtol=1e-9)
        per_profile = ref_loglik(*p, x, t_x, T).sum()
        assert got == pytest.approx(per_profile, rel=1e-11)


# ---- fit on the CDNOW sample (calibration RFM shared with test_clv_models)


def _pareto_mle(rfm):
    rows, counts = np.unique(rfm[["frequency", "recency", "T"]].to_numpy(float), axis=0,
                             return_counts=True)

    def nll(theta):
        p = np.exp(theta)
        return -np.sum(counts * ref_loglik(*p, *rows.T))

    res = minimize(nll, np.log([0.5, 50.0, 0.5, 50.0]), method="Nelder-Mead",
                   options={"maxiter": 5000, "xatol": 1e-7, "fatol": 1e-7})
    assert res.success
    return dict(zip(NAMES, np.exp(res.x)))


def test_pareto_nbd_fit_on_cdnow_agrees_with_maximum_likelihood():
    rfm = _cdnow_sample_rfm()
    assert len(rfm) > 2300
    mle = _pareto_mle(rfm)
    # published (lifetimes, weeks): r 0.55, alpha 10.58, s 0.61, beta 11.67; alpha and beta
    # are 7 times larger in days
    assert mle["r"] == pytest.approx(0.55, abs=0.02)
    assert mle["alpha"] / 7 == pytest.approx(10.58, rel=0.05)
    assert mle["s"] == pytest.approx(0.61, abs=0.05)
    assert mle["beta"] / 7 == pytest.approx(11.67, rel=0.1)
    t0 = time.perf_counter()
    fit = ClvModel("pareto_nbd").fit(compress(rfm), chains=2, draws=300, tune=300, seed=2)
    seconds = time.perf_counter() - t0
    # a guard against the old 2F1 gradient (minutes), loose enough for a loaded machine
    assert seconds < 240, seconds                      # compilation included
    s = fit.params_summary
    for name, value in mle.items():
        assert abs(s.loc[name, "mean"] - value) < 2 * s.loc[name, "sd"], \
            (name, value, s.loc[name].to_dict())
    assert fit.diagnostics["divergences"] == 0
    assert fit.diagnostics["r_hat_max"] < 1.05
