"""The ``hubnb`` command: ``hubnb run PARAMS``, ``hubnb demo-data``, ``hubnb cdnow-data``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import HubnbError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="hubnb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run_p = sub.add_parser("run", help="run every report notebook for one merchant")
    run_p.add_argument("params", help="the merchant's params file, e.g. params/demo.yaml")
    run_p.add_argument("--out", default="outputs", help="output folder (default: outputs)")
    run_p.add_argument("--notebooks", default=None, help="source notebooks folder")
    run_p.add_argument("--kernel", default=None, help="Jupyter kernel name")

    demo_p = sub.add_parser("demo-data", help="write a simulated merchant's dataset")
    demo_p.add_argument("--out", required=True, help="dataset directory to write")
    demo_p.add_argument("--profiles", type=int, default=20000)
    demo_p.add_argument("--seed", type=int, default=7)
    demo_p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    demo_p.add_argument("--with-predictions", action="store_true",
                        help="also write a predictions table (another system's CLV)")

    cdnow_p = sub.add_parser("cdnow-data", help="write the CDNOW benchmark as a dataset")
    cdnow_p.add_argument("--out", required=True, help="dataset directory to write")
    cdnow_p.add_argument("--kind", choices=("master", "sample"), default="master",
                         help="all 23,570 customers or the 1/10 sample of 2,357")

    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            from .run import run

            final = run(args.params, out_root=args.out, notebooks_dir=args.notebooks,
                        kernel_name=args.kernel, log=lambda m: print(m, file=sys.stderr))
            print(f"reports written to {final}/ (index: {final.parent / 'index.html'})")
        elif args.command == "demo-data":
            from .demo import generate_demo_data

            if args.profiles < 1:
                raise HubnbError("--profiles must be at least 1")
            generate_demo_data(Path(args.out), args.profiles, args.seed, fmt=args.format,
                               with_predictions=args.with_predictions)
            print(f"demo dataset written to {args.out}/")
        elif args.command == "cdnow-data":
            from .datasets import cdnow_dataset

            cdnow_dataset(Path(args.out), kind=args.kind)
            print(f"CDNOW ({args.kind}) dataset written to {args.out}/")
    except HubnbError as exc:
        print(f"hubnb: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
