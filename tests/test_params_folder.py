"""The README's batch command on a fresh clone: `hubnb batch params/` finds only the merchants
whose data `make demo` writes; a merchant whose data folder is missing fails with a line
naming it."""

from pathlib import Path

import yaml

from hubnb.batch import discover, run_merchant

ROOT = Path(__file__).resolve().parent.parent


def test_the_params_folder_holds_the_demo_merchant_and_batches_of_their_own():
    assert discover(ROOT / "params") == [ROOT / "params" / "demo.yaml"]
    demo = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    assert (ROOT / "params" / demo["data"]).resolve() == ROOT / "data" / "demo"  # make demo's
    assert "--out data/demo " in (ROOT / "Makefile").read_text()
    # each subfolder is a batch whose data a make target writes
    for folder, target in (("batch", "data/batch/.complete"), ("cdnow", "data/cdnow/.complete"),
                           ("regular", "data/regular/.complete")):
        files = discover(ROOT / "params" / folder)
        assert files and f"\n{target}:" in (ROOT / "Makefile").read_text()
        for params in files:
            data = yaml.safe_load(params.read_text())["data"]
            assert (params.parent / data).resolve().is_relative_to(ROOT / "data")


def test_a_merchant_whose_data_folder_is_missing_fails_naming_it(tmp_path):
    params = tmp_path / "params" / "gone.yaml"
    params.parent.mkdir()
    params.write_text("merchant: gone\ndata: ../data/gone\ntimezone: UTC\nas_of: 2026-03-10\n"
                      "period: last_7_days\n")
    outcome = run_merchant(params, tmp_path / "out")
    assert outcome.status == "failed" and outcome.seconds < 5
    assert f"dataset directory {tmp_path / 'data' / 'gone'} does not exist" in outcome.error
