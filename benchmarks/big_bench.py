"""Benchmark of one big merchant (issue #18; not a test): ``hubnb run`` with ``clv.model:
auto`` and its backtest on an N-profile demo merchant, wall time and memory.

Memory is sampled every 0.25 s over the whole process tree of the run (``hubnb run``, both
notebook kernels): the peak of the *sum* of their resident sets, and the peak of the
largest single process (what ``/usr/bin/time`` reports). With ``--ref COMMIT`` the same run
from that commit goes first, in the same benchmark run, and the ratio is printed.

Targets: 1,000,000 profiles under 180 s and 4 GB; 10,000,000 under 15 minutes and 12 GB.

Usage::

    .venv/bin/python benchmarks/big_bench.py [--profiles 1000000] [--ref 99ef93b]
    .venv/bin/python benchmarks/big_bench.py --profiles 10000000     # make bench-big

The data is made once by ``hubnb demo-data --seed 7`` (its time and peak memory printed)
and kept in ``--work`` (default /tmp/hubnb-big; 2.4 GB at 10M).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

TARGETS = {1_000_000: (180.0, 4.0), 10_000_000: (900.0, 12.0)}


def sample_tree(proc: subprocess.Popen, peaks: dict, stop: threading.Event) -> None:
    root = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            procs = [root] + root.children(recursive=True)
            rss = []
            for p in procs:
                try:
                    rss.append(p.memory_info().rss)
                except psutil.Error:
                    pass
            peaks["sum"] = max(peaks["sum"], sum(rss))
            peaks["largest"] = max(peaks["largest"], max(rss, default=0))
        except psutil.Error:
            pass
        stop.wait(0.25)


def run(source: Path, params: Path, out: Path) -> dict:
    return measure(["run", str(params), "--out", str(out), "--no-index"], source)


def measure(args: list[str], source: Path) -> dict:
    """``python -m hubnb.cli ARGS`` from ``source``: wall time and peak memory (GiB)."""
    env = {**os.environ, "PYTHONPATH": str(source), "HUBNB_FIT_CACHE": "0"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hubnb.cli", *args], cwd=str(source),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    peaks, stop = {"sum": 0, "largest": 0}, threading.Event()
    sampler = threading.Thread(target=sample_tree, args=(proc, peaks, stop), daemon=True)
    sampler.start()
    _, err = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"hubnb {args[0]} failed from {source}:\n{err[-3000:]}")
    return {"wall": time.perf_counter() - start, "sum_gb": peaks["sum"] / 2 ** 30,
            "largest_gb": peaks["largest"] / 2 ** 30}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--ref", help="also run this commit first (e.g. 99ef93b, before the "
                                  "large-data work: 6 min 40 s at 1M)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "hubnb-big")
    args = ap.parse_args(argv)
    data = args.work / f"data{args.profiles}"
    if not (data / ".complete").is_file():
        made = measure(["demo-data", "--out", str(data), "--profiles", str(args.profiles),
                        "--seed", "7"], ROOT)
        (data / ".complete").touch()
        print(f"hubnb demo-data, {args.profiles:,} profiles: {made['wall']:.1f} s, peak "
              f"memory {made['sum_gb']:.2f} GiB")
    raw = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    raw.update(merchant=f"big{args.profiles}", data=str(data))
    params = args.work / f"big{args.profiles}.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    sides = {}
    if args.ref:
        from run_bench import worktree

        sides[f"reference {args.ref}"] = worktree(args.ref)
    sides["this checkout"] = ROOT
    results = {name: run(src, params, args.work / "out" / str(i))
               for i, (name, src) in enumerate(sides.items())}
    wall_t, mem_t = TARGETS.get(args.profiles, (None, None))
    print(f"\nhubnb run, {args.profiles:,} profiles, auto with its backtest, fit cache off")
    for name, r in results.items():
        print(f"  {name:<24} {r['wall']:8.1f} s   peak memory {r['sum_gb']:.2f} GiB (all "
              f"processes), {r['largest_gb']:.2f} GiB (largest)")
    if len(results) == 2:
        ref, now = results.values()
        print(f"  ratio: {ref['wall'] / now['wall']:.2f}x faster")
    if wall_t:
        now = results["this checkout"]
        ok = now["wall"] < wall_t and now["sum_gb"] < mem_t
        print(f"  target < {wall_t:.0f} s and < {mem_t:.0f} GB (read as GiB): "
              f"{'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
