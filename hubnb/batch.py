"""``hubnb batch``: many merchants, each isolated, N at a time, locally or on a Dask cluster.

Every params file of a folder is one merchant. Each merchant runs as its own ``hubnb run``
process (its notebooks in their own kernels), so a merchant whose data, params or notebook
fails, whose kernel dies or runs out of memory, or who hangs past the timeout, fails alone:
its ``run.log`` and the failing notebook (with Papermill's error cell) are kept in
``<out>/<merchant>/failed/`` beside its last good reports, which stay in place. A merchant
whose params, data files and hubnb version are unchanged since its last good run (the
fingerprint ``hubnb run`` stores beside the reports) is skipped unless ``force``.

The local pool is a thread per running merchant, each waiting on its merchant's process;
``scheduler`` sends the same function to a Dask distributed cluster instead (the ``dask``
extra). Workers read the params and data and write the outputs by path, so on a cluster
they must see the same filesystem paths as the client (a shared filesystem).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from . import __version__, faults, i18n
from .errors import HubnbError
from .folders import aside, publish, sweep, write_atomic
from .params import load_params
from .provenance import provenance
from .run import REPORTS, fingerprint, read_fingerprints, read_json, write_index

#: Written into each merchant's folder after every batch attempt (read by the index page).
STATUS_FILE = "status.json"
STATUSES = ("ok", "pooled", "not eligible", "skipped", "failed")
#: Seconds a stopped merchant's run gets to clean up (kernels, staging) before SIGKILL.
GRACE_SECONDS = 15
#: Set for each merchant's ``hubnb run`` to the batch's pid: the run asks the kernel for a
#: SIGTERM when its parent dies (Linux), so a killed batch leaves no run behind.
STOP_WITH_PARENT = "HUBNB_STOP_WITH_PARENT"


@dataclass(frozen=True)
class MerchantOutcome:
    """How one merchant's run went."""

    params: str
    merchant: str
    status: str                 # one of STATUSES
    seconds: float
    report: str = ""            # the merchant's output folder ("" when it has none)
    log: str = ""               # its run.log
    error: str = ""             # one line, when failed
    peak_rss_mb: float | None = None   # the largest process of the run (run or kernel)

    def as_dict(self) -> dict:
        return asdict(self)


