"""Fits (and what follows from them) kept on disk, so an analyst's rerun does not refit.

A fit depends only on the compressed data (:func:`hubnb.clv.histories.compress`), the
model, the sampler's settings (chains, draws, tune, seed) and the code. Changing a segment,
a churn band, the locale or anything else the fit does not read leaves all of these as they
were, so the rerun finds the fit here. What follows from the fits alone is kept the same
way: the model choice (its PSIS-LOO scores) and the predictions (for up to
:data:`MAX_CACHED_PROFILES` profiles), keyed by the fits' draws and the customers' data.

The key is the SHA-256 of all of that: every array of the compressed data (bytes and
shape), the kind of fit and its settings, hubnb's version and the source of the CLV engine's
modules (a change of the code is a new key). Entries are pickles in ``$HUBNB_CACHE_DIR/fits``
(default ``~/.cache/hubnb/fits``), written whole (a temporary file, then a rename), the
newest :data:`MAX_ENTRIES` kept. ``HUBNB_FIT_CACHE=0`` turns the cache off. An entry that
cannot be read is ignored and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..params import ClvParams
from .laplace import laplace_fit
from .models import ClvModel, FitResult

#: Entries kept (the least recently used beyond these are removed).
MAX_ENTRIES = 64
#: Predictions of more profiles than this are not kept (their pickle would cost more to
#: write and read than they cost to compute again).
MAX_CACHED_PROFILES = 200_000
#: The modules whose code a fit depends on.
_ENGINE = ("histories.py", "models.py", "native.py", "native_pareto.py", "purchase.py",
           "bg_nbd.py", "mbg_nbd.py", "pareto_nbd.py", "mbg_cnbd.py", "formulas.py",
           "laplace.py", "predict.py", "selection.py", "psis.py")
_CODE: list = []


def enabled() -> bool:
    return os.environ.get("HUBNB_FIT_CACHE", "1").strip().lower() not in ("0", "false", "no",
                                                                          "off")


def folder() -> Path:
    from .native import cache_dir

    return cache_dir() / "fits"


def _code_digest() -> str:
    if not _CODE:
        digest = hashlib.sha256()
        here = Path(__file__).parent
        for name in _ENGINE:
            digest.update((here / name).read_bytes())
        _CODE.append(digest.hexdigest())
    return _CODE[0]


def key(kind: str, arrays: dict, **settings) -> str:
    """The cache key of a fit of ``kind`` on ``arrays`` with ``settings``."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"kind": kind, "settings": settings, "hubnb": __version__,
                              "code": _code_digest()}, sort_keys=True).encode())
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def cached(kind: str, arrays: dict, compute, **settings):
    """``(result, hit)``: the stored result of ``compute()`` for this key, else computed and
    stored. ``hit`` says whether it came from the cache."""
    if not enabled():
        return compute(), False
    path = folder() / f"{key(kind, arrays, **settings)}.pickle"
    try:
        with open(path, "rb") as handle:
            result = pickle.load(handle)
        os.utime(path)          # recently used
        return result, True
    except FileNotFoundError:
        pass
    except Exception:           # unreadable (cut short, or from another version): replaced
        path.unlink(missing_ok=True)
    result = compute()
    _store(path, result)
    return result, False


def _store(path: Path, result) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:             # a read-only or full cache folder: run without it
        return
    entries = sorted(path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-MAX_ENTRIES]:
        old.unlink(missing_ok=True)


def nuts_fit(name: str, data, p: ClvParams, progress: bool = False) -> FitResult:
    """``name`` (+ Gamma-Gamma) sampled with NUTS on ``data``, from the fit cache when the
    same data, model, settings and code were fitted before (:mod:`hubnb.clv.fitcache`);
    ``diagnostics["fit_cache_hit"]`` says which."""
    settings = {"model": name, "chains": p.chains, "draws": p.draws, "tune": p.tune,
                "seed": p.seed}
    fit, hit = cached("nuts", data.arrays, lambda: ClvModel(name).fit(
        data, chains=p.chains, draws=p.draws, tune=p.tune, seed=p.seed, progress=progress),
        **settings)
    return replace(fit, diagnostics={**fit.diagnostics, "fit_cache_hit": hit})


def posterior_fit(name: str, data, p: ClvParams, progress: bool = False,
                  quick=None) -> FitResult:
    """The posterior of ``name`` (+ Gamma-Gamma) on ``data``: with
    :data:`~hubnb.clv.laplace.LARGE_ROWS` or more distinct purchase histories and a Laplace
    approximation whose Pareto k is at most :data:`~hubnb.clv.laplace.K_POSTERIOR`, its
    importance-resampled draws (:func:`~hubnb.clv.laplace.importance_posterior`, seconds
    where NUTS takes minutes); otherwise NUTS (:func:`nuts_fit`). ``quick`` is the
    approximation when it was already made (``auto``'s first pass)."""
    from .laplace import K_POSTERIOR, LARGE_ROWS, importance_posterior

    if data.purchase_rows >= LARGE_ROWS:
        quick = quick if quick is not None else quick_fit(name, data, p.seed)
        if quick is not None and quick.pareto_k <= K_POSTERIOR:
            fit = importance_posterior(quick, seed=p.seed)
            return replace(fit, diagnostics={**fit.diagnostics, "fit_cache_hit": False})
    return nuts_fit(name, data, p, progress)


