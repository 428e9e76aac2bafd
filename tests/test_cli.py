import json
from pathlib import Path
import subprocess
import sys

from hubnb.data import load_dataset


def hubnb(*args):
    return subprocess.run([sys.executable, "-m", "hubnb.cli", *args], capture_output=True, text=True)


def test_demo_data_writes_a_dataset_that_meets_the_contract(tmp_path):
    proc = hubnb("demo-data", "--out", str(tmp_path / "d"), "--profiles", "300", "--seed", "3",
                 "--format", "csv", "--with-predictions")
    assert proc.returncode == 0, proc.stderr
    ds = load_dataset(tmp_path / "d")
    assert len(ds.profiles) == 300
    assert all(ds.present[t] for t in ("orders", "order_lines", "refunds", "hub_events",
                                       "marketing_assets", "predictions"))
    truth = json.loads((tmp_path / "d" / "truth.json").read_text())
    assert set(truth["bg_nbd"]) == {"r", "alpha", "a", "b"}


def test_demo_data_rejects_zero_profiles(tmp_path):
    proc = hubnb("demo-data", "--out", str(tmp_path / "d"), "--profiles", "0")
    assert proc.returncode != 0 and "--profiles" in proc.stderr
    assert not (tmp_path / "d").exists()


PARENT = """
import os, subprocess, sys, threading, time
def spawn():
    env = dict(os.environ, HUBNB_STOP_WITH_PARENT=str(os.getpid()))
    subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], env=env,
                     start_new_session=True)
    time.sleep(120)
threading.Thread(target=spawn, daemon=True).start()
for _ in range(8):
    threading.Thread(target=time.sleep, args=(120,), daemon=True).start()
time.sleep(120)
"""

RUN = """
import signal, sys, time
from hubnb.cli import _interrupt, _stop_with_parent
signal.signal(signal.SIGTERM, _interrupt)
_stop_with_parent()
log = open(sys.argv[1], "a", buffering=1)
log.write("ready\\n")
try:
    time.sleep(120)
except KeyboardInterrupt:
    log.write("stopping\\n")
    time.sleep(1.5)                 # the clean-up: staging folder, kernels
    log.write("cleaned up\\n")
"""


def test_a_run_whose_batch_is_killed_cleans_up_despite_repeated_sigterms(tmp_path):
    """A batch killed by SIGKILL sends its runs (and warm workers) the parent-death SIGTERM
    once per thread it had; only the first may interrupt the run, not its clean-up."""
    import os
    import signal
    import time

    log = tmp_path / "run.log"
    batch = subprocess.Popen([sys.executable, "-c", PARENT, RUN, str(log)])
    deadline = time.monotonic() + 60
    while "ready" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline and batch.poll() is None
        time.sleep(0.05)
    os.kill(batch.pid, signal.SIGKILL)
    batch.wait()
    deadline = time.monotonic() + 20
    while "cleaned up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert log.read_text().splitlines() == ["ready", "stopping", "cleaned up"]


STUCK = """
import os, signal, subprocess, sys, time
import hubnb.cli as cli
cli.ORPHAN_GRACE = 1.0
signal.signal(signal.SIGTERM, cli._interrupt)
cli._stop_with_parent()
kernel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(f"{os.getpid()} {kernel.pid}\\n")
while True:
    try:
        time.sleep(120)
    except KeyboardInterrupt:   # a clean-up that swallows the interrupt and hangs
        pass
"""


def test_a_run_stuck_after_its_batch_died_is_ended_with_its_kernels(tmp_path):
    """The backstop of the parent-death signal: a run (or warm worker) whose clean-up hangs
    is ended ORPHAN_GRACE seconds after its batch died, its child processes with it."""
    import os
    import signal
    import time

    pids = tmp_path / "pids"
    batch = subprocess.Popen([sys.executable, "-c", PARENT, STUCK, str(pids)])
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text().endswith("\n")):
        assert time.monotonic() < deadline and batch.poll() is None
        time.sleep(0.05)
    run, kernel = map(int, pids.read_text().split())
    os.kill(batch.pid, signal.SIGKILL)
    batch.wait()
    start = time.monotonic()

    def alive(pid):
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    while (alive(run) or alive(kernel)) and time.monotonic() - start < 15:
        time.sleep(0.1)
    left = [pid for pid in (run, kernel) if alive(pid)]
    for pid in left:                # a failing run must not outlive the test either
        os.kill(pid, signal.SIGKILL)
    assert left == []
    assert 1.0 <= time.monotonic() - start < 6


def test_demo_data_with_regularity_writes_the_mbg_cnbd_truth(tmp_path):
    proc = hubnb("demo-data", "--out", str(tmp_path / "d"), "--profiles", "200", "--seed", "3",
                 "--regularity", "3")
    assert proc.returncode == 0, proc.stderr
    truth = json.loads((tmp_path / "d" / "truth.json").read_text())
    assert "bg_nbd" not in truth
    assert truth["mbg_cnbd"] == {"k": 3, "r": 3.0, "alpha": 60.0, "a": 0.6, "b": 4.0}
    bad = hubnb("demo-data", "--out", str(tmp_path / "e"), "--profiles", "200",
                "--regularity", "13")
    assert bad.returncode != 0 and "--regularity" in bad.stderr
    assert not (tmp_path / "e").exists()
