"""The cards both reports show, in the reader's language: the data-quality table reads in the
report's language although its sentences reach the card as plain text."""

import pandas as pd
import pytest

from hubnb import i18n
from hubnb.cards.common import quality_card
from hubnb.data import load_dataset
from hubnb.i18n import N_
from hubnb.messages import Message, translated
from hubnb.params import load_params
from hubnb.provenance import provenance
from hubnb.report import REPORT_TABLES, Report, read_snapshot, write_snapshot
from test_data import write

ORDERS = """order_id,profile_id,placed_at,value,signed_in
o1,a,2026-03-01T09:15:00Z,12.50,true
o1,a,2026-03-01T09:15:00Z,12.50,true
o2,b,2026-03-02T09:15:00Z,20,false
"""


@pytest.fixture
def report(tmp_path) -> Report:
    """A tiny merchant's report as ``hubnb run`` hands it to a notebook: the dataset read,
    validated and passed through the run's snapshot."""
    data = write(tmp_path / "data", orders=ORDERS)
    params_file = tmp_path / "shop.yaml"
    params_file.write_text(f"merchant: shop\ndata: {data}\ntimezone: UTC\n"
                           "as_of: 2026-03-10\nperiod: last_7_days\n")
    params = load_params(params_file)
    snapshot = write_snapshot(load_dataset(params.data), provenance(params),
                              tmp_path / "dataset.pickle")
    dataset, prov = read_snapshot(snapshot)
    return Report(params=params, data=dataset, output_dir=None, provenance=prov)


def test_the_quality_table_reads_in_the_reports_language(report):
    with i18n.using("it"):
        html = quality_card(report)._repr_html_()
        catalog = {text: i18n.gettext(text) for text in (
            "Rule", "What hubnb did", "first row kept, later repeats dropped", "ignored",
            "kept", "cancelled orders", "left out of revenue, AOV and CLV", "table absent",
            "read as an empty table")}
        repeated = i18n.gettext("repeated {key}").format(key="order_id")
    assert catalog["ignored"] == "ignorate" and repeated == "order_id ripetuto"
    for english, italian in catalog.items():
        assert italian != english and italian.replace("'", "&#39;") in html, english
    assert f"<td>orders</td><td>{repeated}</td><td class=\"num\">1</td>" in html
    for english in ("first row kept", "ignored", "cancelled orders", "table absent",
                    "repeated order_id", "left out of revenue"):
        assert english not in html


def test_the_quality_table_stays_english_in_english(report):
    html = quality_card(report)._repr_html_()
    assert "<td>repeated order_id</td>" in html and "first row kept, later repeats dropped" in html


@pytest.mark.parametrize("locale", ["it", "de", "ko"])
def test_a_sentence_that_lost_its_message_is_read_back_with_its_values(locale):
    message = Message(N_("repeated {key}"), key="asset_type + asset_id")
    with i18n.using(locale):
        assert translated(str(message)) == message.translated() != str(message)
        assert translated("not a sentence of hubnb") == "not a sentence of hubnb"
        assert translated("") == "" and translated(None) is None


def test_a_reports_snapshot_holds_only_its_tables_and_says_what_the_others_were(tmp_path):
    """`hubnb run` gives each notebook only the tables it reads: the CLV kernel does not hold
    the hub events. The others come back empty with their dtypes, and what the dataset had
    (tables present, their columns, the data-quality rows) is unchanged."""
    data = write(tmp_path / "data", orders=ORDERS,
                 hub_events="event_id,profile_id,occurred_at,event_type\n"
                            "e1,a,2026-03-01T09:00:00Z,hub_opened\n",
                 order_lines="order_id,line_id,product_id,line_total\no1,1,p1,12.50\n")
    params_file = tmp_path / "shop.yaml"
    params_file.write_text(f"merchant: shop\ndata: {data}\ntimezone: UTC\n"
                           "as_of: 2026-03-10\nperiod: last_7_days\n")
    params = load_params(params_file)
    full = load_dataset(params.data)
    assert len(full.hub_events) and len(full.order_lines)
    snapshot = write_snapshot(full, provenance(params), tmp_path / "clv.pickle",
                              REPORT_TABLES["clv"])
    clv, _ = read_snapshot(snapshot)
    for name, frame in full.tables.items():
        kept = clv.tables[name]
        assert list(kept.dtypes.astype(str)) == list(frame.dtypes.astype(str)), name
        if name in REPORT_TABLES["clv"]:
            pd.testing.assert_frame_equal(kept, frame)
        else:
            assert len(kept) == 0, name
    assert clv.present == full.present and clv.columns_present == full.columns_present
    pd.testing.assert_frame_equal(clv.quality, full.quality)
    hub, _ = read_snapshot(write_snapshot(full, provenance(params), tmp_path / "hub.pickle",
                                          REPORT_TABLES["customer_hub"]))
    assert len(hub.hub_events) == len(full.hub_events) and len(hub.refunds) == 0
