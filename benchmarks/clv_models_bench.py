"""Benchmark of the purchase models Pareto/NBD, MBG/NBD, BG/NBD and clv.model auto (not a test).

Commands (from the project folder, after `make env`, which also registers the "hubnb" kernel, and
`make data/demo/.complete` for the holdout table's demo merchant):

    # once: the benchmark venv (pymc-marketing must stay out of .venv: it downgrades pymc/numpy)
    make bench-env                                    # .venv-bench, with the `bench` extra

    .venv-bench/bin/python benchmarks/clv_models_bench.py                      # every part
    .venv-bench/bin/python benchmarks/clv_models_bench.py --only pareto
    .venv-bench/bin/python benchmarks/clv_models_bench.py --only pmm-pareto
    .venv-bench/bin/python benchmarks/clv_models_bench.py --only auto
    .venv-bench/bin/python benchmarks/clv_models_bench.py --only holdout
    .venv-bench/bin/python benchmarks/clv_models_bench.py --draws 50 --tune 50   # smoke run

Defaults: 1000 draws and 1000 tune per chain, the chains of the params files (2). Results
are printed and written to benchmarks/results/clv_models_<part>_<UTC time>.json.

Environments (one per side, the same in every part):

* hubnb side: the project's own venv, .venv (``--hubnb-python``). ``hubnb run``
  is ``.venv/bin/hubnb run`` in a new process; its notebooks run on the Jupyter
  kernel "hubnb" registered by `make env` (it points at .venv/bin/python; the
  script checks that and otherwise leaves the notebooks' own "python3" kernel, which
  Papermill starts with the Python running `hubnb run`, i.e. the same .venv). compute_clv
  runs (pmm-pareto, holdout) are a new .venv/bin/python process each, started
  on this file with ``--worker``: fresh, as a notebook kernel is, and with the pymc/numpy
  the test suite uses.
* pymc-marketing side: this process, .venv-bench/bin/python (pymc-marketing, its pymc
  and numpy; hubnb imported from the same editable checkout only for benchmarks/clv_bench.py).

The compile cache of hubnb's native models is the user's (HUBNB_CACHE_DIR or ~/.cache/hubnb)
unless ``--cold-cache`` gives every hubnb process an empty one. pymc-marketing's pytensor
compilation (~/.pytensor) is warm after its first run.

Parts:

pareto: ``hubnb run`` on CDNOW full (params/cdnow/cdnow.yaml with ``clv.model`` overridden, in a
  temporary params file whose ``data:`` is the CDNOW dataset written by ``hubnb cdnow-data``
  into --cache), end-to-end wall time of the process (both notebooks, the main fit and the
  273-day backtest fit, HTML), pareto_nbd then bg_nbd; the ratio pareto / bg_nbd (target
  <= 1.5) and each run's R-hat max (main fit and backtest fit; target <= 1.01).

pmm-pareto: the CDNOW 1/10 sample calibrated to 1997-09-30. pymc-marketing's ParetoNBDModel
  fitted by NUTS (``fit(method="mcmc", draws=, tune=, chains=, cores=)``: pm.sample's
  default NUTS, which under pymc 6 is nutpie when nutpie is installed, as it is here as a
  hubnb dependency; ``--pmm-nuts-sampler pymc`` for pymc's own) with hubnb's chains and
  draws, then expected_purchases over the horizon
  (--pmm-horizon-days, default 273 = the 39-week holdout) and expected_probability_alive for
  every customer; against hubnb's compute_clv with model pareto_nbd and the same horizon
  (RFM, joint Pareto/NBD + Gamma-Gamma fit and every prediction with intervals). Both read
  the same RFM (hubnb's, written by the worker). pymc-marketing's time unit is WEEKS
  (recency and T in days / 7, future_t = horizon / 7; --pmm-unit days to change): its
  default priors (alpha, beta ~ Weibull(2, 10)) are scaled for weeks and would pin the
  day-scale alpha (~70) and beta far in their tail. Its alpha and beta are printed in days
  (x 7) beside hubnb's. Times: hubnb's compute_clv call (and its whole process), against
  pymc-marketing from the RFM frame to both predictions (build, compile, sample, predict).

auto: ``hubnb run`` on CDNOW full with ``clv.model: auto`` end to end (two candidates, each
  fitted on the full data and on the backtest's calibration), then pymc-marketing's BG/NBD +
  Gamma-Gamma anchor (``run_pymc_marketing`` of benchmarks/clv_bench.py: RFM, two MCMC fits,
  customer_lifetime_value; no backtest) in this process; the speed-up (target >= 4x), the
  winner and both candidates' elpd_loo from metrics.json.

holdout: the README's table. For bg_nbd, mbg_nbd and pareto_nbd on (a) the CDNOW 1/10 sample
  and (b) CDNOW full, as of 1998-06-30 with backtest_days 273 (calibration to 1997-09-30),
  and (c) the demo merchant (params/demo.yaml, data/demo, backtest_days 90): compute_clv in
  a fresh worker per cell; the backtest's holdout total error %, per-customer correlation,
  coverage of the 90% predictive intervals of orders (and what the model expects for
  whole-number counts), churn AUC, next-date AUC, fit seconds (main fit / calibration fit),
  R-hat max, and from the main fit's profiles the share of one-order customers
  (historical_orders == 1) with churn probability 0 (mean below 1e-12) and the share of
  profiles with an expected next order date. Printed as a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARAMS_FILES = {"demo": ROOT / "params" / "demo.yaml",
                "cdnow": ROOT / "params" / "cdnow" / "cdnow.yaml"}
RESULTS = HERE / "results"
MODELS = ("bg_nbd", "mbg_nbd", "pareto_nbd")
CDNOW_AS_OF = dt.date(1998, 6, 30)
CDNOW_CAL_END = dt.date(1997, 9, 30)
RESULT_TAG = "@@CLV_MODELS_BENCH_RESULT "
ONE_ORDER_CHURN0_BELOW = 1e-12

#: metrics.json keys the benchmark looked for and did not find (printed at the end).
MISSING: list[str] = []
#: hubnb errors met on the way (printed at the end and kept in the JSON).
ERRORS: list[dict] = []


# ----------------------------------------------------------------------------- helpers

def dig(obj, dotted: str, where: str = "metrics.json"):
    """obj[a][b][c] for "a.b.c"; None (and noted in MISSING) when a key is absent."""
    cur = obj
    for key in dotted.split("."):
        if not isinstance(cur, dict) or key not in cur:
            MISSING.append(f"{where}: {dotted}")
            return None
        cur = cur[key]
    return cur


def fmt(x, spec=".3f", none="n/a"):
    return none if x is None else format(x, spec)


def verdict(ok) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def tail(text: str, n: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def error_excerpt(stderr: str, n: int = 25) -> str:
    """The tail of a failed process's stderr, preceded by the first panic of a Rust extension
    (nutpie prints the root cause first and a cascade of secondary panics after it)."""
    lines = stderr.rstrip().splitlines()
    first = next((i for i, ln in enumerate(lines) if "panicked at" in ln), None)
    head = ""
    if first is not None and first < len(lines) - n:
        head = "\n".join(lines[first:first + 4]) + "\n[...]\n"
    return head + "\n".join(lines[-n:])


def notebook_traceback(message: str, n: int = 25) -> str | None:
    """The last lines of the traceback in the executed notebook a failed `hubnb run` kept."""
    m = re.search(r"executed notebook kept at (\S+?\.ipynb)", message)
    if not m or not Path(m.group(1)).is_file():
        return None
    nb = json.loads(Path(m.group(1)).read_text())
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                text = "\n".join(out.get("traceback", []))
                return tail(re.sub(r"\x1b\[[0-9;]*m", "", text), n)
    return None


def record_error(where: str, text: str, full_log: str | None = None) -> None:
    """Note a failure; the full stderr of the failed process goes to benchmarks/results/."""
    entry = {"where": where, "error": text}
    if full_log:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"clv_models_error_{re.sub(r'[^A-Za-z0-9]+', '_', where)}_{stamp}.log"
        path.write_text(full_log)
        entry["log"] = str(path)
    ERRORS.append(entry)
    print(f"!! {where} failed:\n{text}" + (f"\n(full stderr: {entry['log']})" if full_log else ""))


def check_hubnb_env(args) -> None:
    for exe in (args.hubnb_python, args.hubnb):
        if not Path(exe).is_file():
            sys.exit(f"{exe} not found: run `make env` in {ROOT} first (or pass --hubnb-python "
                     "and --hubnb)")


def hubnb_kernel(args) -> str | None:
    """"hubnb" when that kernel runs --hubnb-python, else None (the notebooks' python3, which
    Papermill starts with the Python running `hubnb run`: the same environment)."""
    if args.kernel != "auto":
        return args.kernel or None
    code = ("import json; from jupyter_client.kernelspec import KernelSpecManager as K\n"
            "try: print(json.dumps(K().get_kernel_spec('hubnb').argv))\n"
            "except Exception: print('null')")
    out = subprocess.run([args.hubnb_python, "-c", code], capture_output=True, text=True)
    try:
        argv = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        argv = None
    if argv and os.path.realpath(argv[0]) == os.path.realpath(args.hubnb_python):
        return "hubnb"
    print(f"note: kernel 'hubnb' is {argv and argv[0]!r}, not {args.hubnb_python}; the "
          "notebooks run on their own python3 kernel (the Python of `hubnb run`)")
    return None


def env_for(args) -> tuple[dict, tempfile.TemporaryDirectory | None]:
    env = dict(os.environ)
    if args.cold_cache:
        tmp = tempfile.TemporaryDirectory(prefix="hubnb-bench-compile-cache-")
        env["HUBNB_CACHE_DIR"] = tmp.name
        return env, tmp
    return env, None


# ----------------------------------------------------------------------------- data

def cdnow_dir(args, kind: str) -> Path:
    """The CDNOW dataset (`hubnb cdnow-data --kind KIND`) in --cache, written once."""
    out = args.cache / f"cdnow_{kind}"
    if not (out / ".complete").is_file():
        args.cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([args.hubnb, "cdnow-data", "--out", str(out), "--kind", kind], check=True,
                       stdout=subprocess.DEVNULL)
        (out / ".complete").touch()
    return out


def demo_dir() -> Path:
    out = ROOT / "data" / "demo"
    if not (out / ".complete").is_file():
        sys.exit(f"{out} is missing: build it with `make data/demo/.complete` in {ROOT}")
    return out


def write_params(tmpdir: Path, source: str, name: str, data_dir: Path, **overrides) -> Path:
    """A copy of params/demo.yaml or params/cdnow/cdnow.yaml (``source``) with ``data``
    absolute, ``merchant`` = name and the ``clv`` keys of ``overrides`` replaced (a None value
    is skipped); ``as_of`` is top level."""
    import yaml

    raw = yaml.safe_load(PARAMS_FILES[source].read_text())
    raw["merchant"] = name
    raw["data"] = str(data_dir)
    as_of = overrides.pop("as_of", None)
    if as_of is not None:
        raw["as_of"] = as_of
    raw.setdefault("clv", {}).update({k: v for k, v in overrides.items() if v is not None})
    path = tmpdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# ----------------------------------------------------------------------------- hubnb side

def hubnb_run(args, params: Path, label: str) -> dict:
    """`hubnb run params` in a new process: wall seconds and metrics.json (None on failure)."""
    kernel = hubnb_kernel(args)
    env, cache = env_for(args)
    with tempfile.TemporaryDirectory(prefix="hubnb-bench-out-") as out:
        cmd = [args.hubnb, "run", str(params), "--out", out] + (["--kernel", kernel] if kernel
                                                                   else [])
        print(f"[{label}] {' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t0
        if cache is not None:
            cache.cleanup()
        if proc.returncode != 0:
            msg = error_excerpt(proc.stderr, 15)
            nb_tb = notebook_traceback(proc.stderr)
            record_error(f"hubnb run ({label})", msg + (f"\n--- notebook traceback ---\n{nb_tb}"
                                                        if nb_tb else ""), proc.stderr)
            return {"seconds": seconds, "metrics": None, "kernel": kernel, "failed": True}
        metrics = json.loads((Path(out) / params.stem / "metrics.json").read_text())
    return {"seconds": seconds, "metrics": metrics, "kernel": kernel, "failed": False}


def hubnb_worker(args, spec: dict, label: str) -> dict | None:
    """compute_clv in a new --hubnb-python process (see worker()); its result dict."""
    env, cache = env_for(args)
    cmd = [args.hubnb_python, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    print(f"[{label}] compute_clv worker: model {spec['model']}, {Path(spec['params']).name}",
          flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if cache is not None:
        cache.cleanup()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        record_error(f"compute_clv ({label})", error_excerpt(proc.stderr or proc.stdout, 25),
                     proc.stderr)
        return None
    res = json.loads(lines[-1][len(RESULT_TAG):])
    res["process_seconds"] = wall
    return res


def worker(spec: dict) -> None:
    """Runs in --hubnb-python: compute_clv on spec's params; prints RESULT_TAG + JSON."""
    import numpy as np

    from hubnb.clv import compute_clv
    from hubnb.clv.compute import json_safe
    from hubnb.data import load_dataset
    from hubnb.params import load_params

    t_start = time.perf_counter()
    P = load_params(spec["params"])
    as_of = dt.date.fromisoformat(spec["as_of"]) if spec.get("as_of") else P.as_of
    repl = {k: spec[k] for k in ("model", "draws", "tune", "backtest_days", "horizon_days")
            if spec.get(k) is not None}
    clv = dataclasses.replace(P.clv, force=True, **repl)
    ds = load_dataset(P.data, tables=("profiles", "orders", "refunds"))
    loaded = time.perf_counter() - t_start
    t0 = time.perf_counter()
    res = compute_clv(ds.orders, ds.refunds, ds.profiles, clv, as_of, P.timezone)
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "load_seconds": loaded, "eligible": res.eligible,
           "reasons": res.reasons, "model": clv.model, "as_of": as_of.isoformat(),
           "chains": clv.chains, "draws": clv.draws, "tune": clv.tune,
           "horizon_days": clv.horizon_days, "backtest_days": clv.backtest_days}
    if res.fit is not None:
        s = res.fit.params_summary
        out["diagnostics"] = res.fit.diagnostics
        out["params"] = {k: {"mean": float(s.loc[k, "mean"]), "sd": float(s.loc[k, "sd"])}
                         for k in s.index}
        prof = res.profiles
        one = prof["historical_orders"] == 1
        out["one_order_churn0_share"] = (
            float((prof.loc[one, "churn_probability_mean"] < ONE_ORDER_CHURN0_BELOW).mean())
            if one.any() else None)
        out["one_order_profiles"] = int(one.sum())
        out["next_date_share"] = float(prof["expected_next_order_date_mean"].notna().mean())
        out["profiles"] = int(len(prof))
        out["totals"] = res.metrics.get("totals")
    out["backtest"] = res.metrics.get("backtest")
    out["metrics_model"] = res.metrics.get("model")
    if spec.get("profiles_csv"):
        from hubnb.clv.orders import counted_orders, rfm_summary

        counted = counted_orders(ds.orders, ds.refunds, clv.orders, as_of, P.timezone,
                                 clv.history_days)
        rfm = rfm_summary(counted, as_of)[["frequency", "recency", "T"]]
        pred = res.profiles.set_index("profile_id")[["predicted_orders_mean",
                                                     "churn_probability_mean"]]
        rfm.join(pred).rename_axis("customer_id").reset_index().to_csv(
            spec["profiles_csv"], index=False)
    print(RESULT_TAG + json.dumps(json_safe(out), default=lambda o: np.asarray(o).tolist()))


