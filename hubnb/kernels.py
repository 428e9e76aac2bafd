"""The kernel manager ``hubnb run`` starts its notebooks' kernels with.

The kernels of a run live on this machine and talk only to the run, so they use IPC
(Unix domain sockets in Jupyter's runtime folder, readable by this user only) instead of
TCP on localhost: no port is opened, and ipykernel has no reason to print its "Kernel is
running over TCP without encryption" warning into every run.
"""

from __future__ import annotations

import sys

from jupyter_client.manager import AsyncKernelManager


class QuietKernelManager(AsyncKernelManager):
    """An :class:`AsyncKernelManager` over IPC where the platform has Unix sockets."""

    def __init__(self, **kwargs):
        if sys.platform != "win32":
            kwargs.setdefault("transport", "ipc")
        super().__init__(**kwargs)
