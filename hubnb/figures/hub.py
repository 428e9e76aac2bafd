"""Figures of the Customer Hub dashboard.

Each function takes the series it draws (computed by :mod:`hubnb.hub`) and an optional
``ax``, and returns the Figure; the cards of :mod:`hubnb.cards.hub` decide when a figure
applies (e.g. not without hub data).
"""

from __future__ import annotations

import pandas as pd

from .. import format as fmt
from ..i18n import _
from . import PALETTE, count_axis, date_axis, money_axis, new_axes, new_grid


def service_interactions_chart(breakdown: dict[str, int], labels: dict[str, str],
                               series: pd.DataFrame, per: str, x_label: str, title: str,
                               axes=None):
    """Interactions by type (bars, left) and per day or week by type (lines, right).

    ``breakdown`` maps each type to its count in the period, ``labels`` each type to its
    name, ``series`` has one column per type indexed by the day (week) it starts; ``per``
    is "day" or "week". ``axes`` is an optional pair of axes to draw on.
    """
    if axes is None:
        fig, grid = new_grid(12, 4.2, ncols=2, gridspec_kw={"width_ratios": [1, 2]})
        left, right = grid[0]
    else:
        left, right = axes
        fig = left.figure
    types = list(breakdown)
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(types))]
    counts = [breakdown[t] or 0 for t in types]
    bars = left.barh([labels[t] for t in types][::-1], counts[::-1], color=colours[::-1])
    left.bar_label(bars, labels=[fmt.count(c) for c in counts[::-1]], padding=3, fontsize=9)
    left.set_xlabel(_("Interactions in the period"))
    left.set_title(_("By type"))
    left.margins(x=0.2)
    count_axis(left, "x")
    for t, colour in zip(types, colours):
        right.plot(series.index, series[t], color=colour, label=labels[t],
                   marker="o" if len(series) <= 31 else None, markersize=3, linewidth=1.6)
    right.set_ylabel(_("Interactions per week") if per == "week"
                    else _("Interactions per day"))
    right.set_xlabel(x_label)
    right.set_title(_("Over time, per week") if per == "week" else _("Over time, per day"))
    right.set_ylim(bottom=0)
    count_axis(right)
    date_axis(right, minticks=4, maxticks=9)
    right.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
    fig.suptitle(title, fontweight="bold")
    return fig


def average_order_value_chart(series: pd.DataFrame, period_average: float | None,
                              currency: str, per: str, x_label: str, title: str, ax=None):
    """Average order value per day (week) as a line, with the order count as bars behind it.

    ``series`` has ``orders`` and ``average_order_value`` per day (week); the dashed line
    is ``period_average`` (the period's AOV), when there is one.
    """
    fig, ax = new_axes(ax, 11, 4.4)
    counts = ax.twinx()
    width = 0.8 if per == "day" else 5.6
    counts.bar(series.index, series["orders"], width=width, color=PALETTE[7], alpha=0.35,
               label=_("Signed-in orders"))
    counts.set_ylabel(_("Signed-in orders per week") if per == "week"
                     else _("Signed-in orders per day"))
    counts.grid(False)
    count_axis(counts)
    # The line must be drawn above the bars of the twin axis.
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(series.index, series["average_order_value"], color=PALETTE[0], marker="o",
            markersize=3.5, linewidth=2, label=_("Average order value"))
    if period_average is not None:
        ax.axhline(period_average, color=PALETTE[0], linestyle="--", linewidth=1, alpha=0.7,
                   label=_("Period average {money}").format(
                       money=fmt.money(period_average, currency)))
    money_axis(ax, currency)
    ax.set_ylabel(_("Average order value ({currency})").format(currency=currency))
    ax.set_xlabel(x_label)
    ax.set_ylim(bottom=0)
    counts.set_ylim(bottom=0)
    date_axis(ax, minticks=4, maxticks=9)
    lines, names = ax.get_legend_handles_labels()
    more, more_names = counts.get_legend_handles_labels()
    ax.legend(lines + more, names + more_names, loc="upper center",
              bbox_to_anchor=(0.5, -0.18), ncol=3, frameon=False, fontsize=9)
    ax.set_title(title)
    return fig
