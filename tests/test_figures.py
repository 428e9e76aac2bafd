"""The figures' look: seaborn's theme kept as a matplotlib style sheet."""

import matplotlib
import pytest

from hubnb import figures


def _rc_after(apply) -> dict:
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        apply()
        rc = dict(matplotlib.rcParams)
    # seaborn's cycle holds RGB tuples (hex / 255), the sheet hex codes: the same colours
    rc["axes.prop_cycle"] = [matplotlib.colors.to_hex(c["color"]) for c in rc["axes.prop_cycle"]]
    return rc


def test_the_style_sheet_sets_what_seaborn_sets():
    # seaborn itself is the second implementation: its set_theme against the sheet, key by
    # key, from matplotlib's defaults (image.cmap apart: seaborn's "rocket" needs seaborn)
    sns = pytest.importorskip("seaborn")
    want = _rc_after(lambda: sns.set_theme(style="whitegrid", context="notebook",
                                           font="sans-serif", palette="colorblind"))
    got = _rc_after(lambda: matplotlib.style.use(figures.STYLE))
    differ = {k: (want[k], got[k]) for k in want if k != "image.cmap" and want[k] != got[k]}
    assert differ == {}
    assert figures.PALETTE == sns.color_palette("colorblind").as_hex()


def test_use_theme_keeps_hubnb_sizes_and_the_hangul_fallback():
    with matplotlib.rc_context():
        figures.use_theme()
        rc = matplotlib.rcParams
        assert list(rc["figure.figsize"]) == [9, 4] and rc["axes.titleweight"] == "bold"
        assert rc["axes.grid"] and rc["axes.edgecolor"] == ".8"       # whitegrid
        assert rc["font.family"][0] == "DejaVu Sans" and "NanumGothic" in rc["font.family"]
        assert [c["color"] for c in rc["axes.prop_cycle"]] == figures.PALETTE


# --------------------------------------------------------------------------- time axes

AS_OF = __import__("datetime").date(2026, 11, 22)


def _days(*offsets):
    import datetime as dt

    return [AS_OF - dt.timedelta(days=d) for d in offsets]


@pytest.mark.parametrize("orders", [_days(0), _days(1), _days(3, 1), _days(9, 5, 2),
                                    _days(75, 20), _days(400, 3), _days(700, 60),
                                    _days(950, 10), _days(1050, 1), _days(2000, 400, 10)],
                         ids=["one order on the as-of day", "one order the day before",
                              "a few days", "about a week", "months", "a year",
                              "two years", "two and a half years", "three years", "years"])
@pytest.mark.parametrize("next_order", [None, 2, 5000],
                         ids=["no next order", "next in 2 days", "next beyond the window"])
@pytest.mark.parametrize("locale", ["en", "ko"])
def test_example_timelines_pick_ticks_for_every_date_range(orders, next_order, locale):
    """One day, a few days or years of orders, in English or Korean: the date axis finds its ticks
    without matplotlib's "unable to pick an appropriate interval" warning, shows every
    order, the as-of day and the next order, and spans at least a few days."""
    import datetime as dt
    import io
    import warnings

    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import pandas as pd

    from hubnb.figures.clv import example_timeline

    frame = pd.DataFrame({"local_date": orders, "net_value": [20.0] * len(orders)})
    nxt = None if next_order is None else pd.Timestamp(AS_OF + dt.timedelta(days=next_order))
    example = pd.Series({"expected_next_order_date_mean": nxt,
                         "expected_next_order_date_lower": nxt,
                         "expected_next_order_date_upper": nxt})
    from hubnb import i18n

    figures.use_theme()   # as the notebooks do: the Hangul font fallback among others
    with warnings.catch_warnings(), i18n.using(locale):
        warnings.simplefilter("error")
        fig = example_timeline(frame, example, AS_OF, "USD", 0.9, 365, title="t")
        fig.savefig(io.BytesIO(), format="png")
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    shown = [mdates.date2num(pd.Timestamp(d)) for d in orders + [AS_OF]]
    if nxt is not None and next_order <= 365:
        shown.append(mdates.date2num(nxt))
    assert low < min(shown) and max(shown) < high
    assert high - low >= figures.MIN_DATE_SPAN_DAYS
    # not stretched: the margin is 5% of what is drawn, or 3 days
    assert high - low <= max(1.1 * (max(shown) - min(shown)), max(shown) - min(shown) + 6) + 1e-9
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert len(ticks) >= 2
    plt.close(fig)
