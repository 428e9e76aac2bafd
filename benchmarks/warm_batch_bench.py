"""Warm batch workers against a new process per merchant (issue 18, item 2), in one run.

The same batch of small merchants (2,000 profiles each, params/demo.yaml's settings with
500 draws, fit cache off), run twice with two workers: ``hubnb batch --cold`` (a new
``hubnb run`` process and new kernels per merchant) and ``hubnb batch`` (the default: each
worker keeps its process and kernels warm). Prints the wall time per merchant of each, the
ratio, and the issue's targets: 6 s per merchant, and 2.5x faster than the 320.5 s the
issue measured for 20 merchants (16.0 s per merchant).

    .venv/bin/python benchmarks/warm_batch_bench.py [--merchants 20] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput_bench import make_merchant  # noqa: E402

TARGET_S = 6.0
ISSUE_S = 320.5 / 20       # per merchant, the issue's measurement of 20 merchants
TARGET_RATIO = 2.5


def batch(params: Path, out: Path, *extra) -> float:
    env = dict(os.environ, HUBNB_FIT_CACHE="0")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hubnb.cli", "batch", str(params), "--out",
                           str(out), "--workers", "2", "--force", *extra], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"hubnb batch {' '.join(extra)} failed:\n{done.stdout[-3000:]}")
    return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merchants", type=int, default=20)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="hubnb-warm-bench-"))
    folder = work / "batch-params"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(args.merchants):
        made = make_merchant(work, f"w{i:02d}", 2000, 100 + i, 500)
        (folder / made.name).write_text(made.read_text())
    n = args.merchants
    cold = batch(folder, work / "out-cold", "--cold")
    warm = batch(folder, work / "out-warm")
    print(f"hubnb batch, {n} merchants of 2,000 profiles, 2 workers (fit cache off)")
    print(f"  --cold (a new process and kernels per merchant): {cold:7.1f} s, "
          f"{cold / n:5.1f} s per merchant")
    print(f"  default, warm (workers keep process and kernels): {warm:7.1f} s, "
          f"{warm / n:5.1f} s per merchant")
    ok = "met" if warm / n <= TARGET_S else "MISSED"
    print(f"  warm is {cold / warm:.2f}x cold; target {TARGET_S:.0f} s per merchant: {ok}")
    ratio = ISSUE_S / (warm / n)
    ok = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(f"  against the issue's {ISSUE_S:.1f} s per merchant: {ratio:.2f}x "
          f"(target {TARGET_RATIO}x: {ok}; that figure was measured on another day)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
