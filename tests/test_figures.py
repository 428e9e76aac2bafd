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
