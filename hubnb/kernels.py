"""The kernels ``hubnb run`` starts its notebooks in.

The kernels of a run live on this machine and talk only to the run, so they use IPC
(Unix domain sockets in Jupyter's runtime folder, readable by this user only) instead of
TCP on localhost: no port is opened, and ipykernel has no reason to print its "Kernel is
running over TCP without encryption" warning into every run.

A run executes its notebooks side by side, each in its own kernel; a :class:`KernelGroup`
holds them, so that when one notebook fails, or the run is interrupted, the others'
kernels are stopped at once instead of running to the end.

A batch worker (:mod:`hubnb.worker`) keeps its kernels warm from one merchant to the next
(:class:`WarmKernels`): one kernel per notebook, reset between merchants to the state a new
kernel has (:data:`RESET_CODE`), replaced after any failure and every
:data:`WarmKernels.recycle_after` merchants.
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
        self.clients = []    # the clients nbclient made on this manager (a warm kernel's)
        if sys.platform != "win32":
            kwargs.setdefault("transport", "ipc")
            # jupyter_client's default socket path is "kernel-ipc-<n>" in the working
            # folder, the same for every kernel started there: kernels running side by
            # side need paths of their own.
            kwargs.setdefault("ip", _socket_base())
        super().__init__(**kwargs)

    #: A file descriptor for the kernel process's own output (not its cells': those reach
    #: the notebook), or None to inherit this process's.
    output_fd: int | None = None

    async def _async_pre_start_kernel(self, **kw):
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        if self.output_fd is not None:
            kw["stdout"] = kw["stderr"] = self.output_fd
        return cmd, kw

    def client(self, **kwargs):
        # nbclient stops the client it makes only for a kernel it owns: a warm kernel's
        # clients are stopped by WarmKernels.release
        kc = super().client(**kwargs)
        self.clients.append(kc)
        return kc

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


#: Run in a warm kernel before its next merchant: what a new kernel would not have is
#: removed. The user namespace, input history and execution count (IPython's new session),
#: open figures, matplotlib's settings (as read at import), Python's record of the
#: warnings already shown (so each merchant's run.log gets the warnings a new kernel would
#: print), and the working folder, which becomes the merchant's staging folder.
RESET_CODE = """\
def _hubnb_reset(folder):
    import os, sys, warnings
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib
        import matplotlib.pyplot as plt
        plt.close("all")
        matplotlib.rc_file_defaults()
    filters = list(warnings.filters)
    warnings.resetwarnings()          # forgets which warnings were shown, everywhere
    warnings.filters[:] = filters
    os.chdir(folder)
    get_ipython().reset(new_session=True)
_hubnb_reset({folder!r})
"""


class WarmKernels:
    """A batch worker's kernels, one per notebook, kept from one merchant to the next.

    :meth:`manager` hands out a notebook's kernel manager: on first use an unstarted one
    (nbclient starts it in the merchant's folder), afterwards the running kernel, reset by
    :data:`RESET_CODE`. :meth:`release` stops the clients a run made on it. After a failure
    :meth:`discard` stops every kernel, so the next merchant starts from new ones, as it does
    every ``recycle_after`` merchants.
    """

    recycle_after = 25

    def __init__(self, output_fd: int | None = None):
        self._managers: dict[str, QuietKernelManager] = {}
        self._uses = 0
        # the kernels outlive a merchant: their own output must not go to its log
        self._output_fd = output_fd

    def begin(self) -> None:
        """A new merchant: recycle the kernels when they have served enough."""
        self._uses += 1
        if self._uses > self.recycle_after:
            self.discard()
            self._uses = 1

    def manager(self, notebook: str, folder: Path,
                group: KernelGroup | None = None) -> QuietKernelManager:
        """``notebook``'s kernel manager, its kernel (if running) reset for ``folder`` and
        in ``group`` (the run's kernels, stopped together when one notebook fails)."""
        km = self._managers.get(notebook)
        if km is not None and not _alive(km):
            self._shutdown(km)
            km = None
        if km is None:
            km = self._managers[notebook] = QuietKernelManager(kernel_name="python3")
            km.output_fd = self._output_fd
        else:
            _run_quietly(km, RESET_CODE.format(folder=str(folder)))
        km.group = group
        if group is not None and km.has_kernel:
            group.add(km.provisioner.pid)
        return km

    def release(self, notebook: str) -> None:
        """The run is done with ``notebook``'s kernel: stop its clients, leave its group."""
        km = self._managers.get(notebook)
        if km is None:
            return
        for kc in km.clients:
            kc.stop_channels()
        km.clients.clear()
        if km.group is not None and km.has_kernel:
            km.group.discard(km.provisioner.pid)
        km.group = None

    def discard(self) -> None:
        """Stop every kernel now (after a failure, and when the worker ends)."""
        managers, self._managers = list(self._managers.values()), {}
        for km in managers:
            self._shutdown(km)

    def pids(self) -> list[int]:
        return [pid for km in self._managers.values()
                if (pid := getattr(km.provisioner, "pid", None)) is not None]

    @staticmethod
    def _shutdown(km: QuietKernelManager) -> None:
        from jupyter_core.utils import run_sync

        for kc in km.clients:
            kc.stop_channels()
        km.clients.clear()
        try:
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
        except Exception:        # already dead: make sure of it
            pid = getattr(km.provisioner, "pid", None)
            if pid is not None:
                _kill(pid)


def _alive(km: QuietKernelManager) -> bool:
    from jupyter_core.utils import run_sync

    try:
        return bool(km.has_kernel and run_sync(km.is_alive)())
    except Exception:
        return False


def _run_quietly(km: QuietKernelManager, code: str, timeout: float = 60) -> None:
    """Run ``code`` in ``km``'s kernel, outside the history and the execution count."""
    from jupyter_core.utils import run_sync

    kc = km.client()
    try:
        kc.start_channels()
        run_sync(kc.wait_for_ready)(timeout=timeout)
        reply = run_sync(kc.execute_interactive)(code, silent=True, store_history=False,
                                                 timeout=timeout, output_hook=lambda msg: None)
        if reply["content"].get("status") != "ok":
            raise RuntimeError(f"resetting a warm kernel failed: {reply['content']}")
    finally:
        kc.stop_channels()
        km.clients.remove(kc)
