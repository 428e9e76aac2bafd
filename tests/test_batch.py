"""`hubnb batch`: merchants isolated from each other, skipped when unchanged, stopped when
they hang, cleaned up on Ctrl-C, and the same outputs on a Dask cluster."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from hubnb.batch import batch, summary_table
from test_data import write

REPORT = """from hubnb.report import open_report
report = open_report(params_path, output_dir, snapshot)
merchant = report.params.merchant
if merchant.startswith("crash"):
    raise RuntimeError("boom in the notebook")
if merchant.startswith("hang"):
    import time
    time.sleep(600)
if merchant.startswith("dies"):
    import os
    os._exit(1)
report.record("customer_hub", {"total_accounts": len(report.data.profiles),
                               "active_accounts": {"value": 1, "change_pct": 50.0},
                               "revenue_generated": {"value": 12.5, "change_pct": -10.0}})
print("done for", merchant)"""


def notebooks(folder: Path, name: str = "customer_hub", code: str = REPORT) -> Path:
    """``folder`` holding one test report notebook ``name`` that runs ``code``."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = new_notebook(cells=[
        new_markdown_cell("# Batch test report"),
        new_code_cell('params_path = "x"\noutput_dir = None\nsnapshot = None',
                      metadata={"tags": ["parameters"]}),
        new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def merchant(params_dir: Path, data_root: Path, slug: str) -> Path:
    write(data_root / slug)
    params = params_dir / f"{slug}.yaml"
    params.parent.mkdir(parents=True, exist_ok=True)
    params.write_text(f"merchant: {slug}\ndata: {data_root / slug}\n"
                      "timezone: America/New_York\nas_of: 2026-03-10\nperiod: last_7_days\n")
    return params


