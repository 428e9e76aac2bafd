"""The render layer: every piece of HTML hubnb shows comes from a Jinja2 template here.

One autoescaping environment (:data:`ENV`) loads the templates of ``hubnb/templates``; no
module builds HTML from strings and none escapes by hand. A dashboard card is a
:class:`Card`: a list of blocks (a paragraph, a notice, tiles, a key-value table, a table,
a figure, a heading, a list) that Jupyter shows as the cell's output through
``_repr_html_``. Both dashboards return cards of this one shape (:mod:`hubnb.cards`).
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from importlib.resources import files

import jinja2
import pandas as pd

from . import format as fmt
from . import i18n

TEMPLATES = files("hubnb") / "templates"

#: The one Jinja2 environment: HTML and XML templates are autoescaped; ``_()`` in a
#: template translates into the active report language (:mod:`hubnb.i18n`).
ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=jinja2.select_autoescape(["html", "j2", "xml"]),
    trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    extensions=["jinja2.ext.i18n"])
ENV.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)


def render(template: str, **context) -> str:
    """Render ``template`` (a file of ``hubnb/templates``) with ``context``."""
    return ENV.get_template(template).render(**context)


def stylesheet() -> str:
    """hubnb's CSS, the one place that says how cards look."""
    return (TEMPLATES / "hubnb.css").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- blocks

@dataclass(frozen=True)
class Text:
    """A paragraph."""

    text: str
    template = "blocks/text.html.j2"


@dataclass(frozen=True)
class Heading:
    """A heading inside a card (level 4 by default: below the notebook's sections)."""

    text: str
    level: int = 4
    template = "blocks/heading.html.j2"


@dataclass(frozen=True)
class Notice:
    """A coloured box: ``kind`` info, warning or error; an optional bold title and a list."""

    text: str = ""
    kind: str = "info"
    title: str = ""
    items: tuple[str, ...] = ()
    after: str = ""
    template = "blocks/notice.html.j2"


@dataclass(frozen=True)
class Items:
    """A bulleted list, with an optional sentence before it."""

    items: tuple[str, ...]
    lead: str = ""
    template = "blocks/items.html.j2"


@dataclass(frozen=True)
class KeyValues:
    """A two-column table of labels and values."""

    rows: tuple[tuple[str, str], ...]
    title: str = ""
    template = "blocks/key_values.html.j2"


@dataclass(frozen=True)
class Change:
    """A tile's comparison: the change (``up``, ``down``, ``flat`` or ``none``) and its text."""

    direction: str
    change: str = ""
    comparison: str = ""


@dataclass(frozen=True)
class Tile:
    """One number of an overview: label, value, comparison and a footnote."""

    label: str
    value: str
    change: Change
    footnote: str = ""


@dataclass(frozen=True)
class Tiles:
    """A row of tiles."""

    tiles: tuple[Tile, ...]
    columns: int = 4
    template = "blocks/tiles.html.j2"


_NUMERIC = re.compile(r"^[-+−]?\D{0,4}\s?[\d.,]+\s?(%|\D{0,4})$")


@dataclass(frozen=True)
class Table:
    """A table of text (values already formatted by :mod:`hubnb.format`).

    Columns whose every value reads as a number are right aligned. ``bars`` names a column
    drawn with a bar proportional to ``bar_values`` (e.g. revenue per product).
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    numeric: tuple[bool, ...] = ()
    bars: str = ""
    bar_widths: tuple[float, ...] = ()
    template = "blocks/table.html.j2"

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, caption: str = "", bars: str = "",
                   bar_values=None) -> "Table":
        """A table from a frame of display values; missing values read as a dash."""
        text = frame.astype(object).where(frame.notna(), fmt.DASH).astype(str)
        rows = tuple(tuple(r) for r in text.itertuples(index=False, name=None))
        numeric = tuple(bool(len(text)) and all(_NUMERIC.match(v) or v == fmt.DASH
                                                for v in text[c]) for c in text.columns)
        widths = ()
        if bars and bar_values is not None:
            values = pd.Series(bar_values, dtype="float64").fillna(0).clip(lower=0)
            top = values.max()
            widths = tuple((100 * values / top).round(1)) if top > 0 else (0.0,) * len(values)
        return cls(columns=tuple(map(str, frame.columns)), rows=rows, caption=caption,
                   numeric=numeric, bars=bars, bar_widths=widths)


@dataclass(frozen=True)
class Figure:
    """A matplotlib figure as an inline PNG (the report stays one file), with its alt text.

    With ``collapsed`` set, the figure sits closed under that summary until clicked.
    """

    png_base64: str
    alt: str
    collapsed: str = ""
    template = "blocks/figure.html.j2"

    @classmethod
    def of(cls, fig, alt: str, collapsed: str = "") -> "Figure":
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        return cls(base64.b64encode(buffer.getvalue()).decode("ascii"), alt, collapsed)


# --------------------------------------------------------------------------- the card

@dataclass
class Card:
    """A dashboard card: blocks shown in order as the notebook cell's output."""

    blocks: list = field(default_factory=list)

    def add(self, block) -> "Card":
        self.blocks.append(block)
        return self

    def text(self, sentence: str) -> "Card":
        return self.add(Text(sentence))

    def heading(self, title: str, level: int = 4) -> "Card":
        return self.add(Heading(title, level))

    def notice(self, text: str = "", kind: str = "info", title: str = "", items=(),
               after: str = "") -> "Card":
        return self.add(Notice(text, kind, title, tuple(items), after))

    def items(self, items, lead: str = "") -> "Card":
        return self.add(Items(tuple(items), lead))

    def key_values(self, rows, title: str = "") -> "Card":
        return self.add(KeyValues(tuple((str(k), str(v)) for k, v in rows), title))

    def tiles(self, tiles, columns: int = 4) -> "Card":
        return self.add(Tiles(tuple(tiles), columns))

    def table(self, frame: pd.DataFrame, caption: str = "", **bars) -> "Card":
        return self.add(Table.from_frame(frame, caption, **bars))

    def figure(self, fig, alt: str, collapsed: str = "") -> "Card":
        return self.add(Figure.of(fig, alt, collapsed))

    def html(self) -> str:
        """The card's HTML."""
        return render("card.html.j2", card=self)

    def _repr_html_(self) -> str:
        return self.html()

    def __iter__(self):
        return iter(self.blocks)