def discover(params_dir) -> list[Path]:
    """The params files (``*.yaml``, ``*.yml``) of a folder, by name."""
    folder = Path(params_dir)
    if not folder.is_dir():
        raise HubnbError(f"params folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise HubnbError(f"no params files (*.yaml) in {folder}")
    return files


def unchanged(params, out_root: Path, only: str | None, population=None) -> bool:
    """Whether the merchant's last good reports were made from these very inputs (the
    population.json it is given included)."""
    stored = read_fingerprints(out_root / params.merchant)
    current = fingerprint(provenance(params, population))
    return all(stored.get(report) == current for report in ([only] if only else REPORTS))


# --------------------------------------------------------------------------- one merchant

def run_merchant(params_path, out_root, only: str | None = None, force: bool = False,
                 timeout: float | None = None, threads: int | None = None,
                 stop: threading.Event | None = None, notebooks_dir=None,
                 locale: str | None = None, worker: WarmWorker | None = None,
                 population=None) -> MerchantOutcome:
    """Run one merchant in its own ``hubnb run`` process, or in ``worker`` (a warm batch
    worker, :mod:`hubnb.worker`), and record how it went.

    Never raises for the merchant's own failures: they come back as ``status="failed"``
    with a one-line ``error``. ``timeout`` (seconds) stops a hanging merchant; ``threads``
    caps the cores its model fitting uses; ``stop`` (set on Ctrl-C) stops it early.
    ``population`` (the batch's population.json, for a merchant below the eligibility bar)
    goes to its run as ``--population``.
    """
    start = time.perf_counter()
    params_path, out_root = Path(params_path).resolve(), Path(out_root).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    try:
        params = load_params(params_path)
    except HubnbError as exc:
        return _failed_without_folder(params_path, str(exc), start)
    merchant, final = params.merchant, out_root / params.merchant
    sweep(final)     # a killed run's leftovers; old reports a killed publish moved aside
    try:
        if not force and unchanged(params, out_root, only, population):
            outcome = MerchantOutcome(str(params_path), merchant, "skipped",
                                      time.perf_counter() - start, str(final))
            _write_status(final, outcome, keep_previous=True)
            return outcome
    except HubnbError as exc:
        return _record_failure(params_path, merchant, final, str(exc), start, None, None)

    scratch = aside(final, "batch")
    log_file = scratch / "run.log"
    argv = [str(params_path), "--out", str(out_root), "--no-index", "--failed-dir",
            str(scratch / "failed")]
    if only:
        argv += ["--only", only]
    if notebooks_dir:
        argv += ["--notebooks", str(Path(notebooks_dir).resolve())]
    if locale:
        argv += ["--locale", locale]
    if population:
        argv += ["--population", str(population)]
    try:
        if worker is not None:
            code, peak, why = worker.run(argv, log_file, timeout, stop)
        else:
            code, peak, why = _run_process(argv, log_file, params_path.parent, timeout,
                                           threads, stop)
        faults.point("batch-ran")
        if code == 0:
            status = "ok"
            metrics = read_json(final / "metrics.json")
            clv = metrics.get("clv") or {}
            if (only in (None, "clv")) and clv and not clv.get("eligible", True):
                status = "pooled" if (clv.get("pooling") or {}).get("used") else "not eligible"
            # hubnb run published its own run.log with the reports (progress and the
            # notebooks' stderr): nothing to copy into the published folder afterwards
            faults.point("batch-logged")
            outcome = MerchantOutcome(str(params_path), merchant, status,
                                      time.perf_counter() - start, str(final),
                                      str(final / "run.log"), peak_rss_mb=peak)
            _write_status(final, outcome)
            return outcome
        error = why or _last_error(log_file) or f"hubnb run exited with status {code}"
        return _record_failure(params_path, merchant, final, error, start, scratch, peak)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        sweep(final)     # what the run left if it was killed before its own clean-up


def _worker_env(threads: int | None) -> dict:
    # the run stops (SIGTERM: it cleans up) when this process dies, even by SIGKILL
    env = dict(os.environ, **{STOP_WITH_PARENT: str(os.getpid())})
    if threads:
        env.update(HUBNB_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
                   OMP_NUM_THREADS=str(threads))
    return env


def _why(code: int) -> str:
    if code >= 0:
        return ""
    sig = signal.Signals(-code).name
    return f"hubnb run was killed by {sig}" + (" (out of memory?)" if -code == signal.SIGKILL
                                                else "")


def _run_process(argv, log_file: Path, cwd: Path, timeout, threads, stop):
    """``hubnb run ARGV`` in a new process: (exit code, peak RSS in MB, why it stopped)."""
    command = [sys.executable, "-m", "hubnb.cli", "run", *argv]
    with open(log_file, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                env=_worker_env(threads), cwd=str(cwd),
                                start_new_session=True)
        code, rusage, why = _wait(proc, timeout, stop)
    if code < 0:      # killed: its kernels lost their run
        _kill_kernels_of(proc.pid)
    return code, (rusage.ru_maxrss / 1024 if rusage is not None else None), why


class WarmWorker:
    """A warm worker process (:mod:`hubnb.worker`) that runs one merchant after another in
    its kept kernels; started on first use, and again after it died or was stopped."""

    def __init__(self, threads: int | None, folder: Path):
        self.threads, self.folder = threads, folder
        self.proc: subprocess.Popen | None = None
        self._log = None

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self._log = self._log or open(self.folder / f"worker-{id(self):x}.log", "ab")
            self.proc = subprocess.Popen([sys.executable, "-m", "hubnb.worker"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._log, env=_worker_env(self.threads),
                                         start_new_session=True)
        return self.proc

    def run(self, argv, log_file: Path, timeout, stop):
        """``hubnb run ARGV`` in the worker: (exit code, peak RSS in MB, why it stopped)."""
        import selectors

        proc = self._start()
        try:
            job = {"argv": [str(a) for a in argv], "log": str(log_file)}
            proc.stdin.write((json.dumps(job) + "\n").encode())
            proc.stdin.flush()
        except OSError:
            pass           # it died at once: its exit status says why, below
        deadline = None if not timeout else time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                if sel.select(0.2):
                    line = proc.stdout.readline()
                    if line:
                        answer = json.loads(line)
                        return answer["code"], answer.get("peak_rss_mb"), ""
                    return self._died()          # end of its output: it died
                if stop is not None and stop.is_set():
                    return self._stopped("stopped by Ctrl-C")
                if deadline is not None and time.monotonic() > deadline:
                    return self._stopped(f"timed out after {timeout:g} s (batch timeout)")

    def _died(self):
        proc, self.proc = self.proc, None
        _, status, rusage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        _kill_kernels_of(proc.pid)
        return (code if code else 1), rusage.ru_maxrss / 1024, \
            _why(code) or f"the batch worker ended with status {code}"

    def _stopped(self, why: str):
        proc, self.proc = self.proc, None
        code, rusage, _ = _stop(proc, why)
        return code, (rusage.ru_maxrss / 1024 if rusage is not None else None), why

    def close(self) -> None:
        """End the worker (its kernels with it); wait for it."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()      # no more merchants: it stops its kernels and ends
                proc.wait(GRACE_SECONDS)
            except (OSError, subprocess.TimeoutExpired):
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            _kill_kernels_of(proc.pid)
        if self._log is not None:
            self._log.close()
            self._log = None


def _wait(proc, timeout, stop):
    """Wait for ``proc``: (exit code, its rusage, why it was stopped or "")."""
    deadline = None if not timeout else time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, rusage, _why(proc.returncode)
        if stop is not None and stop.is_set():
            return _stop(proc, "stopped by Ctrl-C")
        if deadline is not None and time.monotonic() > deadline:
            return _stop(proc, f"timed out after {timeout:g} s (batch timeout)")
        time.sleep(0.2)


def _stop(proc, why: str):
    """Stop a merchant's run and its kernels: SIGTERM to its process group (``hubnb run``
    then removes its staging folder and shuts its kernel down), SIGKILL after a grace."""
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    rusage = None
    while time.monotonic() < deadline:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.2)
    else:
        _signal_group(proc.pid, signal.SIGKILL)
        _, _, rusage = os.wait4(proc.pid, 0)
    proc.returncode = -signal.SIGTERM
    _kill_kernels_of(proc.pid)
    return -signal.SIGTERM, rusage, why


def _signal_group(pid: int, sig) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_kernels_of(pid: int) -> None:
    """Kernels are started in their own session; the ones whose parent was ``pid``
    (``JPY_PARENT_PID``) exit by themselves when it dies, but are not waited for: stop
    any still there."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return
    marker = f"JPY_PARENT_PID={pid}".encode()
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _last_error(log_file: Path) -> str:
    lines = [line.strip() for line in log_file.read_text(errors="replace").splitlines()
             if line.strip()]
    errors = [line for line in lines if line.startswith("hubnb: error:")]
    if errors:
        return errors[-1].removeprefix("hubnb: error:").strip()
    return lines[-1] if lines else ""



def _record_failure(params_path, merchant, final: Path, error: str, start, scratch, peak):
    """Keep the run's log and failing notebook in ``final/failed/``; the reports stay.

    ``failed/`` is written aside and published whole, as the reports are."""
    failed = final / "failed"
    final.mkdir(parents=True, exist_ok=True)
    staging = aside(failed, "new")
    try:
        _keep_failure(staging, scratch, error)
        publish(staging, failed)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    outcome = MerchantOutcome(str(params_path), merchant, "failed",
                              time.perf_counter() - start,
                              str(final) if (final / "metrics.json").exists() else "",
                              str(failed / "run.log"), error, peak)
    _write_status(final, outcome)
    return outcome


def _keep_failure(failed: Path, scratch, error: str) -> None:
    """The run's log, ending with why it failed, and its failing notebooks, in ``failed``.

    The error is added when the log does not say it: a run killed (a timeout, out of
    memory) before it printed anything left an empty log."""
    log = scratch / "run.log" if scratch is not None else None
    text = log.read_text(errors="replace") if log is not None and log.is_file() else ""
    if error not in text:
        text += ("\n" if text and not text.endswith("\n") else "") + f"hubnb: error: {error}\n"
    (failed / "run.log").write_text(text)
    if scratch is not None:
        for nb in sorted((scratch / "failed").glob("*.ipynb")):
            shutil.copy(nb, failed / nb.name)


def _failed_without_folder(params_path: Path, error: str, start) -> MerchantOutcome:
    # Bad params: no merchant slug to name a folder after; the summary carries the error.
    return MerchantOutcome(str(params_path), params_path.stem, "failed",
                           time.perf_counter() - start, error=error)


def _write_status(final: Path, outcome: MerchantOutcome, keep_previous: bool = False) -> None:
    """``status.json``: this attempt, and for the index the last good run's time.

    A merchant skipped as unchanged (``keep_previous``) keeps the reports of its last run, so
    its ``last_run`` is theirs (metrics.json's ``generated_at``); ``skipped_at`` is the skip's.
    """
    final.mkdir(parents=True, exist_ok=True)
    previous = read_json(final / STATUS_FILE)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    status = {"status": outcome.status, "last_run": now,
              "seconds": outcome.seconds, "error": outcome.error,
              "log": os.path.relpath(outcome.log, final) if outcome.log else ""}
    if keep_previous:
        status["last_run"] = (read_json(final / "metrics.json").get("generated_at")
                              or previous.get("last_run") or now)
        status["skipped_at"] = now
        if "not eligible" in (previous.get("status"), previous.get("status_before_skip")):
            status["status_before_skip"] = "not eligible"
    write_atomic(final / STATUS_FILE, json.dumps(status, indent=2) + "\n")


# --------------------------------------------------------------------------- the batch

def batch(params_dir, out_root="outputs", workers: int | None = None, only: str | None = None,
          force: bool = False, timeout: float | None = None, scheduler: str | None = None,
          progress: bool = True, notebooks_dir=None,
          locale: str | None = None, warm: bool = True) -> list[MerchantOutcome]:
    """Run every merchant of ``params_dir``; return their outcomes in params-file order.

    ``workers`` merchants run at a time (default: the machine's cores), each with an equal
    share of the cores for its model fitting. With ``scheduler`` (``tcp://host:port``) the
    merchants go to that Dask cluster instead. The index page is written at the end.
    ``notebooks_dir`` replaces the shipped notebooks (as ``hubnb run --notebooks``).
    ``warm`` (local runs, the default): each worker slot is one warm process that keeps its
    imports and kernels from one merchant to the next (:mod:`hubnb.worker`); ``False``
    (``hubnb batch --cold``): every merchant gets a new ``hubnb run`` process and new
    kernels. Dask workers (``scheduler``) always start a new run per merchant.
    """
    if only is not None and only not in REPORTS:
        raise HubnbError(f"--only must be one of {', '.join(REPORTS)}, not {only!r}")
    if locale:
        i18n.check(locale, "--locale")
    files = discover(params_dir)
    out_root = Path(out_root).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    workers = max(1, int(workers or cores))
    threads = max(1, cores // workers)
    pooled = {} if only == "customer_hub" else population_step(
        files, out_root, scheduler, workers, progress)
    if scheduler:
        outcomes = _on_dask(files, out_root, only, force, timeout, scheduler, progress,
                            notebooks_dir, locale, pooled)
    else:
        outcomes = _locally(files, out_root, only, force, timeout, workers, threads, progress,
                            notebooks_dir, locale, warm, pooled)
    write_index(out_root, locale or i18n.DEFAULT)
    return outcomes


def population_step(files, out_root: Path, scheduler=None, workers: int = 1,
                    progress: bool = True) -> dict:
    """Learn the batch's population (:mod:`hubnb.clv.population`) and return ``{params
    file: population.json}`` for the merchants below the eligibility bar, who run with it.

    Every merchant's params and data fingerprints are compared with those the last
    ``<out>/population.json`` was learned from: unchanged, it is reused as it is (no data
    read, no fit). Otherwise each merchant's evidence (eligibility and, when eligible, its
    Laplace summaries) is gathered, on the Dask cluster with ``scheduler``, and the
    population is learned from the eligible ones and written. With fewer than
    :data:`~hubnb.clv.population.MIN_MERCHANTS` eligible merchants there is no population
    (an older file is removed): the small merchants say "not eligible", as without pooling.
    """
    from .clv import population as P

    path = out_root / P.POPULATION_FILE
    inputs = P.inputs_of([_fingerprints(f) for f in files])
    try:
        old = P.read_population(path) if path.is_file() else None
    except HubnbError:
        old = None
    if old is not None and old.hubnb_version == __version__ and \
            [i[:3] for i in old.inputs] == [i[:3] for i in inputs]:
        small = {i[0] for i in old.inputs if i[3] is False}
        return {f: path for f in files if _merchant_of(f) in small}
    if progress:
        print(f"learning the population of {len(files)} merchants ...", file=sys.stderr)
    if scheduler:
        with _dask_client()(scheduler) as client:
            evidence = client.gather(client.map(P.merchant_evidence, [str(f) for f in files],
                                                pure=False))
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            evidence = list(pool.map(P.merchant_evidence, files))
    try:
        population = P.learn_population(evidence)
    except Exception as exc:     # the batch goes on, its small merchants not pooled
        print(f"no population: learning it failed ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        population = None
    if population is None:
        path.unlink(missing_ok=True)
        return {}
    population.write(path)
    small = {e["params"] for e in evidence if e.get("eligible") is False}
    return {f: path for f in files if str(Path(f).resolve()) in small}


def _fingerprints(params_path) -> dict:
    """A merchant's name and its params and data fingerprints (no data read but the files'
    bytes); an unreadable params file is named by its path."""
    try:
        params = load_params(params_path)
        prov = provenance(params)
    except HubnbError:
        return {"params": str(params_path)}
    return {"merchant": params.merchant, "params": str(params_path),
            "params_fingerprint": prov.params_fingerprint,
            "data_fingerprint": prov.data_fingerprint}


def _merchant_of(params_path) -> str:
    try:
        return load_params(params_path).merchant
    except HubnbError:
        return str(params_path)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="merchant", disable=not enabled, file=sys.stderr,
                dynamic_ncols=True)


def _locally(files, out_root, only, force, timeout, workers, threads, progress, notebooks_dir,
             locale, warm=False, pooled=None):
    stop = threading.Event()
    results: dict[Path, MerchantOutcome] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hubnb-merchant")
    kept = threading.local()          # each pool thread's warm worker
    started: list[WarmWorker] = []
    lock = threading.Lock()
    logs = Path(tempfile.mkdtemp(prefix="hubnb-workers-"))

    def one(params_path):
        worker = None
        if warm:
            worker = getattr(kept, "worker", None)
            if worker is None:
                worker = kept.worker = WarmWorker(threads, logs)
                with lock:
                    started.append(worker)
        return run_merchant(params_path, out_root, only, force, timeout, threads, stop,
                            notebooks_dir, locale, worker, (pooled or {}).get(params_path))

    futures = {pool.submit(one, f): f for f in files}
    try:
        with _progress(len(files), progress) as bar:
            for future in as_completed(futures):
                outcome = future.result()
                results[futures[future]] = outcome
                bar.set_postfix_str(f"{outcome.merchant}: {outcome.status}")
                bar.update()
    except KeyboardInterrupt:
        # Stop every running merchant (each cleans up its staging folder and kernels),
        # start no other, then let the interrupt through.
        stop.set()
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
        raise
    finally:
        pool.shutdown(wait=True)
        for worker in started:
            worker.close()
        shutil.rmtree(logs, ignore_errors=True)
    return [results[f] for f in files]


def _dask_client():
    """Dask distributed's ``Client``, or the error saying how to install it."""
    try:
        from distributed import Client
    except ImportError:
        raise HubnbError("--scheduler needs Dask distributed, the dask extra: pip install -e "
                         "'.[dask]' in hubnb's clone") from None
    return Client


def _on_dask(files, out_root, only, force, timeout, scheduler, progress, notebooks_dir, locale,
             pooled=None):
    Client = _dask_client()
    from distributed import as_completed as dask_completed

    with Client(scheduler) as client:
        # A Dask worker runs one merchant per thread (start workers with --nthreads equal
        # to their cores): each merchant's fits then get one core.
        threads = 1
        futures = [client.submit(run_merchant, str(f), str(out_root), only, force, timeout,
                                 threads, None, notebooks_dir and str(notebooks_dir), locale,
                                 None, (pooled or {}).get(f) and str(pooled[f]),
                                 key=f"hubnb-{f.stem}-{time.time_ns()}", pure=False)
                   for f in files]
        order = {future.key: f for future, f in zip(futures, files)}
        results = {}
        try:
            with _progress(len(files), progress) as bar:
                for future in dask_completed(futures):
                    outcome = future.result()
                    results[order[future.key]] = outcome
                    bar.set_postfix_str(f"{outcome.merchant}: {outcome.status}")
                    bar.update()
        except KeyboardInterrupt:
            client.cancel(futures)
            raise
    return [results[f] for f in files]


def summary_table(outcomes: list[MerchantOutcome]) -> str:
    """The end-of-batch table: merchant, status, duration, report path (text)."""
    rows = [("merchant", "status", "duration", "report")]
    for o in outcomes:
        where = o.report or "—"
        if o.status == "failed":
            where = f"{o.log or '—'}  ({o.error})"
        rows.append((o.merchant, o.status, f"{o.seconds:.1f} s", where))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}"
                     for r in rows)
