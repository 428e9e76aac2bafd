"""``hubnb notebook [NAME] --locale L``: a report notebook to open by hand, in the reader's
language.

``hubnb run`` translates a notebook's markdown (its headings and explanations) before running
it (:func:`hubnb.run.localized_notebook`). The notebooks of ``notebooks/`` are the English
source: opened by hand with ``locale = "it"`` they show Italian cards under English headings.
:func:`write_notebook` writes a copy with the markdown in the locale and the parameters cell
set to that locale and to a params file (its path relative to the copy), by default under
``outputs/notebooks/``, which git ignores: ``notebooks/`` stays the one source. The copy's
set-up call says which language its markdown is in, so :func:`hubnb.report.open_report` can
tell a translated copy from the English source (:func:`hand_run_hint`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from . import i18n
from .errors import HubnbError
from .report import hand_run_hint  # noqa: F401  (the hint names this command)

#: Where ``hubnb notebook`` writes its copies (under outputs/, which git ignores).
DEFAULT_FOLDER = Path("outputs") / "notebooks"
#: The set-up call of the shipped notebooks; a copy names its markdown's language in it.
SETUP_CALL = "open_report(params_path, output_dir, snapshot, locale)"


def default_path(name: str, locale: str) -> Path:
    """``outputs/notebooks/<name>.<locale>.ipynb``, relative to the current folder."""
    return DEFAULT_FOLDER / f"{name}.{locale}.ipynb"


def write_notebook(name: str, locale: str | None = None, out=None, params=None) -> Path:
    """Write report notebook ``name`` (``customer_hub`` or ``clv``) with its markdown in
    ``locale``, ready to open by hand.

    Parameters
    ----------
    name : str
        The report: ``customer_hub`` or ``clv``.
    locale : str, optional
        en, it, de or ko; default the params file's ``locale``.
    out : str or Path, optional
        The notebook to write, or a folder for it; default :func:`default_path`.
    params : str or Path, optional
        The params file its parameters cell points at; default the one the shipped notebook
        names (``params/demo.yaml`` of a source checkout).

    Returns
    -------
    Path
        The notebook written.
    """
    import nbformat

    from .run import NOTEBOOKS_DIR, REPORTS, localized_notebook

    if name not in REPORTS:
        raise HubnbError(f"no report notebook {name!r}: use one of {', '.join(REPORTS)}")
    source = NOTEBOOKS_DIR / f"{name}.ipynb"
    notebook = nbformat.read(source, as_version=4)
    cell = _parameters_cell(notebook, source)
    if params is None:
        params = (NOTEBOOKS_DIR / _assigned(cell.source, "params_path")).resolve()
    params = Path(params)
    if not params.is_file():
        raise HubnbError(f"params file {params} does not exist (name one with --params)")
    if locale is None:
        from .params import load_params

        locale = load_params(params).locale
    locale = i18n.check(locale, "--locale")
    out = Path(out) if out else default_path(name, locale)
    if out.is_dir() or out.suffix != ".ipynb":
        out = out / f"{name}.{locale}.ipynb"
    with tempfile.TemporaryDirectory() as scratch:
        notebook = nbformat.read(localized_notebook(source, locale, Path(scratch)), as_version=4)
    cell = _parameters_cell(notebook, source)
    cell.source = _assign(_assign(cell.source, "params_path", _seen_from(out.parent, params)),
                          "locale", locale)
    setup = [c for c in notebook.cells if c.cell_type == "code" and SETUP_CALL in c.source]
    if len(setup) != 1:
        raise HubnbError(f"{source} has no set-up cell calling {SETUP_CALL}")
    setup[0].source = setup[0].source.replace(
        SETUP_CALL, f'{SETUP_CALL[:-1]}, markdown_locale="{locale}")')
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out)
    return out


def _seen_from(folder: Path, path: Path) -> str:
    """``path`` relative to ``folder`` when both are in one tree (a checkout: the copy moves
    with it), else absolute."""
    folder, path = folder.resolve(), path.resolve()
    if os.path.commonpath([folder, path]) == folder.anchor:
        return str(path)
    return os.path.relpath(path, folder)


def _parameters_cell(notebook, source: Path):
    found = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    if len(found) != 1:
        raise HubnbError(f"{source} has no cell tagged `parameters`")
    return found[0]


def _assigned(code: str, name: str) -> str:
    match = re.search(rf"^{name}\s*=\s*(['\"])(.*?)\1\s*$", code, re.MULTILINE)
    if not match:
        raise HubnbError(f"the parameters cell does not set {name} to a string")
    return match.group(2)


def _assign(code: str, name: str, value: str) -> str:
    line = re.compile(rf"^{name}\s*=.*$", re.MULTILINE)
    if not line.search(code):
        raise HubnbError(f"the parameters cell does not set {name}")
    return line.sub(lambda _match: f"{name} = {json.dumps(value, ensure_ascii=False)}", code,
                    count=1)
