"""Fault injection for the kill tests (tests/test_faults.py): SIGKILL at a named point.

``HUBNB_KILL_AT=<point>:<n>`` kills a process with SIGKILL the ``n``-th time (default the
first) it reaches ``<point>``. Unset, :func:`point` is one dictionary lookup. The points:

========================  ==========================================================
``kernel-started``        ``hubnb run``: a notebook's kernel is up (n-th kernel)
``compute``               inside a notebook's kernel: the dataset is open, a table is
                          about to be written, the numbers are about to be recorded;
                          kills the ``hubnb run`` that started the kernel
``executed``              ``hubnb run``: a notebook has run, before it is rendered
``rendered``              ``hubnb run``: a notebook's HTML is written
``staged``                ``hubnb run``: the staging folder is complete, not published
``publish-aside``         :func:`hubnb.folders.publish` without an atomic exchange: the
                          old folder is moved aside, the new one not yet in place
``publish-swapped``       :func:`hubnb.folders.publish`: the new folder is in place, the
                          old one not yet removed
``index-written``         ``index.html``'s new text is written aside, not yet swapped in
``batch-ran``             ``hubnb batch``: a merchant's run ended, nothing recorded yet
``batch-logged``          ``hubnb batch``: its ``run.log`` is in place, ``status.json``
                          not yet
``pull-append``           ``hubnb pull-klaviyo``: a page's rows are written to the
                          (buffered) state file, not yet closed nor recorded
``pull-page``             ``hubnb pull-klaviyo``: a page's rows and the next page's URL
                          are saved
========================  ==========================================================

The variable is inherited: ``hubnb batch`` passes it to every merchant's ``hubnb run``,
and a run to its kernels.
"""

from __future__ import annotations

import os
import signal
import threading

VARIABLE = "HUBNB_KILL_AT"
_seen: dict[str, int] = {}
_lock = threading.Lock()     # a run's notebooks reach the same points from two threads


def point(name: str, target: int | None = None) -> None:
    """SIGKILL ``target`` (default: this process) when ``HUBNB_KILL_AT`` names this point
    and this is its n-th time here."""
    wanted = os.environ.get(VARIABLE)
    if not wanted:
        return
    where, _, count = wanted.partition(":")
    if where != name:
        return
    with _lock:
        _seen[name] = _seen.get(name, 0) + 1
        now = _seen[name] == int(count or 1)
    if now:
        os.kill(target or os.getpid(), signal.SIGKILL)


def run_process() -> int | None:
    """In a notebook's kernel, the ``hubnb run`` process that started it (None elsewhere)."""
    parent = os.environ.get("JPY_PARENT_PID", "")
    return int(parent) if parent.isdigit() else None
