"""`hubnb run`: outputs, metrics.json, index, and failures that leave the last good output."""

import hashlib
import json
import os
import subprocess
import sys
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from hubnb.run import ReportError, run
from test_data import write

PARAMS = """merchant: tiny
display_name: Tiny Shop
data: ./tiny
timezone: America/New_York
as_of: 2026-03-10
period: last_7_days
"""


def notebook(path, *cells):
    nb = new_notebook(cells=[new_markdown_cell("# Test report"),
                             new_code_cell('params_path = "x"\noutput_dir = None\nsnapshot = None',
                                           metadata={"tags": ["parameters"]}),
                             *[new_code_cell(c) for c in cells]])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def tiny_merchant(folder):
    """The tiny merchant's data and params in ``folder``; returns its (empty) notebooks
    folder."""
    write(folder / "tiny")
    (folder / "tiny.yaml").write_text(PARAMS)
    nbs = folder / "notebooks"
    nbs.mkdir()
    return nbs


@pytest.fixture
def merchant(tmp_path):
    nbs = tiny_merchant(tmp_path)
    notebook(nbs / "records_metrics.ipynb",
             # the run read and validated the data once: a second read here would fail
             "import hubnb.report\n"
             "def no_second_read(*args, **kwargs):\n"
             "    raise AssertionError('the dataset was read again')\n"
             "hubnb.report.load_dataset = no_second_read\n"
             "report = hubnb.report.open_report(params_path, output_dir, snapshot)",
             "SECRET_CODE_MARKER = 1\nreport.record('tiny_section', {'orders': len(report.data.orders)})",
             "report.write_csv('lists/some.csv', report.data.orders[['order_id']])\n"
             "print('visible output line')")
    return tmp_path


def test_run_writes_reports_metrics_and_index(merchant):
    out = merchant / "out"
    final = run(merchant / "tiny.yaml", out_root=out, notebooks_dir=merchant / "notebooks",
                log=lambda m: None)
    assert final == out / "tiny"
    names = sorted(p.name for p in final.iterdir())
    assert names == ["fingerprint.json", "lists", "metrics.json", "records_metrics.html",
                     "records_metrics.ipynb", "run.log"]
    metrics = json.loads((final / "metrics.json").read_text())
    assert metrics["merchant"] == "tiny"
    assert metrics["period"] == {"start": "2026-03-04", "end": "2026-03-10"}
    assert metrics["comparison"] == {"start": "2026-02-25", "end": "2026-03-03"}
    assert metrics["tiny_section"] == {"orders": 2}
    assert metrics["hubnb_version"] and metrics["generated_at"]
    html = (final / "records_metrics.html").read_text()
    assert "visible output line" in html and "SECRET_CODE_MARKER" not in html  # code hidden
    assert (final / "lists" / "some.csv").read_text().splitlines() == ["order_id", "o1", "o2"]
    index = (out / "index.html").read_text()
    assert 'href="tiny/records_metrics.html"' in index and ">Tiny Shop<" in index
    # provenance: the data fingerprint is a SHA-256 over "file:sha256" lines, in name order
    files = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
             for f in sorted((merchant / "tiny").iterdir())}
    lines = "".join(f"{name}:{digest}\n" for name, digest in sorted(files.items()))
    prov = metrics["provenance"]
    assert prov["data_files"] == files
    assert prov["data_fingerprint"] == hashlib.sha256(lines.encode()).hexdigest()
    assert prov["params_fingerprint"] == hashlib.sha256(
        (merchant / "tiny.yaml").read_bytes()).hexdigest()
    assert prov["params"]["period"] == "last_7_days" and prov["hubnb_version"]
    assert not list(out.glob(".tiny-snapshot-*"))   # the run's snapshot is gone
    # what the reports were made from, for hubnb batch to skip unchanged merchants
    stored = json.loads((final / "fingerprint.json").read_text())["reports"]
    assert stored == {"records_metrics": {
        "hubnb_version": prov["hubnb_version"], "params_fingerprint": prov["params_fingerprint"],
        "data_fingerprint": prov["data_fingerprint"]}}


