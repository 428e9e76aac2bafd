"""Where a report comes from: hubnb's version and git commit, the params and the data.

Every report and metrics.json records a :class:`Provenance`, so a reviewer can tell which
code, which parameters and which data made the numbers. The fingerprints are SHA-256
digests: of the params file's bytes, and of the dataset's table files (name and content,
in name order), so any change to a file changes the data fingerprint.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from . import __version__
from .data import TABLES

_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_files(path) -> dict[str, str]:
    """``{file name: sha256}`` of the dataset's table files (one parquet or csv per table)."""
    path = Path(path)
    found = {}
    for name in TABLES:
        for ext in ("parquet", "csv"):
            file = path / f"{name}.{ext}"
            if file.is_file():
                found[file.name] = file_digest(file)
    return dict(sorted(found.items()))


def fingerprint(files: dict[str, str]) -> str:
    """One SHA-256 over ``name:digest`` lines of ``files`` (name order)."""
    lines = "".join(f"{name}:{digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the git checkout hubnb runs from (``+dirty`` with local changes);
    None for an installed package or when git is missing."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no", "--", "hubnb"],
                                capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


@dataclass(frozen=True)
class Provenance:
    """The code, parameters and data behind a report."""

    hubnb_version: str
    git_commit: str | None
    params_file: str
    params_fingerprint: str
    params: dict
    data_dir: str
    data_fingerprint: str
    data_files: dict
    #: The population.json a pooled run was given (its name), and its SHA-256.
    population_file: str = ""
    population_fingerprint: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def provenance(params, population=None) -> Provenance:
    """The provenance of a report made from ``params`` (a :class:`hubnb.params.Params`) and,
    when given, the ``population`` file (``hubnb run --population``)."""
    source = Path(params.source) if params.source else None
    raw = yaml.safe_load(source.read_text()) if source and source.is_file() else {}
    files = data_files(params.data)
    # Paths as a reviewer can use them on any machine: the params file by its name, the
    # data directory relative to the params file's folder (as ``data:`` is written), never
    # the absolute paths of the machine that ran the report.
    return Provenance(
        hubnb_version=__version__, git_commit=git_commit(),
        params_file=source.name if source else "",
        params_fingerprint=file_digest(source) if source and source.is_file() else "",
        params=_plain(raw or {}), data_dir=_relative(params.data, source),
        data_fingerprint=fingerprint(files), data_files=files,
        population_file=Path(population).name if population else "",
        population_fingerprint=file_digest(Path(population)) if population else "")


def _relative(path, params_file: Path | None) -> str:
    """``path`` relative to the params file's folder (POSIX separators), or as it is when
    there is no params file."""
    if params_file is None:
        return Path(path).as_posix()
    return Path(os.path.relpath(Path(path).resolve(), params_file.resolve().parent)).as_posix()


def _plain(value):
    """The parsed YAML with dates as ISO text, so it is JSON as it is."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