# ----------------------------------------------------------------------------- pymc-marketing

def rhat_max(idata, names) -> float | None:
    try:
        import arviz as az

        post = idata["posterior"]
        post = post.to_dataset() if hasattr(post, "to_dataset") else post
        r = az.rhat(post[list(names)])
        return max(float(r[k]) for k in names)
    except Exception as exc:  # noqa: BLE001 (a diagnostic only)
        print(f"note: R-hat of pymc-marketing not computed: {exc!r}")
        return None


def pmm_pareto_fit(rfm, chains, draws, tune, horizon_days, unit, nuts_sampler=None):
    """pymc-marketing's ParetoNBDModel by NUTS on rfm (days), then expected purchases over
    horizon_days and P(alive) per customer. Returns (seconds, model, e_purchases, p_alive)."""
    import warnings

    from pymc_marketing.clv import ParetoNBDModel

    scale = 7.0 if unit == "weeks" else 1.0
    t0 = time.perf_counter()
    data = rfm[["customer_id", "frequency", "recency", "T"]].copy()
    data["recency"] = data["recency"] / scale
    data["T"] = data["T"] / scale
    model = ParetoNBDModel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extra = {"nuts_sampler": nuts_sampler} if nuts_sampler else {}
        model.fit(data=data, method="mcmc", draws=draws, tune=tune, chains=chains, cores=chains,
                  random_seed=1, progressbar=False, **extra)
        e = model.expected_purchases(data=data, future_t=horizon_days / scale)
        alive = model.expected_probability_alive(data=data)
    e_mean = e.mean(("chain", "draw")).to_numpy()
    alive_mean = alive.mean(("chain", "draw")).to_numpy()
    return time.perf_counter() - t0, model, e_mean, alive_mean


