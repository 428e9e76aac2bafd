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
