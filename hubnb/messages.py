"""Sentences that keep their values: English in metrics.json, the reader's language in a
report.

A :class:`Message` is marked for the catalog with :func:`hubnb.i18n.N_` and translated only
when shown, its values written by :mod:`hubnb.format` in the active locale. It sits above
both :mod:`hubnb.i18n` (the catalogs) and :mod:`hubnb.format` (the locale's number and date
styles), so neither of those imports the other.
"""

from __future__ import annotations

import re
from functools import lru_cache
from string import Formatter

from . import format as fmt
from .i18n import DEFAULT, current, gettext, translations


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
    """A :class:`Message` in the active language, also when only its English sentence is
    left; any other text as it is.

    A frame's column of Messages loses them: pandas (3) stores text as its ``str`` dtype,
    which keeps the English sentences only (the data-quality table, the segments' notes).
    Such a sentence is looked up in the catalog as it is, then against the catalog's
    templates (``repeated {key}`` reads ``repeated profile_id`` back as ``key=profile_id``)
    and written with the values it held.
    """
    if isinstance(text, Message):
        return text.translated()
    if not isinstance(text, str) or not text or current() == DEFAULT:
        return text
    found = gettext(text)
    if found != text:
        return found
    for pattern, template in _templates(current()):
        match = pattern.fullmatch(text)
        if match:
            return Message(template, **match.groupdict()).translated()
    return text


@lru_cache(maxsize=None)
def _templates(locale: str) -> list[tuple[re.Pattern, str]]:
    """The catalog's messages with ``{name}`` placeholders, as patterns that read a sentence
    written from them back into its values; the most specific (most literal text) first."""
    found = []
    for msgid in translations(locale)._catalog:   # the compiled catalog's messages
        if not isinstance(msgid, str) or "{" not in msgid:
            continue
        try:
            parts = list(Formatter().parse(msgid))
        except ValueError:
            continue
        names, regex, literal = set(), "", ""
        for text, name, spec, conversion in parts:
            regex += re.escape(text)
            literal += text
            if name is None:
                continue
            if not name.isidentifier() or spec or conversion:
                break
            regex += f"(?P={name})" if name in names else f"(?P<{name}>.+?)"
            names.add(name)
        else:
            if names and sum(c.isalpha() for c in literal) >= 3:
                found.append((len(literal), msgid, re.compile(regex, re.DOTALL)))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [(pattern, msgid) for _length, msgid, pattern in found]
