"""Pareto/NBD + Gamma-Gamma: the PyMC path (nutpie's compilation of build_model) against the
native numba path (hubnb.clv.native_pareto), side by side in one process (not a test).

    python benchmarks/pareto_native_bench.py                 # logp timings and both fits
    python benchmarks/pareto_native_bench.py --no-fit        # logp + gradient timings only
    python benchmarks/pareto_native_bench.py --no-pymc-fit   # skip the slow PyMC fit
    python benchmarks/pareto_native_bench.py --draws 500 --tune 500

Data: CDNOW full (23,570 customers) and the 1/10 sample, as of 1998-06-30 (the period of
params/cdnow/cdnow.yaml), compressed as ClvModel.fit compresses them.

logp + gradient: seconds per call at the same points for both paths. The PyMC path is
nutpie's compiled numba cfunc called through ctypes (what nutpie's sampler calls, minus the
sampler); the native path is the Python callable nutpie's ``from_pyfunc`` calls (so its
Python call overhead is included). Each figure is the best of several batches: the machine
is shared, means are noisy.

Fits: 2 chains x draws after tune, nutpie low-rank adaptation, cores = chains, as
ClvModel.fit; wall time includes compilation (the native path's disk-cache load, the PyMC
path's compilation). Then posterior means of both fits with their Monte Carlo standard
errors and the difference in units of the combined MCSE.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import time

import numpy as np
import pandas as pd

from hubnb.clv import native_pareto as NP
from hubnb.clv.histories import compress
from hubnb.clv.models import ParetoNBDModel, build_model
from hubnb.clv.orders import counted_orders, rfm_summary
from hubnb.datasets import load_cdnow
from hubnb.params import OrderFilter

AS_OF = dt.date(1998, 6, 30)
NAMES = ParetoNBDModel.param_names + ("p", "q", "v_scaled")


def cdnow_rfm(kind: str) -> pd.DataFrame:
    tx = load_cdnow("master" if kind == "full" else kind)
    orders = pd.DataFrame({
        "order_id": np.arange(len(tx)), "profile_id": tx["customer_id"],
        "placed_at": (tx["date"] + pd.Timedelta(hours=12)).dt.tz_localize("UTC"),
        "value": tx["dollar_value"]})
    counted = counted_orders(orders, None, OrderFilter(), AS_OF, "UTC", 1500)
    return rfm_summary(counted, AS_OF)


def best_per_call(fn, calls: int, batches: int = 5) -> float:
    fn()
    best = np.inf
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def pymc_logp_caller(compiled):
    """Call nutpie's compiled logp + gradient cfunc of a PyMC model at theta."""
    cfunc = compiled.compiled_logp_func.ctypes
    n = compiled.n_dim
    user_data = ctypes.c_void_p(compiled.user_data.ctypes.data)
    grad = np.empty(n)
    out = np.empty(())
    ptr = ctypes.POINTER(ctypes.c_double)

    def call(theta):
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        rc = cfunc(n, theta.ctypes.data_as(ptr), grad.ctypes.data_as(ptr),
                   out.ctypes.data_as(ptr), user_data)
        return float(out), grad.copy(), rc

    return call


def time_logp(datasets: dict) -> dict:
    import nutpie

    rng = np.random.default_rng(0)
    centre = np.log([0.55, 75.0, 0.6, 80.0, 5.0, 3.0, 1.0])
    points = [centre] + [centre + rng.normal(0, 0.3, 7) for _ in range(2)]
    out = {}
    print("\n## logp + gradient, ms per call (best of 5 batches)")
    print(f"{'data':>8} {'rows':>7} {'pymc':>9} {'native':>9} {'ratio':>7}   max |d logp|")
    for kind, data in datasets.items():
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(build_model(ParetoNBDModel, data),
                                             freeze_model=False)
        compile_s = time.perf_counter() - t0
        pymc = pymc_logp_caller(compiled)
        native = NP.make_logp(data.arrays)
        diff = 0.0
        for th in points:
            a, _, rc = pymc(th)
            b, _ = native(th)
            assert rc == 0, rc
            diff = max(diff, abs(a - b))
        calls = max(20, int(2000 / data.purchase_rows))
        t_pymc = np.mean([best_per_call(lambda: pymc(th), calls) for th in points])
        t_native = np.mean([best_per_call(lambda: native(th), calls * 10) for th in points])
        out[kind] = {"rows": data.purchase_rows, "pymc_ms": 1e3 * t_pymc,
                     "native_ms": 1e3 * t_native, "ratio": t_pymc / t_native,
                     "pymc_compile_s": compile_s, "max_abs_logp_diff": diff}
        print(f"{kind:>8} {data.purchase_rows:>7} {1e3 * t_pymc:>9.3f} {1e3 * t_native:>9.3f} "
              f"{t_pymc / t_native:>6.1f}x   {diff:.2e}")
    return out


