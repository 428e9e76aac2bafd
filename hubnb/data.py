"""The data contract: reading, typing and validating a merchant's dataset directory.

A dataset directory holds one file per table, ``<table>.parquet`` or ``<table>.csv``.
:func:`load_dataset` reads every table, types each column, applies the rules for
imperfect data (each counted in :attr:`Dataset.quality`) and raises
:class:`hubnb.errors.DataError` naming table, column and row for data it cannot use.

Rows are numbered from 1, as the data rows of the file (row 1 is the first row after a
CSV's header line).
"""

from __future__ import annotations

import codecs
import csv
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
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
#: hubnb's rule: timestamps and dates lie from 1900-01-01 to 2199-12-31 (UTC).
FIRST_DAY, LAST_DAY = pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2199-12-31", tz="UTC")
_END = LAST_DAY + pd.Timedelta(days=1)
#: The largest whole number a float holds exactly: ids and counts stored as floats stay below.
_EXACT = 2**53
_INT64_MAX = np.iinfo(np.int64).max
#: A CSV file's text encoding, from its byte-order mark (none: UTF-8).
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
         (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
#: The separators a CSV header may use; the one naming the most contract columns wins.
_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}


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
            return _read_parquet(file, table)
        return _read_csv(file, table)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a data error
        raise DataError(f"cannot read {file.name}: {_one_line(exc)}", table=table.name) from None


def _one_line(exc_or_text) -> str:
    """A library's message on one line (pandas ends some with a newline)."""
    return " ".join(str(exc_or_text).split()) or type(exc_or_text).__name__