def test_broken_data_exits_nonzero_with_one_line_and_writes_nothing(merchant):
    (merchant / "tiny" / "orders.csv").write_text(
        "order_id,profile_id,placed_at,value,signed_in\no1,a,2026-03-01T09:15:00Z,-4,true\n")
    out = merchant / "out"
    proc = subprocess.run([sys.executable, "-m", "hubnb.cli", "run", str(merchant / "tiny.yaml"),
                           "--out", str(out), "--notebooks", str(merchant / "notebooks")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("hubnb: error:")]
    assert errors == lines[-1:]   # progress lines, then the error on one line
    assert "table 'orders', column 'value', row 1" in errors[0]
    assert not out.exists() or not any(out.iterdir())


def test_bad_params_names_the_key(merchant):
    (merchant / "tiny.yaml").write_text(PARAMS.replace("last_7_days", "last_week"))
    proc = subprocess.run([sys.executable, "-m", "hubnb.cli", "run", str(merchant / "tiny.yaml"),
                           "--out", str(merchant / "out")], capture_output=True, text=True)
    assert proc.returncode != 0 and "bad params: period:" in proc.stderr


def test_failed_notebook_keeps_last_good_output(merchant):
    out = merchant / "out"
    run(merchant / "tiny.yaml", out_root=out, notebooks_dir=merchant / "notebooks", log=lambda m: None)
    before = (out / "tiny" / "metrics.json").read_text()
    notebook(merchant / "notebooks" / "zz_broken1.ipynb", "raise RuntimeError('boom')")
    with pytest.raises(ReportError, match="zz_broken1.ipynb failed .*RuntimeError: boom"):
        run(merchant / "tiny.yaml", out_root=out, notebooks_dir=merchant / "notebooks",
            log=lambda m: None)
    assert (out / "tiny" / "metrics.json").read_text() == before
    assert not (out / "tiny" / "zz_broken1.ipynb").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []   # no staging left


def test_notebooks_run_side_by_side_and_a_failure_stops_the_others(merchant):
    # "slow" writes its kernel's pid and then would run a minute; "fails" waits until slow
    # is running (so the two run at the same time) and then raises. The run reports fails'
    # own error, stops slow's kernel at once, and leaves nothing behind.
    nbs = merchant / "pair"
    nbs.mkdir()
    marker = merchant / "slow.pid"
    notebook(nbs / "slow.ipynb",
             f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n"
             "time.sleep(60)")
    notebook(nbs / "fails.ipynb",
             "import os, time\nstart = time.time()\n"
             f"while not os.path.exists({str(marker)!r}):\n"
             "    assert time.time() - start < 30, 'slow never started: not side by side'\n"
             "    time.sleep(0.05)\n"
             "raise RuntimeError('boom beside slow')")
    out = merchant / "out"
    start, cwd = time.perf_counter(), os.getcwd()
    with pytest.raises(ReportError, match="fails.ipynb failed .*RuntimeError: boom beside slow"):
        run(merchant / "tiny.yaml", out_root=out, notebooks_dir=nbs, log=lambda m: None)
    assert time.perf_counter() - start < 45
    # the kernels started in the staging folder without moving the process there (two
    # notebooks changing one process's working folder would leave it wrong)
    assert os.getcwd() == cwd
    pid = int(marker.read_text())
    for _ in range(50):  # the stopped kernel is reaped by its manager
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"slow's kernel (pid {pid}) is still running")
    assert not (out / "tiny").exists()
    assert [p.name for p in out.iterdir()] == []