def fit(path: str, data, draws: int, tune: int, chains: int, seed: int) -> dict:
    import arviz as az
    import nutpie

    t0 = time.perf_counter()
    if path == "native":
        compiled, info = NP.compile_model(data.arrays)
    else:
        compiled = nutpie.compile_pymc_model(build_model(ParetoNBDModel, data),
                                             freeze_model=False)
        info = {}
    compile_s = time.perf_counter() - t0
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=chains,
                          seed=seed, progress_bar=False, adaptation="low_rank")
    wall = time.perf_counter() - t0
    post = idata["posterior"].to_dataset()[list(NAMES)]
    stats = idata["sample_stats"]
    steps = int(stats["n_steps"].sum()) if "n_steps" in stats else None
    summary = az.summary(post, kind="all", round_to="none")
    return {"wall_s": wall, "compile_s": compile_s, "cache_hit": info.get("cache_hit"),
            "gradient_evals": steps, "divergences": int(stats["diverging"].sum()),
            "r_hat_max": float(summary["r_hat"].max()),
            "ess_bulk_min": float(summary["ess_bulk"].min()),
            "mean": summary["mean"].to_dict(), "mcse": summary["mcse_mean"].to_dict()}


def compare_fits(data, args) -> dict:
    paths = ["native"] + ([] if args.no_pymc_fit else ["pymc"])
    res = {}
    for path in paths:
        print(f"\nfitting ({path}) ...", flush=True)
        res[path] = fit(path, data, args.draws, args.tune, args.chains, args.seed)
    print(f"\n## fit on CDNOW full: {args.chains} chains x {args.draws} draws after "
          f"{args.tune} tune (low-rank adaptation)")
    print(f"{'':22}" + "".join(f"{p:>14}" for p in paths))
    for key, spec in (("wall_s", ".1f"), ("compile_s", ".2f"), ("gradient_evals", "d"),
                      ("divergences", "d"), ("r_hat_max", ".4f"), ("ess_bulk_min", ".0f")):
        vals = [res[p][key] for p in paths]
        print(f"{key:22}" + "".join(f"{'-' if v is None else format(v, spec):>14}"
                                     for v in vals))
    if "pymc" in res:
        ratio = res["pymc"]["wall_s"] / res["native"]["wall_s"]
        print(f"fit wall time ratio pymc / native: {ratio:.1f}x")
        res["ratio"] = ratio
        print("\nposterior means (v_scaled: spend / mean repeat spend)")
        print(f"{'':10}{'native':>14}{'mcse':>10}{'pymc':>14}{'mcse':>10}{'z':>8}")
        for name in NAMES:
            a, sa = res["native"]["mean"][name], res["native"]["mcse"][name]
            b, sb = res["pymc"]["mean"][name], res["pymc"]["mcse"][name]
            z = (a - b) / np.hypot(sa, sb)
            print(f"{name:10}{a:>14.5g}{sa:>10.2g}{b:>14.5g}{sb:>10.2g}{z:>8.2f}")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-fit", action="store_true", help="logp timings only")
    ap.add_argument("--no-pymc-fit", action="store_true", help="fit the native path only")
    args = ap.parse_args()

    info = NP.warm_up()
    print(f"native warm-up: {info['seconds']:.2f} s (disk cache hit: {info['cache_hit']})")
    datasets = {kind: compress(cdnow_rfm(kind)) for kind in ("sample", "full")}
    for kind, d in datasets.items():
        print(f"CDNOW {kind}: {d.customers} customers, {d.purchase_rows} purchase rows, "
              f"{d.spend_rows} spend rows")
    time_logp({"full": datasets["full"], "sample": datasets["sample"]})
    if not args.no_fit:
        compare_fits(datasets["full"], args)


if __name__ == "__main__":
    main()
