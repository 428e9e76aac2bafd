"""Benchmark of ``hubnb batch``: 20 demo merchants through both notebooks, 1 and 2 workers.

Issue #11's targets: 2 workers at least 1.8x faster than 1; a second batch in which nothing
changed (every merchant skipped) under 5 s; peak memory per worker reported. In one run this
script generates the merchants (2,000 profiles each, seeds 100, 101, ...), runs the batch
with 1 worker and then with 2 (``--force``, into separate output folders), then the batch
again with nothing changed. It prints, per configuration: the total time, the time per
merchant, the overhead per notebook beyond its own computation (see
:func:`overhead_per_notebook`: kernel start-up, imports, Papermill, and a share of the
process start, the data read and the rendering), the speed-up, and the peak memory of the
largest process of any merchant's run.

Usage::

    python benchmarks/batch_bench.py [--merchants 20] [--profiles 2000] [--draws 500]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from hubnb.batch import batch
from hubnb.demo import generate_demo_data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from overhead_bench import notebook_times  # noqa: E402


def make_merchants(root: Path, merchants: int, profiles: int, draws: int) -> Path:
    """``root/params`` with one params file per demo merchant (data under ``root/data``)."""
    template = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    params_dir = root / "params"
    params_dir.mkdir(parents=True)
    for i in range(merchants):
        slug = f"m{i:02d}"
        generate_demo_data(root / "data" / slug, profiles, 100 + i)
        raw = {**template, "merchant": slug, "display_name": f"Merchant {i:02d}",
               "data": f"../data/{slug}", "clv": {**template["clv"], "draws": draws}}
        (params_dir / f"{slug}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return params_dir


def overhead_per_notebook(folder: Path, wall: float) -> float:
    """Mean overhead of a merchant's notebooks beyond their cells' computation (s).

    A run's notebooks execute side by side, so a notebook's overhead is its own Papermill
    time (kernel start, imports cell included, kernel stop) minus its computation cells,
    plus an equal share of the run's time outside every notebook (process start, reading
    and validating the data, the HTML after the last notebook).
    """
    times = [notebook_times(path) for path in sorted(folder.glob("*.ipynb"))]
    own = [(t["end"] - t["start"]).total_seconds() - (t["cells"] - t["setup"]) for t in times]
    spans = [(t["start"], t["end"]) for t in times]
    inside = (max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds()
    outside = max(wall - inside, 0.0)
    return statistics.mean(o + outside / len(own) for o in own)


def timed_batch(params_dir: Path, out: Path, workers: int, force: bool):
    start = time.perf_counter()
    outcomes = batch(params_dir, out, workers=workers, force=force, progress=False)
    return time.perf_counter() - start, outcomes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merchants", type=int, default=20)
    ap.add_argument("--profiles", type=int, default=2000)
    ap.add_argument("--draws", type=int, default=500, help="clv.draws of every merchant")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="hubnb-batch-bench-"))
    try:
        params_dir = make_merchants(root, args.merchants, args.profiles, args.draws)
        # warm the compiled-model cache, so neither side pays for the first compile
        # (the copy's "../data/<slug>" resolves to the same data: both folders are in root)
        warm = root / "warm-params"
        warm.mkdir()
        shutil.copy(next(params_dir.glob("*.yaml")), warm)
        batch(warm, root / "out-warm", workers=1, progress=False)
        results = {}
        for workers in (1, 2):
            seconds, outcomes = timed_batch(params_dir, root / f"out-{workers}", workers, True)
            bad = [o for o in outcomes if o.status not in ("ok", "not eligible")]
            if bad:
                print(f"{len(bad)} merchants failed with {workers} worker(s): {bad[0].error}")
                return 1
            overhead = [overhead_per_notebook(Path(o.report), o.seconds) for o in outcomes]
            results[workers] = seconds
            print(f"{workers} worker(s): {seconds:7.1f} s total, "
                  f"{seconds / len(outcomes):5.1f} s per merchant (wall / merchants), "
                  f"median merchant run {statistics.median(o.seconds for o in outcomes):5.1f} s; "
                  f"overhead per notebook beyond its computation: median "
                  f"{statistics.median(overhead):4.1f} s; peak memory of a run "
                  f"{max(o.peak_rss_mb or 0 for o in outcomes):,.0f} MiB", flush=True)
        skipped_seconds, skipped = timed_batch(params_dir, root / "out-2", 2, False)
        all_skipped = all(o.status == "skipped" for o in skipped)
        speedup = results[1] / results[2]
        print(f"merchants: {args.merchants} x {args.profiles:,} profiles, clv.draws "
              f"{args.draws}, both notebooks")
        print(f"speed-up of 2 workers over 1: {speedup:.2f}x (target 1.8x: "
              f"{'met' if speedup >= 1.8 else 'MISSED'})")
        print(f"second batch, nothing changed: {skipped_seconds:.1f} s, "
              f"{'all skipped' if all_skipped else 'NOT all skipped'} (target < 5 s: "
              f"{'met' if skipped_seconds < 5 and all_skipped else 'MISSED'})")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
