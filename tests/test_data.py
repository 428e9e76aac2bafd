"""The data contract: each rule for imperfect data and each error, on tiny datasets."""

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hubnb.data import load_dataset
from hubnb.errors import DataError

PROFILES = """profile_id,created_at,account_created_at,email
a,2026-01-01T00:00:00Z,2026-02-01T10:00:00-05:00,a@example.com
b,2026-01-02T00:00:00Z,,b@example.com
"""
ORDERS = """order_id,profile_id,placed_at,value,source_name,is_subscription,signed_in,cancelled_at
o1,a,2026-03-01T09:15:00+01:00,12.50,web,false,true,
o2,b,2026-03-02T09:15:00Z,20,pos,true,false,2026-03-03T00:00:00Z
"""


def write(folder, **tables):
    folder.mkdir(parents=True, exist_ok=True)
    tables.setdefault("profiles", PROFILES)
    tables.setdefault("orders", ORDERS)
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(text)
    return folder


def rule_rows(ds, table, rule):
    q = ds.quality
    hit = q[(q.table == table) & (q.rule == rule)]
    assert len(hit) == 1, f"no quality row {table}/{rule}"
    return int(hit.rows.iloc[0])


def test_reads_types_and_defaults(tmp_path):
    ds = load_dataset(write(tmp_path / "m"))
    o = ds.orders
    assert str(o.placed_at.dtype).endswith("UTC]")
    # 09:15 at +01:00 is 08:15 UTC
    assert o.placed_at.iloc[0] == pd.Timestamp("2026-03-01T08:15:00Z")
    assert o.value.tolist() == [12.5, 20.0]
    assert o.signed_in.tolist() == [True, False]
    assert o.is_subscription.tolist() == [False, True]
    assert o.cancelled_at.isna().tolist() == [True, False]
    assert ds.profiles.account_created_at.iloc[0] == pd.Timestamp("2026-02-01T15:00:00Z")
    # absent optional tables are empty, and the report says so
    assert ds.hub_events.empty and not ds.present["hub_events"]
    assert rule_rows(ds, "hub_events", "table absent") == 0


def test_default_source_name_and_quantity(tmp_path):
    orders = "order_id,profile_id,placed_at,value,signed_in\no1,a,2026-03-01T09:15:00Z,5,false\n"
    lines = "order_id,line_id,product_id,line_total\no1,1,P1,5\n"
    ds = load_dataset(write(tmp_path / "m", orders=orders, order_lines=lines))
    assert ds.orders.source_name.tolist() == ["web"]
    assert ds.order_lines.quantity.tolist() == [1]
    assert not ds.has_added_from_hub


def test_repeated_keys_first_row_wins_and_is_counted(tmp_path):
    orders = ORDERS + "o1,b,2026-03-05T09:15:00Z,99,web,false,false,\n"
    events = ("event_id,profile_id,occurred_at,event_type\n"
              "e1,a,2026-03-01T09:00:00Z,hub_opened\n"
              "e1,a,2026-03-02T09:00:00Z,order_tracked\n"
              "e2,a,2026-03-02T09:00:00Z,order_tracked\n")
    lines = ("order_id,line_id,product_id,line_total,added_from_hub\n"
             "o1,1,P1,10,true\no1,1,P2,99,false\no1,2,P1,2.5,\no2,1,P1,20,false\n")
    refunds = ("refund_id,order_id,refunded_at,amount\n"
               "r1,o1,2026-03-04T00:00:00Z,2\nr1,o1,2026-03-05T00:00:00Z,3\n")
    ds = load_dataset(write(tmp_path / "m", orders=orders, hub_events=events,
                            order_lines=lines, refunds=refunds))
    assert ds.orders.set_index("order_id").value["o1"] == 12.5      # first row kept
    assert ds.hub_events.event_type.tolist() == ["hub_opened", "order_tracked"]
    assert ds.order_lines.product_id.tolist() == ["P1", "P1", "P1"]  # (o1,1) kept once
    flags = ds.order_lines.added_from_hub
    assert flags.isna().tolist() == [False, True, False]   # empty cell: unknown, not False
    assert (flags.iloc[0], flags.iloc[2]) == (True, False)
    assert ds.refunds.amount.tolist() == [2.0]
    assert rule_rows(ds, "orders", "repeated order_id") == 1
    assert rule_rows(ds, "hub_events", "repeated event_id") == 1
    assert rule_rows(ds, "order_lines", "repeated order_id + line_id") == 1
    assert rule_rows(ds, "refunds", "repeated refund_id") == 1