# ----------------------------------------------------------------------------- parts

def part_pareto(args, tmp: Path) -> dict:
    data = cdnow_dir(args, "master")
    runs = {}
    for model in ("pareto_nbd", "bg_nbd"):
        params = write_params(tmp, "cdnow", f"cdnow_{model}", data, model=model,
                              draws=args.draws, tune=args.tune)
        runs[model] = hubnb_run(args, params, f"pareto/{model}")
    print("\n## pareto: `hubnb run` on CDNOW full (end to end, fresh process each)")
    print(f"{'':28}{'pareto_nbd':>14}{'bg_nbd':>14}")
    rows = {}
    for model, r in runs.items():
        m = r["metrics"] or {}
        rows[model] = {
            "wall_seconds": r["seconds"], "failed": r["failed"],
            "model_name": dig(m, "clv.model.name") if m else None,
            "fit_seconds": dig(m, "clv.model.fit_seconds") if m else None,
            "r_hat_max": dig(m, "clv.model.r_hat_max") if m else None,
            "backtest_fit_seconds": dig(m, "clv.backtest.diagnostics.fit_seconds") if m else None,
            "backtest_r_hat_max": dig(m, "clv.backtest.diagnostics.r_hat_max") if m else None,
            "divergences": dig(m, "clv.model.divergences") if m else None,
        }
    for key, spec in (("wall_seconds", ".1f"), ("fit_seconds", ".1f"),
                      ("backtest_fit_seconds", ".1f"), ("r_hat_max", ".4f"),
                      ("backtest_r_hat_max", ".4f"), ("divergences", "d"), ("model_name", "")):
        print(f"{key:28}" + "".join(f"{fmt(rows[mm][key], spec):>14}" for mm in rows))
    ratio = None
    if not rows["pareto_nbd"]["failed"] and not rows["bg_nbd"]["failed"]:
        ratio = rows["pareto_nbd"]["wall_seconds"] / rows["bg_nbd"]["wall_seconds"]
    print(f"ratio pareto_nbd / bg_nbd wall time: {fmt(ratio, '.2f')}x "
          f"({verdict(None if ratio is None else ratio <= 1.5)}, target <= 1.5x)")
    for mm, r in rows.items():
        rh = [x for x in (r["r_hat_max"], r["backtest_r_hat_max"]) if x is not None]
        print(f"R-hat max {mm}: main {fmt(r['r_hat_max'], '.4f')}, backtest "
              f"{fmt(r['backtest_r_hat_max'], '.4f')} "
              f"({verdict(max(rh) <= 1.01 if rh else None)}, target <= 1.01)")
    return {"runs": rows, "ratio_pareto_over_bg": ratio, "kernel": runs["bg_nbd"]["kernel"]}


