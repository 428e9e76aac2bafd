"""Warm batch workers (issue 18): a worker that runs merchant after merchant in kept kernels
gives the reports a new process gives, byte for byte but for the measured times, and one
merchant's failure or crash never reaches the next."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hubnb.batch import WarmWorker
from hubnb.demo import generate_demo_data
from test_faults import fingerprint

PARAMS = """merchant: {merchant}
display_name: {merchant} shop
data: {data}
timezone: America/New_York
currency: {currency}
locale: {locale}
as_of: 2026-11-22
period: last_30_days
hub:
  launched_on: 2025-03-01
clv:
  model: {model}
  chains: 2
  draws: 120
  tune: 120
  seed: {seed}
  backtest_days: {backtest}
  force: true
"""

#: Merchants that differ in locale, model, data, currency and backtest.
MERCHANTS = {
    "alpha": dict(data="d1", currency="USD", locale="en", model="auto", seed=1, backtest=60),
    "beta": dict(data="d2", currency="EUR", locale="it", model="bg_nbd", seed=2, backtest=0),
    "gamma": dict(data="d1", currency="KRW", locale="ko", model="pareto_nbd", seed=3,
                  backtest=0),
}

#: A notebook that leaves behind everything a kernel can keep: names, a working folder,
#: matplotlib settings, open figures, warnings already shown, a long execution count.
POLLUTER = """
import os, warnings, matplotlib, matplotlib.pyplot as plt
leftover = 42
matplotlib.rcParams.update({"figure.dpi": 37, "font.size": 31, "axes.titlesize": 5})
plt.figure(); plt.plot([1, 2])
warnings.warn("a warning the next merchant's kernel must show again", UserWarning)
import numpy as np
np.seterr(all="ignore")
for _ in range(3):
    get_ipython().run_cell("1 + 1", store_history=True)
