"""hubnb.render: one autoescaping environment, one card shape, and no HTML built elsewhere."""

import re
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from hubnb.render import ENV, Card, Change, Table, Tile, render

PACKAGE = Path(__file__).resolve().parent.parent / "hubnb"


def test_every_value_is_escaped():
    hostile = "<script>alert('x')</script> & co"
    card = (Card().text(hostile).notice(hostile, "warning", title=hostile, items=[hostile])
            .key_values([(hostile, hostile)], hostile)
            .table(pd.DataFrame({hostile: [hostile]}), hostile)
            .tiles([Tile(hostile, hostile, Change("up", hostile, hostile), hostile)]))
    html = card.html()
    assert "<script>" not in html
    # 1 text + notice (title, text, item) + key-values (caption, key, value)
    # + table (caption, header, cell) + tile (label, value, change, comparison, footnote)
    assert html.count("&lt;script&gt;") == 1 + 3 + 3 + 3 + 5
    assert ENV.autoescape("card.html.j2") and ENV.autoescape("index.html.j2")


def test_table_aligns_numbers_right_and_draws_bars_to_scale():
    frame = pd.DataFrame({"Product": ["A", "B"], "Revenue": ["$30.00", "$7.50"],
                          "Orders": ["1,200", "—"]})
    table = Table.from_frame(frame, bars="Revenue", bar_values=[30.0, 7.5])
    assert table.numeric == (False, True, True)
    assert table.bar_widths == (100.0, 25.0)          # 7.5 / 30
    html = render("card.html.j2", card=Card([table]))
    assert 'style="width: 25.0%"' in html and '<td class="num">1,200</td>' in html


def test_figures_are_inline_pngs_with_alt_text():
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    html = Card().figure(fig, "A line", collapsed="Open me").html()
    assert re.search(r'<img alt="A line" src="data:image/png;base64,[A-Za-z0-9+/=]{200,}">', html)
    assert "<details><summary>Open me</summary>" in html


def test_tiles_show_the_direction_of_a_change():
    html = Card().tiles([Tile("Up", "1", Change("up", "+5.0%", "vs 0.95")),
                         Tile("Down", "1", Change("down", "-5.0%", "vs 1.05")),
                         Tile("None", "1", Change("none", comparison="no comparison"))]).html()
    assert '<span class="hubnb-change up">▲ +5.0%</span>' in html
    assert '<span class="hubnb-change down">▼ -5.0%</span>' in html
    assert "no comparison" in html and html.count("hubnb-change") == 2


def test_no_module_builds_html_from_strings_or_escapes_by_hand():
    tag = re.compile(r"""["'][^"'\n]*<(div|span|table|tr|td|th|p|ul|li|img|h\d|a|nav|details)\b""")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if "html.escape" in text or re.search(r"^import html$", text, re.M) or tag.search(text):
            offenders.append(path.relative_to(PACKAGE).as_posix())
    assert offenders == []
