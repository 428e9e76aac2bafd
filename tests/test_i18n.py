"""Reports in the merchant's language: catalogs complete, numbers written the locale's way,
the language chosen by params or --locale."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from hubnb import format as fmt
from hubnb import i18n
from test_run import _without_varying

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "hubnb" / "locale"
PLACEHOLDER = re.compile(r"\{[a-z_]+\}|%\([a-z_]+\)s")


def catalog(locale):
    with open(LOCALE_DIR / locale / "LC_MESSAGES" / "hubnb.po", "rb") as handle:
        return read_po(handle, locale=locale)


def template():
    with open(LOCALE_DIR / "hubnb.pot", "rb") as handle:
        return read_po(handle)


def test_the_template_holds_every_message_of_the_code(tmp_path):
    """The committed .pot is current: extracting again finds no message it lacks."""
    fresh = tmp_path / "fresh.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    str(ROOT / "babel.cfg"), "-o", str(fresh), "--no-wrap", str(ROOT)],
                   check=True, capture_output=True, cwd=ROOT)
    with open(fresh, "rb") as handle:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    committed = {m.id if isinstance(m.id, str) else m.id[0] for m in template() if m.id}
    assert extracted - committed == set(), "run `make catalog` and translate the new messages"


@pytest.mark.parametrize("locale", ["it", "de", "ko"])
def test_every_message_is_translated_in_every_language(locale):
    po = catalog(locale)
    wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in template() if m.id}
    entries = {m.id if isinstance(m.id, str) else m.id[0]: m for m in po if m.id}
    assert wanted - set(entries) == set(), "missing entries: run `make catalog`"
    untranslated, fuzzy, broken = [], [], []
    for key in sorted(wanted):
        m = entries[key]
        strings = m.string if isinstance(m.string, (list, tuple)) else [m.string]
        if not all(s and s.strip() for s in strings):
            untranslated.append(key)
        if m.fuzzy:
            fuzzy.append(key)
        ids = m.id if isinstance(m.id, (list, tuple)) else [m.id]
        expected = set(PLACEHOLDER.findall(" ".join(ids)))
        for s in strings:
            if s and set(PLACEHOLDER.findall(s)) != expected:
                broken.append((key, s))
    assert untranslated == [] and fuzzy == [] and broken == []


@pytest.mark.parametrize("locale, money, krw, share, change, day, period", [
    ("en", "€1,234.50", "₩1,235", "12.3%", "+12.8%", "Oct 5, 2026", "Oct 5\u2009–\u20097, 2026"),
    ("it", "1.234,50\xa0€", "1.235\xa0KRW", "12,3%", "+12,8%", "5 ott 2026", "05–07 ott 2026"),
    ("de", "1.234,50\xa0€", "1.235\xa0₩", "12,3\xa0%", "+12,8\xa0%", "05.10.2026",
     "5.–7. Okt. 2026"),
    ("ko", "€1,234.50", "₩1,235", "12.3%", "+12.8%", "2026. 10. 5.", "2026년 10월 5일~7일"),
])
def test_numbers_money_and_dates_as_each_locale_writes_them(locale, money, krw, share, change,
                                                           day, period):
    with i18n.using(locale):
        assert fmt.money(1234.5, "EUR") == money          # decimal comma, symbol after (it, de)
        assert fmt.money(1234.6, "KRW") == krw            # the won has no minor unit
        assert fmt.share(0.1234) == share
        assert fmt.change(12.84) == change
        assert fmt.day("2026-10-05") == day
        assert fmt.date_range("2026-10-05", "2026-10-07") == period


def test_an_unknown_locale_names_the_key_and_the_languages(tmp_path):
    from hubnb.errors import ParamsError
    from hubnb.params import parse_params

    with pytest.raises(ParamsError, match=r"locale: 'fr' is not a supported language; "
                                          r"use one of en, it, de, ko"):
        parse_params({"merchant": "x", "data": ".", "timezone": "UTC", "locale": "fr"})
    with pytest.raises(ParamsError, match=r"--locale: 'pt'"):
        i18n.check("pt", "--locale")


# --------------------------------------------------------------------------- whole reports

RUNS = {"en": "USD", "it": "EUR", "de": "EUR", "ko": "KRW"}
#: What a reviewer reads on the Customer Hub report's first tile, per language (the help
#: pages' terms).
TOTAL_ACCOUNTS = {"en": "Total accounts", "it": "Totale account",
                  "de": "Kundenkonten insgesamt", "ko": "총 계정"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Both notebooks of a small demo merchant, once per language (--locale), currency
    per language (KRW for Korean: no minor unit)."""
    import yaml

    from hubnb.demo import generate_demo_data
    from hubnb.run import run

    root = tmp_path_factory.mktemp("locales")
    generate_demo_data(root / "data", 600, 5)
    outputs = {}
    for locale, currency in RUNS.items():
        params = root / f"shop_{locale}.yaml"
        params.write_text(yaml.safe_dump({
            "merchant": "shop", "data": "./data", "timezone": "America/New_York",
            "currency": currency, "as_of": "2026-11-22", "hub": {"launched_on": "2025-03-01"},
            "clv": {"chains": 2, "draws": 150, "tune": 150, "seed": 4, "force": True,
                    "model": "mbg_nbd", "backtest_days": 60}}))
        outputs[locale] = run(params, out_root=root / locale, locale=locale, log=lambda m: None)
    return outputs


