"""Sentences that keep their values: English in metrics.json, the reader's language in a
report.

A :class:`Message` is marked for the catalog with :func:`hubnb.i18n.N_` and translated only
when shown, its values written by :mod:`hubnb.format` in the active locale. It sits above
both :mod:`hubnb.i18n` (the catalogs) and :mod:`hubnb.format` (the locale's number and date
styles), so neither of those imports the other.
"""

from __future__ import annotations

from . import format as fmt
from .i18n import gettext


class Message(str):
    """An English sentence (what metrics.json keeps) that remembers its message and values,
    so a report can show it in its own language (:meth:`translated`).

    ``Message(N_("{n} customers have a counted order"), n=120)`` reads "120 customers have a
    counted order"; ``.translated()`` is the catalog's sentence with the values written by
    :mod:`hubnb.format` (counts grouped, dates in the locale's style).
    """

    def __new__(cls, template: str, **values):
        self = super().__new__(cls, template.format(**values))
        self.template, self.values = template, values
        return self

    def __reduce__(self):
        return _message, (self.template, self.values)

    def translated(self) -> str:
        def shown(value):
            if isinstance(value, bool) or isinstance(value, str):
                return value
            if isinstance(value, int):
                return fmt.count(value)
            if isinstance(value, float):
                text = repr(value)
                decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
                return fmt.number(value, min(decimals, 3))
            if hasattr(value, "isoformat"):
                return fmt.day(value)
            return str(value)

        return gettext(self.template).format(**{k: shown(v) for k, v in self.values.items()})


def _message(template, values):
    return Message(template, **values)


def translated(text: str) -> str:
    """A :class:`Message` in the active language; any other text as it is."""
    return text.translated() if isinstance(text, Message) else text