def test_a_large_dataset_runs_its_notebooks_one_after_the_other(merchant, monkeypatch):
    """Past SIDE_BY_SIDE_BYTES of tables only one kernel at a time holds its tables: the
    notebooks' running times do not overlap, and after a failure the next never starts."""
    import hubnb.run

    monkeypatch.setattr(hubnb.run, "SIDE_BY_SIDE_BYTES", 0)
    nbs = merchant / "seq"
    nbs.mkdir()
    for name in ("a", "b"):
        notebook(nbs / f"{name}.ipynb",
                 f"import time\nopen({str(merchant / name)!r}, 'w').write(str(time.time()))\n"
                 f"time.sleep(1.5)\nopen({str(merchant / name)!r}, 'a').write(' ' + "
                 "str(time.time()))")
    lines = []
    run(merchant / "tiny.yaml", out_root=merchant / "out", notebooks_dir=nbs, log=lines.append)
    (a0, a1), (b0, b1) = ([float(t) for t in (merchant / n).read_text().split()] for n in "ab")
    assert a1 <= b0 or b1 <= a0, "the notebooks ran side by side"
    assert any("one after the other" in line for line in lines)
    (merchant / "b").unlink()
    notebook(nbs / "a.ipynb", "raise RuntimeError('first fails')")
    with pytest.raises(ReportError, match="a.ipynb failed"):
        run(merchant / "tiny.yaml", out_root=merchant / "out", notebooks_dir=nbs,
            log=lambda m: None)
    assert not (merchant / "b").exists(), "the second notebook ran after the first failed"


def test_notebooks_side_by_side_leave_the_working_folder_alone(merchant):
    # a and b meet (each waits for the other's marker), then a ends first: a kernel
    # started through a change of the process's working folder would leave it changed
    nbs = merchant / "meet"
    nbs.mkdir()
    for me, other, linger in (("a", "b", 0), ("b", "a", 2)):
        notebook(nbs / f"{me}.ipynb",
                 f"import os, time\nopen({str(merchant / me)!r}, 'w').close()\n"
                 f"while not os.path.exists({str(merchant / other)!r}):\n"
                 "    time.sleep(0.05)\n"
                 f"time.sleep({linger})")
    cwd = os.getcwd()
    run(merchant / "tiny.yaml", out_root=merchant / "out", notebooks_dir=nbs, log=lambda m: None)
    assert os.getcwd() == cwd


def test_index_headlines_use_currency_and_say_when_the_hub_has_no_data(tmp_path):
    from hubnb.run import write_index

    def merchant(slug, hub, clv):
        folder = tmp_path / slug
        folder.mkdir()
        (folder / "clv.html").write_text("<html></html>")
        (folder / "metrics.json").write_text(json.dumps({
            "merchant": slug, "display_name": slug.title(), "currency": "EUR",
            "generated_at": "2026-11-22T10:00:00+00:00",
            "period": {"start": "2026-10-24", "end": "2026-11-22"},
            "customer_hub": hub, "clv": clv}))

    merchant("shop", {"active_accounts": {"value": 1784, "change_pct": 12.8},
                      "revenue_generated": {"value": 2400.34, "change_pct": -29.1}},
             {"eligible": True, "horizon_days": 365,
              "totals": {"predicted_clv": {"mean": 851739.1, "lower": 818410, "upper": 884310}}})
    merchant("quiet", {"active_accounts": {"value": None, "change_pct": None},
                       "revenue_generated": {"value": None, "change_pct": None}},
             {"eligible": False})
    page = write_index(tmp_path).read_text()
    assert '1,784 <span class="hubnb-change up">+12.8%</span>' in page
    assert '€2,400.34 <span class="hubnb-change down">-29.1%</span>' in page
    assert '<td data-sort="851739.1" class="num">€851,739 (€818,410 to €884,310)</td>' in page
    # a merchant without hub data or CLV eligibility says so; no status file reads "ok"
    assert page.count(">no hub data<") == 2 and ">not eligible</span>" in page
    assert '<tr data-status="ok">' in page and '<tr data-status="not eligible">' in page
    assert "shop/clv.html" in page and ">Quiet<" in page


# --------------------------------------------------------------------------- determinism