def part_pmm_pareto(args, tmp: Path) -> dict:
    import numpy as np
    import pandas as pd

    data = cdnow_dir(args, "sample")
    params = write_params(tmp, "cdnow", "cdnow_sample", data, as_of=CDNOW_CAL_END.isoformat(),
                          model="pareto_nbd", draws=args.draws, tune=args.tune, backtest_days=0,
                          horizon_days=args.pmm_horizon_days)
    csv = tmp / "pmm_pareto_profiles.csv"
    hub = hubnb_worker(args, {"params": str(params), "model": "pareto_nbd", "draws": args.draws,
                              "tune": args.tune, "backtest_days": 0,
                              "horizon_days": args.pmm_horizon_days,
                              "as_of": CDNOW_CAL_END.isoformat(), "profiles_csv": str(csv)},
                       "pmm-pareto/hubnb")
    if hub is None:
        return {"hubnb": None}
    rfm = pd.read_csv(csv)
    chains = hub["chains"]
    print(f"[pmm-pareto/pymc-marketing] ParetoNBDModel NUTS, {chains} chains x {args.draws} "
          f"draws (+{args.tune} tune), {len(rfm):,} customers, unit {args.pmm_unit}", flush=True)
    try:
        t_pmm, model, e_pmm, alive_pmm = pmm_pareto_fit(rfm, chains, args.draws, args.tune,
                                                        args.pmm_horizon_days, args.pmm_unit,
                                                        args.pmm_nuts_sampler)
    except Exception:  # noqa: BLE001 (report and go on)
        import traceback

        record_error("pymc-marketing ParetoNBDModel", tail(traceback.format_exc(), 20))
        return {"hubnb": hub, "pymc_marketing": None}
    scale = 7.0 if args.pmm_unit == "weeks" else 1.0
    post = model.idata["posterior"]
    pmm_params = {}
    for k in ("r", "alpha", "s", "beta"):
        v = np.asarray(post[k]).reshape(-1) * (scale if k in ("alpha", "beta") else 1.0)
        pmm_params[k] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1))}
    pmm_rhat = rhat_max(model.idata, ("r", "alpha", "s", "beta"))
    pmm_attrs = {k: str(v) for k, v in model.idata["posterior"].attrs.items()}
    d = hub.get("diagnostics", {})
    print(f"\n## pmm-pareto: Pareto/NBD on the CDNOW 1/10 sample, calibration to {CDNOW_CAL_END},"
          f" {chains} chains x {args.draws} draws (+{args.tune} tune), horizon "
          f"{args.pmm_horizon_days} days")
    print(f"hubnb compute_clv (RFM, Pareto/NBD + Gamma-Gamma fit, every prediction): "
          f"{hub['seconds']:.1f} s (fit {fmt(d.get('fit_seconds'), '.1f')} s incl. compile "
          f"{fmt(d.get('compile_seconds'), '.1f')} s; process {hub['process_seconds']:.1f} s), "
          f"R-hat max {fmt(d.get('r_hat_max'), '.4f')}, divergences {d.get('divergences')}")
    print(f"pymc-marketing ParetoNBDModel (build, compile, NUTS, expected_purchases, "
          f"expected_probability_alive): {t_pmm:.1f} s, R-hat max {fmt(pmm_rhat, '.4f')}, "
          f"sampled by {pmm_attrs.get('inference_library', '?')} "
          f"{pmm_attrs.get('inference_library_version', '')}")
    speedup = t_pmm / hub["seconds"]
    print(f"speed-up hubnb vs pymc-marketing: {speedup:.1f}x (reference: pymc-marketing)")
    print(f"{'param':>6} {'hubnb mean':>12} {'sd':>9} {'pymc-mkt mean':>14} {'sd':>9}"
          f"   (alpha, beta in days)")
    hp = hub.get("params", {})
    for k in ("r", "alpha", "s", "beta"):
        h = hp.get(k, {})
        print(f"{k:>6} {fmt(h.get('mean'), '12.4f')} {fmt(h.get('sd'), '9.4f')} "
              f"{pmm_params[k]['mean']:14.4f} {pmm_params[k]['sd']:9.4f}")
    for k in ("p", "q", "v"):
        if k in hp:
            print(f"{k:>6} {hp[k]['mean']:12.4f} {hp[k]['sd']:9.4f} {'(not fitted)':>14}")
    e_hub = rfm["predicted_orders_mean"].to_numpy(float)
    alive_hub = 1.0 - rfm["churn_probability_mean"].to_numpy(float)
    cmp_ = {
        "expected_purchases_total": {"hubnb": float(np.nansum(e_hub)), "pmm": float(e_pmm.sum())},
        "expected_purchases_corr": float(np.corrcoef(e_hub, e_pmm)[0, 1]),
        "expected_purchases_max_abs_diff": float(np.nanmax(np.abs(e_hub - e_pmm))),
        "p_alive_mean": {"hubnb": float(np.nanmean(alive_hub)), "pmm": float(alive_pmm.mean())},
        "p_alive_corr": float(np.corrcoef(alive_hub, alive_pmm)[0, 1]),
        "p_alive_max_abs_diff": float(np.nanmax(np.abs(alive_hub - alive_pmm))),
    }
    print(f"expected purchases over {args.pmm_horizon_days} days, all customers: hubnb "
          f"{cmp_['expected_purchases_total']['hubnb']:,.1f}, pymc-marketing "
          f"{cmp_['expected_purchases_total']['pmm']:,.1f}; per customer corr "
          f"{cmp_['expected_purchases_corr']:.4f}, max |diff| "
          f"{cmp_['expected_purchases_max_abs_diff']:.3f}")
    print(f"P(alive) mean: hubnb {cmp_['p_alive_mean']['hubnb']:.4f}, pymc-marketing "
          f"{cmp_['p_alive_mean']['pmm']:.4f}; per customer corr {cmp_['p_alive_corr']:.4f}, "
          f"max |diff| {cmp_['p_alive_max_abs_diff']:.4f}")
    return {"hubnb": hub, "pymc_marketing": {"seconds": t_pmm, "r_hat_max": pmm_rhat,
                                             "params_days": pmm_params, "unit": args.pmm_unit,
                                             "posterior_attrs": pmm_attrs},
            "speedup_hubnb": speedup, "predictions": cmp_}


