"""The ``hubnb`` command: ``hubnb run PARAMS``, ``hubnb batch PARAMS_DIR``, ``hubnb notebook
NAME``, ``hubnb pull-klaviyo``, ``hubnb demo-data``, ``hubnb cdnow-data``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .errors import HubnbError


def _skip_iri_checker() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax`` in this process.

    Papermill validates notebooks with nbformat, which imports jsonschema, which imports
    every format checker it finds installed; ``rfc3987_syntax`` (there for JupyterLab's
    jupyter-events) builds about 35 Lark parsers at import: 1 to 2.5 s of every ``hubnb
    run``, before any notebook starts. No notebook schema uses the ``iri`` formats it
    checks, and jsonschema skips a checker whose library is missing
    (python-jsonschema/jsonschema#1428). The ``hubnb`` command's own process only.
    """
    sys.modules.setdefault("rfc3987_syntax", None)


def main(argv=None, warm=None) -> int:
    parser = argparse.ArgumentParser(prog="hubnb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run_p = sub.add_parser("run", help="run every report notebook for one merchant")
    run_p.add_argument("params", help="the merchant's params file, e.g. params/demo.yaml")
    run_p.add_argument("--out", default="outputs", help="output folder (default: outputs)")
    run_p.add_argument("--notebooks", default=None, help="source notebooks folder")
    run_p.add_argument("--kernel", default=None, help="Jupyter kernel name")
    run_p.add_argument("--only", choices=("customer_hub", "clv"), default=None,
                       help="run only this report (the other is kept from the last good run)")
    run_p.add_argument("--failed-dir", default=None,
                       help="where to keep a failing notebook (default: a temporary folder)")
    run_p.add_argument("--no-index", action="store_true", help="do not refresh index.html")
    run_p.add_argument("--locale", default=None,
                       help="the reports' language: en, it, de or ko (default: the params' "
                            "locale)")
    run_p.add_argument("--population", default=None,
                       help="a batch's population.json: a merchant below the eligibility bar "
                            "gets its CLV under the peers' prior (clv.pooling: auto)")

    batch_p = sub.add_parser("batch", help="run every merchant of a folder of params files")
    batch_p.add_argument("params_dir", help="folder of params files, one per merchant")
    batch_p.add_argument("--out", default="outputs", help="output folder (default: outputs)")
    batch_p.add_argument("--workers", type=int, default=None,
                         help="merchants at a time (default: the machine's cores)")
    batch_p.add_argument("--only", choices=("customer_hub", "clv"), default=None,
                         help="run only this report for every merchant")
    batch_p.add_argument("--force", action="store_true",
                         help="run merchants whose inputs have not changed too")
    batch_p.add_argument("--timeout", type=float, default=3600,
                         help="seconds after which a merchant is stopped and failed "
                              "(default 3600; 0: no limit)")
    batch_p.add_argument("--notebooks", default=None, help="source notebooks folder")
    batch_p.add_argument("--locale", default=None,
                         help="the language of every report and of the index (default: each "
                              "merchant's params; the index in English)")
    batch_p.add_argument("--scheduler", default=None,
                         help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: "
                              "a local pool)")
    start = batch_p.add_mutually_exclusive_group()
    start.add_argument("--cold", dest="warm", action="store_false",
                       help="a new hubnb run process and new kernels for every merchant "
                            "(default: each local worker keeps its process and kernels warm "
                            "from one merchant to the next)")
    start.add_argument("--warm", dest="warm", action="store_true", default=True,
                       help="the default, kept for the scripts that pass it")

    nb_p = sub.add_parser("notebook",
                          help="write a report notebook to open by hand, its headings and "
                               "explanations in a language")
    nb_p.add_argument("names", nargs="*", choices=("customer_hub", "clv"), metavar="NAME",
                      help="customer_hub or clv (default: both)")
    nb_p.add_argument("--locale", default=None,
                      help="en, it, de or ko (default: the params file's locale)")
    nb_p.add_argument("--params", default=None,
                      help="the params file the notebook reads (default: params/demo.yaml "
                           "of the checkout)")
    nb_p.add_argument("--out", default=None,
                      help="the notebook to write, or a folder for them (default: "
                           "outputs/notebooks/, as NAME.LOCALE.ipynb)")

    pull_p = sub.add_parser("pull-klaviyo",
                            help="export a Klaviyo account into a dataset directory "
                                 "(API key from KLAVIYO_API_KEY)")
    pull_p.add_argument("--out", required=True, help="dataset directory, e.g. data/<merchant>")
    pull_p.add_argument("--since", default=None,
                        help="first pull: events from this date on (YYYY-MM-DD)")
    pull_p.add_argument("--mapping", default=None,
                        help="YAML file naming the account's metrics and properties")
    pull_p.add_argument("--params-out", default=None,
                        help="write a starting params file here (time zone and currency "
                             "from the account)")
    pull_p.add_argument("--base-url", default=None,
                        help="API base URL (default: $KLAVIYO_BASE_URL or "
                             "https://a.klaviyo.com)")

    demo_p = sub.add_parser("demo-data", help="write a simulated merchant's dataset")
    demo_p.add_argument("--out", required=True, help="dataset directory to write")
    demo_p.add_argument("--profiles", type=int, default=20000)
    demo_p.add_argument("--seed", type=int, default=7)
    demo_p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    demo_p.add_argument("--with-predictions", action="store_true",
                        help="also write a predictions table (another system's CLV)")
    demo_p.add_argument("--regularity", type=int, default=0, metavar="K",
                        help="purchases from MBG/CNBD-K (Erlang-K gaps between orders: "
                             "customers who reorder at regular intervals); 0, the default, "
                             "BG/NBD")

    cdnow_p = sub.add_parser("cdnow-data", help="write the CDNOW benchmark as a dataset")
    cdnow_p.add_argument("--out", required=True, help="dataset directory to write")
    cdnow_p.add_argument("--kind", choices=("master", "sample"), default="master",
                         help="all 23,570 customers or the 1/10 sample of 2,357")

    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            from .run import run

            # Stopped by hubnb batch (a timeout, Ctrl-C): unwind like Ctrl-C, so the run
            # removes its staging folder and shuts its kernel down.
            signal.signal(signal.SIGTERM, _interrupt)
            _stop_with_parent()
            _skip_iri_checker()
            final = run(args.params, out_root=args.out, notebooks_dir=args.notebooks,
                        kernel_name=args.kernel, log=lambda m: print(m, file=sys.stderr),
                        only=args.only, failed_dir=args.failed_dir, index=not args.no_index,
                        locale=args.locale, warm=warm, population=args.population)
            print(f"reports written to {final}/ (index: {final.parent / 'index.html'})")
        elif args.command == "batch":
            from .batch import batch, summary_table

            if args.workers is not None and args.workers < 1:
                raise HubnbError("--workers must be at least 1")
            outcomes = batch(args.params_dir, out_root=args.out, workers=args.workers,
                             only=args.only, force=args.force, timeout=args.timeout or None,
                             scheduler=args.scheduler, notebooks_dir=args.notebooks,
                             locale=args.locale, warm=args.warm)
            print(summary_table(outcomes))
            print(f"index: {Path(args.out).resolve() / 'index.html'}")
            if any(o.status == "failed" for o in outcomes):
                return 1
        elif args.command == "notebook":
            from .notebook import write_notebook

            names = list(dict.fromkeys(args.names)) or ["customer_hub", "clv"]
            if len(names) > 1 and args.out and args.out.endswith(".ipynb"):
                raise HubnbError("--out names one notebook; for several, name a folder")
            for name in names:
                path = write_notebook(name, args.locale, args.out, args.params)
                print(f"notebook written to {path}")
        elif args.command == "pull-klaviyo":
            from .sources.klaviyo import pull

            result = pull(args.out, since=args.since, mapping=args.mapping,
                          params_out=args.params_out, base_url=args.base_url,
                          log=lambda m: print(m, file=sys.stderr))
            counts = ", ".join(f"{name} {n:,}" for name, n in result.counts.items())
            print(f"dataset written to {result.out}/ ({counts})")
            if result.params_out:
                print(f"params written to {result.params_out}")
        elif args.command == "demo-data":
            from .demo import generate_demo_data

            if args.profiles < 1:
                raise HubnbError("--profiles must be at least 1")
            if not 0 <= args.regularity <= 12:
                raise HubnbError("--regularity must be from 1 to 12 (0: BG/NBD purchases)")
            generate_demo_data(Path(args.out), args.profiles, args.seed, fmt=args.format,
                               with_predictions=args.with_predictions,
                               regularity=args.regularity)
            print(f"demo dataset written to {args.out}/")
        elif args.command == "cdnow-data":
            from .datasets import cdnow_dataset

            cdnow_dataset(Path(args.out), kind=args.kind)
            print(f"CDNOW ({args.kind}) dataset written to {args.out}/")
    except HubnbError as exc:
        print(f"hubnb: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _stop_with_parent() -> None:
    """A run started by ``hubnb batch``: have Linux send it SIGTERM when the batch dies,
    even by SIGKILL, so no run (and no kernel) outlives its batch. Elsewhere a no-op."""
    from .batch import STOP_WITH_PARENT

    parent = os.environ.pop(STOP_WITH_PARENT, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):   # the batch died before the request was made
        raise KeyboardInterrupt("hubnb batch has stopped")
    import threading

    threading.Thread(target=_orphan_watchdog, args=(int(parent),), daemon=True,
                     name="hubnb-orphan-watchdog").start()


#: Seconds an orphaned run (or warm worker) has to finish the clean-up its parent-death
#: SIGTERM started before the watchdog ends it.
ORPHAN_GRACE = 8.0


def _orphan_watchdog(parent: int) -> None:
    """The backstop of the parent-death signal: once the batch is gone, the SIGTERM's
    clean-up gets ``grace`` seconds; a process still alive after them (its KeyboardInterrupt
    swallowed, or its clean-up stuck) kills its own child processes (the kernels) and
    exits, so that nothing outlives the batch."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    time.sleep(ORPHAN_GRACE)
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
            if stat and stat.rsplit(")", 1)[1].split()[1] == me:     # its parent: this one
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, IndexError):
            continue
    print("hubnb: error: hubnb batch has stopped (clean-up did not finish)", file=sys.stderr)
    os._exit(130)


def _interrupt(signum, frame):
    """SIGTERM: unwind like Ctrl-C, once. Further SIGTERMs are ignored until the handler is
    installed again, so they cannot interrupt the clean-up the first one started (removing
    the staging folder, stopping the kernels): a batch killed by SIGKILL sends its runs'
    and workers' parent-death SIGTERM once per thread it had (Linux sends it again each
    time a child is handed on to the next dying thread of its parent), two or three in a
    row, and the second used to leave a staging folder (a render thread still writing into
    it) or the kernels' shutdown unfinished."""
    signal.signal(signum, signal.SIG_IGN)
    raise KeyboardInterrupt(f"stopped by signal {signum}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