#: What may differ between two runs of the same inputs: the time of the run, the wall-clock
#: durations it measured (they describe the machine, not the data) and whether a fit came
#: from the fit cache.
VARYING = {"generated_at", "fit_seconds", "compile_seconds", "laplace_seconds",
           "fit_cache_hit"}


def _without_varying(value):
    if isinstance(value, dict):
        return {k: _without_varying(v) for k, v in value.items() if k not in VARYING}
    if isinstance(value, list):
        return [_without_varying(v) for v in value]
    return value


def test_same_inputs_and_seed_give_the_same_metrics_and_csv_files(tmp_path, monkeypatch):
    import yaml

    monkeypatch.setenv("HUBNB_FIT_CACHE", "0")   # both runs compute (the kernels inherit it)

    from hubnb.demo import generate_demo_data

    generate_demo_data(tmp_path / "data", 600, 5)
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump({
        "merchant": "shop", "data": "./data", "timezone": "America/New_York", "currency": "EUR",
        "as_of": "2026-11-22", "hub": {"launched_on": "2025-03-01"},
        "clv": {"chains": 2, "draws": 150, "tune": 150, "seed": 4, "force": True,
                "model": "mbg_nbd", "backtest_days": 60},
        "segments": [{"name": "VIP", "where": "historical_clv >= 300"}]}))
    outputs = [run(tmp_path / "shop.yaml", out_root=tmp_path / name, log=lambda m: None)
               for name in ("first", "second")]
    first, second = (json.loads((o / "metrics.json").read_text()) for o in outputs)
    assert first["generated_at"] and first["clv"]["model"]["fit_seconds"] >= 0
    assert first["clv"]["eligible"] and first["customer_hub"]["total_accounts"] > 0
    assert _without_varying(first) == _without_varying(second)
    for name in ("clv_profiles.csv", "reengage.csv", "segments/vip.csv"):
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name
    # unrounded: a change in percent and an AOV keep more digits than their display
    hub = first["customer_hub"]
    aov = hub["average_order_value"]["value"]
    assert aov == pytest.approx(aov) and round(aov, 2) != aov or aov * 100 % 1 == 0


def test_only_one_report_keeps_the_other_from_the_last_good_run(merchant):
    nbs = merchant / "two"
    nbs.mkdir()
    for name in ("customer_hub", "clv"):
        notebook(nbs / f"{name}.ipynb",
                 "from hubnb.report import open_report\n"
                 "report = open_report(params_path, output_dir, snapshot)\n"
                 f"report.record({name!r}, {{'orders': len(report.data.orders)}})")
    out = merchant / "out"
    run(merchant / "tiny.yaml", out_root=out, notebooks_dir=nbs, log=lambda m: None)
    hub_html = (out / "tiny" / "customer_hub.html").read_bytes()
    first = json.loads((out / "tiny" / "fingerprint.json").read_text())["reports"]
    # one more order; only the CLV report is run again
    orders = merchant / "tiny" / "orders.csv"
    lines = orders.read_text().splitlines()
    orders.write_text("\n".join(lines + [lines[-1].replace("o2", "o3", 1)]) + "\n")
    run(merchant / "tiny.yaml", out_root=out, notebooks_dir=nbs, only="clv", log=lambda m: None)
    metrics = json.loads((out / "tiny" / "metrics.json").read_text())
    assert metrics["customer_hub"] == {"orders": 2} and metrics["clv"] == {"orders": 3}
    assert (out / "tiny" / "customer_hub.html").read_bytes() == hub_html
    second = json.loads((out / "tiny" / "fingerprint.json").read_text())["reports"]
    assert second["customer_hub"] == first["customer_hub"]
    assert second["clv"]["data_fingerprint"] != first["clv"]["data_fingerprint"]
    with pytest.raises(ReportError, match="--only must be one of customer_hub, clv"):
        run(merchant / "tiny.yaml", out_root=out, notebooks_dir=nbs, only="hub")