def part_auto(args, tmp: Path) -> dict:
    data = cdnow_dir(args, "master")
    params = write_params(tmp, "cdnow", "cdnow_auto", data, model="auto", draws=args.draws,
                          tune=args.tune)
    hub = hubnb_run(args, params, "auto/hubnb")
    m = hub["metrics"] or {}
    sys.path.insert(0, str(HERE))
    import clv_bench

    print(f"[auto/pymc-marketing] run_pymc_marketing (clv_bench): BG/NBD + Gamma-Gamma, "
          f"2 chains x {args.draws} draws (+{args.tune} tune)", flush=True)
    pmm = None
    try:
        bg, gg, clv, t_pmm = clv_bench.run_pymc_marketing(clv_bench.cdnow_orders(),
                                                          args.draws, args.tune)
        n_draws = {name: int(mod.idata["posterior"].sizes["draw"]) for name, mod in
                   (("BetaGeoModel", bg), ("GammaGammaModel", gg))}
        pmm = {"seconds": t_pmm, "draws": n_draws,
               "r_hat_max": max(filter(None, [rhat_max(bg.idata, ("r", "alpha", "a", "b")),
                                              rhat_max(gg.idata, ("p", "q", "v"))]), default=None),
               "total_clv_12_months": float(clv.mean(("chain", "draw")).sum())}
    except Exception:  # noqa: BLE001
        import traceback

        record_error("pymc-marketing run_pymc_marketing", tail(traceback.format_exc(), 20))
    sel = {}
    if m:
        winner = dig(m, "clv.model.selection.winner")
        cands = dig(m, "clv.model.selection.candidates") or {}
        sel = {"winner": winner, "clear": dig(m, "clv.model.selection.clear"),
               "reason": dig(m, "clv.model.selection.reason"),
               "candidates": {n: {k: c.get(k) for k in ("elpd_loo", "se", "d_elpd", "d_se",
                                                        "r_hat_max", "fit_seconds")}
                              for n, c in cands.items()}}
    print("\n## auto: `hubnb run` on CDNOW full, clv.model auto, against pymc-marketing's "
          "BG/NBD + Gamma-Gamma (run_pymc_marketing)")
    print(f"hubnb run (auto: 2 candidates x (full fit + 273-day backtest fit), notebooks, HTML): "
          f"{hub['seconds']:.1f} s{' FAILED' if hub['failed'] else ''}")
    if pmm:
        print(f"pymc-marketing (RFM, BG/NBD + Gamma-Gamma MCMC, CLV; no backtest): "
              f"{pmm['seconds']:.1f} s, R-hat max {fmt(pmm['r_hat_max'], '.4f')}, draws per chain "
              f"{pmm['draws']}")
    speedup = pmm["seconds"] / hub["seconds"] if pmm and not hub["failed"] else None
    print(f"speed-up hubnb vs pymc-marketing: {fmt(speedup, '.1f')}x "
          f"({verdict(None if speedup is None else speedup >= 4)}, target >= 4x)")
    if sel:
        print(f"winner: {sel['winner']} (clear: {sel['clear']}): {sel['reason']}")
        for n, c in sel["candidates"].items():
            print(f"  {n:>11}: elpd_loo {fmt(c['elpd_loo'], ',.1f')} (se {fmt(c['se'], '.1f')}),"
                  f" d_elpd {fmt(c['d_elpd'], '.1f')} (se {fmt(c['d_se'], '.1f')}), R-hat max "
                  f"{fmt(c['r_hat_max'], '.4f')}, fit {fmt(c['fit_seconds'], '.1f')} s")
        bc = dig(m, "clv.backtest.candidates") or {}
        for n, b in bc.items():
            print(f"  {n:>11} backtest: total error {fmt(b.get('total_error_pct'), '+.1f')}%, "
                  f"corr {fmt(b.get('correlation'), '.3f')}")
    return {"hubnb": {"seconds": hub["seconds"], "failed": hub["failed"],
                      "r_hat_max": dig(m, "clv.model.r_hat_max") if m else None,
                      "selection": sel}, "pymc_marketing": pmm, "speedup_hubnb": speedup}


