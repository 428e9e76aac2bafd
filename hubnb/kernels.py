"""The kernels ``hubnb run`` starts its notebooks in.

The kernels of a run live on this machine and talk only to the run, so they use IPC
(Unix domain sockets in Jupyter's runtime folder, readable by this user only) instead of
TCP on localhost: no port is opened, and ipykernel has no reason to print its "Kernel is
running over TCP without encryption" warning into every run.

A run executes its notebooks side by side, each in its own kernel; a :class:`KernelGroup`
holds them, so that when one notebook fails, or the run is interrupted, the others'
kernels are stopped at once instead of running to the end.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from . import faults


class QuietKernelManager(AsyncKernelManager):
    """An :class:`AsyncKernelManager` over IPC where the platform has Unix sockets."""

    #: The group this kernel belongs to (set on the subclass :meth:`KernelGroup.manager`
    #: makes), or None.
    group: KernelGroup | None = None

    def __init__(self, **kwargs):
        if sys.platform != "win32":
            kwargs.setdefault("transport", "ipc")
            # jupyter_client's default socket path is "kernel-ipc-<n>" in the working
            # folder, the same for every kernel started there: kernels running side by
            # side need paths of their own.
            kwargs.setdefault("ip", _socket_base())
        super().__init__(**kwargs)

    async def _async_post_start_kernel(self, **kw) -> None:
        await super()._async_post_start_kernel(**kw)
        if self.group is not None:
            self.group.add(self.provisioner.pid)
        faults.point("kernel-started")

    async def _async_interrupt_kernel(self) -> None:
        # jupyter_client interrupts a kernel before shutting it down, in case it is busy;
        # a notebook's kernel is idle by then (or already stopped), and ipykernel would
        # print "KeyboardInterrupt caught in kernel" into the run's output.
        if not self.shutting_down:
            await super()._async_interrupt_kernel()

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        pid = getattr(self.provisioner, "pid", None)
        try:
            await super().shutdown_kernel(now=now, restart=restart)
        finally:
            if self.group is not None:
                self.group.discard(pid)


class KernelGroup:
    """The kernel processes of one run, stopped together by :meth:`stop`.

    A kernel that starts after :meth:`stop` is stopped as soon as it is up, so a notebook
    that was about to start does not run either. A stopped kernel makes its notebook fail
    with nbclient's ``DeadKernelError`` within a second.
    """

    def __init__(self):
        self._pids: set[int] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def manager(self) -> type[QuietKernelManager]:
        """A kernel manager class (what Papermill takes) whose kernels join this group."""
        return type("GroupKernelManager", (QuietKernelManager,), {"group": self})

    def add(self, pid: int | None) -> None:
        with self._lock:
            if pid is None:
                return
            if self._stopped:
                _kill(pid)
            else:
                self._pids.add(pid)

    def discard(self, pid: int | None) -> None:
        with self._lock:
            self._pids.discard(pid)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for pid in self._pids:
                _kill(pid)
            self._pids.clear()


def _socket_base() -> str:
    """A new path prefix for a kernel's Unix sockets, in Jupyter's runtime folder."""
    from jupyter_core.paths import jupyter_runtime_dir

    folder = Path(jupyter_runtime_dir())
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(folder / f"hubnb-{uuid.uuid4().hex[:12]}")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    except ProcessLookupError:
        pass
