"""The data contract: reading, typing and validating a merchant's dataset directory.

A dataset directory holds one file per table, ``<table>.parquet`` or ``<table>.csv``.
:func:`load_dataset` reads every table, types each column, applies the rules for
imperfect data (each counted in :attr:`Dataset.quality`) and raises
:class:`hubnb.errors.DataError` naming table, column and row for data it cannot use.

Rows are numbered from 1, as the data rows of the file (row 1 is the first row after a
CSV's header line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .errors import DataError
from .i18n import N_
from .messages import Message

EVENT_TYPES = ("hub_opened", "order_tracked", "return_started", "coupon_applied",
               "help_clicked", "chat_started", "hub_add_to_cart", "other")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str                 # id | str | timestamp | money | count | bool | date | float
    required: bool = False    # the column must be present
    nullable: bool = True     # null values are allowed
    default: object = None    # value of an absent optional column (None: all null)
    positive: bool = False    # money that must be > 0 rather than >= 0
    category: bool = False    # text with few distinct values: a pandas categorical


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    required: bool = False    # the file must exist

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _req(name, kind, **kw):
    return Column(name, kind, required=True, nullable=kw.pop("nullable", False), **kw)


TABLES: dict[str, Table] = {t.name: t for t in (
    Table("profiles", (
        _req("profile_id", "id"),
        Column("created_at", "timestamp"),
        _req("account_created_at", "timestamp", nullable=True),
        Column("email", "str"),
    ), key=("profile_id",), required=True),
    Table("orders", (
        _req("order_id", "id"), _req("profile_id", "id"), _req("placed_at", "timestamp"),
        _req("value", "money"),
        Column("source_name", "str", nullable=False, default="web", category=True),
        Column("integration", "str", category=True),
        Column("is_subscription", "bool", nullable=False, default=False),
        _req("signed_in", "bool"),
        Column("cancelled_at", "timestamp"),
    ), key=("order_id",), required=True),
    Table("order_lines", (
        _req("order_id", "id"), _req("line_id", "id"), _req("product_id", "id"),
        Column("product_name", "str", category=True),
        Column("quantity", "count", nullable=False, default=1),
        _req("line_total", "money"),
        Column("added_from_hub", "bool"),
    ), key=("order_id", "line_id")),
    Table("refunds", (
        _req("refund_id", "id"), _req("order_id", "id"), _req("refunded_at", "timestamp"),
        _req("amount", "money", positive=True),
    ), key=("refund_id",)),
    Table("hub_events", (
        _req("event_id", "id"), _req("profile_id", "id"), _req("occurred_at", "timestamp"),
        _req("event_type", "str", category=True),
        Column("product_id", "id"), Column("raw_metric", "str", category=True),
    ), key=("event_id",)),
    Table("predictions", (
        _req("profile_id", "id"),
        Column("historic_clv", "float"), Column("predicted_clv", "float"),
        Column("total_clv", "float"), Column("historic_number_of_orders", "float"),
        Column("predicted_number_of_orders", "float"), Column("average_order_value", "float"),
        Column("average_days_between_orders", "float"), Column("churn_probability", "float"),
        Column("expected_date_of_next_order", "date"),
    ), key=("profile_id",)),
    Table("marketing_assets", (
        _req("asset_type", "str"), _req("asset_id", "id"), _req("name", "str"),
        Column("status", "str"), Column("channels", "str"), Column("audiences", "str"),
        Column("form_type", "str"), Column("scheduled_at", "timestamp"),
        Column("updated_at", "timestamp"),
    ), key=("asset_type", "asset_id")),
)}

#: Tables a dataset may leave out; an absent one is read as empty (and noted).
OPTIONAL_TABLES = ("order_lines", "refunds", "hub_events", "predictions", "marketing_assets")
#: Id columns that join tables; they get one dtype across tables.
ID_FAMILIES = {"profile_id": [("profiles", "profile_id"), ("orders", "profile_id"),
                              ("hub_events", "profile_id"), ("predictions", "profile_id")],
               "order_id": [("orders", "order_id"), ("order_lines", "order_id"),
                            ("refunds", "order_id")],
               "product_id": [("order_lines", "product_id"), ("hub_events", "product_id")]}

# An offset after a time of day: ...T09:15Z, ...09:15:00.123+01:00, ...09:15:00-0500
_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


@dataclass
class Dataset:
    """A merchant's typed and validated tables.

    Attributes
    ----------
    tables : dict of str to DataFrame
        Every table of :data:`TABLES`; an absent optional table is empty.
    quality : DataFrame
        One row per data-quality rule: table, rule, rows, action.
    present : dict of str to bool
        Whether each table's file was there.
    columns_present : dict of str to set
        The columns each file had (before defaults were filled in).
    """

    path: Path
    tables: dict[str, pd.DataFrame]
    quality: pd.DataFrame
    present: dict[str, bool] = field(default_factory=dict)
    columns_present: dict[str, set] = field(default_factory=dict)

    def __getattr__(self, name):
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    @property
    def has_added_from_hub(self) -> bool:
        """Whether order_lines carries the ``added_from_hub`` column."""
        return "added_from_hub" in self.columns_present.get("order_lines", set())


def load_dataset(path, tables: tuple[str, ...] | None = None) -> Dataset:
    """Read, type and validate a dataset directory.

    Parameters
    ----------
    path : str or Path
        The merchant's dataset directory.
    tables : tuple of str, optional
        Read only these tables (the others come back empty); default all.

    Raises
    ------
    DataError
        A missing directory or required table, a header naming a column twice, a
        missing required column, a negative value, an unknown ``event_type``, a naive or
        unparseable timestamp.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"dataset directory {path} does not exist")
    quality = _Quality()
    frames, present, columns_present = {}, {}, {}
    for name, table in TABLES.items():
        wanted = tables is None or name in tables
        file = _table_file(path, name) if wanted else None
        present[name] = file is not None
        if file is None:
            if table.required and wanted:
                raise DataError(f"no {name}.parquet or {name}.csv in {path}", table=name)
            if wanted:
                quality.add(name, Message(N_("table absent")), 0,
                            Message(N_("read as an empty table")))
            frames[name] = _empty(table)
            columns_present[name] = set()
            continue
        raw = _read(file, table)
        columns_present[name] = set(raw.columns)
        frames[name] = _typed(raw, table)
        if name == "hub_events":
            _check_event_types(frames[name])
    _unify_ids(frames)
    _apply_rules(frames, quality)
    return Dataset(path=path, tables=frames, quality=quality.frame(),
                   present=present, columns_present=columns_present)


