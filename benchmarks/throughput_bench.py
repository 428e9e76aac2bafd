"""Benchmark of the default run's throughput (issue #18; not a test): this checkout against
a reference commit, side by side in one run.

For each dataset it measures, on both sides:

- where the CLV computation's time goes, per phase (``compute_clv`` in a fresh process,
  the compiled-model cache warm, the fit cache off): reading and validating the data,
  preparing the histories, the quick Laplace pass (this checkout only), the main NUTS
  fits, PSIS-LOO, the predictions, the backtest (its fits, predictions and the rest);
- the whole ``hubnb run`` (both notebooks, kernels, imports, Papermill, HTML), split per
  notebook as ``benchmarks/overhead_bench.py`` does.

Datasets: the 2,000-profile demo merchant (``hubnb demo-data --profiles 2000 --seed 100``,
params/demo.yaml's settings with 500 draws, as the batch benchmark) and CDNOW full
(params/cdnow/cdnow.yaml with ``clv.model: auto``); with ``--big`` also the
1,000,000-profile demo merchant (this checkout only unless ``--big-ref``: the reference
took 28 minutes there).

Then, this checkout only: an analyst's rerun (``hubnb run --only clv`` of the demo
merchant twice with the fit cache on: the second run is the rerun; target under 10 s), a
batch of small merchants with 2 workers against ``--ref`` (target: at most 6 s per
merchant), and pymc-marketing's BG/NBD + Gamma-Gamma anchor on CDNOW full against ``hubnb
run`` with ``auto`` (target: at least 4x; needs the ``bench`` extra, ``make bench-env``).

Usage::

    .venv-bench/bin/python benchmarks/throughput_bench.py [--ref 004ada7] [--merchants 8]
                                                          [--big] [--skip-pmm] [--skip-batch]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from overhead_bench import breakdown, print_breakdown  # noqa: E402
from run_bench import worktree  # noqa: E402

RERUN_TARGET_S = 10.0
BATCH_TARGET_S = 6.0
PMM_TARGET = 4.0

#: Run in a fresh process with PYTHONPATH at one side's source: compute_clv with every
#: phase timed by wrapping the functions both versions share (and the quick pass where it
#: exists). Prints one JSON line.
PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
import pymc, nutpie, arviz  # noqa: F401  (imports are not a phase of the computation)
from hubnb.params import load_params
from hubnb.data import load_dataset
import importlib
C, B, S, M, P = (importlib.import_module(f"hubnb.clv.{m}")
                 for m in ("compute", "backtest", "selection", "models", "predict"))
times, state = {}, {"in_backtest": False}
def add(key, seconds):
    times[key] = times.get(key, 0.0) + seconds
def wrap(owner, name, key):
    f = getattr(owner, name)
    def timed(*a, **k):
        s = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            add(key() if callable(key) else key, time.perf_counter() - s)
    setattr(owner, name, timed)
where = lambda base: (lambda: ("backtest " if state["in_backtest"] else "") + base)
fit = M.ClvModel.fit
def counted_fit(self, *a, **k):
    s = time.perf_counter(); r = fit(self, *a, **k)
    add(("backtest " if state["in_backtest"] else "") + "NUTS fits", time.perf_counter() - s)
    return r
M.ClvModel.fit = counted_fit
wrap(S, "loo", where("PSIS-LOO"))
wrap(P, "predict", where("predictions"))
for mod in (C, B):
    if callable(getattr(mod, "predict", None)):
        setattr(mod, "predict", P.predict)
try:
    import hubnb.clv.fitcache as FC, hubnb.clv.laplace as L
    wrap(L, "laplace_fit", where("quick Laplace pass"))
    FC.laplace_fit = L.laplace_fit
except ImportError:
    pass
run_backtest = C.run_backtest
def backtest(*a, **k):
    state["in_backtest"] = True; s = time.perf_counter()
    try:
        return run_backtest(*a, **k)
    finally:
        state["in_backtest"] = False; add("backtest (all)", time.perf_counter() - s)
C.run_backtest = backtest
params = load_params(sys.argv[1])
s = time.perf_counter(); ds = load_dataset(params.data); times["read and validate"] = time.perf_counter() - s
s = time.perf_counter()
result = C.compute_clv(ds.orders, ds.refunds, ds.profiles, params.clv, params.as_of, params.timezone)
times["compute_clv (all)"] = time.perf_counter() - s
model = result.metrics.get("model", {})
print(json.dumps({"times": times, "model": model.get("name"),
                  "method": (model.get("selection") or {}).get("method"),
                  "imports": s - t0}))
"""