HOLDOUT_SETS = (
    ("CDNOW 1/10 sample", "cdnow", "sample"),
    ("CDNOW full", "cdnow", "master"),
    ("demo merchant", "demo", None),
)


def part_holdout(args, tmp: Path) -> dict:
    rows = []
    for label, source, kind in HOLDOUT_SETS:
        data = cdnow_dir(args, kind) if kind else demo_dir()
        for model in MODELS:
            name = f"holdout_{source}_{kind or 'demo'}_{model}"
            params = write_params(tmp, source, name, data, model=model, draws=args.draws,
                                  tune=args.tune)
            res = hubnb_worker(args, {"params": str(params), "model": model, "draws": args.draws,
                                      "tune": args.tune}, f"holdout/{label}/{model}")
            row = {"data": label, "model": model, "failed": res is None}
            if res is not None:
                b = res.get("backtest") or {}
                d = res.get("diagnostics") or {}
                bd = b.get("diagnostics") or {}
                row.update({
                    "backtest_days": res["backtest_days"],
                    "calibration_end": b.get("calibration_end"),
                    "total_error_pct": b.get("total_error_pct"),
                    "total_in_interval": b.get("total_in_interval"),
                    "correlation": b.get("correlation"),
                    "coverage_orders": (b.get("coverage") or {}).get("orders"),
                    "coverage_orders_expected": (b.get("coverage") or {}).get("orders_expected"),
                    "coverage_nominal": (b.get("coverage") or {}).get("nominal"),
                    "auc_churn": (b.get("auc") or {}).get("churn"),
                    "auc_next_order_date": (b.get("auc") or {}).get("next_order_date"),
                    "fit_seconds": d.get("fit_seconds"),
                    "backtest_fit_seconds": bd.get("fit_seconds"),
                    "r_hat_max": d.get("r_hat_max"), "backtest_r_hat_max": bd.get("r_hat_max"),
                    "one_order_churn0_share": res.get("one_order_churn0_share"),
                    "next_date_share": res.get("next_date_share"),
                    "compute_clv_seconds": res["seconds"],
                })
                for key in ("total_error_pct", "correlation", "coverage", "auc"):
                    if key not in b:
                        MISSING.append(f"compute_clv metrics: clv.backtest.{key} ({label}, "
                                       f"{model})")
            rows.append(row)
    print(f"\n## holdout: backtest scores ({args.draws} draws + {args.tune} tune per chain)\n")
    print(holdout_table(rows))
    return {"rows": rows}


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def holdout_table(rows) -> str:
    head = ("| Data | Model | Holdout total error | Correlation | 90% PI coverage (orders; "
            "expected) | Churn AUC | Next-date AUC | Fit s (full / calibration) | R-hat max | "
            "One-order customers with churn 0 | Profiles with a next order date |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if r["failed"]:
            lines.append(f"| {r['data']} | {r['model']} |" + " failed |" * 9)
            continue
        rh = [x for x in (r["r_hat_max"], r["backtest_r_hat_max"]) if x is not None]
        lines.append(
            f"| {r['data']} | {r['model']} | {fmt(r['total_error_pct'], '+.1f')}% | "
            f"{fmt(r['correlation'], '.3f')} | {pct(r['coverage_orders'])} "
            f"({pct(r['coverage_orders_expected'])}) | {fmt(r['auc_churn'], '.3f')} | "
            f"{fmt(r['auc_next_order_date'], '.3f')} | {fmt(r['fit_seconds'], '.1f')} / "
            f"{fmt(r['backtest_fit_seconds'], '.1f')} | {fmt(max(rh) if rh else None, '.3f')} | "
            f"{pct(r['one_order_churn0_share'])} | {pct(r['next_date_share'])} |")
    return "\n".join(lines)


PARTS = {"pareto": part_pareto, "pmm-pareto": part_pmm_pareto, "auto": part_auto,
         "holdout": part_holdout}


def versions(args) -> dict:
    out = {"bench_python": sys.executable, "hubnb_python": args.hubnb_python}
    try:
        out["git"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                                    capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    code = ("import json, pymc, numpy, nutpie, hubnb; print(json.dumps({'pymc': pymc.__version__,"
            " 'numpy': numpy.__version__, 'nutpie': nutpie.__version__, 'hubnb': "
            "hubnb.__version__}))")
    p = subprocess.run([args.hubnb_python, "-c", code], capture_output=True, text=True)
    with contextlib.suppress(ValueError, IndexError):
        out["hubnb_env"] = json.loads(p.stdout.strip().splitlines()[-1])
    with contextlib.suppress(ImportError):
        import numpy
        import pymc
        import pymc_marketing

        out["bench_env"] = {"pymc_marketing": pymc_marketing.__version__,
                            "pymc": pymc.__version__, "numpy": numpy.__version__}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=list(PARTS), help="run one part (default: all)")
    ap.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    ap.add_argument("--tune", type=int, default=None, help="tuning steps per chain "
                    "(default: --draws)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hubnb-bench",
                    help="where the CDNOW datasets are written once")
    ap.add_argument("--hubnb-python", default=str(ROOT / ".venv" / "bin" / "python"))
    ap.add_argument("--hubnb", default=str(ROOT / ".venv" / "bin" / "hubnb"))
    ap.add_argument("--kernel", default="auto", help="kernel for `hubnb run` (default: hubnb "
                    "if it runs --hubnb-python, else the notebooks' own)")
    ap.add_argument("--cold-cache", action="store_true",
                    help="an empty HUBNB_CACHE_DIR for every hubnb process")
    ap.add_argument("--pmm-unit", choices=("weeks", "days"), default="weeks")
    ap.add_argument("--pmm-horizon-days", type=int, default=273)
    ap.add_argument("--pmm-nuts-sampler", choices=("pymc", "nutpie"), default=None,
                    help="pm.sample's nuts_sampler for ParetoNBDModel (default: pm.sample's)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    args.tune = args.tune or args.draws
    args.hubnb_python = os.path.abspath(args.hubnb_python)
    args.hubnb = os.path.abspath(args.hubnb)
    check_hubnb_env(args)
    parts = [args.only] if args.only else list(PARTS)
    results = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                        if k != "worker"},
               "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "versions": versions(args), "parts": {}}
    with tempfile.TemporaryDirectory(prefix="hubnb-clv-models-bench-") as tmp:
        for part in parts:
            print(f"\n=== {part} ===", flush=True)
            t0 = time.perf_counter()
            results["parts"][part] = PARTS[part](args, Path(tmp))
            results["parts"][part]["part_seconds"] = time.perf_counter() - t0
    results["missing_metrics_keys"] = sorted(set(MISSING))
    results["errors"] = ERRORS
    if MISSING:
        print("\nmetrics keys not found: " + "; ".join(sorted(set(MISSING))))
    if ERRORS:
        print(f"\n{len(ERRORS)} error(s) from hubnb or pymc-marketing (see above and in the JSON)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"clv_models_{args.only or 'all'}_{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nresults written to {path}")


if __name__ == "__main__":
    main()