@pytest.mark.parametrize("locale", list(RUNS))
def test_each_language_report_holds_only_the_report(reports, locale):
    """No warning, error, stderr or path of the machine in either report, in any language
    (tests/report_checks.py)."""
    from report_checks import own_warnings, report_problems

    assert report_problems(reports[locale], [reports[locale].parent.parent]) == []
    assert own_warnings(reports[locale]) == []


@pytest.mark.parametrize("locale", list(RUNS))
def test_each_language_runs_both_notebooks_and_reads_in_that_language(reports, locale):
    folder = reports[locale]
    hub = (folder / "customer_hub.html").read_text()
    clv = (folder / "clv.html").read_text()
    assert f'<html lang="{locale}">' in hub and f'<html lang="{locale}">' in clv
    assert TOTAL_ACCOUNTS[locale] in hub
    index = (folder.parent / "index.html").read_text()
    assert f'<html lang="{locale}">' in index
    # money in the merchant's currency, written the locale's way, in the report's header
    metrics = json_of(folder / "metrics.json")
    revenue = metrics["customer_hub"]["revenue_generated"]["value"]
    with i18n.using(locale):
        assert fmt.money(revenue, RUNS[locale]) in hub
        assert fmt.day(metrics["period"]["end"]) in hub
    if locale != "en":
        assert "Total accounts" not in hub and "Expected next order dates" not in clv


def test_metrics_and_csv_files_do_not_depend_on_the_language(reports):
    en = reports["en"]
    for locale in ("it", "de", "ko"):
        other = reports[locale]
        a, b = _without_varying(json_of(en / "metrics.json")), _without_varying(json_of(other / "metrics.json"))
        a.pop("currency"), b.pop("currency")
        a["provenance"].pop("params_file"), b["provenance"].pop("params_file")
        a["provenance"].pop("params_fingerprint"), b["provenance"].pop("params_fingerprint")
        a["provenance"].pop("params"), b["provenance"].pop("params")
        assert a == b, locale
        for name in ("clv_profiles.csv", "reengage.csv"):
            assert (en / name).read_bytes() == (other / name).read_bytes(), (locale, name)


def json_of(path):
    import json

    return json.loads(path.read_text())


# --------------------------------------------------------------------------- Hangul pixels

def repeated_shape_share(png: bytes) -> float:
    """The share of the glyph-sized dark blobs of an image that have its most common shape.

    Missing glyphs are drawn as one and the same box, so a title of boxes is nearly all one
    shape (near 1); real Hangul syllables differ from each other (well under 0.5).
    """
    import io
    from collections import Counter

    import numpy as np
    from PIL import Image
    from scipy import ndimage

    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    labels, _n = ndimage.label(grey < 128)
    shapes = [(labels[box] == i).shape
              for i, box in enumerate(ndimage.find_objects(labels), start=1)
              if (labels[box] == i).sum() >= 12]
    if not shapes:
        return 0.0
    return Counter(shapes).most_common(1)[0][1] / len(shapes)


def title_png(text: str, families: list[str]) -> bytes:
    """``text`` drawn as a bold 13 pt figure title with ``families`` (matplotlib)."""
    import io
    import warnings

    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 0.6), dpi=100)
    fig.text(0.01, 0.3, text, fontsize=13, fontweight="bold", family=families)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the tofu rendering warns, on purpose
        fig.savefig(buffer, format="png")
    return buffer.getvalue()


def test_the_korean_report_shows_hangul_in_figure_titles_not_empty_boxes(reports, tmp_path,
                                                                         browser):
    from hubnb.figures import cjk_fonts

    with i18n.using("ko"):
        title = i18n.gettext("Expected next order dates, by week")
    assert re.search("[\uac00-\ud7a3]", title), "the Korean catalog translates the title"
    report = reports["ko"] / "clv.html"
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.goto(report.as_uri())
        image = page.locator(f'img[alt="{title}"]')
        assert image.count() == 1
        image.scroll_into_view_if_needed()
        shot = image.screenshot()
    finally:
        page.close()
    (tmp_path / "ko_figure.png").write_bytes(shot)
    from PIL import Image
    import io

    figure = Image.open(io.BytesIO(shot))
    band = figure.crop((0, 0, figure.width, int(figure.height * 0.12)))
    buffer = io.BytesIO()
    band.save(buffer, format="PNG")
    seen = repeated_shape_share(buffer.getvalue())
    hangul = repeated_shape_share(title_png(title, ["DejaVu Sans", *cjk_fonts()]))
    tofu = repeated_shape_share(title_png(title, ["DejaVu Sans"]))
    assert tofu > 0.8 and hangul < 0.5, (tofu, hangul)   # the measure tells them apart
    assert seen < 0.5, (seen, hangul, tofu)
