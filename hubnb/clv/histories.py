"""The distinct purchase histories a merchant's customers reduce to.

Both CLV likelihoods are written on *compressed* data: one row per distinct (x, t_x, T) for
purchases and per distinct (x, z_bar) for spend, each weighted by how many profiles share
it (:func:`compress`). Fitting, prediction, model choice and the native likelihoods all
read these arrays; :func:`uncompressed` is the one-row-per-profile reference the
compression is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class CompressedData:
    """The sufficient data of the two likelihoods, as the arrays the PyMC model reads."""

    arrays: dict
    customers: int
    purchase_rows: int
    spend_rows: int
    spend_scale: float


def compress(rfm: pd.DataFrame) -> CompressedData:
    """Distinct rows and weights of an :func:`hubnb.clv.orders.rfm_summary` frame.

    Purchases: x = 0 rows reduce to distinct T; x > 0 rows to distinct (x, t_x, T).
    Spend: profiles with x > 0 and a positive mean repeat spend, as distinct (x, z_bar),
    with spend divided by its overall mean (``spend_scale``) so the prior of v is unit-free.
    """
    x = rfm["frequency"].to_numpy(np.int64)
    tx = rfm["recency"].to_numpy(np.int64)
    T = rfm["T"].to_numpy(np.int64)
    z = rfm["monetary_value"].to_numpy(float)
    xu, xc = np.unique(x, return_counts=True)
    zero = x == 0
    T0, w0 = np.unique(T[zero], return_counts=True)
    rows1, inverse1, w1 = np.unique(np.stack([x[~zero], tx[~zero], T[~zero]], axis=1), axis=0,
                                    return_inverse=True, return_counts=True)
    rows1 = rows1.reshape(-1, 3)
    inverse1 = inverse1.reshape(-1)
    # MBG/CNBD-k's per-customer constant needs the log gaps: their sum and sum of squares
    # per history (for the standard errors of PSIS-LOO); 0 without the column
    litt = (rfm["litt"].to_numpy(float)[~zero] if "litt" in rfm else np.zeros((~zero).sum()))
    sp = (x > 0) & (z > 0)
    scale = float(np.average(z[sp], weights=x[sp])) if sp.any() else 1.0
    zs = z[sp] / scale
    g, gw = np.unique(np.stack([x[sp].astype(float), zs], axis=1), axis=0, return_counts=True)
    g = g.reshape(-1, 2)
    gxu, gxc = np.unique(x[sp], return_counts=True)
    gx, gz, gw = g[:, 0], g[:, 1], gw.astype(float)
    arrays = {
        "x_uniq": xu.astype(float), "x_count": xc.astype(float),
        "n_customers": np.array(float(len(x))),
        "T0": T0.astype(float), "w0": w0.astype(float),
        "x1": rows1[:, 0].astype(float), "tx1": rows1[:, 1].astype(float),
        "T1": rows1[:, 2].astype(float), "w1": w1.astype(float),
        "litt1": np.bincount(inverse1, weights=litt, minlength=len(w1)).astype(float),
        "litt1_sq": np.bincount(inverse1, weights=litt ** 2, minlength=len(w1)).astype(float),
        "has_litt": np.array(float("litt" in rfm)),
        "gx_uniq": gxu.astype(float), "gx_count": gxc.astype(float),
        "n_spenders": np.array(float(sp.sum())),
        "gx": gx, "gz": gz, "gw": gw,
        "g_s1": np.array(float(np.sum(gw * gx * (np.log(gz) + np.log(gx))))),
        "g_s0": np.array(float(np.sum(gw * np.log(gz)))),
    }
    return CompressedData(arrays, len(x), len(T0) + len(w1), len(gw), scale)


def prior_keys(model: str) -> tuple[str, str]:
    """The names under which a compressed data set's arrays carry another prior of
    ``model``'s seven unconstrained coordinates than the default (a batch's population
    prior, :mod:`hubnb.clv.population`): the native log densities read it there
    (:func:`hubnb.clv.native.prior_of`)."""
    return f"prior_mu.{model}", f"prior_sigma.{model}"


def with_prior(data: CompressedData, priors: dict) -> CompressedData:
    """``data`` whose arrays carry each model's prior of ``priors`` (model name -> an object
    with ``prior_mu`` and ``prior_sigma``, :class:`hubnb.clv.population.ModelPopulation`).
    The fit cache, keyed by the arrays, then tells a pooled fit from the merchant's own."""
    from dataclasses import replace

    arrays = dict(data.arrays)
    for name, pop in priors.items():
        k_mu, k_sigma = prior_keys(name)
        arrays[k_mu] = np.asarray(pop.prior_mu, dtype=float)
        arrays[k_sigma] = np.asarray(pop.prior_sigma, dtype=float)
    return replace(data, arrays=arrays)


def history_rows(arrays: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T, n) of every distinct purchase history of the compressed arrays."""
    zeros = np.zeros_like(arrays["T0"])
    x = np.concatenate([zeros, arrays["x1"]])
    t_x = np.concatenate([zeros, arrays["tx1"]])
    T = np.concatenate([arrays["T0"], arrays["T1"]])
    n = np.concatenate([arrays["w0"], arrays["w1"]])
    return x, t_x, T, n


def history_litt(arrays: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct history (in :func:`history_rows`' order), the sum over its customers of
    litt (the log gaps between their orders) and of litt squared; zeros for x = 0."""
    zeros = np.zeros_like(arrays["T0"])
    s1 = arrays.get("litt1", np.zeros_like(arrays["x1"]))
    s2 = arrays.get("litt1_sq", np.zeros_like(arrays["x1"]))
    return np.concatenate([zeros, s1]), np.concatenate([zeros, s2])


def uncompressed(rfm: pd.DataFrame) -> CompressedData:
    """One row per profile (weights 1): the reference the compression is tested against."""
    data = compress(rfm)
    x = rfm["frequency"].to_numpy(float)
    tx = rfm["recency"].to_numpy(float)
    T = rfm["T"].to_numpy(float)
    z = rfm["monetary_value"].to_numpy(float)
    a = dict(data.arrays)
    zero = x == 0
    a.update(T0=T[zero], w0=np.ones(zero.sum()), x1=x[~zero], tx1=tx[~zero], T1=T[~zero],
             w1=np.ones((~zero).sum()))
    litt = rfm["litt"].to_numpy(float)[~zero] if "litt" in rfm else np.zeros((~zero).sum())
    a.update(litt1=litt, litt1_sq=litt ** 2)
    sp = (x > 0) & (z > 0)
    a.update(gx=x[sp], gz=z[sp] / data.spend_scale, gw=np.ones(sp.sum()))
    return CompressedData(a, data.customers, len(x), int(sp.sum()), data.spend_scale)