def test_lines_and_refunds_of_unknown_orders_are_ignored_and_counted(tmp_path):
    lines = "order_id,line_id,product_id,line_total\no1,1,P1,5\nzz,1,P1,7\nzz,2,P2,1\n"
    refunds = "refund_id,order_id,refunded_at,amount\nr1,zz,2026-03-04T00:00:00Z,2\n"
    ds = load_dataset(write(tmp_path / "m", order_lines=lines, refunds=refunds))
    assert ds.order_lines.order_id.tolist() == ["o1"]
    assert ds.refunds.empty
    assert rule_rows(ds, "order_lines", "order_id not in orders") == 2
    assert rule_rows(ds, "refunds", "order_id not in orders") == 1


@pytest.mark.parametrize("table, text, column, row, message", [
    ("orders", "order_id,profile_id,placed_at,signed_in\no1,a,2026-03-01T00:00:00Z,true\n",
     "value", None, "required column is missing"),
    ("orders", ORDERS.replace("20,pos", "-20,pos"), "value", 2, "negative value"),
    ("orders", ORDERS.replace("12.50", "twelve"), "value", 1, "is not a number"),
    ("orders", ORDERS.replace("2026-03-02T09:15:00Z,20", "2026-03-02T09:15:00,20"),
     "placed_at", 2, "no time zone offset"),
    ("orders", ORDERS.replace("2026-03-02T09:15:00Z,20", "2026-13-45T09:15:00Z,20"),
     "placed_at", 2, "cannot parse timestamp"),
    ("orders", ORDERS.replace(",true,", ",maybe,", 1), "signed_in", 1, "not true or false"),
    ("orders", ORDERS.replace("o1,a,", ",a,"), "order_id", 1, "value is missing"),
    ("hub_events", "event_id,profile_id,occurred_at,event_type\n"
     "e1,a,2026-03-01T09:00:00Z,hub_opened\ne2,a,2026-03-01T09:00:00Z,hub_exploded\n",
     "event_type", 2, "unknown event_type 'hub_exploded'"),
    ("order_lines", "order_id,line_id,product_id,line_total\no1,1,P1,-1\n",
     "line_total", 1, "negative value"),
    ("refunds", "refund_id,order_id,refunded_at,amount\nr1,o1,2026-03-04T00:00:00Z,0\n",
     "amount", 1, "greater than 0"),
    ("profiles", "profile_id,account_created_at\na,2026-02-01\n",
     "account_created_at", 1, "no time zone offset"),
])
def test_bad_data_names_table_column_and_row(tmp_path, table, text, column, row, message):
    with pytest.raises(DataError) as err:
        load_dataset(write(tmp_path / "m", **{table: text}))
    e = err.value
    assert (e.table, e.column, e.row) == (table, column, row)
    assert message in str(e)
    assert f"table '{table}'" in str(e) and "\n" not in str(e)


def test_missing_directory_and_missing_required_table(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "profiles.csv").write_text(PROFILES)
    with pytest.raises(DataError, match="no orders.parquet or orders.csv") as err:
        load_dataset(tmp_path / "m")
    assert err.value.table == "orders"


def test_parquet_with_integer_ids_and_naive_timestamp_error(tmp_path):
    folder = write(tmp_path / "m")
    (folder / "orders.csv").unlink()
    ts = pd.to_datetime(["2026-03-01T09:15:00Z", "2026-03-02T10:00:00Z"], utc=True)
    orders = pa.table({"order_id": [1, 2], "profile_id": ["a", "b"], "placed_at": ts,
                       "value": [1.0, 2.0], "signed_in": [True, False]})
    pq.write_table(orders, folder / "orders.parquet")
    ds = load_dataset(folder)
    assert ds.orders.order_id.dtype == "int64"
    assert ds.orders.placed_at.iloc[1] == pd.Timestamp("2026-03-02T10:00:00Z")
    naive = orders.set_column(2, "placed_at", pa.array(ts.tz_localize(None)))
    pq.write_table(naive, folder / "orders.parquet")
    with pytest.raises(DataError, match="no time zone offset") as err:
        load_dataset(folder)
    assert (err.value.table, err.value.column, err.value.row) == ("orders", "placed_at", 1)


def test_ids_read_as_numbers_in_one_file_and_text_in_another_still_join(tmp_path):
    folder = write(tmp_path / "m", order_lines="order_id,line_id,product_id,line_total\no1,1,7,5\n")
    events = pa.table({"event_id": [1], "profile_id": ["a"],
                       "occurred_at": pd.to_datetime(["2026-03-01T09:00:00Z"], utc=True),
                       "event_type": ["hub_add_to_cart"], "product_id": [7]})
    pq.write_table(events, folder / "hub_events.parquet")
    ds = load_dataset(folder)
    assert ds.hub_events.product_id.iloc[0] == ds.order_lines.product_id.iloc[0] == "7"