def _show(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for a message (a timestamp in ISO 8601)."""
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        value = pd.Timestamp(value).isoformat()
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ------------------------------------------------------------------------------ CSV
def _read_csv(file: Path, table: Table) -> pd.DataFrame:
    encoding, first, newline = _first_line(file, table)
    sep = _separator(first, table)
    # The header line as written: pandas would rename a repeated name (value.1).
    header = next(csv.reader([first], delimiter=sep), []) if first else []
    _check_repeated_names(header, table.name, file.name)
    # Everything as text first: the contract's types are applied column by column, so a
    # bad value is reported with its row instead of silently coerced. index_col=False:
    # rows ending in one more (empty) field than the header must not shift every column.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""],
                                sep=sep, encoding=encoding, index_col=False,
                                # lines ending in a bare CR (old Mac files): pandas' own
                                # guess shifts a row that follows a blank line and starts
                                # with an empty field one column to the left
                                lineterminator="\r" if newline == "\r" else None)
        except UnicodeDecodeError:
            raise _not_utf8(file, table, sep, encoding, header) from None
        except pd.errors.ParserError as exc:
            raise _long_rows(file, table, sep, encoding, len(header), exc) from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        # pandas dropped the values of fields beyond the header's: say which row had them
        raise _long_rows(file, table, sep, encoding, len(header), None)
    return frame


def _first_line(file: Path, table: Table) -> tuple[str, str, str]:
    """The file's encoding (from its byte-order mark), its decoded first line and the line
    break that ends it."""
    with open(file, "rb") as f:
        head = f.read(1 << 16)
        while head and not re.search(rb"[\r\n]", head) and len(head) < 1 << 24:
            more = f.read(1 << 16)
            if not more:
                break
            head += more
    encoding = next((codec for bom, codec in _BOMS if head.startswith(bom)), "utf-8")
    text = codecs.getincrementaldecoder(encoding)(errors="surrogateescape").decode(head)
    # the first line that is not blank (pandas skips blank lines before the header too)
    lines = re.split(r"(\r\n|\r|\n)", text)
    i = next((i for i in range(0, len(lines), 2) if lines[i].strip(" \t")), 0)
    first, end = lines[i], lines[i + 1:i + 2]
    bad = [ch for ch in first if "\udc80" <= ch <= "\udcff"]
    if bad:
        raise DataError(f"the header of {file.name} is not UTF-8 text (byte "
                        f"0x{ord(bad[0]) - 0xdc00:02X}); save the file as UTF-8", table=table.name)
    if "\x00" in first:
        raise DataError(f"the header of {file.name} holds NUL characters (UTF-16 text without a "
                        "byte-order mark?); save the file as UTF-8", table=table.name)
    return encoding, first, end[0] if end else "\n"


def _separator(first: str, table: Table) -> str:
    """The separator under which the header line names the most contract columns (a tie:
    the comma)."""
    known = {c.name for c in table.columns}

    def named(sep):
        return sum(name in known for name in next(csv.reader([first], delimiter=sep), []))

    return max(_SEPARATORS, key=lambda sep: (named(sep), sep == ","))


def _records(file: Path, sep: str, encoding: str, errors: str):
    """The data rows of a CSV file as (row number, fields), rows counted like pandas (blank
    lines are not rows); for locating a problem pandas reports without a row."""
    with open(file, encoding=encoding, errors=errors, newline="") as f:
        rows = (r for r in csv.reader(f, delimiter=sep)
                if r and not (len(r) == 1 and not r[0].strip(" \t")))
        next(rows, None)                    # the header
        yield from enumerate(rows, start=1)


def _not_utf8(file: Path, table: Table, sep: str, encoding: str, header: list) -> DataError:
    """The first value that is not text in ``encoding`` (UTF-8 unless a byte-order mark says
    otherwise)."""
    label = "UTF-8" if encoding.startswith("utf-8") else encoding.upper()
    for row, fields in _records(file, sep, encoding, "surrogateescape"):
        for i, value in enumerate(fields):
            bad = [ch for ch in value if "\udc80" <= ch <= "\udcff"]
            if bad:
                guess = ": Latin-1 or Windows-1252?" if label == "UTF-8" else ""
                return DataError(
                    f"{file.name} is not {label} text (byte 0x{ord(bad[0]) - 0xdc00:02X}"
                    f"{guess}); save the file as UTF-8", table=table.name,
                    column=header[i] if i < len(header) and header[i].strip() else None, row=row)
    return DataError(f"{file.name} is not {label} text; save the file as UTF-8",
                     table=table.name)


def _long_rows(file: Path, table: Table, sep: str, encoding: str, width: int,
               exc: Exception | None) -> DataError:
    """The first row with more fields than the header (one with values in them first)."""
    first_long = None
    for row, fields in _records(file, sep, encoding, "replace"):
        if len(fields) > width:
            if any(value != "" for value in fields[width:]):
                first_long = (row, len(fields))
                break
            first_long = first_long or (row, len(fields))
    if first_long is not None:
        row, n = first_long
        return DataError(f"the row has {n} fields but the header names {width} columns "
                         f"(a {_SEPARATORS[sep]} inside a value that is not in quotes?)",
                         table=table.name, row=row)
    message = _one_line(exc) if exc is not None else "rows longer than the header"
    unclosed = re.search(r"EOF inside string starting at row (\d+)", message)
    if unclosed:
        return DataError('a quoted value is never closed (a " without its closing ")',
                         table=table.name, row=int(unclosed.group(1)))
    return DataError(f"cannot read {file.name}: {message}", table=table.name)


# -------------------------------------------------------------------------- Parquet
#: Parquet types each kind of column accepts (text is parsed like a CSV cell).
_TYPES = {
    "id": ("text", "integer", "floating"),
    "str": ("text",),
    "timestamp": ("text", "timestamp"),
    "money": ("text", "integer", "floating", "decimal"),
    "float": ("text", "integer", "floating", "decimal"),
    "count": ("text", "integer", "floating", "decimal"),
    "bool": ("text", "boolean", "integer", "floating"),
    "date": ("text", "date", "timestamp"),
}
_WHAT = {"id": "an id (text or a whole number)", "str": "text",
         "timestamp": "a timestamp with a time zone (or ISO 8601 text)",
         "money": "an amount", "float": "a number", "count": "a whole number",
         "bool": "true or false", "date": "a date"}


def _type_class(t: pa.DataType) -> str:
    types = pa.types
    if types.is_dictionary(t):
        t = t.value_type
    if types.is_null(t) or types.is_string(t) or types.is_large_string(t) or \
            types.is_binary(t) or types.is_large_binary(t) or \
            getattr(types, "is_string_view", lambda _: False)(t) or \
            getattr(types, "is_binary_view", lambda _: False)(t):
        return "text"
    for name in ("boolean", "integer", "floating", "decimal", "timestamp", "date"):
        if getattr(types, f"is_{name}")(t):
            return name
    return "other"


def _read_parquet(file: Path, table: Table) -> pd.DataFrame:
    schema = pq.read_schema(file)
    _check_repeated_names(schema.names, table.name, file.name)
    names = set(schema.names)
    wanted = [c.name for c in table.columns if c.name in names]
    for name in wanted:
        col, t = table.column(name), schema.field(name).type
        if _type_class(t) not in _TYPES[col.kind]:
            raise DataError(f"{file.name} stores it as {t}, which cannot hold {_WHAT[col.kind]}",
                            table=table.name, column=name)
    # Only the contract's columns; text columns stay dictionary-encoded (pandas
    # categoricals), which is how Parquet stores them and far cheaper than strings.
    text = [c.name for c in table.columns if c.category and c.name in names
            and _type_class(schema.field(c.name).type) == "text"]
    arrow = pq.read_table(file, columns=wanted, read_dictionary=text)
    for i, name in enumerate(arrow.column_names):
        arrow = arrow.set_column(i, name, _plain(arrow.column(i), table, name, file))
    # pandas would make integers with nulls floats, and a float is exact only to 2**53:
    # keep them integers (with a mask)
    masked = {name: arrow.column(name).to_pandas(types_mapper=_NULLABLE_INTS.get)
              for name in arrow.column_names
              if pa.types.is_integer(arrow.column(name).type) and arrow.column(name).null_count}
    order = arrow.column_names
    arrow = arrow.drop_columns(list(masked))
    # Each Arrow column is freed as soon as pandas has it, so a large table is not held
    # twice (10M profiles: the hub events alone are 3.5 GB)
    frame = arrow.to_pandas(split_blocks=True, self_destruct=True)
    del arrow
    for name, column in masked.items():
        frame[name] = column
    return frame[order] if masked else frame


_NULLABLE_INTS = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
                  pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
                  pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                  pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype()}


def _plain(column: pa.ChunkedArray, table: Table, name: str, file: Path) -> pa.ChunkedArray:
    """Bytes as UTF-8 text (checked), and dictionaries decoded unless the column is text."""
    t = column.type
    value = t.value_type if pa.types.is_dictionary(t) else t
    binary = pa.types.is_binary(value) or pa.types.is_large_binary(value) or \
        getattr(pa.types, "is_binary_view", lambda _: False)(value)
    if pa.types.is_dictionary(t) and (binary or _type_class(t) != "text"):
        column = column.cast(value)
    if binary:
        try:
            column = column.cast(pa.string())
        except pa.ArrowInvalid:
            for row, raw in enumerate(column.to_pylist(), start=1):
                if raw is not None:
                    try:
                        raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise DataError(f"{_show(raw)} is not UTF-8 text (byte "
                                        f"0x{raw[exc.start]:02X})", table=table.name,
                                        column=name, row=row) from None
            raise
    return column


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
    for col in table.columns:              # the columns first, then their values
        if col.required and col.name not in df.columns:
            raise DataError("required column is missing", table=table.name, column=col.name)
    for col in table.columns:
        if col.name not in df.columns:
            series = pd.Series(np.full(n, col.default, dtype=object), dtype=object)
        else:
            series = df[col.name]
        converted = _convert(series, col, table.name)
        if converted is not series or col.name not in df.columns:
            df[col.name] = converted
    return df


def _first_bad(mask) -> int:
    if isinstance(mask, pd.Series):
        mask = mask.fillna(False)
    return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0]) + 1


def _convert(s: pd.Series, col: Column, table: str) -> pd.Series:
    where = dict(table=table, column=col.name)
    missing = s.isna()
    if not col.nullable and missing.any():
        raise DataError("value is missing", row=_first_bad(missing), **where)
    kind = col.kind
    if kind == "id":
        return _to_id(s, missing, where)
    if kind == "str":
        # Low-cardinality text (event types, sources, product names) is categorical
        # whatever the file format, other text is a plain string column.
        if col.category:
            return s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("category")
        return s if pd.api.types.is_string_dtype(s) else s.astype("string")
    if kind in ("money", "float", "count"):
        return _to_number(s, missing, col, where)
    if kind == "bool":
        return _to_bool(s, missing, col, where)
    if kind == "timestamp":
        return _to_utc(s, missing, where)
    if kind == "date":
        return _to_date(s, missing, where)
    raise AssertionError(kind)


def _to_id(s, missing, where) -> pd.Series:
    if pd.api.types.is_float_dtype(s):
        # Whole numbers stored as floats (a pandas column of ids with a null is one) are
        # integers; anything else stored as a float is no id (7.5, inf, 1e20: not exact).
        values = s.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            inexact = ~missing.to_numpy() & ~((values % 1 == 0) & (np.abs(values) <= _EXACT))
        if inexact.any():
            row = _first_bad(inexact)
            raise DataError(f"{_show(values[row - 1])} is not an id: an id stored as a number "
                            "must be a whole number up to 2**53 (store ids as text)",
                            row=row, **where)
        return s.astype("Int64") if missing.any() else s.astype("int64")
    if pd.api.types.is_unsigned_integer_dtype(s) and len(s) and s.max() > _INT64_MAX:
        return s.astype("string")           # beyond int64: compared as text, exactly
    if pd.api.types.is_integer_dtype(s):
        return s.astype("int64") if not missing.any() else s.astype("Int64")
    return s.astype("string")


def _to_number(s, missing, col, where) -> pd.Series:
    kind = col.kind
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & ~missing
    if bad.any():
        raise DataError(f"{_show(s.iloc[_first_bad(bad) - 1])} is not a number",
                        row=_first_bad(bad), **where)
    if pd.api.types.is_float_dtype(num) and not pd.api.types.is_numeric_dtype(s):
        # Text read as floats: pandas' parser can miss the nearest float by one unit in the
        # last place (10000000.000000001 became 10000000.0, a whole number); Python's float
        # rounds correctly.
        present = ~missing.to_numpy()
        try:
            exact = s.to_numpy(dtype=object)[present].astype(float)
        except (TypeError, ValueError):
            pass                            # (a form only pandas reads: keep its value)
        else:
            values = np.array(num.to_numpy(dtype=float, na_value=np.nan))   # a copy
            values[present] = exact
            num = pd.Series(values, index=s.index)
    if pd.api.types.is_float_dtype(num):
        values = num.to_numpy(dtype=float, na_value=np.nan)
        infinite = np.isinf(values)
        if infinite.any():
            row = _first_bad(infinite)
            raise DataError(f"{_show(s.iloc[row - 1])} is not a finite number", row=row, **where)
    if kind in ("money", "count"):
        neg = (num < 0).fillna(False)
        if neg.any():
            raise DataError(f"negative value {num.iloc[_first_bad(neg) - 1]}",
                            row=_first_bad(neg), **where)
    if col.positive:
        zero = (num == 0).fillna(False)
        if zero.any():
            raise DataError("must be greater than 0", row=_first_bad(zero), **where)
    if kind == "count":
        if pd.api.types.is_float_dtype(num):
            frac = ((num % 1 != 0) & ~missing).fillna(False)
            if frac.any():
                raise DataError("must be a whole number", row=_first_bad(frac), **where)
            # a float holds whole numbers exactly only up to 2**53
            big = (num.abs() > _EXACT).fillna(False)
        else:
            big = (num > _INT64_MAX).fillna(False)
        if big.any():
            raise DataError(f"{_show(s.iloc[_first_bad(big) - 1])} is too large for a count",
                            row=_first_bad(big), **where)
        return num.astype("int64") if not missing.any() else num.astype("Int64")
    return num.astype("float64")


def _to_bool(s, missing, col, where) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean") if col.nullable else s.astype(bool)
    if pd.api.types.is_numeric_dtype(s):
        # 1/0 stored as numbers (floats when the column has nulls)
        true, false = (s == 1).fillna(False), (s == 0).fillna(False)
        bad = ~(true | false) & ~missing
        if bad.any():
            raise DataError(f"{_show(s.iloc[_first_bad(bad) - 1])} is not true or false",
                            row=_first_bad(bad), **where)
    else:
        text = s.astype("string").str.strip().str.lower()
        true, false = text.isin(_TRUE), text.isin(_FALSE)
        bad = ~(true | false) & ~missing
        if bad.any():
            raise DataError(f"{_show(s.iloc[_first_bad(bad) - 1])} is not true or false",
                            row=_first_bad(bad), **where)
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[true.fillna(False).to_numpy(dtype=bool)] = True
    out[false.fillna(False).to_numpy(dtype=bool)] = False
    return out if col.nullable else out.astype(bool)


def _in_range(parsed: pd.Series, shown: pd.Series, where) -> pd.Series:
    """hubnb's rule: timestamps (UTC) and dates lie from 1900-01-01 to 2199-12-31."""
    low, high = parsed.min(), parsed.max()
    if pd.isna(low) or (low >= FIRST_DAY and high < _END):
        return parsed                       # (two reductions: the common case stays cheap)
    outside = ((parsed < FIRST_DAY) | (parsed >= _END)).fillna(False)
    if outside.any():
        row = _first_bad(outside)
        raise DataError(f"{_show(shown.iloc[row - 1])} is outside 1900-01-01 to 2199-12-31",
                        row=row, **where)
    return parsed


def _to_date(s, missing, where) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        # a timestamp's own calendar day (its wall clock, not converted)
        day = (s.dt.tz_localize(None) if s.dt.tz is not None else s).dt.normalize()
        return _in_range(day.dt.tz_localize("UTC"), s, where).dt.tz_localize(None)
    if s.dtype == object and s.map(lambda v: v is None or hasattr(v, "isoformat")).all():
        s = s.map(lambda v: None if v is None else v.isoformat())   # Parquet dates
    text = s.astype("string").str.strip()
    # The day as written (YYYY-MM-DD, then optionally a time and an offset, which must
    # parse): 2026-03 or 2026 is no day, and mixed offsets do not move the date.
    day = pd.to_datetime(text.str.slice(0, 10), errors="coerce", format="%Y-%m-%d")
    whole = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    bad = (day.isna() | whole.isna() | ~text.str.match(r"\d{4}-\d{2}-\d{2}").fillna(False)) \
        & ~missing
    if bad.any():
        row = _first_bad(bad)
        raise DataError(f"{_show(s.iloc[row - 1])} is not a date (YYYY-MM-DD)", row=row,
                        **where)
    return _in_range(day.dt.tz_localize("UTC"), s, where).dt.tz_localize(None).dt.normalize()


def _to_utc(s, missing, where) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        if s.dt.tz is None:
            if missing.all():
                return s.dt.tz_localize("UTC")
            raise DataError("timestamp has no time zone offset (write e.g. "
                            "2026-03-01T09:15:00Z)", row=_first_bad(~missing), **where)
        return _in_range(s.dt.tz_convert("UTC"), s, where)
    text = s.astype("string").str.strip()
    naive = ~text.str.contains(_OFFSET, regex=True).fillna(False).astype(bool) & ~missing
    # A bare date (no time) is naive too: the contract wants an instant with an offset.
    if naive.any():
        row = _first_bad(naive)
        raise DataError(f"timestamp {_show(text.iloc[row - 1])} has no time zone offset "
                        "(write e.g. 2026-03-01T09:15:00Z)", row=row, **where)
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    bad = parsed.isna() & ~missing
    if bad.any():
        row = _first_bad(bad)
        raise DataError(f"cannot parse timestamp {_show(text.iloc[row - 1])}", row=row, **where)
    return _in_range(parsed, text, where)


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
        raise DataError(f"unknown event_type {_show(events['event_type'].iloc[row - 1])}; "
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
