"""A warm batch worker: one process that runs ``hubnb run`` for merchant after merchant.

``hubnb batch`` starts one worker per slot (``python -m hubnb.worker``) and sends it one
merchant at a time, as a JSON line on its stdin: ``{"argv": [...], "log": path}``, where
``argv`` is the ``hubnb run`` command line. The worker runs it in-process, exactly as
``hubnb run`` would, with its output (file descriptors 1 and 2) going to ``log``, and answers
on its own result stream with one JSON line: ``{"code": exit status, "peak_rss_mb": ...}``.

What stays warm from one merchant to the next: this interpreter with hubnb, Papermill,
nbconvert and their imports, and one Jupyter kernel per notebook (PyMC, ArviZ, numba and
the compiled models imported and loaded), reset between merchants to the state of a new
kernel (:class:`hubnb.kernels.WarmKernels`). After any failure the kernels are replaced,
so one merchant's failure cannot reach the next; a worker that dies (a crash, a timeout,
out of memory) is replaced by the batch. The executed notebooks stay the reports, and they
are the same as a new process's, byte for byte, but for the measured times
(``tests/test_warm.py``).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def _peak_rss_mb(pids: list[int]) -> float | None:
    """The largest resident-set high-water mark (MB) of ``pids`` since their last reset."""
    peaks = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            continue
    return max(peaks) if peaks else None


def _reset_peaks(pids: list[int]) -> None:
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")   # resets VmHWM (Linux)
        except OSError:
            continue


def run_one(argv: list[str], log: str, warm) -> int:
    """``hubnb run ARGV`` in this process, its output to ``log``; its exit status."""
    from .cli import main

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            code = main(["run", *argv], warm=warm)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except KeyboardInterrupt as exc:
            print(f"hubnb: error: {exc or 'interrupted'}", file=sys.stderr)
            code = 130
        except BaseException:
            traceback.print_exc()
            code = 1
        if code:
            warm.discard()     # whatever went wrong, the next merchant gets new kernels
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)
    return code


def main() -> int:
    from .cli import _skip_iri_checker, _stop_with_parent
    from .kernels import WarmKernels

    # the answers go out on a stream of their own: fds 1 and 2 are each merchant's log
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    # the worker's own stderr (the batch's worker log) takes the kernels' process output
    kernel_output = os.dup(2)
    try:
        _stop_with_parent()
    except KeyboardInterrupt:
        return 130
    _skip_iri_checker()
    import signal

    from .cli import _interrupt

    signal.signal(signal.SIGTERM, _interrupt)
    warm = WarmKernels(kernel_output)
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            job = json.loads(line)
            warm.begin()
            before = [os.getpid(), *warm.pids()]
            _reset_peaks(before)
            code = run_one(job["argv"], job["log"], warm)
            # the kernels it ran in: kept ones, new ones, or ones stopped after a failure
            peak = _peak_rss_mb(sorted({*before, *warm.pids()}))
            results.write(json.dumps({"code": code, "peak_rss_mb": peak}) + "\n")
    except KeyboardInterrupt:
        return 130
    finally:
        warm.discard()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
