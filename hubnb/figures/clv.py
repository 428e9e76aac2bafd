"""Figures of the predictive CLV dashboard.

Each function takes frames computed by the engine or :mod:`hubnb.clv.dashboard` (and, for
one-panel figures, an optional ``ax``) and returns the Figure; the cards of
:mod:`hubnb.cards.clv` embed them.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import format as fmt
from ..i18n import _, ngettext
from . import (NEGATIVE, NEUTRAL, PALETTE, POSITIVE, count_axis, date_axis, money_axis,
               new_axes, new_grid)

BAND_COLORS = {"Low": POSITIVE, "Medium": "#bf8700", "High": NEGATIVE}


def band_names() -> dict[str, str]:
    """The churn risk bands' names (``Low``, ``Medium``, ``High`` are data values of the
    ``band`` column), in the active language."""
    return {"Low": _("Low"), "Medium": _("Medium"), "High": _("High")}


def _interval(credible_interval: float) -> str:
    """``90% interval``: the legend of a credible interval."""
    return _("{share} interval").format(share=fmt.share(credible_interval, 0))


def clv_distribution(profiles: pd.DataFrame, currency: str, horizon_days: int) -> Figure:
    """Histograms of historical CLV and predicted CLV (mean) per profile.

    The x axis stops at the 99th percentile so a few very large customers do not squeeze
    everyone else into one bar; the title says how many profiles lie beyond it.
    """
    fig, axes = new_grid(11, 4, ncols=2)
    panels = [("historical_clv", _("Historical CLV (net revenue to date)"), PALETTE[0]),
              ("predicted_clv_mean",
               ngettext("Predicted CLV, next {n} day (mean)",
                        "Predicted CLV, next {n} days (mean)", horizon_days).format(
                   n=fmt.count(horizon_days)), PALETTE[1])]
    for ax, (column, title, color) in zip(axes[0], panels):
        values = pd.to_numeric(profiles.get(column, pd.Series(dtype=float)),
                               errors="coerce").dropna()
        ax.set_title(title)
        ax.set_xlabel(_("CLV per profile ({currency})").format(currency=currency))
        ax.set_ylabel(_("Profiles"))
        if values.empty:
            ax.text(0.5, 0.5, _("not available"), ha="center", va="center",
                    transform=ax.transAxes, color=NEUTRAL)
            continue
        cap = float(values.quantile(0.99)) or float(values.max()) or 1.0
        beyond = int((values > cap).sum())
        ax.hist(values.clip(upper=cap), bins=40, range=(0, cap), color=color)
        money_axis(ax, currency, "x")
        count_axis(ax)          # 2,500,000 profiles, not "2.5" under a "1e6" offset
        ax.axvline(values.median(), color=NEUTRAL, ls="--", lw=1)
        ax.text(values.median(), ax.get_ylim()[1] * 0.95,
                " " + _("median {money}").format(money=fmt.money(values.median(), currency, 0)),
                color=NEUTRAL, va="top", fontsize=9)
        if beyond:
            above = ngettext("{n} profile above {money} counted in the last bar",
                             "{n} profiles above {money} counted in the last bar",
                             beyond).format(n=fmt.count(beyond),
                                            money=fmt.money(cap, currency, 0))
            ax.set_title(f"{title}\n{above}", fontsize=10)
    return fig


def churn_band_chart(bands: pd.DataFrame, labels, currency: str, ax=None, names=None,
                     title: str | None = None) -> Figure:
    """Profiles per churn risk band, each bar labelled with its revenue at stake.

    ``bands["band"]`` holds the bands' data values (Low, Medium, High), which also choose
    the colours; ``names`` are the bands' names as shown (by default :func:`band_names`,
    in the active language) and ``labels`` their churn probability ranges.
    """
    fig, ax = new_axes(ax, 8, 3.8)
    colors = [BAND_COLORS.get(b, NEUTRAL) for b in bands["band"]]
    if names is None:
        names = [band_names().get(b, b) for b in bands["band"]]
    ticks = [f"{name}\n{label}" for name, label in zip(names, labels)]
    bars = ax.bar(ticks, bands["profiles"], color=colors)
    for bar, stake in zip(bars, bands["revenue_at_stake"]):
        ax.annotate(_("{money} at stake").format(money=fmt.money(stake, currency, 0)),
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9, xytext=(0, 2),
                    textcoords="offset points")
    ax.set_title(title if title is not None else _("Churn risk: profiles per band"))
    ax.set_xlabel(_("Churn risk band (churn probability)"))
    ax.set_ylabel(_("Profiles"))
    count_axis(ax)
    ax.margins(y=0.15)
    return fig


def next_orders_by_week_chart(weeks: pd.DataFrame, ax=None, title: str | None = None) -> Figure:
    """Profiles whose expected next order date falls in each week (weeks start Monday)."""
    fig, ax = new_axes(ax, 10, 3.8)
    starts = pd.to_datetime(weeks["week_start"])
    ax.bar(starts, weeks["profiles"], width=6, align="edge", color=PALETTE[2])
    ax.set_title(title if title is not None else _("Expected next order dates, by week"))
    ax.set_xlabel(_("Week starting (Monday)"))
    ax.set_ylabel(_("Profiles expected to order"))
    count_axis(ax)
    date_axis(ax)
    return fig


def top_profiles_chart(top: pd.DataFrame, currency: str, credible_interval: float,
                       ax=None) -> Figure:
    """Predicted CLV of the top profiles with their credible intervals as error bars."""
    n = len(top)
    fig, ax = new_axes(ax, 9, max(2.5, 0.38 * n + 1.2))
    y = np.arange(n)[::-1]
    mean = top["predicted_clv_mean"].to_numpy(float)
    err = np.vstack([mean - top["predicted_clv_lower"].to_numpy(float),
                     top["predicted_clv_upper"].to_numpy(float) - mean])
    ax.errorbar(mean, y, xerr=np.clip(err, 0, None), fmt="o", color=PALETTE[0],
                ecolor=PALETTE[0], capsize=3)
    labels = [f"{e}" if isinstance(e, str) and e else _("profile {id}").format(id=p)
              for p, e in zip(top["profile_id"], top.get("email", [None] * n))]
    ax.set_yticks(y, labels, fontsize=9)
    money_axis(ax, currency, "x")
    ax.set_xlabel(_("Predicted CLV ({currency}), mean and {share} interval").format(
        currency=currency, share=fmt.share(credible_interval, 0)))
    ax.set_title(ngettext("Top {n} profile by predicted CLV",
                          "Top {n} profiles by predicted CLV", n).format(n=fmt.count(n)))
    return fig


def example_timeline(orders: pd.DataFrame, example: pd.Series, as_of: dt.date,
                     currency: str, credible_interval: float,
                     horizon_days: int | None = None, title: str = "", ax=None) -> Figure:
    """One profile's orders on a time line, with its expected next order date and interval.

    ``orders`` holds the profile's counted orders (``local_date``, ``net_value``);
    ``example`` its row of the profiles frame (``expected_next_order_date_*`` as dates).
    With ``horizon_days``, a next order date beyond the prediction window is not drawn
    (it would stretch the axis over years) and the interval is cut at the window's end.
    """
    fig, ax = new_axes(ax, 9, 2.1)
    dates = pd.to_datetime(pd.Series(orders["local_date"]))
    drawn = list(dates) + [pd.Timestamp(as_of)]   # the days the axis must show
    values = orders["net_value"].astype(float)
    size = 30 + 170 * (values / values.max()) if len(values) and values.max() > 0 else 40
    ax.scatter(dates, np.zeros(len(dates)), s=size, color=PALETTE[0], zorder=3,
               label=_("order (size: net value)"))
    today = pd.Timestamp(as_of)
    ax.axvline(today, color=NEUTRAL, ls="--", lw=1)
    ax.annotate(_("as of"), (today, 0.9), xycoords=("data", "axes fraction"), ha="center",
                fontsize=8, color=NEUTRAL)
    nxt = example.get("expected_next_order_date_mean")
    if nxt is not None and not pd.isna(nxt):
        low = example.get("expected_next_order_date_lower")
        high = example.get("expected_next_order_date_upper")
        nxt = pd.Timestamp(nxt)
        end = (today + pd.Timedelta(days=horizon_days) if horizon_days is not None
               else pd.Timestamp.max)
        if (low is not None and high is not None and not (pd.isna(low) or pd.isna(high))
                and pd.Timestamp(low) <= end):
            label = (_("{share} interval (to the window's end)").format(
                share=fmt.share(credible_interval, 0)) if pd.Timestamp(high) > end
                else _interval(credible_interval))
            ax.hlines(0, pd.Timestamp(low), min(pd.Timestamp(high), end), color=PALETTE[1],
                      lw=6, alpha=0.35, label=label)
            drawn += [pd.Timestamp(low), min(pd.Timestamp(high), end)]
        if nxt <= end:
            ax.scatter([nxt], [0], marker="D", s=60, color=PALETTE[1], zorder=4,
                       label=_("expected next order"))
            drawn.append(nxt)
    # The axis spans what is drawn, with a margin of 5% (at least 3 days) each side: one
    # order on the as-of day reads as a week around it, not the years matplotlib's default
    # gives a single date; date_axis widens any shorter range.
    first, last = min(drawn), max(drawn)
    margin = max(pd.Timedelta(days=3), (last - first) * 0.05)
    ax.set_xlim(first - margin, last + margin)
    ax.set_yticks([])
    ax.set_ylim(-1, 1)
    ax.set_xlabel(_("Date (account time zone)"))
    date_axis(ax)
    ax.legend(loc="center left", fontsize=8, frameon=False, bbox_to_anchor=(1.0, 0.5))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(title, loc="left", fontsize=11)
    return fig


def backtest_by_past_orders_chart(by_past_orders: pd.DataFrame, holdout_days: int,
                                  ax=None) -> Figure:
    """Mean holdout orders per customer, actual vs predicted, by repeat orders before it.

    ``by_past_orders`` is the engine's backtest table: past_repeat_orders, profiles,
    actual_mean, predicted_mean (orders on one local day count once, as in the model).
    """
    fig, ax = new_axes(ax, 9, 3.8)
    groups = by_past_orders["past_repeat_orders"].astype(str)
    x = np.arange(len(groups))
    ax.bar(x - 0.2, by_past_orders["actual_mean"], width=0.4, color=PALETTE[0],
           label=_("actual"))
    ax.bar(x + 0.2, by_past_orders["predicted_mean"], width=0.4, color=PALETTE[1],
           label=_("predicted (mean)"))
    ax.set_xticks(x, [f"{g}\n({fmt.count(n)})"
                      for g, n in zip(groups, by_past_orders["profiles"])])
    ax.set_xlabel(_("Repeat orders before the holdout (customers)"))
    ax.set_ylabel(ngettext("Orders per customer in {n} day", "Orders per customer in {n} days",
                           holdout_days).format(n=fmt.count(holdout_days)))
    ax.set_title(_("Backtest: holdout orders per customer, actual vs predicted"))
    ax.legend(frameon=False)
    return fig


def backtest_cumulative_chart(cumulative: pd.DataFrame, credible_interval: float,
                              ax=None) -> Figure:
    """Cumulative orders over time: actual vs predicted (with band), calibration and holdout."""
    fig, ax = new_axes(ax, 10, 4)
    dates = pd.to_datetime(cumulative["date"])
    ax.plot(dates, cumulative["actual"], color=PALETTE[0], lw=2, label=_("actual"))
    ax.plot(dates, cumulative["predicted_mean"], color=PALETTE[1], lw=2, ls="--",
            label=_("predicted (mean)"))
    if {"lower", "upper"} <= set(cumulative.columns):
        ax.fill_between(dates, cumulative["lower"].astype(float),
                        cumulative["upper"].astype(float), color=PALETTE[1], alpha=0.2,
                        label=_interval(credible_interval))
    holdout = cumulative["phase"].eq("holdout") if "phase" in cumulative else None
    if holdout is not None and holdout.any():
        start = dates[holdout].min()
        ax.axvspan(start, dates.max(), color=NEUTRAL, alpha=0.08)
        ax.annotate(_("holdout"), (start, 0.97), xycoords=("data", "axes fraction"),
                    va="top", fontsize=9, color=NEUTRAL, xytext=(4, 0),
                    textcoords="offset points")
    ax.set_title(_("Backtest: cumulative repeat orders, calibration then holdout"))
    ax.set_xlabel(_("Date (account time zone)"))
    ax.set_ylabel(_("Cumulative orders"))
    count_axis(ax)
    date_axis(ax)
    ax.legend(frameon=False, loc="upper left")
    return fig


def _share_axis(ax, axis: str = "y") -> None:
    from matplotlib import ticker

    formatter = ticker.FuncFormatter(lambda v, pos: fmt.share(v, 0))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def reliability_chart(diagrams: dict[str, pd.DataFrame], days: int = 30) -> Figure:
    """The reliability diagram of p_order_30d, one line per model (label -> its
    :func:`hubnb.clv.backtest.reliability` frame): predicted against observed share by
    group, the diagonal the perfectly calibrated model (the counts are in the card's
    table)."""
    fig, ax = new_axes(None, 6.5, 5.2)
    top = 0.0
    markers = "osD^v"
    for i, (label, rel) in enumerate(diagrams.items()):
        ax.plot(rel["predicted"], rel["observed"], marker=markers[i % len(markers)], lw=1.5,
                ms=5, color=PALETTE[i], label=label, alpha=0.9)
        top = max(top, float(rel["predicted"].max()), float(rel["observed"].max()))
    top = min(1.0, top * 1.08 + 0.02)
    ax.plot([0, top], [0, top], color=NEUTRAL, lw=1, ls=":", label=_("perfectly calibrated"))
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_title(_("Reliability: the chance of an order within {days} days").format(days=days))
    ax.set_xlabel(_("Predicted chance (group mean)"))
    ax.set_ylabel(_("Share that ordered"))
    _share_axis(ax, "x")
    _share_axis(ax)
    ax.legend(frameon=False, loc="lower right", fontsize=9)
    return fig


def tracking_chart(tracks: dict[str, pd.DataFrame], credible_interval: float,
                   calibration_end) -> Figure:
    """Weekly cumulative repeat orders over the holdout: actual (the first frame's) against
    each model's prediction and predictive band (label -> its
    :func:`hubnb.clv.backtest.holdout_tracking` frame)."""
    fig, ax = new_axes(None, 10, 4.2)
    start = pd.Timestamp(calibration_end)
    first = next(iter(tracks.values()))
    dates = start + pd.to_timedelta(first["day"], unit="D")
    ax.plot(dates, first["actual"], color="black", lw=2, marker="o", ms=3, label=_("actual"))
    for i, (label, tr) in enumerate(tracks.items()):
        d = start + pd.to_timedelta(tr["day"], unit="D")
        ax.plot(d, tr["predicted_mean"], color=PALETTE[i], lw=1.8, ls="--",
                label=_("{model}: predicted (mean)").format(model=label))
        ax.fill_between(d, tr["lower"].astype(float), tr["upper"].astype(float),
                        color=PALETTE[i], alpha=0.12,
                        label=_("{model}: {interval}").format(
                            model=label, interval=_interval(credible_interval)))
    ax.set_title(_("Backtest: cumulative repeat orders week by week after {day}").format(
        day=fmt.day(start.date())))
    ax.set_xlabel(_("Date (account time zone)"))
    ax.set_ylabel(_("Cumulative orders"))
    count_axis(ax)
    date_axis(ax)
    ax.legend(frameon=False, loc="upper left", fontsize=8)
    return fig


def posterior_chart(draws: dict[str, np.ndarray], credible_interval: float) -> Figure:
    """A histogram of the posterior of each global parameter, with its mean and interval."""
    n = len(draws)
    ncols = min(4, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = new_grid(3 * ncols, 2.4 * nrows, ncols=ncols, nrows=nrows)
    tail = (1 - credible_interval) / 2
    for ax, (name, values) in zip(axes.flat, draws.items()):
        flat = values.ravel()
        ax.hist(flat, bins=40, color=PALETTE[0], alpha=0.8)
        low, high = np.quantile(flat, [tail, 1 - tail])
        ax.axvline(flat.mean(), color="black", lw=1)
        ax.axvspan(low, high, color=PALETTE[1], alpha=0.15)
        ax.set_title(f"{name}: {fmt.significant(flat.mean(), 3)} "
                     f"[{fmt.significant(low, 3)}, {fmt.significant(high, 3)}]", fontsize=10)
        ax.set_yticks([])
        ax.set_xlabel(name)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(_("Posterior of the global parameters (mean, {share} interval)").format(
        share=fmt.share(credible_interval, 0)))
    return fig


def trace_rank_chart(draws: dict[str, np.ndarray]) -> Figure:
    """Per parameter: the trace of each chain, and its rank histogram (flat when mixed)."""
    n = len(draws)
    fig, axes = new_grid(11, 1.9 * n + 0.6, ncols=2, nrows=n)
    for row, (name, values) in zip(axes, draws.items()):
        trace, rank = row
        chains, count = values.shape
        ranks = pd.Series(values.ravel()).rank(method="average").to_numpy().reshape(values.shape)
        bins = np.linspace(0, chains * count, 21)
        for c in range(chains):
            color = PALETTE[c % len(PALETTE)]
            trace.plot(values[c], color=color, lw=0.6, alpha=0.8,
                       label=_("chain {n}").format(n=fmt.count(c + 1)))
            rank.hist(ranks[c], bins=bins, histtype="step", color=color, lw=1.2)
        rank.axhline(count / (len(bins) - 1), color=NEUTRAL, ls="--", lw=1)
        trace.set_ylabel(name)
        trace.set_xlabel(_("Draw"))
        rank.set_yticks([])
        rank.set_xlabel(_("Rank of draw across all chains"))
    axes[0, 0].set_title(_("Trace (chains should overlap)"))
    axes[0, 1].set_title(_("Rank histograms (should be flat)"))
    return fig


def platform_scatter(joined: pd.DataFrame, currency: str,
                     platform: str | None = None) -> Figure:
    """hubnb vs the platform's predictions, per profile: predicted CLV and churn probability.

    ``platform`` names the platform in the labels (by default "platform", translated).
    """
    platform = platform or _("platform")
    fig, axes = new_grid(11, 4.2, ncols=2)
    values = {"currency": currency, "platform": platform}
    panels = [("predicted_clv", True,
               _("Predicted CLV ({currency}): hubnb vs {platform}").format(**values),
               _("{platform} predicted CLV ({currency})").format(**values),
               _("hubnb predicted CLV ({currency})").format(**values)),
              ("churn_probability", False,
               _("Churn probability: hubnb vs {platform}").format(**values),
               _("{platform} churn probability").format(**values),
               _("hubnb churn probability").format(**values))]
    for ax, (name, is_money, title, x_label, y_label) in zip(axes[0], panels):
        x, y = (pd.to_numeric(joined[c], errors="coerce") if c in joined.columns
                else pd.Series(np.nan, index=joined.index)
                for c in (f"{name}_platform", f"{name}_hubnb"))
        ok = x.notna() & y.notna()
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        if not ok.any():
            ax.text(0.5, 0.5, _("no profile has both"), ha="center", va="center",
                    transform=ax.transAxes, color=NEUTRAL)
            continue
        ax.scatter(x[ok], y[ok], s=6, alpha=0.3, color=PALETTE[0], rasterized=True)
        top = float(max(x[ok].quantile(0.995), y[ok].quantile(0.995)))
        top = top if top > 0 else 1.0
        ax.plot([0, top], [0, top], color=NEUTRAL, ls="--", lw=1, label=_("equal"))
        ax.set_xlim(0, top * 1.02)
        ax.set_ylim(0, top * 1.02)
        ax.legend(frameon=False, loc="upper left")
        if is_money:
            money_axis(ax, currency, "x")
            money_axis(ax, currency, "y")
    return fig
