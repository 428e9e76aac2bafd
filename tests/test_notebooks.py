"""The report notebooks as a reader and an analyst meet them: every section shows a card; the
parameters cell works from notebooks/ as JupyterLab runs it; ``hubnb notebook`` writes a copy
in the reader's language, and the English notebook opened by hand in another says how."""

import ast
import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from hubnb import hub, i18n
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


@pytest.fixture
def shop(tmp_path) -> Path:
    data = write(tmp_path / "data")
    params = tmp_path / "params" / "shop.yaml"
    params.parent.mkdir()
    params.write_text("merchant: shop\ndata: ../data\ntimezone: UTC\nas_of: 2026-03-10\n"
                      "period: last_7_days\n")
    assert data.is_dir()
    return params


def test_hubnb_notebook_writes_a_copy_with_its_markdown_in_the_language(shop, tmp_path, capsys):
    from hubnb.cli import main

    out = tmp_path / "nbs"
    assert main(["notebook", "customer_hub", "clv", "--locale", "it", "--params", str(shop),
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out.split() == [
        "notebook", "written", "to", str(out / "customer_hub.it.ipynb"),
        "notebook", "written", "to", str(out / "clv.it.ipynb")]
    for name in ("customer_hub", "clv"):
        source = cells(name)
        copy = [{"type": c["cell_type"], "source": "".join(c["source"])}
                for c in json.loads((out / f"{name}.it.ipynb").read_text())["cells"]]
        assert len(copy) == len(source)
        with i18n.using("it"):
            for original, cell in zip(source, copy):
                if original["type"] == "markdown":
                    assert cell["source"] == i18n.gettext(original["source"]) != original["source"]
        values = {}
        exec(copy[1]["source"], {}, values)
        assert values["locale"] == "it" and values["params_path"] == "../params/shop.yaml"
        assert (out / values["params_path"]).resolve() == shop.resolve()
        assert ('open_report(params_path, output_dir, snapshot, locale, markdown_locale="it")'
                in copy[2]["source"])
        changed = [i for i, (a, b) in enumerate(zip(source, copy))
                   if a["type"] == "code" and a["source"] != b["source"]]
        assert changed == [1, 2]
    assert main(["notebook", "customer_hub", "clv", "--out", str(out / "one.ipynb")]) == 2
    assert "--out names one notebook" in capsys.readouterr().err


def test_hubnb_notebook_writes_under_outputs_which_git_ignores(shop, tmp_path, monkeypatch):
    from hubnb.notebook import default_path, write_notebook

    monkeypatch.chdir(tmp_path)
    written = write_notebook("clv", params=shop)        # the params' locale: en
    assert written == default_path("clv", "en") == Path("outputs/notebooks/clv.en.ipynb")
    assert written.is_file()
    if (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", str(written)], cwd=ROOT)
        assert ignored.returncode == 0, "outputs/notebooks/ must be ignored by git"


def test_a_notebook_opened_by_hand_in_another_language_says_how_to_translate_it(
        shop, tmp_path, monkeypatch):
    """The English notebook run by hand with ``locale = "it"`` says, in one line of its set-up
    output, how to get it in Italian; the copy ``hubnb notebook`` wrote says nothing."""
    import papermill as pm

    from hubnb.notebook import hand_run_hint, write_notebook

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)

    def setup_output(nb: Path, **parameters) -> str:
        done = tmp_path / f"done-{nb.name}"
        pm.execute_notebook(str(nb), str(done), parameters=parameters, cwd=str(nb.parent),
                            kernel_name="python3", progress_bar=False)
        setup = next(c for c in nbformat.read(done, as_version=4).cells
                     if "open_report(" in c.source)
        return "".join(o.text for o in setup.outputs if o.output_type == "stream")

    hint = setup_output(NOTEBOOKS / "customer_hub.ipynb", params_path=str(shop), locale="it")
    with i18n.using("it"):
        assert hint == hand_run_hint("it", "en") + "\n"
    assert hint.count("\n") == 1 and "`hubnb notebook --locale it`" in hint
    assert "I titoli e le spiegazioni di questo notebook sono in inglese" in hint
    copy = write_notebook("customer_hub", "it", tmp_path / "nbs", shop)
    assert setup_output(copy) == ""
    # English report, English notebook: nothing to say
    assert hand_run_hint("en", "en") is None and hand_run_hint("it", "it") is None
    monkeypatch.setenv("JPY_SESSION_NAME", str(NOTEBOOKS / "clv.ipynb"))   # Jupyter Server's
    with i18n.using("de"):
        assert "`hubnb notebook clv --locale de`" in hand_run_hint("de", "en")
