"""Benchmark of what a ``hubnb run`` spends around its computation (issue #10; not a test).

For the demo merchant (params/demo.yaml) and for CDNOW full (params/cdnow/cdnow.yaml with
``clv.model: bg_nbd``) it runs ``hubnb run`` in a new process and splits each notebook's
wall time, from the run's progress lines (timestamped as they arrive) and Papermill's
record in the executed notebooks:

- kernel start: Papermill's notebook start to the first cell's start (reading the
  notebook, injecting the parameters, starting the kernel process and its connection);
- imports: the notebook's set-up cell (hubnb, pandas, PyMC for the CLV notebook, the
  figure theme, opening the validated snapshot);
- computation: every other cell (the cards themselves: fits, predictions, figures);
- Papermill: the rest of Papermill's time (cell bookkeeping, writing the notebook, kernel
  shutdown);
- HTML: the export of the executed notebook to the report.

The two notebooks of a run execute side by side (each in its own kernel), so the run's
wall time is less than the sum of theirs; each figure is measured within its notebook.

Overhead per notebook = kernel start + imports + Papermill + HTML (target: under 3 s).
The run's own start (Python start, reading and validating the data, the snapshot) is
printed apart.

Then, in the same run, pymc-marketing's BG/NBD + Gamma-Gamma anchor on CDNOW full
(``clv_bench.run_pymc_marketing``: RFM, MCMC fits of BetaGeoModel and GammaGammaModel with
the same chains, draws and tune, 12-month CLV) and the ratio of its time to the whole
``hubnb run`` on CDNOW with bg_nbd (target: at least 6x).

    .venv-bench/bin/python benchmarks/overhead_bench.py [--repeat 2] [--skip-pmm]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
OVERHEAD_TARGET_S = 3.0
SPEEDUP_TARGET = 6.0


def notebook_times(path: Path) -> dict:
    """Papermill's record of an executed notebook: its start and end, the first cell's
    start, the set-up cell's seconds (the first code cell that imports) and every code
    cell's seconds."""
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata["papermill"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    starts = [c.metadata.get("papermill", {}).get("start_time") for c in code]
    durations = [float(c.metadata.get("papermill", {}).get("duration") or 0) for c in code]
    # the parameters cell and the injected one are assignments; the set-up cell follows
    setup = next(i for i, c in enumerate(code) if "import" in c.source)
    return {"start": dt.datetime.fromisoformat(meta["start_time"]),
            "end": dt.datetime.fromisoformat(meta["end_time"]),
            "first_cell": min(dt.datetime.fromisoformat(t) for t in starts if t),
            "setup": durations[setup], "cells": sum(durations)}


def timed_run(hubnb: str, params: Path, out: Path) -> tuple[float, list[tuple[float, str]]]:
    """Wall seconds of ``hubnb run`` and its progress lines with their arrival times."""
    start = time.perf_counter()
    proc = subprocess.Popen([hubnb, "run", str(params), "--out", str(out), "--no-index"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines = [(time.perf_counter() - start, line.rstrip()) for line in proc.stderr]
    if proc.wait() != 0:
        sys.exit(f"hubnb run {params} failed:\n" + "\n".join(t for _, t in lines[-20:]))
    return time.perf_counter() - start, lines


def stamp(lines, prefix: str) -> float:
    return next(t for t, text in lines if text.startswith(prefix))


def breakdown(folder: Path, wall: float, lines) -> dict:
    """Per notebook: kernel start, imports, computation, Papermill, HTML, overhead (s)."""
    out = {"wall": wall, "before_first_notebook": None, "notebooks": {}}
    running = [(t, text.split()[1]) for t, text in lines if text.startswith("running ")]
    out["before_first_notebook"] = running[0][0]
    for t_run, name in running:  # the notebooks run side by side
        t_html = stamp(lines, f"rendering {name}.html")
        t_done = stamp(lines, f"{name}.html done")
        nb = notebook_times(folder / f"{name}.ipynb")
        kernel = (nb["first_cell"] - nb["start"]).total_seconds()
        imports = nb["setup"]
        computation = nb["cells"] - imports
        papermill = (t_html - t_run) - kernel - nb["cells"]
        html = t_done - t_html
        out["notebooks"][name] = {
            "kernel_start": kernel, "imports": imports, "computation": computation,
            "papermill": papermill, "html": html,
            "overhead": kernel + imports + papermill + html}
    return out


def print_breakdown(label: str, runs: list[dict]) -> dict:
    """Median over the runs of each figure; prints one line per notebook."""
    med = {"wall": statistics.median(r["wall"] for r in runs),
           "before_first_notebook": statistics.median(r["before_first_notebook"] for r in runs),
           "notebooks": {}}
    print(f"\n## {label}: hubnb run {med['wall']:.1f} s (median of {len(runs)}; runs "
          + ", ".join(f"{r['wall']:.1f}" for r in runs) + " s), "
          f"{med['before_first_notebook']:.1f} s before the first notebook (start, read, "
          "validate, snapshot)")
    print(f"{'notebook':>13} {'kernel':>7} {'imports':>8} {'papermill':>10} {'html':>6} "
          f"{'overhead':>9} {'computation':>12}")
    for name in runs[0]["notebooks"]:
        m = {k: statistics.median(r["notebooks"][name][k] for r in runs)
             for k in runs[0]["notebooks"][name]}
        med["notebooks"][name] = m
        ok = "met" if m["overhead"] < OVERHEAD_TARGET_S else "MISSED"
        print(f"{name:>13} {m['kernel_start']:7.2f} {m['imports']:8.2f} {m['papermill']:10.2f} "
              f"{m['html']:6.2f} {m['overhead']:9.2f} {m['computation']:12.2f}   "
              f"overhead {ok} (< {OVERHEAD_TARGET_S:.0f} s)")
    return med


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hubnb", default=str(ROOT / ".venv" / "bin" / "hubnb"))
    ap.add_argument("--repeat", type=int, default=2, help="hubnb runs per dataset (median)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hubnb-bench")
    ap.add_argument("--skip-pmm", action="store_true", help="no pymc-marketing anchor")
    args = ap.parse_args(argv)
    if not Path(args.hubnb).is_file():
        sys.exit(f"{args.hubnb} not found: run `make env` first")
    demo = ROOT / "data" / "demo"
    if not (demo / ".complete").is_file():
        sys.exit(f"{demo} is missing: build it with `make data/demo/.complete`")
    results = {"started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    sys.path.insert(0, str(HERE))
    from clv_models_bench import cdnow_dir, write_params

    with tempfile.TemporaryDirectory(prefix="hubnb-overhead-") as tmp:
        tmp = Path(tmp)
        cases = [("demo merchant (20,000 profiles, auto)",
                  write_params(tmp, "demo", "demo", demo)),
                 ("CDNOW full (bg_nbd)",
                  write_params(tmp, "cdnow", "cdnow", cdnow_dir(args, "master"),
                               model="bg_nbd"))]
        for label, params in cases:
            runs = []
            for i in range(args.repeat):
                out = tmp / f"out{i}"
                wall, lines = timed_run(args.hubnb, params, out)
                runs.append(breakdown(out / params.stem, wall, lines))
            results[label] = print_breakdown(label, runs)
    hub = results["CDNOW full (bg_nbd)"]["wall"]
    if not args.skip_pmm:
        import clv_bench

        cdnow = yaml.safe_load((ROOT / "params" / "cdnow" / "cdnow.yaml").read_text())["clv"]
        draws, tune = cdnow["draws"], cdnow.get("tune") or cdnow["draws"]
        print(f"\npymc-marketing BG/NBD + Gamma-Gamma on CDNOW full, 2 chains x {draws} draws "
              f"(+{tune} tune), 12-month CLV ...", flush=True)
        *_, pmm = clv_bench.run_pymc_marketing(clv_bench.cdnow_orders(), draws, tune)
        ratio = pmm / hub
        results["pymc_marketing_seconds"] = pmm
        results["speedup"] = ratio
        print(f"hubnb run on CDNOW full (bg_nbd; fit, 273-day backtest fit, both notebooks, "
              f"HTML): {hub:.1f} s; pymc-marketing (fits and CLV only): {pmm:.1f} s: "
              f"{ratio:.1f}x ({'met' if ratio >= SPEEDUP_TARGET else 'MISSED'}, target >= "
              f"{SPEEDUP_TARGET:.0f}x)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"overhead_{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
