"""What a report notebook needs besides the dashboard's own numbers.

Each notebook starts with::

    params_path = "../params/demo.yaml"     # tagged `parameters`: Papermill replaces them
    output_dir = None                       # hubnb run: the folder its files go to
    snapshot = None                         # hubnb run: the dataset it already validated
    locale = None                           # hubnb run --locale: the report's language

    report = hubnb.report.open_report(params_path, output_dir, snapshot, locale)

:func:`open_report` validates the params and returns a :class:`Report`. Under ``hubnb run``
the dataset was read and validated once, by the run, and written to a snapshot that every
notebook loads as it is; opened by hand in JupyterLab (``snapshot`` None) a notebook reads
and validates the dataset itself, so it gets the same tables from the same params.
``report.record(section, values)`` keeps the numbers that ``hubnb run`` gathers into
``metrics.json``; ``report.write_csv(name, frame)`` writes a profile list beside the
reports. By hand (``output_dir`` None) nothing is written, and the report says so where a
file would be.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from . import faults, i18n
from .csvout import write_csv
from .data import Dataset, load_dataset
from .errors import HubnbError
from .params import Params, load_params
from .provenance import Provenance, provenance

#: The reports, one notebook each.
REPORTS = ("customer_hub", "clv")

METRICS_PARTS = "_metrics"
#: Bumped when the snapshot's layout changes, so a stale one is refused.
SNAPSHOT_VERSION = 1
#: The tables each report reads. ``hubnb run`` gives each notebook a snapshot of only these
#: (the others empty, their presence and columns kept), so the CLV kernel never holds the hub
#: events, the largest table. A notebook not named here gets every table.
REPORT_TABLES = {
    "customer_hub": ("profiles", "orders", "order_lines", "hub_events"),
    "clv": ("profiles", "orders", "refunds", "predictions", "marketing_assets"),
}


@dataclass
class Report:
    """A report's params, data, provenance and output folder."""

    params: Params
    data: Dataset
    output_dir: Path | None
    provenance: Provenance
    #: A batch's population (hubnb.clv.population.Population) for pooling, or None.
    population: object = None

    def record(self, section: str, values: dict) -> None:
        """Keep ``values`` as the ``section`` key of metrics.json (written by ``hubnb run``)."""
        if self.output_dir is None:
            return
        faults.point("compute", faults.run_process())
        parts = self.output_dir / METRICS_PARTS
        parts.mkdir(parents=True, exist_ok=True)
        (parts / f"{section}.json").write_text(json.dumps(values, indent=2, default=jsonable))

    def write_csv(self, name: str, frame: pd.DataFrame) -> Path | None:
        """Write ``frame`` to ``output_dir/name``; None when the notebook runs by hand.

        Numbers are written unrounded (the shortest text that reads back as the same
        float), as pandas' ``to_csv`` writes them, but formatted by Arrow a block of rows at
        a time (:mod:`hubnb.csvout`: 10,000,000 profiles in seconds, not minutes).
        """
        if self.output_dir is None:
            return None
        faults.point("compute", faults.run_process())
        path = self.output_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_csv(frame, path)


def write_snapshot(dataset: Dataset, prov: Provenance, path,
                   tables: tuple[str, ...] | None = None, population=None) -> Path:
    """Write the validated dataset and its provenance for the notebooks of one run.

    A pickle: the exact frames (dtypes, categories, time zones) the run validated, read back
    without parsing or validating again. It lives only for the run that wrote it. With
    ``tables``, the other tables are written empty (with their dtypes; what was present and
    which columns it had are kept, as is the data-quality table of every table).
    ``population`` (:class:`hubnb.clv.population.Population`, ``hubnb run --population``)
    goes with it for the CLV report's pooling.
    """
    path = Path(path)
    if tables is not None:
        dataset = replace(dataset, tables={
            name: frame if name in tables else frame.iloc[:0]
            for name, frame in dataset.tables.items()})
    with open(path, "wb") as handle:
        pickle.dump({"version": SNAPSHOT_VERSION, "dataset": dataset, "provenance": prov,
                     "population": population}, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def read_snapshot(path, with_population: bool = False) -> tuple:
    """The dataset and provenance :func:`write_snapshot` wrote (and, ``with_population``,
    the population as a third item)."""
    try:
        with open(path, "rb") as handle:
            content = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise HubnbError(f"cannot read the run's data snapshot {path}: {exc}") from None
    if not isinstance(content, dict) or content.get("version") != SNAPSHOT_VERSION:
        raise HubnbError(f"{path} is not a data snapshot of this hubnb version")
    if with_population:
        return content["dataset"], content["provenance"], content.get("population")
    return content["dataset"], content["provenance"]


def open_report(params_path, output_dir=None, snapshot=None, locale=None,
                markdown_locale: str = i18n.DEFAULT, population=None) -> Report:
    """Validate the params file, get the merchant's dataset and set up the output folder.

    ``snapshot`` is the validated dataset ``hubnb run`` wrote (:func:`write_snapshot`);
    without one the dataset is read and validated here. ``locale`` (``hubnb run
    --locale``) overrides the params' ``locale``; either becomes the active language of
    every card, figure and number that follows. ``markdown_locale`` is the language of the
    notebook's own headings and explanations: English as shipped, the locale in a copy that
    ``hubnb notebook`` wrote. A notebook opened by hand (no snapshot) whose report language
    differs from it prints one line saying how to get the translated notebook.
    ``population`` (a population.json path) pools a notebook opened by hand as ``hubnb run
    --population`` does; a run's snapshot carries its own.
    """
    params = load_params(params_path)
    if locale:
        params = replace(params, locale=i18n.check(locale, "--locale"))
    i18n.activate(params.locale)
    if snapshot:
        data, prov, pop = read_snapshot(snapshot, with_population=True)
    else:
        hint = hand_run_hint(params.locale, markdown_locale)
        if hint:
            print(hint)
        pop = None
        if population:
            from .clv.population import read_population

            pop = read_population(population)
        data, prov = load_dataset(params.data), provenance(params, population)
    out = Path(output_dir) if output_dir else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        faults.point("compute", faults.run_process())
    return Report(params=params, data=data, output_dir=out, provenance=prov, population=pop)


def jsonable(value):
    """JSON for the values metrics carry besides plain numbers: dates and numpy scalars."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def hand_run_hint(locale: str, markdown_locale: str) -> str | None:
    """The one line a notebook opened by hand prints when its report is in ``locale`` but its
    headings and explanations are in English (``markdown_locale``, as shipped); else None."""
    if locale == markdown_locale or markdown_locale != i18n.DEFAULT:
        return None
    session = Path(os.environ.get("JPY_SESSION_NAME") or "")   # set by Jupyter Server
    name = session.stem if session.suffix == ".ipynb" and session.stem in REPORTS else ""
    return i18n.gettext("This notebook's headings and explanations are in English: `{command}` "
                        "writes a copy with them in this language.").format(
        command=" ".join(filter(None, ["hubnb notebook", name, f"--locale {locale}"])))
