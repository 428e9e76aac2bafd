"""What a report notebook needs besides the dashboard's own numbers.

Each notebook starts with::

    params_path = "../params/demo.yaml"   # tagged `parameters`: Papermill replaces it
    output_dir = None                     # hubnb run: the folder its files go to

    report = hubnb.report.open_report(params_path, output_dir)

:func:`open_report` validates the params, reads the dataset and returns a
:class:`Report`. ``report.record(section, values)`` keeps the numbers that ``hubnb run``
gathers into ``metrics.json``; ``report.write_csv(name, frame)`` writes a profile list
beside the reports. Opened by hand in JupyterLab (``output_dir`` None) a notebook still
runs top to bottom: nothing is written, and the report says so where a file would be.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .data import Dataset, load_dataset
from .params import Params, load_params

METRICS_PARTS = "_metrics"


@dataclass
class Report:
    """A report's params, data and output folder."""

    params: Params
    data: Dataset
    output_dir: Path | None

    def record(self, section: str, values: dict) -> None:
        """Keep ``values`` as the ``section`` key of metrics.json (written by ``hubnb run``)."""
        if self.output_dir is None:
            return
        parts = self.output_dir / METRICS_PARTS
        parts.mkdir(parents=True, exist_ok=True)
        (parts / f"{section}.json").write_text(json.dumps(values, indent=2, default=_jsonable))

    def write_csv(self, name: str, frame: pd.DataFrame) -> Path | None:
        """Write ``frame`` to ``output_dir/name``; None when the notebook runs by hand."""
        if self.output_dir is None:
            return None
        path = self.output_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        return path

    def header(self, dashboard: str = "customer_hub"):
        """The report's header: merchant, the dates it covers, as-of day, currency.

        The Customer Hub report states its period and comparison with their exact dates;
        the CLV report states its history window and prediction horizon instead.
        """
        from IPython.display import HTML

        p = self.params
        rows = [("Merchant", p.display_name)]
        if dashboard == "clv":
            first = p.as_of - dt.timedelta(days=p.clv.history_days - 1)
            last = p.as_of + dt.timedelta(days=p.clv.horizon_days)
            rows += [("Orders from", f"{first:%b %d, %Y} to {p.as_of:%b %d, %Y} "
                                     f"({p.clv.history_days:,} days of history)"),
                     ("Predictions for", f"the next {p.clv.horizon_days:,} days, "
                                         f"to {last:%b %d, %Y}")]
        else:
            rows += [("Period", p.period.label()),
                     ("Compared with", p.comparison.label() if p.comparison else "no comparison")]
        rows += [("As of", f"{p.as_of:%b %d, %Y} ({p.timezone}, whole local days)"),
                 ("Currency", p.currency)]
        cells = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                        f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
        return HTML(f"<table>{cells}</table>")

    def quality_table(self):
        """The data-quality summary: every rule for imperfect data and how many rows it hit."""
        q = self.data.quality.rename(columns={"table": "Table", "rule": "Rule", "rows": "Rows",
                                              "action": "What hubnb did"})
        return (q.style.hide(axis="index").format({"Rows": "{:,}"})
                .set_properties(**{"text-align": "left"}))


def open_report(params_path, output_dir=None, tables: tuple[str, ...] | None = None) -> Report:
    """Validate the params file, read the merchant's dataset and set up the output folder."""
    params = load_params(params_path)
    data = load_dataset(params.data, tables=tables)
    out = Path(output_dir) if output_dir else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    return Report(params=params, data=data, output_dir=out)


def _jsonable(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
