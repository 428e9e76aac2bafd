"""The language of everything a reviewer reads: gettext catalogs through Babel.

Messages are marked with :func:`_` (``_("Total accounts")``, with ``{name}`` placeholders
filled by ``.format`` after translation) in the cards, figures and report code, with
``{{ _("...") }}`` in the templates, and the notebooks' markdown cells are messages too.
``pybabel extract`` gathers them into ``hubnb/locale/hubnb.pot``; each language has its
``hubnb/locale/<locale>/LC_MESSAGES/hubnb.po``, compiled to ``.mo`` at build time (``make
env``, or ``pip install``). :func:`activate` chooses the language for what follows (the
report's ``locale`` parameter); :mod:`hubnb.format` writes numbers, money and dates the
way that locale does. English is the source language: it needs no catalog.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from importlib.resources import files

from babel.support import NullTranslations, Translations

#: The report languages hubnb ships.
LOCALES = ("en", "it", "de", "ko")
DEFAULT = "en"
DOMAIN = "hubnb"
LOCALE_DIR = files("hubnb") / "locale"

_current: ContextVar[str] = ContextVar("hubnb_locale", default=DEFAULT)


def check(locale: str, key: str = "locale") -> str:
    """``locale`` when hubnb ships it; otherwise a ParamsError naming ``key``."""
    if locale not in LOCALES:
        from .errors import ParamsError

        raise ParamsError(key, f"{locale!r} is not a supported language; use one of "
                               f"{', '.join(LOCALES)}")
    return locale


def activate(locale: str) -> str:
    """Make ``locale`` the language of the messages and formats that follow."""
    _current.set(check(locale))
    return locale


@contextmanager
def using(locale: str):
    """``with using("it"):`` the messages and formats inside are Italian."""
    token = _current.set(check(locale))
    try:
        yield locale
    finally:
        _current.reset(token)


def current() -> str:
    """The active language (``en`` until :func:`activate`)."""
    return _current.get()


@lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of ``locale`` (none for English, the source language)."""
    if locale == DEFAULT:
        return NullTranslations()
    catalog = Translations.load(str(LOCALE_DIR), [locale], DOMAIN)
    if not isinstance(catalog, Translations):
        raise RuntimeError(f"no compiled catalog for {locale!r} in {LOCALE_DIR}: run "
                           "`pybabel compile -d hubnb/locale -D hubnb` (make env does)")
    return catalog


def gettext(message: str) -> str:
    """``message`` in the active language."""
    return translations(current()).ugettext(message) if message else message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message for ``n``, in the active language."""
    return translations(current()).ungettext(singular, plural, n)


_ = gettext


def extract_notebook(fileobj, keywords, comment_tags, options):
    """Babel extractor: every markdown cell of a notebook is one message (``babel.cfg``)."""
    import json

    notebook = json.load(fileobj)
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else source
            if text.strip():
                yield number, "gettext", text, [f"markdown cell {number}"]


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it now (translated on display)."""
    return message
