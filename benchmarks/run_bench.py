"""Benchmark of a whole ``hubnb run``: this checkout against a reference commit.

Issue #10 (one rendering layer, one read of the data) changed what happens around the
computation: the dataset is read and validated once instead of three times, the parent no
longer imports matplotlib and seaborn for the index, cards render through one Jinja2
environment. This script times ``hubnb run`` of the same params with this checkout and
with a reference commit (default: the last commit before that work), alternating the two,
in one process, so both see the same machine load. It prints every run, the median of
each side, the ratio, and the time the run spends before its first notebook starts
(reading, validating and, now, writing the snapshot), from the run's own progress lines.

Usage::

    python benchmarks/run_bench.py [--params params/demo.yaml] [--ref e956d2a] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def worktree(ref: str) -> Path:
    """A checkout of ``ref`` in a temporary folder (git worktree, detached)."""
    where = Path(tempfile.mkdtemp(prefix="hubnb-ref-")) / "src"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), ref],
                   check=True, capture_output=True)
    return where


def timed_run(source: Path, params: Path, out: Path) -> tuple[float, float]:
    """(total seconds, seconds to the first notebook) of ``hubnb run`` from ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hubnb.cli", "run", str(params),
                             "--out", str(out)], env=env, cwd=str(source),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    first = None
    for line in proc.stderr:
        if first is None and line.startswith("running "):
            first = time.perf_counter() - start
    if proc.wait() != 0:
        raise SystemExit(f"hubnb run failed from {source}")
    return time.perf_counter() - start, first or float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=ROOT / "params" / "demo.yaml")
    ap.add_argument("--ref", default="e956d2a", help="reference commit (default: before #10)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    params = args.params.resolve()
    ref = worktree(args.ref)
    out = Path(tempfile.mkdtemp(prefix="hubnb-run-bench-"))
    sides = {"this checkout": ROOT, f"reference {args.ref}": ref}
    times = {name: [] for name in sides}
    try:
        # warm the CLV engine's compiled-model cache of both sides before timing
        for name, source in sides.items():
            timed_run(source, params, out / "warm")
        for i in range(args.repeat):
            for name, source in sides.items():
                total, first = timed_run(source, params, out / f"{i}")
                times[name].append((total, first))
                print(f"{name:<22} run {i + 1}: {total:6.1f} s  (first notebook after "
                      f"{first:4.1f} s)", flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref)],
                       capture_output=True)
    now, before = (statistics.median(t for t, _ in times[n]) for n in sides)
    now_first, before_first = (statistics.median(f for _, f in times[n]) for n in sides)
    print(f"params: {params}")
    print(f"median hubnb run: this checkout {now:.1f} s, reference {before:.1f} s, "
          f"ratio {before / now:.2f}x")
    print(f"median time to the first notebook: {now_first:.1f} s vs {before_first:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
