"""Folders and files that readers never see half written, even after a SIGKILL.

A run, a demo dataset and a Klaviyo pull all write into a staging folder beside their
target and, only once it is complete, swap it in with :func:`publish`; single files (the
index page, ``status.json``) go through :func:`write_atomic`.

Whatever is written aside is named ``.<target>-<kind>-<pid>-<random>`` (:func:`aside`):
the process that made it, and the target it belongs to, can be read from the name. A
process killed before its own clean-up (SIGKILL, a power cut) leaves such entries behind;
:func:`sweep`, called by the next run, publish or write of the same target, removes those
whose process is gone, and puts back an old folder that a publish without an atomic
exchange had moved aside (see :func:`publish`).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from . import faults

#: The kinds of entries written aside (the ``<kind>`` of :func:`aside`).
KINDS = ("new", "old", "tmp", "snapshot", "batch")


def aside(target: Path, kind: str = "new", folder: bool = True) -> Path:
    """A new private folder (or, with ``folder=False``, a free file name) beside
    ``target``, named after it, ``kind`` and this process."""
    target = Path(target)
    prefix = f".{target.name}-{kind}-{os.getpid()}-"
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    return target.with_name(prefix + secrets.token_hex(4))


def publish(staging: Path, final: Path) -> None:
    """Replace ``final`` by the complete ``staging`` folder (same parent).

    On Linux the two folders are exchanged in one step (``renameat2`` with
    ``RENAME_EXCHANGE``), so ``final`` is at every moment either the old or the new folder;
    the old one, now under the staging name, is then removed. Where the exchange is not
    available (another OS; NFS), the old ``final`` is renamed aside and the new one renamed
    in: a process killed between the two renames leaves no ``final``, and the next
    :func:`sweep` of ``final`` (every run, publish and pull does one first) renames the old
    folder back. The published folder is readable by others (``mkdtemp`` makes staging
    folders private).
    """
    staging, final = Path(staging), Path(final)
    os.chmod(staging, 0o755)
    sweep(final)
    if _exchange(staging, final):
        faults.point("publish-swapped")
        shutil.rmtree(staging, ignore_errors=True)   # the old folder, under the staging name
        return
    if not final.exists():
        staging.rename(final)
        return
    old = aside(final, "old", folder=False)
    final.rename(old)
    try:
        faults.point("publish-aside")
        staging.rename(final)
    except BaseException:
        old.rename(final)
        raise
    faults.point("publish-swapped")
    shutil.rmtree(old, ignore_errors=True)


def write_atomic(path: Path, text: str, point: str | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a file aside and one rename: readers see
    the old file or the new one, never a part. ``point``: a fault point (:mod:`hubnb.faults`)
    between the two."""
    path = Path(path)
    sweep(path)
    tmp = aside(path, "tmp", folder=False)
    try:
        tmp.write_text(text, encoding="utf-8")
        if point:
            faults.point(point)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def copy_atomic(source: Path, path: Path) -> Path:
    """Copy ``source`` to ``path`` as :func:`write_atomic` does."""
    path = Path(path)
    sweep(path)
    tmp = aside(path, "tmp", folder=False)
    try:
        shutil.copyfile(source, tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def sweep(target: Path) -> None:
    """Clear what killed processes left beside ``target`` (see :func:`aside`).

    Entries of processes still running (this one included) are left alone. When
    ``target`` is missing and a dead process's ``old`` folder is there, that folder is
    the last complete ``target`` (a publish killed between its two renames): it is
    renamed back instead of removed.
    """
    target = Path(target)
    parent = target.parent
    pattern = re.compile(rf"^\.{re.escape(target.name)}-({'|'.join(KINDS)})-(\d+)-[a-z0-9_]+$")
    try:
        names = os.listdir(parent)
    except OSError:
        return
    leftovers = []
    for name in names:
        match = pattern.match(name)
        if match and not _alive(int(match.group(2))):
            leftovers.append((match.group(1), parent / name))
    olds = [path for kind, path in leftovers if kind == "old" and path.is_dir()]
    if olds and not os.path.lexists(target):
        newest = max(olds, key=lambda p: p.stat().st_ctime)   # a rename sets ctime
        try:
            newest.rename(target)
            leftovers = [(kind, path) for kind, path in leftovers if path != newest]
        except OSError:     # another process's sweep was first
            return
    for _, path in leftovers:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.unlink()
            except OSError:
                pass


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":   # Windows: os.kill(pid, 0) is a Ctrl-C
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- the exchange

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2 = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap the entries ``a`` and ``b`` atomically; False when ``b`` is missing or the
    platform or filesystem cannot (then nothing was changed)."""
    global _renameat2
    if not sys.platform.startswith("linux"):
        return False
    if _renameat2 is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _renameat2 = libc.renameat2
            _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                   ctypes.c_char_p, ctypes.c_uint]
            _renameat2.restype = ctypes.c_int
        except (OSError, AttributeError):   # glibc < 2.28, musl: no renameat2
            _renameat2 = False
    if not _renameat2:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        if code == errno.ENOENT and not os.path.lexists(a):
            raise FileNotFoundError(code, os.strerror(code), str(a))
        return False
    raise OSError(code, os.strerror(code), f"{a} <-> {b}")
