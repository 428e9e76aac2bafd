"""``hubnb run``: execute every report notebook for one merchant and publish the outputs.

The run validates the params file and reads and validates the whole dataset once, so bad
input fails in a second with one line naming the key or the table, column and row. The
validated tables go to a snapshot that every notebook loads as it is (no second read).
Notebooks then run with Papermill into a staging folder; only when every notebook has run
and been rendered does the staging folder replace ``outputs/<merchant>/``. A failed run
therefore leaves the merchant's last good output in place and writes nothing half-done.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path

from . import __version__
from .data import load_dataset
from .errors import HubnbError
from .params import load_params
from .provenance import provenance
from .report import METRICS_PARTS, jsonable, write_snapshot

#: The report notebooks, shipped inside the package.
NOTEBOOKS_DIR = Path(str(files("hubnb") / "notebooks"))


class ReportError(HubnbError):
    """A report notebook failed while running."""


def run(params_path, out_root="outputs", notebooks_dir=None, kernel_name=None,
        log=print) -> Path:
    """Run every notebook of ``notebooks_dir`` for the merchant of ``params_path``.

    Parameters
    ----------
    params_path : str or Path
        The merchant's params file.
    out_root : str or Path
        The folder holding one subfolder per merchant and ``index.html``.
    notebooks_dir : str or Path, optional
        Source notebooks; default the ones shipped in ``hubnb/notebooks``.
    kernel_name : str, optional
        Jupyter kernel; default ``python3``, the Python running hubnb.
    log : callable
        Receives one line of progress per step.

    Returns
    -------
    Path
        ``out_root/<merchant>``.
    """
    params_path = Path(params_path).resolve()
    params = load_params(params_path)
    log(f"reading and validating {params.data} ...")
    dataset = load_dataset(params.data)  # the whole contract is checked before anything is written
    prov = provenance(params)
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else NOTEBOOKS_DIR
    notebooks = sorted(notebooks_dir.glob("*.ipynb"))
    if not notebooks:
        raise ReportError(f"no notebooks in {notebooks_dir}")
    out_root = Path(out_root).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    final = out_root / params.merchant
    staging = Path(tempfile.mkdtemp(prefix=f".{params.merchant}-", dir=out_root))
    scratch = Path(tempfile.mkdtemp(prefix=f".{params.merchant}-snapshot-", dir=out_root))
    try:
        snapshot = write_snapshot(dataset, prov, scratch / "dataset.pickle")
        del dataset
        for nb in notebooks:
            log(f"running {nb.stem} for {params.merchant} ...")
            _execute(nb, staging, params_path, snapshot, kernel_name or "python3")
            log(f"rendering {nb.stem}.html ...")
            from .report_html import notebook_to_html

            notebook_to_html(staging / nb.name,
                             title=f"{params.display_name}: {nb.stem.replace('_', ' ')}")
        _write_metrics(staging, params, prov)
        _publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_index(out_root)
    return final


def _execute(nb: Path, staging: Path, params_path: Path, snapshot: Path, kernel_name) -> None:
    import papermill as pm

    from .kernels import QuietKernelManager

    target = staging / nb.name
    try:
        pm.execute_notebook(
            str(nb), str(target), cwd=str(staging), kernel_name=kernel_name,
            parameters={"params_path": str(params_path), "output_dir": str(staging),
                        "snapshot": str(snapshot)},
            progress_bar=False, log_output=False, kernel_manager_class=QuietKernelManager)
    except pm.PapermillExecutionError as exc:
        kept = Path(tempfile.mkdtemp(prefix="hubnb-failed-")) / nb.name
        if target.exists():
            shutil.copy(target, kept)
        # A HubnbError raised inside the notebook is already a one-line user message.
        raise ReportError(f"{nb.name} failed at cell {exc.exec_count}: {exc.ename}: "
                          f"{exc.evalue} (executed notebook kept at {kept})") from None


def _write_metrics(staging: Path, params, prov) -> None:
    metrics = {
        "merchant": params.merchant,
        "display_name": params.display_name,
        "currency": params.currency,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "hubnb_version": __version__,
        "period": params.period.as_dict(),
        "comparison": params.comparison.as_dict() if params.comparison else None,
        "provenance": prov.as_dict(),
    }
    parts = staging / METRICS_PARTS
    for part in sorted(parts.glob("*.json")) if parts.is_dir() else []:
        metrics[part.stem] = json.loads(part.read_text())
    shutil.rmtree(parts, ignore_errors=True)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, default=jsonable) + "\n")


def _publish(staging: Path, final: Path) -> None:
    # Two renames: the old output is moved aside only once the new one is complete.
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}-old-{os.getpid()}")
        final.rename(old)
    staging.rename(final)
    os.chmod(final, 0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_index(out_root) -> Path:
    """Refresh ``out_root/index.html``: every merchant's reports and headline numbers."""
    from .report_html import index_html

    out_root = Path(out_root)
    merchants = []
    for folder in sorted(p for p in out_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        metrics_file = folder / "metrics.json"
        if metrics_file.is_file():
            merchants.append((folder.name, json.loads(metrics_file.read_text()),
                              sorted(h.name for h in folder.glob("*.html"))))
    index = out_root / "index.html"
    tmp = index.with_name(".index.html.tmp")
    tmp.write_text(index_html(merchants), encoding="utf-8")
    tmp.replace(index)
    return index
