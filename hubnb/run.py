"""``hubnb run``: execute every report notebook for one merchant and publish the outputs.

The run validates the params file and the whole dataset first, so bad input fails in a
second with one line naming the key or the table, column and row. Notebooks then run
with Papermill into a staging folder; only when every notebook has run and been rendered
does the staging folder replace ``outputs/<merchant>/``. A failed run therefore leaves
the merchant's last good output in place and writes nothing half-done.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import shutil
import tempfile
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from . import __version__
from .data import load_dataset
from .errors import HubnbError
from .params import load_params
from .report import METRICS_PARTS

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"


class ReportError(HubnbError):
    """A report notebook failed while running."""


def run(params_path, out_root="outputs", notebooks_dir=None, kernel_name=None,
        log=print) -> Path:
    """Run every notebook of ``notebooks_dir`` for the merchant of ``params_path``.

    Parameters
    ----------
    params_path : str or Path
        The merchant's params file.
    out_root : str or Path
        The folder holding one subfolder per merchant and ``index.html``.
    notebooks_dir : str or Path, optional
        Source notebooks; default the project's ``notebooks/``.
    kernel_name : str, optional
        Jupyter kernel; default the notebooks' own (``python3``, this Python).

    Returns
    -------
    Path
        ``out_root/<merchant>``.
    """
    params_path = Path(params_path).resolve()
    params = load_params(params_path)
    load_dataset(params.data)  # the whole contract is checked before anything is written
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else NOTEBOOKS_DIR
    notebooks = sorted(notebooks_dir.glob("*.ipynb"))
    if not notebooks:
        raise ReportError(f"no notebooks in {notebooks_dir}")
    out_root = Path(out_root).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    final = out_root / params.merchant
    staging = Path(tempfile.mkdtemp(prefix=f".{params.merchant}-", dir=out_root))
    try:
        for nb in notebooks:
            log(f"running {nb.name} for {params.merchant} ...")
            _execute(nb, staging, params_path, kernel_name)
            _to_html(staging / nb.name, title=f"{params.display_name}: {nb.stem.replace('_', ' ')}")
        _write_metrics(staging, params)
        _publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_index(out_root)
    return final


def _execute(nb: Path, staging: Path, params_path: Path, kernel_name) -> None:
    import papermill as pm

    target = staging / nb.name
    try:
        pm.execute_notebook(
            str(nb), str(target), cwd=str(nb.parent), kernel_name=kernel_name,
            parameters={"params_path": str(params_path), "output_dir": str(staging)},
            progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as exc:
        kept = Path(tempfile.mkdtemp(prefix="hubnb-failed-")) / nb.name
        if target.exists():
            shutil.copy(target, kept)
        # A HubnbError raised inside the notebook is already a one-line user message.
        raise ReportError(f"{nb.name} failed at cell {exc.exec_count}: {exc.ename}: "
                          f"{exc.evalue} (executed notebook kept at {kept})") from None


def _to_html(executed: Path, title: str) -> None:
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4),
                                          resources={"metadata": {"name": title}})
    executed.with_suffix(".html").write_text(body, encoding="utf-8")


def _write_metrics(staging: Path, params) -> None:
    metrics = {
        "merchant": params.merchant,
        "display_name": params.display_name,
        "currency": params.currency,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "hubnb_version": __version__,
        "period": params.period.as_dict(),
        "comparison": params.comparison.as_dict() if params.comparison else None,
    }
    parts = staging / METRICS_PARTS
    for part in sorted(parts.glob("*.json")) if parts.is_dir() else []:
        metrics[part.stem] = json.loads(part.read_text())
    shutil.rmtree(parts, ignore_errors=True)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def _publish(staging: Path, final: Path) -> None:
    # Two renames: the old output is moved aside only once the new one is complete.
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}-old-{os.getpid()}")
        final.rename(old)
    staging.rename(final)
    os.chmod(final, 0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_index(out_root) -> Path:
    """Refresh ``out_root/index.html``: every merchant's reports and headline numbers."""
    out_root = Path(out_root)
    rows = []
    for folder in sorted(p for p in out_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        metrics_file = folder / "metrics.json"
        if not metrics_file.is_file():
            continue
        m = json.loads(metrics_file.read_text())
        links = " · ".join(f"<a href='{folder.name}/{h.name}'>{h.stem.replace('_', ' ')}</a>"
                           for h in sorted(folder.glob("*.html")))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in (
            html.escape(m.get("display_name") or m.get("merchant", folder.name)),
            html.escape(f"{m['period']['start']} – {m['period']['end']}"),
            _headline(m), links,
            html.escape(m.get("generated_at", "")))) + "</tr>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>hubnb reports</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:.4em .8em;text-align:left;vertical-align:top}}</style>
</head><body><h1>hubnb reports</h1>
<table><tr><th>Merchant</th><th>Period</th><th>Headline numbers</th><th>Reports</th><th>Generated</th></tr>
{''.join(rows) or '<tr><td colspan=5>No reports yet: run <code>hubnb run params/&lt;merchant&gt;.yaml</code>.</td></tr>'}
</table></body></html>
"""
    index = out_root / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _headline(m: dict) -> str:
    from .figures import money

    currency = m.get("currency", "USD")
    items = []
    hub = m.get("customer_hub") or {}
    active, revenue = hub.get("active_accounts") or {}, hub.get("revenue_generated") or {}
    if active.get("value") is None and revenue.get("value") is None:
        if hub:
            items.append("Customer Hub: no data yet")
    else:
        items.append(f"active accounts {active['value']:,}{_change(active)}")
        items.append(f"hub revenue {money(revenue['value'], currency)}{_change(revenue)}")
    clv = m.get("clv") or {}
    if clv.get("eligible") and "totals" in clv:
        t = clv["totals"]["predicted_clv"]
        items.append(f"predicted CLV, next {clv.get('horizon_days', 365)} days: "
                     f"{money(t['mean'], currency, 0)} ({money(t['lower'], currency, 0)} to "
                     f"{money(t['upper'], currency, 0)})")
    elif clv:
        items.append("CLV: not eligible")
    return html.escape("; ".join(items)) or "—"


def _change(metric: dict) -> str:
    pct = metric.get("change_pct")
    return "" if pct is None else f" ({pct:+.1f}%)"
