"""Figures: one look for every report.

Figure functions only draw: each takes its data (frames, series, numbers already computed
by :mod:`hubnb.hub` or :mod:`hubnb.clv`) and an optional matplotlib ``ax`` to draw on, and
returns the :class:`~matplotlib.figure.Figure`. None computes a metric. Figures are built
without pyplot, so nothing stays open between cells; a card embeds each one as a PNG
(:class:`hubnb.render.Figure`). :func:`use_theme` sets seaborn's theme and hubnb's palette.
"""

from __future__ import annotations

import matplotlib
import matplotlib.dates as mdates
import matplotlib.ticker as mticker
import seaborn as sns
from matplotlib.figure import Figure

from .. import format as fmt

#: One palette for every figure (seaborn's colorblind palette).
PALETTE = sns.color_palette("colorblind")
POSITIVE = "#1a7f37"   # green: a change for the better
NEGATIVE = "#cf222e"   # red: a change for the worse
NEUTRAL = "#57606a"


def use_theme() -> None:
    """Seaborn's whitegrid theme, hubnb's palette and figure size, for a notebook."""
    sns.set_theme(style="whitegrid", palette=PALETTE, rc={
        "figure.figsize": (9, 4), "figure.dpi": 100, "axes.titleweight": "bold",
        "axes.titlesize": 13, "axes.labelsize": 11,
    })
    matplotlib.rcParams["svg.fonttype"] = "none"


def new_axes(ax=None, width: float = 9, height: float = 4):
    """``(figure, ax)``: ``ax`` and its figure when given, else a new constrained figure."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


def new_grid(width: float, height: float, ncols: int = 1, nrows: int = 1, **kw):
    """A new constrained figure with an ``nrows x ncols`` array of axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def money_axis(ax, currency: str, axis: str = "y") -> None:
    """Format an axis's tick labels as money in ``currency`` (no decimals)."""
    formatter = mticker.FuncFormatter(lambda v, _: fmt.money(v, currency, 0))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def count_axis(ax, axis: str = "y") -> None:
    """Format an axis's tick labels as whole numbers with grouping."""
    formatter = mticker.FuncFormatter(lambda v, _: fmt.count(v))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def date_axis(ax, axis: str = "x", minticks: int = 3, maxticks: int = 8) -> None:
    """Concise date ticks (``Oct``, ``8``, ``15``, ...) on a time axis."""
    locator = mdates.AutoDateLocator(minticks=minticks, maxticks=maxticks)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(locator)
    target.set_major_formatter(mdates.ConciseDateFormatter(locator))
