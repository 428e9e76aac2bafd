"""Folders that readers never see half written.

A run, a demo dataset and a Klaviyo pull all write into a staging folder beside their
target and, only once it is complete, swap it in with :func:`publish`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def publish(staging: Path, final: Path) -> None:
    """Replace ``final`` by the complete ``staging`` folder (same parent: two renames).

    The old ``final`` is moved aside only once the new one is complete, then removed; the
    published folder is readable by others (``mkdtemp`` makes staging folders private).
    """
    staging, final = Path(staging), Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}-old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    staging.rename(final)
    os.chmod(final, 0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
