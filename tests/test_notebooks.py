"""The report notebooks as a reader and an analyst meet them: every section shows a card; the
parameters cell works from notebooks/ as JupyterLab runs it."""

import ast
import json
from pathlib import Path

import pytest

from hubnb import hub
from hubnb.cards import hub as hub_cards
from hubnb.params import load_params
from hubnb.report import open_report
from test_data import write

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def cells(name: str) -> list[dict]:
    notebook = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    return [{"type": c["cell_type"], "source": "".join(c["source"]),
             "tags": c["metadata"].get("tags", [])} for c in notebook["cells"]]


def sections(name: str) -> list[tuple[str, list[str]]]:
    """``(heading, code cells)`` of each ``##``/``###`` section of a notebook."""
    found = []
    for cell in cells(name):
        if cell["type"] == "markdown" and cell["source"].startswith("##"):
            found.append((cell["source"].splitlines()[0], []))
        elif cell["type"] == "code" and found:
            found[-1][1].append(cell["source"])
    return found


@pytest.mark.parametrize("name", ["customer_hub", "clv"])
def test_every_section_of_a_report_ends_with_a_card(name):
    """A section that shows nothing must not exist: each heading's last code cell ends with a
    ``*_card(...)`` call, the card the report shows under that heading."""
    empty = []
    for heading, code in sections(name):
        last = ast.parse(code[-1]).body[-1] if code else None
        call = last.value if isinstance(last, ast.Expr) else None
        func = getattr(call, "func", None)
        if not (isinstance(call, ast.Call) and getattr(func, "attr", getattr(func, "id", ""))
                .endswith("_card")):
            empty.append(heading)
    assert empty == []


def test_the_customer_hub_outputs_section_lists_what_was_written(tmp_path):
    data = write(tmp_path / "data")
    params = tmp_path / "shop.yaml"
    params.write_text(f"merchant: shop\ndata: {data}\ntimezone: UTC\nas_of: 2026-03-10\n"
                      "period: last_7_days\n")
    by_hand = open_report(params)
    dashboard = hub.customer_hub(by_hand.data, load_params(params))
    text = hub_cards.outputs_card(by_hand, dashboard)._repr_html_()
    assert "Run by hand (output_dir is None)" in text and "reengage.csv" in text
    run = open_report(params, tmp_path / "out")
    text = hub_cards.outputs_card(run, dashboard)._repr_html_()
    assert len(dashboard.reengage) == 1 and "reengage.csv (1 account)" in text
    assert "the customer_hub block of metrics.json" in text


# ------------------------------------------------------------------- opened by hand (JupyterLab)

@pytest.mark.parametrize("name", ["customer_hub", "clv"])
def test_the_second_cell_holds_the_parameters_and_its_params_path_works_from_notebooks(name):
    """JupyterLab, nbval and ``papermill --cwd notebooks`` start the kernel in notebooks/: the
    default params_path is relative to that folder."""
    cell = cells(name)[1]
    assert cell["tags"] == ["parameters"]
    values = {}
    exec(cell["source"], {}, values)
    assert values == {"params_path": "../params/demo.yaml", "output_dir": None,
                      "snapshot": None, "locale": None}
    assert (NOTEBOOKS / values["params_path"]).resolve() == ROOT / "params" / "demo.yaml"