os.chdir("/")
"""


def notebook(path: Path, code: str) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[
        new_code_cell('params_path = "x"\noutput_dir = None\nsnapshot = None\nlocale = "en"',
                      metadata={"tags": ["parameters"]}),
        new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def merchants(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm")
    for name, seed in (("d1", 11), ("d2", 12)):
        generate_demo_data(root / name, 700, seed)
    params = {}
    for merchant, spec in MERCHANTS.items():
        path = root / f"{merchant}.yaml"
        path.write_text(PARAMS.format(merchant=merchant, **{**spec, "data": root / spec["data"]}))
        params[merchant] = path
    odd = {}
    for name, code in (("polluter", POLLUTER), ("failing", "raise RuntimeError('boom')"),
                       ("crashing", "import os\nos._exit(3)")):
        folder = root / name
        folder.mkdir()
        notebook(folder / "clv.ipynb", code)
        notebook(folder / "customer_hub.ipynb", code)
        odd[name] = folder
    return root, params, odd


def _fingerprint(folder: Path) -> dict:
    """test_faults' per-file fingerprints (measured durations in the CLV report's table
    cells masked)."""
    return fingerprint(folder)


def test_a_warm_worker_gives_a_new_process_reports_byte_for_byte(merchants, tmp_path,
                                                                 monkeypatch):
    root, params, odd = merchants
    monkeypatch.setenv("HUBNB_FIT_CACHE", "0")    # every run fits (the processes inherit it)
    # cold: hubnb run, a new process and new kernels per merchant
    cold = tmp_path / "cold"
    for merchant, path in params.items():
        done = subprocess.run([sys.executable, "-m", "hubnb.cli", "run", str(path),
                               "--out", str(cold), "--no-index"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]

    warm = tmp_path / "warm"
    logs = tmp_path / "logs"
    logs.mkdir()
    worker = WarmWorker(None, logs)
    n = 0

    def job(path, *extra):
        nonlocal n
        n += 1
        log = logs / f"{n}.log"
        code, peak, why = worker.run([str(path), "--out", str(warm), "--no-index",
                                      "--failed-dir", str(tmp_path / "failed"), *extra],
                                     log, None, None)
        return code, why, log.read_text()

    try:
        first = worker._start().pid
        code, _, text = job(params["alpha"])
        assert code == 0, text
        kernels = _kernels_of(first)
        assert len(kernels) == 2
        # a merchant's notebooks that leave every kind of state behind, and succeed
        code, _, text = job(params["beta"], "--notebooks", odd["polluter"],
                            "--out", str(tmp_path / "scratch"))
        assert code == 0, text
        code, _, text = job(params["beta"])
        assert code == 0, text
        assert _kernels_of(first) == kernels, "the kernels were not kept warm"
        # a notebook that fails: the merchant fails alone, the kernels are replaced
        code, _, text = job(params["gamma"], "--notebooks", odd["failing"],
                            "--out", str(tmp_path / "scratch"))
        assert code == 2 and "RuntimeError: boom" in text, text
        code, _, text = job(params["gamma"])
        assert code == 0, text
        assert not set(_kernels_of(first)) & set(kernels), "failed kernels were reused"
        assert worker.proc.pid == first
    finally:
        worker.close()
    assert _kernels_of(first) == [] and worker.proc is None

    for merchant in params:
        got, want = _fingerprint(warm / merchant), _fingerprint(cold / merchant)
        assert got == want, f"{merchant}: warm differs from cold in " + ", ".join(
            sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k)))
    # the polluter's warning reached its run.log, and beta's reports none of it
    assert "must show again" in (tmp_path / "scratch" / "beta" / "run.log").read_text()


def test_a_crashed_or_killed_worker_fails_its_merchant_alone(merchants, tmp_path):
    root, params, odd = merchants
    logs = tmp_path / "logs"
    logs.mkdir()
    worker = WarmWorker(None, logs)
    out = tmp_path / "out"

    def job(path, *extra, timeout=None):
        log = logs / f"{time.monotonic_ns()}.log"
        return worker.run([str(path), "--out", str(out), "--no-index", *extra], log,
                          timeout, None)

    try:
        # a kernel that exits mid-notebook: a dead kernel, the merchant fails
        code, _, why = job(params["alpha"], "--notebooks", odd["crashing"])
        assert code == 2
        # the worker itself killed mid-merchant: the merchant fails and says why
        pid = worker._start().pid
        killer = subprocess.Popen([sys.executable, "-c",
                                   f"import time, os, signal; time.sleep(2); "
                                   f"os.kill({pid}, signal.SIGKILL)"])
        code, _, why = job(params["alpha"])
        killer.wait()
        assert code == -signal.SIGKILL and "killed by SIGKILL" in why
        assert _wait_gone(_kernels_of(pid)), "the killed worker's kernels outlived it"
        # a timeout stops the worker; the next merchant gets a new one and succeeds
        code, _, why = job(params["beta"], timeout=1)
        assert "timed out" in why and worker.proc is None
        code, _, why = job(params["beta"])
        assert code == 0 and (out / "beta" / "clv.html").is_file()
        assert worker.proc.pid != pid
    finally:
        worker.close()


def _kernels_of(pid: int) -> list[int]:
    marker = f"JPY_PARENT_PID={pid}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return sorted(found)


def _wait_gone(pids, seconds=20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not [p for p in pids if Path(f"/proc/{p}").exists()
                and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]]:
            return True
        time.sleep(0.1)
    return False


def test_hubnb_batch_is_warm_by_default_and_cold_on_request(monkeypatch, tmp_path):
    """`hubnb batch` keeps its workers warm unless told `--cold`; `--warm` is still accepted,
    and the two together are refused."""
    import hubnb.batch
    from hubnb import cli

    seen = []
    monkeypatch.setattr(hubnb.batch, "batch", lambda *a, **kw: seen.append(kw["warm"]) or [])
    monkeypatch.setattr(hubnb.batch, "summary_table", lambda outcomes: "")
    for flags in ([], ["--warm"], ["--cold"]):
        assert cli.main(["batch", str(tmp_path), *flags]) == 0
    assert seen == [True, True, False]
    with pytest.raises(SystemExit):
        cli.main(["batch", str(tmp_path), "--warm", "--cold"])


def test_hubnb_batch_warm_runs_every_merchant_and_leaves_no_worker(merchants, tmp_path):
    root, params, odd = merchants
    folder = tmp_path / "params"
    folder.mkdir()
    for merchant in ("alpha", "beta", "gamma"):
        (folder / f"{merchant}.yaml").write_text(params[merchant].read_text())
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "hubnb.cli", "batch", str(folder), "--out",
                           str(out), "--workers", "2", "--only", "customer_hub"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for merchant in ("alpha", "beta", "gamma"):
        status = json.loads((out / merchant / "status.json").read_text())
        assert status["status"] == "ok" and (out / merchant / "customer_hub.html").is_file()
    workers = [p for p in Path("/proc").iterdir() if p.name.isdigit()
               and b"hubnb.worker" in _cmdline(p)]
    assert workers == [], "a warm worker outlived its batch"


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
