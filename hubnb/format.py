"""How numbers, money and dates are written in every report, table, figure and the index.

One module for every displayed value, built on Babel (CLDR), so that each is written one way
across the product: money in the merchant's currency with its symbol, percentages, counts,
one date style (``Oct 5, 2026``) and period labels (``Oct 5 – 7, 2026``). Every function
takes a ``locale`` (default ``"en"``); missing values (None, NaN, NaT) are written as an em
dash. ``locale`` None means the active report language (:func:`hubnb.i18n.activate`).
metrics.json and the CSV files never go through this module: they keep the unrounded
numbers and ISO dates (rounding is for display only).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from functools import lru_cache

import pandas as pd
from babel import Locale
from babel.dates import format_date, format_interval
from babel.numbers import format_currency, format_decimal, parse_pattern

from .i18n import current, ngettext

#: What a missing value reads as.
DASH = "—"


def missing(value) -> bool:
    """True for None, NaN and NaT (the values written as :data:`DASH`)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@lru_cache(maxsize=64)
def _money_pattern(locale: str, decimals: int):
    pattern = copy.copy(parse_pattern(Locale.parse(locale).currency_formats["standard"]))
    pattern.frac_prec = (decimals, decimals)
    return pattern


def money(value, currency: str, decimals: int | None = None, locale: str | None = None) -> str:
    """``$1,234.50`` style text for an amount in major units of ``currency``.

    ``decimals`` None uses the currency's own minor units (2 for USD and EUR, 0 for KRW and
    JPY); a number forces that many (e.g. 0 for totals and axis ticks).
    """
    locale = locale or current()
    if missing(value):
        return DASH
    if decimals is None:
        return format_currency(float(value), currency, locale=locale)
    return _money_pattern(locale, decimals).apply(float(value), Locale.parse(locale),
                                                  currency=currency, currency_digits=False)


def number(value, decimals: int = 0, locale: str | None = None) -> str:
    """A number with grouping and exactly ``decimals`` decimals: ``1,234.5``."""
    locale = locale or current()
    if missing(value):
        return DASH
    frac = "0" * decimals
    return format_decimal(float(value), format="#,##0" + (f".{frac}" if decimals else ""),
                          locale=locale)


def count(value, locale: str | None = None) -> str:
    """A whole number with grouping: ``12,345``."""
    return number(value, 0, locale)


def share(value, decimals: int = 1, locale: str | None = None) -> str:
    """A share (0.123) as a percentage the locale's way: ``12.3%`` (``12,3 %`` in German)."""
    locale = locale or current()
    if missing(value):
        return DASH
    return _percent_pattern(locale, decimals).apply(float(value), Locale.parse(locale))


@lru_cache(maxsize=64)
def _percent_pattern(locale: str, decimals: int):
    pattern = copy.copy(parse_pattern(Locale.parse(locale).percent_formats[None]))
    pattern.frac_prec = (decimals, decimals)
    return pattern


def change(pct, decimals: int = 1, locale: str | None = None) -> str:
    """A percent change (already in percent) with its sign: ``+12.3%``, ``-4.0%``."""
    locale = locale or current()
    if missing(pct):
        return DASH
    sign = {"up": "+", "down": "-", "flat": ""}[direction(pct, decimals)]
    return sign + share(abs(float(pct)) / 100, decimals, locale)


def direction(pct, decimals: int = 1) -> str:
    """``up``, ``down`` or ``flat``: the change as shown, so one that reads 0.0% is flat
    (its colour and sign follow the rounded number, not the unrounded one)."""
    shown = round(float(pct), decimals)
    return "up" if shown > 0 else "down" if shown < 0 else "flat"


def significant(value, digits: int = 4, locale: str | None = None) -> str:
    """A model parameter to ``digits`` significant digits (``0.2431``, ``6.183``)."""
    locale = locale or current()
    if missing(value):
        return DASH
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return number(value, 0, locale)
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    return number(value, decimals, locale)


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def day(value, locale: str | None = None) -> str:
    """The product's one date style: ``Oct 5, 2026`` (the locale's medium date)."""
    locale = locale or current()
    if missing(value):
        return DASH
    return format_date(_as_date(value), "medium", locale=locale)


def date_range(start, end, locale: str | None = None) -> str:
    """``Oct 5, 2026``, ``Oct 5 – 7, 2026``, ``Sep 28 – Oct 2, 2026``."""
    locale = locale or current()
    start, end = _as_date(start), _as_date(end)
    if start == end:
        return day(start, locale)
    return format_interval(start, end, "yMMMd", locale=locale)


def period(start, end, locale: str | None = None) -> str:
    """A period with its length: ``Oct 24 – Nov 22, 2026 (30 days)``."""
    locale = locale or current()
    days = (_as_date(end) - _as_date(start)).days + 1
    length = ngettext("{n} day", "{n} days", days).format(n=count(days, locale))
    return f"{date_range(start, end, locale)} ({length})"