def kernels_under(folder: Path) -> list[int]:
    """Live kernel processes whose working directory is inside ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            if b"ipykernel" in cmd and str(folder) in os.readlink(entry / "cwd"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def shop(tmp_path):
    params_dir = tmp_path / "params"
    for slug in ("good", "crash", "dies", "baddata", "hang"):
        merchant(params_dir, tmp_path / "data", slug)
    (tmp_path / "data" / "baddata" / "orders.csv").write_text(
        "order_id,profile_id,placed_at,value,signed_in\no1,a,2026-03-01T09:15:00Z,-4,true\n")
    return tmp_path, params_dir, notebooks(tmp_path / "nbs")


def test_failures_stay_local_and_unchanged_merchants_are_skipped(shop):
    root, params_dir, nbs = shop
    out = root / "out"
    outcomes = batch(params_dir, out, workers=2, only="customer_hub", timeout=20,
                     notebooks_dir=nbs, progress=False)
    by = {o.merchant: o for o in outcomes}
    assert [o.merchant for o in outcomes] == ["baddata", "crash", "dies", "good", "hang"]
    assert {m: o.status for m, o in by.items()} == {
        "good": "ok", "crash": "failed", "dies": "failed", "baddata": "failed", "hang": "failed"}
    assert "table 'orders', column 'value', row 1" in by["baddata"].error
    assert "RuntimeError: boom in the notebook" in by["crash"].error
    assert "kernel died" in by["dies"].error
    assert "timed out after 20 s" in by["hang"].error and 20 <= by["hang"].seconds < 60
    # the failing notebook, with Papermill's error cell, and the log, beside the reports
    failed = out / "crash" / "failed"
    assert sorted(p.name for p in failed.iterdir()) == ["customer_hub.ipynb", "run.log"]
    executed = nbformat.read(failed / "customer_hub.ipynb", as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in executed.cells
               for o in c.get("outputs", []))
    assert "boom in the notebook" in (failed / "run.log").read_text()
    assert json.loads((out / "crash" / "status.json").read_text())["status"] == "failed"
    assert not (out / "crash" / "metrics.json").exists()       # never succeeded: no reports
    good = json.loads((out / "good" / "metrics.json").read_text())
    assert good["customer_hub"]["total_accounts"] == 2
    # nothing half-written, no kernel left behind
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    time.sleep(2)
    assert kernels_under(out) == []
    table = summary_table(outcomes)
    assert table.splitlines()[0].split() == ["merchant", "status", "duration", "report"]
    assert "good      ok" in table and str(out / "good") in table

    # a second batch: the good merchant's inputs have not changed, so it is skipped (the
    # failing ones are left out from here on: their folders, and their failed status, stay;
    # the hanging one would only wait out its timeout again)
    for slug in ("crash", "dies", "hang"):
        (params_dir / f"{slug}.yaml").unlink()
    before = (out / "good" / "metrics.json").read_text()
    again = {o.merchant: o for o in batch(params_dir, out, workers=2, only="customer_hub",
                                          timeout=20, notebooks_dir=nbs, progress=False)}
    assert again["good"].status == "skipped" and again["good"].seconds < 5
    assert (out / "good" / "metrics.json").read_text() == before
    # a changed data file is a change; then a failure keeps the last good reports
    (root / "data" / "good" / "orders.csv").write_text(
        "order_id,profile_id,placed_at,value,signed_in\no1,a,2026-03-01T09:15:00Z,-1,true\n")
    third = {o.merchant: o for o in batch(params_dir, out, only="customer_hub", timeout=20,
                                          notebooks_dir=nbs, progress=False)}
    assert third["good"].status == "failed"
    assert (out / "good" / "metrics.json").read_text() == before      # last good kept
    assert (out / "good" / "failed" / "run.log").is_file()
    index = (out / "index.html").read_text()
    assert index.count('<tr data-status="failed" class="failed">') == 5
    assert "numbers from the last good run" in index
    assert 'href="good/failed/run.log"' in index and 'href="good/customer_hub.html"' in index


def test_the_cli_exits_non_zero_when_a_merchant_failed(shop):
    root, params_dir, nbs = shop
    for slug in ("crash", "dies", "hang"):
        (params_dir / f"{slug}.yaml").unlink()
    proc = subprocess.run([sys.executable, "-m", "hubnb.cli", "batch", str(params_dir),
                           "--out", str(root / "out"), "--notebooks", str(nbs),
                           "--only", "customer_hub"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["merchant", "status", "duration", "report"]
    assert lines[1].split()[:2] == ["baddata", "failed"]
    assert lines[2].split()[:2] == ["good", "ok"]
    assert "merchant" in proc.stderr      # tqdm's progress bar ("merchant/s")


def test_ctrl_c_leaves_no_half_written_folder_and_no_kernels(tmp_path):
    params_dir = tmp_path / "params"
    for slug in ("hang1", "hang2", "hang3"):
        merchant(params_dir, tmp_path / "data", slug)
    nbs = notebooks(tmp_path / "nbs")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "hubnb.cli", "batch", str(params_dir),
                             "--out", str(out), "--notebooks", str(nbs), "--workers", "2",
                             "--only", "customer_hub"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell's background job ignores SIGINT, and a child inherits
                            # that: give hubnb batch the terminal's Ctrl-C behaviour
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(kernels_under(out)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(kernels_under(out)) == 2, "two merchants' kernels should be running"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    time.sleep(2)
    assert kernels_under(out) == []
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    for slug in ("hang1", "hang2", "hang3"):
        folder = out / slug
        assert not (folder / "metrics.json").exists() and not list(folder.glob("*.html"))


def test_a_dask_cluster_gives_the_same_outputs(tmp_path):
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    params_dir = tmp_path / "params"
    for slug in ("north", "south"):
        merchant(params_dir, tmp_path / "data", slug)
    nbs = notebooks(tmp_path / "nbs")
    local = batch(params_dir, tmp_path / "local", workers=2, notebooks_dir=nbs,
                  only="customer_hub", progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = batch(params_dir, tmp_path / "dask", notebooks_dir=nbs, only="customer_hub",
                       scheduler=cluster.scheduler_address, progress=False)
    assert [(o.merchant, o.status) for o in remote] == [("north", "ok"), ("south", "ok")]
    assert [(o.merchant, o.status) for o in local] == [("north", "ok"), ("south", "ok")]
    for slug in ("north", "south"):
        a, b = (json.loads((tmp_path / side / slug / "metrics.json").read_text())
                for side in ("local", "dask"))
        assert a["customer_hub"] == b["customer_hub"]
        assert a["provenance"]["data_fingerprint"] == b["provenance"]["data_fingerprint"]
        assert (tmp_path / "dask" / slug / "customer_hub.html").is_file()
    assert (tmp_path / "dask" / "index.html").is_file()


CLV_REPORT = """from hubnb.clv.dashboard import run_clv
from hubnb.report import open_report
report = open_report(params_path, output_dir, snapshot)
result = run_clv(report)
report.record("clv", result.metrics)"""


def test_a_batch_learns_its_population_and_pools_its_small_merchants(tmp_path):
    """Three eligible merchants teach the population; the small one is fitted under it,
    the tiny one (below the floor) is not; the index marks the pooled one; a second batch
    with nothing changed reuses the population and skips every merchant."""
    from hubnb.clv.population import POPULATION_FILE, read_population
    from hubnb.demo import generate_demo_data

    nbs = notebooks(tmp_path / "nbs", "clv", CLV_REPORT)
    params_dir = tmp_path / "params"
    params_dir.mkdir()
    sizes = {"peer1": 520, "peer2": 560, "peer3": 600, "small": 90, "tiny": 12}
    for i, (slug, n) in enumerate(sizes.items()):
        generate_demo_data(tmp_path / "data" / slug, n, 20 + i)
        (params_dir / f"{slug}.yaml").write_text(
            f"merchant: {slug}\ndata: {tmp_path / 'data' / slug}\ntimezone: America/New_York\n"
            "as_of: 2026-11-22\nclv:\n  draws: 60\n  tune: 60\n")
    out = tmp_path / "out"
    outcomes = batch(params_dir, out, workers=2, only="clv", notebooks_dir=nbs,
                     progress=False)
    assert {o.merchant: o.status for o in outcomes} == {
        "peer1": "ok", "peer2": "ok", "peer3": "ok", "small": "pooled",
        "tiny": "not eligible"}, [o.error for o in outcomes]
    pop = read_population(out / POPULATION_FILE)
    assert pop.peers == 3 and {"mbg_nbd", "pareto_nbd"} <= set(pop.models)
    assert sorted(m["merchant"] for m in pop.merchants) == ["peer1", "peer2", "peer3"]
    metrics = {s: json.loads((out / s / "metrics.json").read_text())["clv"] for s in sizes}
    assert metrics["small"]["pooling"]["used"] and metrics["small"]["pooling"]["peers"] == 3
    assert "below the floor" in metrics["tiny"]["pooling"]["reason"]
    assert not metrics["peer1"]["pooling"]["used"]
    # only the pooled run's reports depend on the population
    prints = {s: json.loads((out / s / "fingerprint.json").read_text())["reports"]["clv"]
              for s in sizes}
    assert "population_fingerprint" in prints["small"]
    assert "population_fingerprint" not in prints["peer1"]
    index = (out / "index.html").read_text()
    assert index.count('data-status="pooled"') == 1 and "pooled with 3 peers" in index
    # nothing changed: the population is reused as it is, every merchant skipped
    learned = read_population(out / POPULATION_FILE).generated_at
    again = batch(params_dir, out, workers=2, only="clv", notebooks_dir=nbs, progress=False)
    assert {o.status for o in again} == {"skipped"}
    assert read_population(out / POPULATION_FILE).generated_at == learned
    # the same population learned on a Dask cluster (population.json removed first)
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    from hubnb.batch import discover, population_step

    local = read_population(out / POPULATION_FILE)
    (out / POPULATION_FILE).unlink()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        pooled = population_step(discover(params_dir), out, cluster.scheduler_address,
                                 progress=False)
    assert sorted(p.stem for p in pooled) == ["small", "tiny"]
    remote = read_population(out / POPULATION_FILE)
    for name, model in local.models.items():
        np.testing.assert_allclose(remote.models[name].prior_mu, model.prior_mu, rtol=1e-9)
        np.testing.assert_allclose(remote.models[name].prior_sigma, model.prior_sigma,
                                   rtol=1e-9)
