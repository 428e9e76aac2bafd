"""Data sets shipped with hubnb: the CDNOW transactions (see README.md here)."""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

import pandas as pd

_FILES = {"master": "CDNOW_master.txt.gz", "sample": "CDNOW_sample.txt.gz"}


def load_cdnow(kind: str = "master") -> pd.DataFrame:
    """The CDNOW transactions.

    Parameters
    ----------
    kind : {"master", "sample"}
        All 23,570 customers or the 1/10 sample of 2,357.

    Returns
    -------
    DataFrame
        ``customer_id`` (int; the master id, also in the sample), ``date`` (datetime64),
        ``number_of_cds`` (int), ``dollar_value`` (float): one row per purchase record.
    """
    if kind not in _FILES:
        raise ValueError(f"kind must be 'master' or 'sample', not {kind!r}")
    with resources.files(__name__).joinpath(_FILES[kind]).open("rb") as fh:
        with gzip.open(fh, "rt") as text:
            if kind == "master":
                df = pd.read_csv(text, sep=r"\s+", dtype={"date": str})
            else:
                df = pd.read_csv(text, sep=r"\s+", header=None, dtype={2: str},
                                 names=["customer_id", "sample_id", "date", "number_of_cds",
                                        "dollar_value"]).drop(columns="sample_id")
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    df["customer_id"] = df["customer_id"].astype("int64")
    return df[["customer_id", "date", "number_of_cds", "dollar_value"]]


def cdnow_dataset(out_dir, kind: str = "master") -> Path:
    """Write CDNOW as a hubnb dataset directory and return its path.

    One profile per customer (``account_created_at`` empty), one order per purchase record
    placed at noon UTC of its day (``signed_in`` false, ``value`` = dollar_value,
    ``source_name`` web); refunds, order_lines and hub_events are written empty.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tx = load_cdnow(kind)
    first = tx.groupby("customer_id")["date"].min()
    profiles = pd.DataFrame({
        "profile_id": first.index,
        "created_at": (first + pd.Timedelta(hours=12)).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "account_created_at": "",
        "email": "",
    })
    orders = pd.DataFrame({
        "order_id": range(1, len(tx) + 1),
        "profile_id": tx["customer_id"].to_numpy(),
        "placed_at": (tx["date"] + pd.Timedelta(hours=12)).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "value": tx["dollar_value"].round(2).to_numpy(),
        "source_name": "web",
        "integration": "cdnow",
        "is_subscription": False,
        "signed_in": False,
        "cancelled_at": "",
    })
    profiles.to_csv(out / "profiles.csv", index=False)
    orders.to_csv(out / "orders.csv", index=False)
    pd.DataFrame(columns=["refund_id", "order_id", "refunded_at", "amount"]).to_csv(
        out / "refunds.csv", index=False)
    pd.DataFrame(columns=["order_id", "line_id", "product_id", "product_name", "quantity",
                          "line_total", "added_from_hub"]).to_csv(out / "order_lines.csv",
                                                                  index=False)
    pd.DataFrame(columns=["event_id", "profile_id", "occurred_at", "event_type", "product_id",
                          "raw_metric"]).to_csv(out / "hub_events.csv", index=False)
    return out