def test_csv_header_repeating_a_column_is_an_error(tmp_path):
    # `value` twice with conflicting numbers: pandas alone would rename one `value.1`
    orders = ("order_id,profile_id,placed_at,value,signed_in,value\n"
              "o1,a,2026-03-01T09:15:00Z,12.50,true,99\n")
    with pytest.raises(DataError) as err:
        load_dataset(write(tmp_path / "m", orders=orders))
    e = err.value
    assert (e.table, e.column, e.row) == ("orders", "value", None)
    assert "table 'orders', column 'value'" in str(e)
    assert "names the same column more than once: 'value' (2 times)" in str(e)
    assert "\n" not in str(e)


def test_csv_header_repeating_several_columns_names_them_all(tmp_path):
    refunds = ("refund_id,order_id,amount,refunded_at,amount,order_id,amount\n"
               "r1,o1,2,2026-03-04T00:00:00Z,3,o2,4\n")
    with pytest.raises(DataError) as err:
        load_dataset(write(tmp_path / "m", refunds=refunds))
    e = err.value
    assert (e.table, e.column) == ("refunds", "order_id")   # the first one repeated
    assert "'order_id' (2 times), 'amount' (3 times)" in str(e)
    assert "\n" not in str(e)


def test_parquet_with_a_repeated_column_name_is_an_error(tmp_path):
    folder = write(tmp_path / "m")
    (folder / "orders.csv").unlink()
    ts = pd.to_datetime(["2026-03-01T09:15:00Z"], utc=True)
    arrays = [pa.array(["o1"]), pa.array(["a"]), pa.array(ts), pa.array([12.5]),
              pa.array([True]), pa.array([99.0])]
    names = ["order_id", "profile_id", "placed_at", "value", "signed_in", "value"]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), folder / "orders.parquet")
    with pytest.raises(DataError) as err:
        load_dataset(folder)
    e = err.value
    assert (e.table, e.column, e.row) == ("orders", "value", None)
    assert "orders.parquet names the same column more than once: 'value' (2 times)" in str(e)


def test_refunds_exceeding_their_order_are_counted(tmp_path):
    from hubnb.clv.orders import counted_orders
    from hubnb.data import REFUNDS_EXCEED_RULE
    from hubnb.params import OrderFilter

    orders = ORDERS + "o3,a,2026-03-05T09:15:00Z,0.30,web,false,true,\n"
    refunds = ("refund_id,order_id,refunded_at,amount\n"
               "r1,o1,2026-03-04T00:00:00Z,10\n"      # o1 (12.50): 10 + 3 = 13 > 12.50
               "r2,o1,2026-03-05T00:00:00Z,3\n"
               "r3,o2,2026-03-04T00:00:00Z,20\n"      # o2 (20): 20, equal, not more
               "r3,o2,2026-03-05T00:00:00Z,5\n"       # repeated refund_id: dropped first
               "r4,o3,2026-03-06T00:00:00Z,0.10\n"    # o3 (0.30): 0.10 + 0.20, in floats
               "r5,o3,2026-03-06T00:00:00Z,0.20\n"    #   0.30000000000000004: not more
               "r6,zz,2026-03-06T00:00:00Z,100\n")    # unknown order: ignored, not counted
    ds = load_dataset(write(tmp_path / "m", orders=orders, refunds=refunds))
    assert REFUNDS_EXCEED_RULE == "refunds exceed their order's value (orders counted)"
    assert rule_rows(ds, "refunds", REFUNDS_EXCEED_RULE) == 1            # o1 only
    q = ds.quality.set_index(["table", "rule"]).loc[("refunds", REFUNDS_EXCEED_RULE)]
    assert "net value counted as 0" in q["action"]
    # the refunds are kept as they are; the CLV netting leaves o1 out (net value 0)
    assert ds.refunds.refund_id.tolist() == ["r1", "r2", "r3", "r4", "r5"]
    counted = counted_orders(ds.orders, ds.refunds, OrderFilter(), dt.date(2026, 3, 31),
                             "UTC", 365)
    assert "o1" not in counted.order_id.tolist()
    # no refunds at all: the rule is still listed, with 0
    plain = load_dataset(write(tmp_path / "n"))
    assert rule_rows(plain, "refunds", REFUNDS_EXCEED_RULE) == 0
