import json
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
