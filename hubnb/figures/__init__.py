"""Figures: one look for every report.

Figure functions take results and return a matplotlib Figure; they never compute a metric.
:func:`use_theme` sets seaborn's theme and hubnb's palette once per notebook.
"""

from __future__ import annotations

import matplotlib
import matplotlib.ticker as mticker
import seaborn as sns

#: One palette for every figure (seaborn's colorblind palette).
PALETTE = sns.color_palette("colorblind")
POSITIVE = "#1a7f37"   # green: a change for the better
NEGATIVE = "#cf222e"   # red: a change for the worse
NEUTRAL = "#57606a"

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}


def use_theme() -> None:
    """Seaborn's whitegrid theme, hubnb's palette and figure size, for a notebook."""
    sns.set_theme(style="whitegrid", palette=PALETTE, rc={
        "figure.figsize": (9, 4), "figure.dpi": 100, "axes.titleweight": "bold",
        "axes.titlesize": 13, "axes.labelsize": 11, "figure.autolayout": True,
    })
    matplotlib.rcParams["svg.fonttype"] = "none"


def money(value: float | None, currency: str, decimals: int = 2) -> str:
    """``$1,234.50`` style text for an amount in major units; an em dash for None."""
    if value is None:
        return "—"
    symbol = CURRENCY_SYMBOLS.get(currency)
    text = f"{abs(value):,.{decimals}f}"
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def money_axis(ax, currency: str, axis: str = "y") -> None:
    """Format an axis's tick labels as money in ``currency``."""
    fmt = mticker.FuncFormatter(lambda v, _: money(v, currency, 0))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)
