"""Which orders count for CLV, and the per-profile summaries built from them.

The rules (SPEC section 3, "CLV attributes"):

- the ``clv.orders`` filters: ``sources`` (keep only these ``source_name`` values),
  ``exclude_pos`` (``source_name == 'pos'``), ``exclude_subscriptions``,
  ``exclude_zero_value`` (an order whose ``value`` is 0);
- orders placed before the cut-off only: local midnight after ``as_of`` in ``timezone``;
- within ``history_days``: placed on one of the ``history_days`` local days ending on
  ``as_of`` (like ``last_N_days``);
- cancelled orders are out (cancelled before the cut-off: a cancellation we could not have
  seen on ``as_of`` does not count, which keeps a backtest honest);
- refunds made before the cut-off are netted from the order's value, never below 0; a fully
  refunded order (refunds >= value > 0) is out.

The model's unit is the *transaction*: a profile's orders on the same local day are one
transaction whose value is their sum (as in the CDNOW literature).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ..params import OrderFilter
from ..periods import local_dates, local_midnight_utc

COUNTED_COLUMNS = ["profile_id", "order_id", "placed_at", "local_date", "net_value"]


def cutoff_utc(as_of: dt.date, timezone: str) -> pd.Timestamp:
    """Local midnight after ``as_of``, in UTC: orders placed before it count."""
    return local_midnight_utc(as_of + dt.timedelta(days=1), timezone)


def counted_orders(orders: pd.DataFrame, refunds: pd.DataFrame | None,
                   order_filter: OrderFilter, as_of: dt.date, timezone: str,
                   history_days: int) -> pd.DataFrame:
    """The orders that count for CLV as of ``as_of``, with their net value.

    Parameters
    ----------
    orders, refunds : DataFrame
        The data contract's tables (``refunds`` may be None or empty).
    order_filter : OrderFilter
        The ``clv.orders`` params.
    as_of : date
        Last local day of data.
    timezone : str
        IANA time zone of the merchant's days.
    history_days : int
        Only orders placed on the ``history_days`` local days ending on ``as_of`` count.

    Returns
    -------
    DataFrame
        ``profile_id, order_id, placed_at, local_date, net_value`` sorted by profile and
        time; ``local_date`` is the local day as ``datetime64`` at midnight.
    """
    cutoff = cutoff_utc(as_of, timezone)
    start = local_midnight_utc(as_of - dt.timedelta(days=history_days - 1), timezone)
    o = orders
    keep = (o["placed_at"] < cutoff) & (o["placed_at"] >= start)
    if "cancelled_at" in o:
        keep &= ~(o["cancelled_at"].notna() & (o["cancelled_at"] < cutoff))
    if order_filter.sources is not None:
        keep &= _source(o).isin(list(order_filter.sources))
    if order_filter.exclude_pos:
        keep &= _source(o) != "pos"
    if order_filter.exclude_subscriptions and "is_subscription" in o:
        keep &= ~o["is_subscription"].fillna(False).astype(bool)
    value = o["value"].astype(float)
    if order_filter.exclude_zero_value:
        keep &= value > 0
    kept = o.loc[keep, ["order_id", "profile_id", "placed_at"]].copy()
    kept["value"] = value[keep].to_numpy()

    refunded = _refunded(refunds, cutoff)
    kept["refunded"] = kept["order_id"].map(refunded).fillna(0.0).astype(float)
    kept["net_value"] = (kept["value"] - kept["refunded"]).clip(lower=0.0)
    fully_refunded = (kept["refunded"] > 0) & (kept["refunded"] >= kept["value"])
    kept = kept[~fully_refunded]
    kept["local_date"] = local_dates(kept["placed_at"], timezone)
    kept = kept.sort_values(["profile_id", "placed_at", "order_id"], kind="stable")
    return kept[COUNTED_COLUMNS].reset_index(drop=True)


def _source(o: pd.DataFrame) -> pd.Series:
    if "source_name" not in o:
        return pd.Series("web", index=o.index)
    return o["source_name"].fillna("web").astype(str)


def _refunded(refunds: pd.DataFrame | None, cutoff: pd.Timestamp) -> pd.Series:
    if refunds is None or len(refunds) == 0:
        return pd.Series(dtype=float)
    r = refunds[refunds["refunded_at"] < cutoff]
    return r.groupby("order_id")["amount"].sum().astype(float)


def transactions(counted: pd.DataFrame) -> pd.DataFrame:
    """One row per profile and local day: the model's transactions.

    Returns ``profile_id, local_date, value`` (the day's net values summed), sorted.
    """
    t = (counted.groupby(["profile_id", "local_date"], sort=True)["net_value"].sum()
         .rename("value").reset_index())
    return t


def historical_attributes(counted: pd.DataFrame) -> pd.DataFrame:
    """The historical CLV attributes per profile with at least one counted order.

    ``historical_orders`` counts orders (not transactions); ``historical_clv`` sums net
    values; ``avg_days_between_orders`` is (last - first) / (orders - 1) in days between
    the local days of the first and last orders, null with one order.
    """
    g = counted.groupby("profile_id", sort=True)
    out = pd.DataFrame({
        "first_order_date": g["local_date"].min(),
        "last_order_date": g["local_date"].max(),
        "historical_orders": g["order_id"].count().astype("int64"),
        "historical_clv": g["net_value"].sum().astype(float),
    })
    span = (out["last_order_date"] - out["first_order_date"]).dt.days.astype(float)
    n = out["historical_orders"]
    out["avg_days_between_orders"] = (span / (n - 1)).where(n > 1)
    return out.reset_index()


def rfm_summary(counted: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Frequency, recency, age and mean repeat spend per profile, in days.

    As in Fader, Hardie and Lee (2005) and lifetimes' ``summary_data_from_transaction_data``:
    ``frequency`` (x) is the number of repeat transactions (local days with an order after
    the first), ``recency`` (t_x) the days from the first to the last transaction, ``T`` the
    days from the first transaction to ``as_of``, and ``monetary_value`` the mean value of
    the repeat transactions (0 for profiles without one), which the Gamma-Gamma model uses;
    ``litt`` the sum of the logs of the days between consecutive transactions, which
    MBG/CNBD-k's likelihood needs (Reutterer et al. 2020; BTYDplus's ``litt``).

    Returns
    -------
    DataFrame indexed by ``profile_id``.
    """
    t = transactions(counted)
    end = pd.Timestamp(as_of)
    g = t.groupby("profile_id", sort=True)
    first = g["local_date"].min()
    last = g["local_date"].max()
    n = g["local_date"].count()
    total = g["value"].sum()
    first_value = g["value"].first()
    x = (n - 1).astype("int64")
    repeat_total = total - first_value
    monetary = np.where(x > 0, repeat_total / x.clip(lower=1), 0.0)
    return pd.DataFrame({
        "frequency": x,
        "recency": (last - first).dt.days.astype("int64"),
        "T": (end - first).dt.days.astype("int64"),
        "monetary_value": monetary.astype(float),
        "litt": _log_gaps(t),
        "first_date": first,
    })


def _log_gaps(t: pd.DataFrame) -> np.ndarray:
    """Per profile (in ``t``'s sorted order), the sum of the logs of the days between its
    consecutive transaction days: MBG/CNBD-k's ``litt`` (0 with one transaction)."""
    pid = t["profile_id"].to_numpy()
    days = t["local_date"].to_numpy("datetime64[D]").astype(np.int64)
    same = np.zeros(len(t), bool)
    same[1:] = pid[1:] == pid[:-1]
    gaps = np.empty(len(t), np.int64)
    gaps[0] = 1
    gaps[1:] = days[1:] - days[:-1]
    logs = np.where(same, np.log(np.maximum(gaps, 1)), 0.0)
    starts = np.flatnonzero(~same)
    return np.add.reduceat(logs, starts) if len(t) else np.zeros(0)