def _table_file(path: Path, name: str) -> Path | None:
    for ext in ("parquet", "csv"):
        file = path / f"{name}.{ext}"
        if file.is_file():
            return file
    return None


def _read(file: Path, table: Table) -> pd.DataFrame:
    try:
        if file.suffix == ".parquet":
            # Only the contract's columns; text columns stay dictionary-encoded (pandas
            # categoricals), which is how Parquet stores them and far cheaper than strings.
            header = pq.read_schema(file).names
            _check_repeated_names(header, table.name, file.name)
            names = set(header)
            wanted = [c.name for c in table.columns if c.name in names]
            text = [c.name for c in table.columns if c.category and c.name in names]
            return pq.read_table(file, columns=wanted, read_dictionary=text).to_pandas()
        # The header line as written: pandas would rename a repeated name (value.1).
        header = pd.read_csv(file, header=None, nrows=1, dtype=str, keep_default_na=False)
        _check_repeated_names(list(header.iloc[0]) if len(header) else [], table.name,
                              file.name)
        # Everything as text first: the contract's types are applied column by column,
        # so a bad value is reported with its row instead of silently coerced.
        return pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""])
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a data error
        raise DataError(f"cannot read {file.name}: {exc}", table=table.name) from None


def _check_repeated_names(names: list[str], table: str, file: str) -> None:
    """A file whose header names a column more than once is ambiguous: an error.

    Blank names (e.g. a trailing comma) are not column names and are left alone.
    """
    counts: dict[str, int] = {}
    for name in names:
        if str(name).strip():
            counts[name] = counts.get(name, 0) + 1
    repeated = [name for name, n in counts.items() if n > 1]
    if repeated:
        listed = ", ".join(f"{name!r} ({counts[name]} times)" for name in repeated)
        raise DataError(f"{file} names the same column more than once: {listed}; "
                        "keep one column of each name", table=table, column=repeated[0])


def _empty(table: Table) -> pd.DataFrame:
    return _typed(pd.DataFrame({c.name: pd.Series([], dtype=object) for c in table.columns}), table)


def _typed(raw: pd.DataFrame, table: Table) -> pd.DataFrame:
    # Columns are converted in place: rebuilding the frame would copy every column.
    df = raw[[c.name for c in table.columns if c.name in raw.columns]].reset_index(drop=True)
    n = len(df)
    for col in table.columns:
        if col.name not in df.columns:
            if col.required:
                raise DataError("required column is missing", table=table.name, column=col.name)
            series = pd.Series(np.full(n, col.default, dtype=object), dtype=object)
        else:
            series = df[col.name]
        converted = _convert(series, col, table.name)
        if converted is not series or col.name not in df.columns:
            df[col.name] = converted
    return df