def side_env(source: Path, cache: Path, fit_cache: bool = False) -> dict:
    return {**os.environ, "PYTHONPATH": str(source), "HUBNB_CACHE_DIR": str(cache),
            "HUBNB_FIT_CACHE": "1" if fit_cache else "0"}


def phases(source: Path, params: Path, cache: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", PHASES, str(params)], cwd=str(source),
                          env=side_env(source, cache), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"phase profile failed from {source}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def hubnb_run(source: Path, params: Path, out: Path, cache: Path, *extra, fit_cache=False):
    """Wall seconds and timestamped progress lines of ``hubnb run`` from ``source``."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hubnb.cli", "run", str(params), "--out",
                             str(out), "--no-index", *extra], cwd=str(source),
                            env=side_env(source, cache, fit_cache), stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    lines = [(time.perf_counter() - start, line.rstrip()) for line in proc.stderr]
    if proc.wait() != 0:
        sys.exit(f"hubnb run {params} failed from {source}:\n"
                 + "\n".join(t for _, t in lines[-20:]))
    return time.perf_counter() - start, lines


def print_phases(label: str, sides: dict) -> dict:
    keys = []
    for result in sides.values():
        keys += [k for k in result["times"] if k not in keys]
    print(f"\n## {label}: where compute_clv's time goes (s; compiled models warm, fit "
          "cache off)")
    print(f"{'phase':<28}" + "".join(f"{name:>22}" for name in sides))
    for key in keys:
        print(f"{key:<28}" + "".join(f"{r['times'].get(key, 0.0):22.2f}"
                                     for r in sides.values()))
    print(f"{'model chosen':<28}" + "".join(f"{str(r['model']):>22}" for r in sides.values()))
    print(f"{'choice made on':<28}" + "".join(f"{str(r['method']):>22}"
                                              for r in sides.values()))
    return sides


def make_merchant(root: Path, slug: str, profiles: int, seed: int, draws: int | None) -> Path:
    data = root / "data" / slug
    if not (data / ".complete").is_file():
        subprocess.run([sys.executable, "-m", "hubnb.cli", "demo-data", "--out", str(data),
                        "--profiles", str(profiles), "--seed", str(seed)], check=True,
                       stdout=subprocess.DEVNULL, cwd=str(ROOT))
        (data / ".complete").touch()
    raw = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    raw.update(merchant=slug, display_name=slug, data=str(data))
    if draws:
        raw["clv"]["draws"] = draws
    path = root / "params" / f"{slug}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def cdnow_params(root: Path) -> Path:
    data = root / "data" / "cdnow"
    if not (data / ".complete").is_file():
        subprocess.run([sys.executable, "-m", "hubnb.cli", "cdnow-data", "--out", str(data),
                        "--kind", "master"], check=True, stdout=subprocess.DEVNULL,
                       cwd=str(ROOT))
        (data / ".complete").touch()
    raw = yaml.safe_load((ROOT / "params" / "cdnow" / "cdnow.yaml").read_text())
    raw.update(merchant="cdnow", data=str(data))
    raw["clv"]["model"] = "auto"
    path = root / "params" / "cdnow.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def batch_seconds(source: Path, params_dir: Path, out: Path, cache: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hubnb.cli", "batch", str(params_dir),
                           "--out", str(out), "--workers", "2", "--force"], cwd=str(source),
                          env=side_env(source, cache), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"hubnb batch failed from {source}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="004ada7", help="reference commit (before issue #18)")
    ap.add_argument("--merchants", type=int, default=8, help="small merchants in the batch")
    ap.add_argument("--big", action="store_true", help="also the 1,000,000-profile merchant")
    ap.add_argument("--big-ref", action="store_true", help="... on the reference side too")
    ap.add_argument("--skip-pmm", action="store_true")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "hubnb-throughput")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    ref = worktree(args.ref)
    sides = {"this checkout": ROOT, f"reference {args.ref}": ref}
    caches = {name: args.work / f"cache-{i}" for i, name in enumerate(sides)}
    results = {"started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "reference": args.ref}
    try:
        cases = [("2,000-profile merchant (auto, 500 draws)",
                  make_merchant(args.work, "m2000", 2000, 100, 500), True),
                 ("CDNOW full (auto)", cdnow_params(args.work), True)]
        if args.big:
            cases.append(("1,000,000-profile merchant (auto)",
                          make_merchant(args.work, "m1m", 1_000_000, 7, None), args.big_ref))
        for label, params, both in cases:
            chosen = sides if both else {"this checkout": ROOT}
            # warm each side's compiled models (numba, nutpie) once, untimed
            for name, source in chosen.items():
                phases(source, params, caches[name])
            profile = {name: phases(source, params, caches[name])
                       for name, source in chosen.items()}
            print_phases(label, profile)
            runs = {}
            for name, source in chosen.items():
                out = args.work / "out" / name.replace(" ", "_")
                wall, lines = hubnb_run(source, params, out, caches[name])
                runs[name] = print_breakdown(f"{label}, {name}", [breakdown(
                    out / params.stem, wall, lines)])
            results[label] = {"phases": profile, "runs": runs}
            if both:
                now, before = (runs[n]["wall"] for n in sides)
                print(f"\n{label}: hubnb run {now:.1f} s against {before:.1f} s before: "
                      f"{before / now:.2f}x")

        # an analyst's rerun after a display-only change: the fits come from the cache
        demo = ROOT / "data" / "demo"
        if (demo / ".complete").is_file():
            raw = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
            raw["data"] = str(demo)
            params = args.work / "params" / "demo.yaml"
            params.write_text(yaml.safe_dump(raw, sort_keys=False))
            rerun_cache = args.work / "cache-rerun"
            out = args.work / "out" / "rerun"
            first, _ = hubnb_run(ROOT, params, out, rerun_cache, "--only", "clv", fit_cache=True)
            raw["segments"] = raw.get("segments", [])[:1]     # a display-only change
            params.write_text(yaml.safe_dump(raw, sort_keys=False))
            second, _ = hubnb_run(ROOT, params, out, rerun_cache, "--only", "clv",
                                  fit_cache=True)
            ok = "met" if second < RERUN_TARGET_S else "MISSED"
            print(f"\nAnalyst's rerun of the demo's CLV report (20,000 profiles, hubnb run "
                  f"--only clv): first {first:.1f} s, rerun after a segment change "
                  f"{second:.1f} s ({ok}, target < {RERUN_TARGET_S:.0f} s)")
            results["rerun"] = {"first": first, "rerun": second}

        if not args.skip_batch:
            folder = args.work / "batch-params"
            folder.mkdir(exist_ok=True)
            for i in range(args.merchants):
                made = make_merchant(args.work, f"b{i:02d}", 2000, 100 + i, 500)
                (folder / made.name).write_text(made.read_text())
            walls = {name: batch_seconds(source, folder, args.work / "out" / f"batch{i}",
                                         caches[name])
                     for i, (name, source) in enumerate(sides.items())}
            now, before = (walls[n] / args.merchants for n in sides)
            ok = "met" if now <= BATCH_TARGET_S else "MISSED"
            print(f"\nhubnb batch of {args.merchants} x 2,000 profiles, 2 workers: "
                  f"{now:.1f} s per merchant against {before:.1f} s before, "
                  f"{before / now:.2f}x ({ok}: target <= {BATCH_TARGET_S:.0f} s per merchant)")
            results["batch"] = {"merchants": args.merchants, "seconds": walls}

        if not args.skip_pmm:
            try:
                import clv_bench
            except ImportError as exc:
                print(f"\npymc-marketing anchor skipped ({exc}): run it from .venv-bench")
            else:
                cdnow = yaml.safe_load((ROOT / "params" / "cdnow" / "cdnow.yaml").read_text())
                draws, tune = cdnow["clv"]["draws"], cdnow["clv"].get("tune") or \
                    cdnow["clv"]["draws"]
                *_, pmm = clv_bench.run_pymc_marketing(clv_bench.cdnow_orders(), draws, tune)
                params = cdnow_params(args.work)
                wall, _ = hubnb_run(ROOT, params, args.work / "out" / "pmm", caches[
                    "this checkout"])
                ok = "met" if pmm / wall >= PMM_TARGET else "MISSED"
                print(f"\nCDNOW full: hubnb run (auto, backtest, both notebooks, HTML) "
                      f"{wall:.1f} s, pymc-marketing BG/NBD + Gamma-Gamma (fits and CLV) "
                      f"{pmm:.1f} s: {pmm / wall:.2f}x ({ok}, target >= {PMM_TARGET:.0f}x)")
                results["pymc_marketing"] = {"hubnb": wall, "pymc_marketing": pmm}
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref)],
                       capture_output=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"throughput_{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
