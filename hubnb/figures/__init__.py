"""Figures: one look for every report.

Figure functions only draw: each takes its data (frames, series, numbers already computed
by :mod:`hubnb.hub` or :mod:`hubnb.clv`) and an optional matplotlib ``ax`` to draw on, and
returns the :class:`~matplotlib.figure.Figure`. None computes a metric. Figures are built
without pyplot, so nothing stays open between cells; a card embeds each one as a PNG
(:class:`hubnb.render.Figure`). :func:`use_theme` sets the look: seaborn's whitegrid theme
and colorblind palette, kept as a matplotlib style sheet (``whitegrid.mplstyle``), so that
no report pays seaborn's import (over a second per notebook kernel).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.dates as mdates
import matplotlib.style
import matplotlib.ticker as mticker
from babel.dates import format_skeleton
from matplotlib.figure import Figure

from .. import format as fmt
from ..i18n import current

#: The theme: seaborn's whitegrid and colorblind palette as a style sheet.
STYLE = Path(__file__).with_name("whitegrid.mplstyle")
#: One palette for every figure (seaborn's colorblind palette, the style's color cycle).
PALETTE = [c["color"] for c in matplotlib.rc_params_from_file(
    STYLE, use_default_template=False)["axes.prop_cycle"]]
POSITIVE = "#1a7f37"   # green: a change for the better
NEGATIVE = "#cf222e"   # red: a change for the worse
NEUTRAL = "#57606a"


def use_theme() -> None:
    """Seaborn's whitegrid theme and colorblind palette, hubnb's figure size, for a notebook.

    Text falls back, glyph by glyph, from DejaVu Sans to NanumGothic (shipped by the
    ``koreanize-matplotlib`` package), so Korean figure titles, axes and legends render
    in every locale instead of empty boxes.
    """
    matplotlib.style.use(STYLE)
    matplotlib.rcParams.update({
        "figure.figsize": (9, 4), "figure.dpi": 100, "axes.titleweight": "bold",
        "axes.titlesize": 13, "axes.labelsize": 11,
        # a list of families: matplotlib falls back along it glyph by glyph
        "font.family": ["DejaVu Sans", *cjk_fonts()],
    })
    matplotlib.rcParams["svg.fonttype"] = "none"


def cjk_fonts() -> list[str]:
    """Register the Hangul fonts of ``koreanize-matplotlib`` with matplotlib (once) and
    return their family names; the package is not imported (it would change rcParams)."""
    global _CJK
    if _CJK is None:
        import importlib.util
        from pathlib import Path

        from matplotlib import font_manager

        spec = importlib.util.find_spec("koreanize_matplotlib")
        families = []
        if spec is not None and spec.origin:
            for ttf in sorted(Path(spec.origin).parent.rglob("NanumGothic*.ttf")):
                font_manager.fontManager.addfont(str(ttf))
                name = font_manager.FontProperties(fname=str(ttf)).get_name()
                if name not in families:
                    families.append(name)
        _CJK = families
    return _CJK


_CJK: list[str] | None = None


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
    formatter = mticker.FuncFormatter(lambda v, pos: fmt.money(v, currency, 0))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def count_axis(ax, axis: str = "y") -> None:
    """Format an axis's tick labels as whole numbers with grouping."""
    formatter = mticker.FuncFormatter(lambda v, pos: fmt.count(v))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


class LocaleDateFormatter(mticker.Formatter):
    """Date ticks in the active report language (:func:`hubnb.i18n.current`), through Babel.

    The tick spacing chooses the pattern (CLDR skeletons, so each language orders day,
    month and year its own way): a year or more apart ``2026``; months apart ``Oct 2026``;
    days apart ``Oct 5`` (``5 ott``, ``5. Okt.``, ``10월 5일``) with the year in the axis
    offset; hours apart ``10:41`` with the day in the offset.
    """

    def __init__(self, locale: str | None = None):
        self.locale = locale
        self._offset = ""

    def _spacing(self, values) -> float:
        """Days between neighbouring ticks (from the axis's ticks when given one)."""
        ticks = sorted(values)
        if len(ticks) < 2 and self.axis is not None:
            ticks = sorted(self.axis.get_majorticklocs())
        steps = [b - a for a, b in zip(ticks, ticks[1:]) if b > a]
        return min(steps) if steps else 1.0

    def format_ticks(self, values):
        values = list(values)
        if not values:
            self._offset = ""
            return []
        locale = self.locale or current()
        step = self._spacing(values)
        days = [mdates.num2date(v).replace(tzinfo=None) for v in values]
        if step >= 365:
            skeleton, offset = "y", ""
        elif step >= 28:
            skeleton, offset = "yMMM", ""
        elif step >= 1:
            skeleton, offset = "MMMd", "y"
        else:
            skeleton, offset = "Hm", "yMMMd"
        labels = [format_skeleton(skeleton, d, locale=locale) for d in days]
        if offset:
            shown = sorted({format_skeleton(offset, d, locale=locale): d for d in days}.items(),
                           key=lambda item: item[1])
            self._offset = " – ".join(text for text, _d in shown) if len(shown) <= 2 else ""
        else:
            self._offset = ""
        return labels

    def __call__(self, x, pos=None):
        return self.format_ticks([x])[0]

    def get_offset(self) -> str:
        return self._offset


#: The shortest time axis drawn, in days (matplotlib dates count days).
MIN_DATE_SPAN_DAYS = 6


def date_axis(ax, axis: str = "x", minticks: int = 3, maxticks: int = 8) -> None:
    """Date ticks (``Oct 5``, ``Oct 12``, ... or ``Oct 2026``, ``Nov 2026``) on a time
    axis, in the active report language."""
    # about one label per inch of axis: dates in some languages ("10월 25일") are wide
    inches = ax.get_position().width * ax.figure.get_figwidth()
    maxticks = max(minticks, min(maxticks, int(inches / 1.05)))
    locator = mdates.AutoDateLocator(minticks=min(minticks, maxticks), maxticks=maxticks)
    # Between two and three years the locator finds too few yearly ticks and, with a few
    # ticks per axis, no monthly interval up to its longest (6 months) that fits: it warns
    # and falls back. Yearly and two-yearly steps in months close that gap.
    locator.intervald[mdates.MONTHLY] = [1, 2, 3, 4, 6, 12, 24]
    target = ax.xaxis if axis == "x" else ax.yaxis
    # A range of a day or so (one order, or all of a profile's orders on the as-of day)
    # leaves the locator no interval to pick (matplotlib warns and draws no useful tick):
    # such an axis shows at least MIN_DATE_SPAN_DAYS around its middle.
    low, high = ax.get_xlim() if axis == "x" else ax.get_ylim()
    if high - low < MIN_DATE_SPAN_DAYS:
        middle = (low + high) / 2
        low, high = middle - MIN_DATE_SPAN_DAYS / 2, middle + MIN_DATE_SPAN_DAYS / 2
        (ax.set_xlim if axis == "x" else ax.set_ylim)(low, high)
    target.set_major_locator(locator)
    target.set_major_formatter(LocaleDateFormatter())
