"""Benchmark of the demo merchant generator.

Times :func:`hubnb.demo.generate_demo_data` (1,000,000 profiles by default) and
prints the wall time, the rows per table, the peak memory (``ru_maxrss``) and
whether the 60 s target was met.

Usage::

    python benchmarks/demo_bench.py [--profiles N] [--seed S] [--format parquet|csv]
                                    [--out DIR] [--target SECONDS]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hubnb.demo import generate_demo_data


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark once; return 0 when the target was met, 1 otherwise."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--out", type=Path, default=None,
                    help="dataset directory to keep (default: a temporary one, removed)")
    ap.add_argument("--target", type=float, default=60.0, help="target seconds")
    args = ap.parse_args(argv)

    tmp = None
    out = args.out
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix="hubnb-demo-bench-"))
        out = tmp / "merchant"
    try:
        start = time.perf_counter()
        truth = generate_demo_data(out, args.profiles, args.seed, fmt=args.format)
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in out.iterdir())
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    met = seconds <= args.target
    print(f"profiles: {args.profiles:,}  format: {args.format}  seed: {args.seed}")
    print(f"seconds: {seconds:.1f}")
    for name, rows in truth["rows"].items():
        print(f"  {name:<17} {rows:>12,} rows")
    print(f"files: {size / 2**20:.0f} MiB")
    print(f"peak memory (ru_maxrss): {peak_mb:,.0f} MiB")
    print(f"target {args.target:.0f} s: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