def _first_bad(mask) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0]) + 1


def _convert(s: pd.Series, col: Column, table: str) -> pd.Series:
    where = dict(table=table, column=col.name)
    missing = s.isna()
    if not col.nullable and missing.any():
        raise DataError("value is missing", row=_first_bad(missing), **where)
    kind = col.kind
    if kind == "id":
        if pd.api.types.is_float_dtype(s) and not missing.any() and (s % 1 == 0).all():
            return s.astype("int64")
        if pd.api.types.is_integer_dtype(s):
            return s.astype("int64") if not missing.any() else s.astype("Int64")
        return s.astype("string")
    if kind == "str":
        # Low-cardinality text (event types, sources, product names) is categorical
        # whatever the file format, other text is a plain string column.
        if col.category:
            return s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("category")
        return s if pd.api.types.is_string_dtype(s) else s.astype("string")
    if kind in ("money", "float", "count"):
        num = pd.to_numeric(s, errors="coerce")
        bad = num.isna() & ~missing
        if bad.any():
            raise DataError(f"{s.iloc[_first_bad(bad) - 1]!r} is not a number",
                            row=_first_bad(bad), **where)
        if kind in ("money", "count"):
            neg = num < 0
            if neg.any():
                raise DataError(f"negative value {num.iloc[_first_bad(neg) - 1]}",
                                row=_first_bad(neg), **where)
        if col.positive:
            zero = num == 0
            if zero.any():
                raise DataError("must be greater than 0", row=_first_bad(zero), **where)
        if kind == "count":
            frac = (num % 1 != 0) & ~missing
            if frac.any():
                raise DataError("must be a whole number", row=_first_bad(frac), **where)
            return num.astype("int64") if not missing.any() else num.astype("Int64")
        return num.astype("float64")
    if kind == "bool":
        return _to_bool(s, missing, col, where)
    if kind == "timestamp":
        return _to_utc(s, missing, where)
    if kind == "date":
        parsed = pd.to_datetime(s, errors="coerce", format="ISO8601")
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        bad = parsed.isna() & ~missing
        if bad.any():
            raise DataError(f"{s.iloc[_first_bad(bad) - 1]!r} is not a date",
                            row=_first_bad(bad), **where)
        return parsed.dt.normalize()
    raise AssertionError(kind)


def _to_bool(s, missing, col, where) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean") if col.nullable else s.astype(bool)
    text = s.astype("string").str.strip().str.lower()
    true, false = text.isin(_TRUE), text.isin(_FALSE)
    bad = ~(true | false) & ~missing
    if bad.any():
        raise DataError(f"{s.iloc[_first_bad(bad) - 1]!r} is not true or false",
                        row=_first_bad(bad), **where)
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[true.fillna(False).to_numpy()] = True
    out[false.fillna(False).to_numpy()] = False
    return out if col.nullable else out.astype(bool)


def _to_utc(s, missing, where) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        if s.dt.tz is None:
            if missing.all():
                return s.dt.tz_localize("UTC")
            raise DataError("timestamp has no time zone offset (write e.g. "
                            "2026-03-01T09:15:00Z)", row=_first_bad(~missing), **where)
        return s.dt.tz_convert("UTC")
    text = s.astype("string").str.strip()
    naive = ~text.str.contains(_OFFSET, regex=True).fillna(False).astype(bool) & ~missing
    # A bare date (no time) is naive too: the contract wants an instant with an offset.
    if naive.any():
        row = _first_bad(naive)
        raise DataError(f"timestamp {text.iloc[row - 1]!r} has no time zone offset "
                        "(write e.g. 2026-03-01T09:15:00Z)", row=row, **where)
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    bad = parsed.isna() & ~missing
    if bad.any():
        row = _first_bad(bad)
        raise DataError(f"cannot parse timestamp {text.iloc[row - 1]!r}", row=row, **where)
    return parsed


def _unify_ids(frames: dict[str, pd.DataFrame]) -> None:
    # An id read as integers in one file and as text in another still has to join.
    for members in ID_FAMILIES.values():
        kinds = {pd.api.types.is_integer_dtype(frames[t][c]) for t, c in members
                 if len(frames[t])}
        if len(kinds) > 1:
            for t, c in members:
                frames[t][c] = frames[t][c].astype("string")
        elif kinds == {True}:
            for t, c in members:
                if not len(frames[t]) and not pd.api.types.is_integer_dtype(frames[t][c]):
                    frames[t][c] = frames[t][c].astype("Int64")


