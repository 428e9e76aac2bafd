"""How many cores this process may use."""

from __future__ import annotations

import os


def cpu_budget() -> int:
    """Cores one run may use: ``HUBNB_THREADS`` (set by ``hubnb batch``, which shares the
    machine between merchants), else the machine's."""
    try:
        return max(1, int(os.environ.get("HUBNB_THREADS") or os.cpu_count() or 1))
    except ValueError:
        return os.cpu_count() or 1