def quick_fit(name: str, data, seed: int, draws: int | None = None):
    """:func:`hubnb.clv.laplace.laplace_fit` (``draws``: its default unless given), through
    the fit cache."""
    from .laplace import LAPLACE_DRAWS

    draws = int(draws or LAPLACE_DRAWS)
    return cached("laplace", data.arrays, lambda: laplace_fit(name, data, draws=draws,
                                                              seed=seed),
                  model=name, seed=seed, draws=draws)[0]


def mode_score(name: str, data, start=None) -> tuple:
    """:func:`hubnb.clv.laplace.mode_score`, through the fit cache (a mode found from
    another start is the same mode, to the optimiser's tolerance)."""
    from .laplace import mode_score as score

    return cached("mode", data.arrays, lambda: score(name, data, start), model=name)[0]


# ------------------------------------------------- what follows a fit, for the same rerun

def _fit_arrays(fits: dict) -> dict:
    """The draws of each fit (NUTS or Laplace) as named arrays, for a cache key."""
    arrays = {}
    for name in sorted(fits):
        fit = fits[name]
        for param in sorted(fit.draws):
            arrays[f"{name}.{param}"] = np.asarray(fit.draws[param], dtype=float)
        log_p = getattr(fit, "log_p", None)
        if log_p is not None:
            arrays[f"{name}.log_p"], arrays[f"{name}.log_q"] = fit.log_p, fit.log_q
    return arrays


def approximate_fit(name: str, data, p: ClvParams, progress: bool = False) -> FitResult:
    """A backtest's other candidates: the importance-resampled Laplace approximation
    (:func:`~hubnb.clv.laplace.importance_posterior`) where it is trusted (Pareto k of its
    weights at most :data:`~hubnb.clv.laplace.K_GOOD`), else NUTS (:func:`nuts_fit`)."""
    from .laplace import CANDIDATE_LAPLACE_DRAWS
    from .laplace import K_GOOD, importance_posterior

    quick = quick_fit(name, data, p.seed, draws=CANDIDATE_LAPLACE_DRAWS)
    if quick is not None and quick.pareto_k <= K_GOOD:
        fit, hit = cached("approximate", data.arrays,
                          lambda: importance_posterior(quick, seed=p.seed), model=name,
                          seed=p.seed, draws=CANDIDATE_LAPLACE_DRAWS)
        return replace(fit, diagnostics={**fit.diagnostics, "fit_cache_hit": hit})
    return nuts_fit(name, data, p, progress)


def predictions(fit, rfm, horizon_days: int, credible_interval: float, seed: int,
                max_draws: int | None = None):
    """:func:`hubnb.clv.predict.predict`, through the cache: the same draws and the same
    customers (every profile id and its frequency, recency, T and spend) give the same
    predictions."""
    import pandas as pd

    from .predict import predict

    from .predict import MAX_DRAWS

    draws = int(max_draws or MAX_DRAWS)
    if len(rfm) > MAX_CACHED_PROFILES:      # large: recomputed (quicker than a big pickle)
        return predict(fit, rfm, horizon_days, credible_interval, seed=seed, max_draws=draws)
    arrays = _fit_arrays({fit.model_name: fit})
    arrays["profiles"] = pd.util.hash_pandas_object(rfm, index=True).to_numpy()
    return cached("predict", arrays, lambda: predict(fit, rfm, horizon_days, credible_interval,
                                                     seed=seed, max_draws=draws),
                  model=fit.model_name, horizon_days=horizon_days,
                  credible_interval=credible_interval, seed=seed, max_draws=draws)[0]


def backtest_part(kind: str, fit, frames: dict, compute, **settings):
    """``compute()`` (a backtest's tracking or cumulative frame), through the cache: the same
    draws, the same ``frames`` (hashed row by row) and settings give the same frame. Not
    kept past :data:`MAX_CACHED_PROFILES` rows (hashing them would cost more)."""
    import pandas as pd

    if max(len(f) for f in frames.values()) > MAX_CACHED_PROFILES:
        return compute()
    arrays = _fit_arrays({fit.model_name: fit})
    for name, frame in frames.items():
        arrays[f"frame.{name}"] = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return cached(kind, arrays, compute, model=fit.model_name, **settings)[0]


def model_choice(fits: dict, method: str = "psis-loo"):
    """:func:`hubnb.clv.selection.choose_model`, through the cache (its PSIS-LOO scores
    depend only on the fits' draws and the data)."""
    from .selection import choose_model

    data = next(iter(fits.values())).data
    arrays = {**_fit_arrays(fits), **{f"data.{k}": v for k, v in data.arrays.items()}}
    return cached("choice", arrays, lambda: choose_model(fits, method=method), method=method)[0]
