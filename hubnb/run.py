"""``hubnb run``: execute every report notebook for one merchant and publish the outputs.

The run validates the params file and reads and validates the whole dataset once, so bad
input fails in a second with one line naming the key or the table, column and row. The
validated tables go to a snapshot that every notebook loads as it is (no second read).
The notebooks then run side by side, each in its own kernel, with Papermill into a staging
folder; only when every notebook has run and been rendered does the staging folder replace
``outputs/<merchant>/``. A failed run therefore leaves the merchant's last good output in
place and writes nothing half-done; so does a run killed at any moment, even by SIGKILL
(:mod:`hubnb.folders`: the swap is atomic, and the next run clears what the killed one
left).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, faults, i18n
from .data import load_dataset
from .errors import HubnbError
from .folders import aside, publish, sweep, write_atomic
from .params import load_params
from .provenance import provenance
from .report import METRICS_PARTS, REPORT_TABLES, REPORTS, jsonable, write_snapshot

if TYPE_CHECKING:          # imported where it runs (it starts Jupyter's machinery)
    from .kernels import KernelGroup


def shipped_notebooks() -> Path:
    """The report notebooks: ``hubnb/notebooks/`` inside an installed package (setup.py maps
    the repository's top-level ``notebooks/`` there when it builds), else, in a source
    checkout or an editable install, the top-level ``notebooks/`` itself."""
    packaged = Path(str(files("hubnb") / "notebooks"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "notebooks"


#: The report notebooks (:func:`shipped_notebooks`).
NOTEBOOKS_DIR = shipped_notebooks()


class ReportError(HubnbError):
    """A report notebook failed while running."""


#: Written beside a merchant's reports: what they were made from (see :func:`fingerprint`).
FINGERPRINT_FILE = "fingerprint.json"
#: Written beside a merchant's reports: the run's progress lines and whatever its notebooks
#: wrote to stderr (Python warnings among them), which the reports never show.
RUN_LOG = "run.log"


class RunLog:
    """A run's log: every progress line (also passed on to ``log``) and, per notebook, the
    text its cells wrote to stderr, kept out of the report (:func:`_execute`).

    The notebooks' threads report their progress too: one message at a time (``print``
    writes the text and its newline apart, so two threads' lines could run together)."""

    def __init__(self, log):
        self._log, self._lines = log, []
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        with self._lock:
            self._lines.append(message)
            self._log(message)

    def notebook_stderr(self, notebook: str, outputs: list[tuple[int, str]]) -> None:
        with self._lock:
            for cell, text in outputs:
                self._lines += [f"{notebook} cell {cell} (stderr, not in the report): {line}"
                                for line in text.rstrip("\n").splitlines()]

    def write(self, path: Path) -> None:
        with self._lock:
            path.write_text("".join(f"{line}\n" for line in self._lines), encoding="utf-8")


def run(params_path, out_root="outputs", notebooks_dir=None, kernel_name=None,
        log=print, only: str | None = None, failed_dir=None, index: bool = True,
        locale: str | None = None, warm=None, population=None) -> Path:
    """Run every notebook of ``notebooks_dir`` for the merchant of ``params_path``.

    Parameters
    ----------
    params_path : str or Path
        The merchant's params file.
    out_root : str or Path
        The folder holding one subfolder per merchant and ``index.html``.
    notebooks_dir : str or Path, optional
        Source notebooks; default :data:`NOTEBOOKS_DIR` (the repository's ``notebooks/``).
    kernel_name : str, optional
        Jupyter kernel; default ``python3``, the Python running hubnb.
    log : callable
        Receives one line of progress per step.
    only : str, optional
        Run only this report (``customer_hub`` or ``clv``); the merchant's other report,
        and its part of metrics.json, are kept from the last good run.
    failed_dir : str or Path, optional
        Where a failing notebook is kept, with Papermill's error cell (default: a new
        temporary folder, named in the error).
    index : bool
        Refresh ``out_root/index.html`` afterwards (``hubnb batch`` writes it once).
    locale : str, optional
        The reports' language (en, it, de, ko); default the params' ``locale``.
    warm : hubnb.kernels.WarmKernels, optional
        A batch worker's warm kernels, one per notebook, kept after the run (the worker
        replaces them after a failure); default a new kernel per notebook, stopped at its
        end.
    population : str or Path, optional
        A batch's population.json (``hubnb run --population``): with ``clv.pooling: auto``
        a merchant below the eligibility bar gets its CLV under the population prior
        (:mod:`hubnb.clv.population`). Its fingerprint joins the reports' fingerprint.

    Returns
    -------
    Path
        ``out_root/<merchant>``.
    """
    params_path = Path(params_path).resolve()
    if only is not None and only not in REPORTS:
        raise ReportError(f"--only must be one of {', '.join(REPORTS)}, not {only!r}")
    params = load_params(params_path)
    language = i18n.check(locale, "--locale") if locale else params.locale
    log = run_log = RunLog(log)   # what the run prints, kept as the published run.log too
    pop = None
    if population is not None:
        from .clv.population import read_population

        population = Path(population).resolve()
        pop = read_population(population)     # a bad file fails here, before anything runs
    log(f"reading and validating {params.data} ...")
    dataset = load_dataset(params.data)  # the whole contract is checked before anything is written
    prov = provenance(params, population)
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else NOTEBOOKS_DIR
    notebooks = sorted(nb for nb in notebooks_dir.glob("*.ipynb") if only in (None, nb.stem))
    if not notebooks:
        raise ReportError(f"no notebooks in {notebooks_dir}"
                          + (f" named {only}.ipynb" if only else ""))
    out_root = Path(out_root).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    final = out_root / params.merchant
    sweep(final)    # what a killed run left: its staging folders, or the old outputs put back
    staging = aside(final, "new")
    scratch = aside(final, "snapshot")
    try:
        previous = _keep_other_reports(final, staging, [nb.stem for nb in notebooks]) \
            if only else {}
        snapshots = {nb.stem: write_snapshot(dataset, prov, scratch / f"{nb.stem}.pickle",
                                             REPORT_TABLES.get(nb.stem), pop)
                     for nb in notebooks}
        at_once = len(notebooks) if _table_bytes(dataset) <= SIDE_BY_SIDE_BYTES else 1
        if at_once == 1 and len(notebooks) > 1:
            log("large dataset: the notebooks run one after the other (memory)")
        del dataset
        _give_back_memory()     # the kernels load the snapshot; this process needs no tables
        from .kernels import KernelGroup

        kernels = KernelGroup()

        def report(nb: Path) -> None:
            log(f"running {nb.stem} for {params.merchant} ...")
            source = localized_notebook(nb, language, scratch)
            km = warm.manager(nb.stem, staging, kernels) if warm is not None else None
            try:
                stderr = _execute(source, staging, params_path, snapshots[nb.stem],
                                  kernel_name or "python3", failed_dir, language,
                                  kernels.manager(), km)
            finally:
                if warm is not None:
                    warm.release(nb.stem)
            run_log.notebook_stderr(nb.name, stderr)
            faults.point("executed")
            log(f"rendering {nb.stem}.html ...")
            from .report_html import notebook_to_html

            notebook_to_html(staging / nb.name, title=params.display_name, locale=language)
            faults.point("rendered")
            log(f"{nb.stem}.html done")

        _side_by_side(report, notebooks, kernels, at_once)
        _write_metrics(staging, params, prov, previous.get("metrics") or {})
        _write_fingerprint(staging, prov, [nb.stem for nb in notebooks],
                           previous.get("fingerprint") or {})
        run_log.write(staging / RUN_LOG)
        faults.point("staged")
        publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if index:
        write_index(out_root, language)
    return final


def localized_notebook(nb: Path, locale: str, folder: Path) -> Path:
    """``nb`` with its markdown cells (headings and explanations) in ``locale``.

    Each markdown cell is one message of the catalog (:func:`hubnb.i18n.extract_notebook`);
    English is the source, so for ``en`` the notebook is used as it is.
    """
    if locale == i18n.DEFAULT:
        return nb
    import nbformat

    notebook = nbformat.read(nb, as_version=4)
    with i18n.using(locale):
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = i18n.gettext(cell.source)
    target = folder / nb.name
    nbformat.write(notebook, target)
    return target


def fingerprint(prov) -> dict:
    """What a report was made from: hubnb's version, the params file and the data files
    (their SHA-256 fingerprints, :mod:`hubnb.provenance`). Two runs with equal
    fingerprints made their reports from the same inputs with the same code."""
    made = {"hubnb_version": prov.hubnb_version, "params_fingerprint": prov.params_fingerprint,
            "data_fingerprint": prov.data_fingerprint}
    if getattr(prov, "population_fingerprint", ""):    # a pooled run: its population too
        made["population_fingerprint"] = prov.population_fingerprint
    return made


def read_fingerprints(folder: Path) -> dict:
    """``{report: fingerprint}`` of a merchant's last good reports (empty when none)."""
    return read_json(Path(folder) / FINGERPRINT_FILE).get("reports", {})


def _write_fingerprint(staging: Path, prov, reports: list[str], previous: dict) -> None:
    current = fingerprint(prov)
    merged = {**previous, **{name: current for name in reports}}
    (staging / FINGERPRINT_FILE).write_text(json.dumps({"reports": merged}, indent=2) + "\n")


def _keep_other_reports(final: Path, staging: Path, rerun: list[str]) -> dict:
    """With ``--only``: copy the last good output into ``staging`` except the rerun
    reports' own files, and return its metrics and fingerprints to merge with the new."""
    if not final.is_dir():
        return {}
    skip = {f"{name}{ext}" for name in rerun for ext in (".ipynb", ".html")}
    skip |= {"metrics.json", FINGERPRINT_FILE, "failed", "status.json"}
    for item in final.iterdir():
        if item.name in skip or item.name.startswith("."):
            continue
        target = staging / item.name
        if item.is_dir():
            shutil.copytree(item, target)
        else:
            shutil.copy2(item, target)
    try:
        metrics = json.loads((final / "metrics.json").read_text())
    except (OSError, ValueError):
        metrics = {}
    return {"metrics": {k: v for k, v in metrics.items() if k not in rerun and k in REPORTS},
            "fingerprint": {k: v for k, v in read_fingerprints(final).items()
                            if k not in rerun}}


def _table_bytes(dataset) -> int:
    """What the dataset's tables take in memory (each kernel loads its share of them)."""
    return int(sum(frame.memory_usage(index=False).sum() for frame in dataset.tables.values()))


def _side_by_side(report, notebooks: list[Path], kernels: KernelGroup,
                  at_once: int | None = None) -> None:
    """``report(nb)`` for every notebook, each in its own thread and kernel, ``at_once`` at
    a time (default: all).

    The notebooks share nothing but the read-only snapshots, so they run side by side: the
    short Customer Hub notebook costs no wall time beside the CLV fit, and one notebook's
    start-up (kernel, imports) overlaps the other's work. A dataset of more than
    :data:`SIDE_BY_SIDE_BYTES` runs them one after the other, so that only one kernel holds
    its tables at a time (10,000,000 profiles: about 6 GB for the Customer Hub's). The first
    failure, or an interrupt, stops every other kernel of the run and is raised once they
    have ended.
    """
    with ThreadPoolExecutor(at_once or len(notebooks),
                            thread_name_prefix="hubnb-notebook") as pool:
        futures = [pool.submit(report, nb) for nb in notebooks]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # Ctrl-C or SIGTERM: the threads' kernels are stopped too
            for future in futures:      # (one after the other: the next does not start)
                future.cancel()
            kernels.stop()
            raise
        failed = [f for f in futures if f in done and f.exception() is not None]
        if failed:
            for future in futures:
                future.cancel()
            kernels.stop()
            raise failed[0].exception()


#: Tables larger than this in memory (about 2,500,000 profiles of the demo merchant's
#: shape) run their notebooks one after the other instead of side by side.
SIDE_BY_SIDE_BYTES = 2 * 2**30


def _give_back_memory() -> None:
    """Return freed heap to the system (glibc keeps freed pages of the read tables for
    reuse: about 1 GB at a million profiles, held while the notebooks run)."""
    import ctypes
    import gc

    gc.collect()
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except Exception:       # no pyarrow pool to trim: nothing to give back there
        pass
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc (e.g. macOS, musl): nothing to trim
        pass


def _execute(nb: Path, staging: Path, params_path: Path, snapshot: Path, kernel_name,
             failed_dir=None, locale: str = "en", manager=None,
             km=None) -> list[tuple[int, str]]:
    """Execute ``nb`` into ``staging``; return what its cells wrote to stderr, as
    ``(execution count, text)``, taken out of the executed notebook (the report).

    ``manager`` is the kernel manager class of a new kernel; ``km`` instead a kernel
    manager (a warm kernel's, Papermill passes it on to nbclient), kept running after."""
    import papermill as pm
    from nbclient.exceptions import DeadKernelError

    from .kernels import QuietKernelManager

    target = staging / nb.name
    # The parameters as the executed notebook keeps them: relative to the folder it runs
    # and is published in (staging and the merchant's folder share a parent), so a report
    # holds no path of the machine that made it.
    where = {name: os.path.relpath(path, staging) for name, path in
             (("params_path", params_path), ("snapshot", snapshot))}
    try:
        executed = pm.execute_notebook(
            # The kernel starts in the staging folder (nbclient's resources path), not
            # through Papermill's cwd=, which changes the working folder of the whole
            # process: two notebooks running side by side would leave it wrong.
            str(nb), str(target), resources={"metadata": {"path": str(staging)}},
            kernel_name=kernel_name,
            parameters={**where, "output_dir": ".", "locale": locale},
            progress_bar=False, log_output=False,
            kernel_manager_class=manager or QuietKernelManager,
            km=km,
            # Papermill rewrites the whole notebook (figures included) before and after
            # every cell unless told not to; it still writes it once at the end, and with
            # the error cell when a cell fails.
            request_save_on_cell_execute=False,
            # every cell has finished and its outputs are in: nothing is left for a
            # graceful shutdown to wait for (it took 0.6 to 1.1 s per kernel)
            shutdown_kernel="immediate")
    except DeadKernelError:
        # The kernel process died (killed, or out of memory): no error cell to show.
        raise ReportError(f"{nb.name}: the notebook's kernel died while running (killed, or "
                          "out of memory?)") from None
    except pm.PapermillExecutionError as exc:
        where = Path(failed_dir) if failed_dir else Path(tempfile.mkdtemp(prefix="hubnb-failed-"))
        where.mkdir(parents=True, exist_ok=True)
        kept = where / nb.name
        if target.exists():
            shutil.copy(target, kept)
        # A HubnbError raised inside the notebook is already a one-line user message.
        raise ReportError(f"{nb.name} failed at cell {exc.exec_count}: {exc.ename}: "
                          f"{exc.evalue} (executed notebook kept at {kept})") from None
    stderr = _take_stderr(executed)
    if stderr:
        import nbformat

        nbformat.write(executed, target)
    return stderr


def _take_stderr(notebook) -> list[tuple[int, str]]:
    """Remove every stderr stream from ``notebook``'s outputs (warnings, library chatter)
    and return their text as ``(execution count, text)``: a report holds only the report,
    and ``run.log`` keeps the rest."""
    taken = []
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = output.get("text", "")
                taken.append((cell.get("execution_count"),
                              "".join(text) if isinstance(text, list) else text))
            else:
                kept.append(output)
        cell["outputs"] = kept
    return taken


def _write_metrics(staging: Path, params, prov, kept: dict) -> None:
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
    metrics.update(kept)   # --only: the other report's numbers, from its last good run
    parts = staging / METRICS_PARTS
    for part in sorted(parts.glob("*.json")) if parts.is_dir() else []:
        metrics[part.stem] = json.loads(part.read_text())
    shutil.rmtree(parts, ignore_errors=True)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, default=jsonable) + "\n")


def write_index(out_root, locale: str = "en") -> Path:
    """Refresh ``out_root/index.html``: one row per merchant folder, with its headline
    numbers, the status of its last run (``status.json``, written by ``hubnb batch``) and
    links to its reports and, after a failure, its log."""
    from .report_html import index_html

    out_root = Path(out_root)
    merchants = []
    for folder in sorted(p for p in out_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        metrics = read_json(folder / "metrics.json")
        status = read_json(folder / "status.json")
        if not metrics and not status:
            continue
        merchants.append({"folder": folder.name, "metrics": metrics, "status": status,
                          "reports": sorted(h.name for h in folder.glob("*.html")),
                          "failure_log": "failed/run.log"
                          if (folder / "failed" / "run.log").is_file() else ""})
    with i18n.using(locale):
        page = index_html(merchants)
    return write_atomic(out_root / "index.html", page, point="index-written")


def read_json(path: Path) -> dict:
    """A JSON file's object; empty when the file is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