def _repeated(df: pd.DataFrame, key: list[str]) -> pd.Series:
    """Rows whose key was seen in an earlier row (the first occurrence is not marked)."""
    cols = [df[k].to_numpy() for k in key]
    if all(c.dtype.kind == "i" for c in cols) and len(df) > 1:
        # Exports are often sorted by id: a strictly increasing key has no repeats, and
        # checking that costs one pass instead of a hash table.
        increasing = cols[-1][1:] > cols[-1][:-1]
        for c in reversed(cols[:-1]):
            increasing = (c[1:] > c[:-1]) | ((c[1:] == c[:-1]) & increasing)
        if increasing.all():
            return pd.Series(np.zeros(len(df), dtype=bool), index=df.index)
    return df.duplicated(key, keep="first")


def _check_event_types(events: pd.DataFrame) -> None:
    types = events["event_type"]
    if isinstance(types.dtype, pd.CategoricalDtype):
        # One look per category actually used, not per row (a bincount, not a sort).
        codes = types.cat.codes.to_numpy()
        present = np.bincount(codes[codes >= 0], minlength=len(types.cat.categories)) > 0
        if set(types.cat.categories[present]) <= set(EVENT_TYPES):
            return
    unknown = ~types.isin(EVENT_TYPES)
    if unknown.any():
        row = _first_bad(unknown)
        raise DataError(f"unknown event_type {events['event_type'].iloc[row - 1]!r}; "
                        f"expected one of {', '.join(EVENT_TYPES)}",
                        table="hub_events", column="event_type", row=row)


#: The quality rule of orders whose refunds sum to more than the order's value.
REFUNDS_EXCEED_RULE = Message(N_("refunds exceed their order's value (orders counted)"))


def _refunds_exceeding(refunds: pd.DataFrame, orders: pd.DataFrame) -> int:
    """Orders whose refunds (every refund in the file) sum to more than the order's value.

    Sums of cents are compared with a tolerance of 1e-9 (relative and absolute), so
    refunds of 0.10 and 0.20 against a value of 0.30 do not exceed it.
    """
    if not len(refunds) or not len(orders):
        return 0
    total = refunds.groupby("order_id", sort=False, observed=True)["amount"].sum()
    value = orders.set_index("order_id")["value"].reindex(total.index).to_numpy(dtype=float)
    total = total.to_numpy(dtype=float)
    known = ~np.isnan(value)
    exceed = known & (total > value) & ~np.isclose(total, value, rtol=1e-9, atol=1e-9)
    return int(exceed.sum())


class _Quality:
    def __init__(self):
        self.rows = []

    def add(self, table, rule, count, action):
        self.rows.append({"table": table, "rule": rule, "rows": int(count), "action": action})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["table", "rule", "rows", "action"])


def _apply_rules(frames: dict[str, pd.DataFrame], quality: _Quality) -> None:
    """The rules for imperfect data (docs/data_contract.md §1), each counted."""
    for name, table in TABLES.items():
        df = frames[name]
        if table.key and len(df):
            dup = _repeated(df, list(table.key))
            quality.add(name, Message(N_("repeated {key}"), key=" + ".join(table.key)),
                        dup.sum(), Message(N_("first row kept, later repeats dropped")))
            if dup.any():
                frames[name] = df.loc[~dup].reset_index(drop=True)
    orders = frames["orders"]
    known = pd.Index(orders["order_id"].unique())
    for name in ("order_lines", "refunds"):
        df = frames[name]
        orphan = ~df["order_id"].isin(known) if len(df) else pd.Series([], dtype=bool)
        quality.add(name, Message(N_("order_id not in orders")), orphan.sum(),
                    Message(N_("ignored")))
        if orphan.any():
            frames[name] = df.loc[~orphan].reset_index(drop=True)
    quality.add("refunds", REFUNDS_EXCEED_RULE, _refunds_exceeding(frames["refunds"], orders),
                Message(N_("order's net value counted as 0 (fully refunded: left out of CLV)")))
    profiles = pd.Index(frames["profiles"]["profile_id"].unique())
    for name in ("orders", "hub_events"):
        df = frames[name]
        stranger = (~df["profile_id"].isin(profiles)).sum() if len(df) else 0
        quality.add(name, Message(N_("profile_id not in profiles")), stranger,
                    Message(N_("kept")))
    if len(orders):
        late = orders["cancelled_at"].notna().sum()
        quality.add("orders", Message(N_("cancelled orders")), late,
                    Message(N_("left out of revenue, AOV and CLV")))
