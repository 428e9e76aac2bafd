"""The installed package: the wheel, then `hubnb run` from any directory.

The package is built as a wheel and installed (not in editable mode) into a scratch folder,
so the notebooks and templates must come from the package data, and the run starts in an
unrelated directory.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_every_imported_distribution_is_declared():
    """Every third-party module hubnb imports belongs to a declared dependency."""
    import importlib.metadata as md
    import re

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # the runtime dependencies, and the extra that --scheduler asks for (hubnb[dask])
    requirements = project["dependencies"] + project["optional-dependencies"]["dask"]
    declared = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-")
                for d in requirements}
    provided = md.packages_distributions()
    imported = set()
    for path in (ROOT / "hubnb").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    missing = {}
    for module in sorted(imported):
        if module in sys.stdlib_module_names or module in ("hubnb", "__future__"):
            continue
        dists = {d.lower().replace("_", "-") for d in provided.get(module, [])}
        if not dists & declared:
            missing[module] = sorted(dists)
    assert missing == {}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """hubnb built as a wheel, as ``pip install .`` builds it."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(folder), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (built,) = folder.glob("hubnb-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The wheel installed (not in editable mode) into a scratch folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)
    return target


NOTEBOOKS = ["clv.ipynb", "customer_hub.ipynb"]


def test_the_wheel_carries_the_one_copy_of_each_notebook(wheel):
    """The repository keeps each notebook once, in the top-level ``notebooks/`` analysts
    open; the build maps that folder into the package as ``hubnb/notebooks/``."""
    import zipfile

    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    on_disk = sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*.ipynb")
                     if not set(p.relative_to(ROOT).parts) & {".venv", ".venv-bench", "outputs",
                                                              "build", ".ipynb_checkpoints"})
    expected = [f"notebooks/{name}" for name in NOTEBOOKS]
    assert sorted(tracked) == expected
    assert on_disk == expected
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(n for n in archive.namelist() if n.endswith(".ipynb"))
        assert shipped == [f"hubnb/notebooks/{name}" for name in NOTEBOOKS]
        for name in NOTEBOOKS:
            assert archive.read(f"hubnb/notebooks/{name}") == (ROOT / "notebooks" / name).read_bytes()


def test_the_package_ships_its_notebooks_and_templates(installed):
    pkg = installed / "hubnb"
    assert sorted(p.name for p in (pkg / "notebooks").glob("*.ipynb")) == NOTEBOOKS
    for name in ("card.html.j2", "index.html.j2", "hubnb.css", "blocks/table.html.j2",
                 "nbconvert/hubnb/conf.json", "nbconvert/hubnb/index.html.j2"):
        assert (pkg / "templates" / name).is_file(), name
    assert (pkg / "figures" / "whitegrid.mplstyle").is_file()
    assert sorted(p.parts[-3] for p in (pkg / "locale").glob("*/LC_MESSAGES/hubnb.mo")) == \
        ["de", "it", "ko"]


def test_hubnb_run_works_from_any_directory(installed, tmp_path):
    from hubnb.demo import generate_demo_data

    generate_demo_data(tmp_path / "shop" / "data", 120, 2)
    params = tmp_path / "shop" / "shop.yaml"
    params.write_text("merchant: shop\ndata: ./data\ntimezone: America/New_York\n"
                      "as_of: 2026-11-22\nclv: {draws: 100, tune: 100, chains: 1}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed)}
    code = ("import sys, hubnb, hubnb.cli; assert hubnb.__file__.startswith(sys.argv[1]), "
            "hubnb.__file__; sys.exit(hubnb.cli.main(['run', sys.argv[2]]))")
    proc = subprocess.run([sys.executable, "-c", code, str(installed), str(params)],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = elsewhere / "outputs" / "shop"
    assert {"customer_hub.html", "clv.html", "metrics.json"} <= {p.name for p in out.iterdir()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["provenance"]["git_commit"] is None          # not a git checkout
    assert metrics["clv"]["eligible"] is False                  # 120 profiles: too few
    # quiet runs: progress lines only, no kernel warnings (ipykernel's TCP warning, its
    # "KeyboardInterrupt caught in kernel" at shutdown)
    progress = ("reading and validating ", "running ", "rendering ")
    lines = proc.stderr.splitlines()
    assert [ln for ln in lines if not ln.startswith(progress) and not ln.endswith(".html done")] \
        == []
    assert "running clv for shop ..." in lines and "clv.html done" in lines
