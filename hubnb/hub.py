"""The Customer Hub dashboard: its numbers for a period P and a comparison period C.

Pure computation (the Customer Hub dashboard, docs/customer_hub.md): DataFrames and parameters
in, frozen dataclasses and DataFrames out. :func:`customer_hub` computes every card of
the dashboard at once; the functions it calls (:func:`total_accounts`,
:func:`service_breakdown`, :func:`active_accounts`, :func:`attributed_lines`,
:func:`average_order_value`, :func:`reengagement_list`, :func:`live_state`) each compute
one rule and are what the tests pin down.

Timestamps are compared as int64 nanoseconds since the epoch (UTC) against the UTC
instants of local midnights, so a day with 23 or 25 hours is still exactly one local day
and no timestamp column is ever converted to local time in full.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .data import EVENT_TYPES
from .periods import Period, local_midnight_utc

#: The five service interaction types, in the order the dashboard shows them.
SERVICE_TYPES = ("order_tracked", "return_started", "coupon_applied", "help_clicked",
                 "chat_started")
#: Periods longer than this many days are graphed per week instead of per day.
DAILY_UP_TO_DAYS = 90
_US_PER_DAY = 86_400 * 10**6
_NAT = np.iinfo(np.int64).min


# --------------------------------------------------------------------------- results

@dataclass(frozen=True)
class Change:
    """A dashboard number in P, its value in C and the percent change.

    ``change_pct`` is 100 x (P - C) / C, unrounded; None where C is 0 or there is no
    comparison (``previous`` None). Values are kept as computed (metrics.json is unrounded,
    SPEC section 4): rounding is for display only.
    """

    value: float | int | None
    previous: float | int | None
    change_pct: float | None

    @classmethod
    def of(cls, value, previous) -> Change:
        return cls(value, previous, change_pct(value, previous))

    def as_dict(self) -> dict:
        return {"value": self.value, "previous": self.previous, "change_pct": self.change_pct}


@dataclass(frozen=True)
class Buckets:
    """The days (or weeks, for periods over 90 days) a period is graphed by."""

    starts: tuple[dt.date, ...]
    edges_us: np.ndarray = field(repr=False)  # len(starts) + 1 UTC instants, in µs
    unit: str                                  # "day" | "week"

    def index(self, instants_us: np.ndarray) -> np.ndarray:
        """The bucket of each instant (instants must lie inside the period)."""
        return np.searchsorted(self.edges_us, instants_us, side="right") - 1

    days: tuple[int, ...] = ()                 # local days in each bucket

    def frame_index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(list(self.starts)), name=f"{self.unit}_start")

    @property
    def partial_first_days(self) -> int | None:
        """Days in the first week when it is shorter than 7 (weeks only), else None."""
        if self.unit == "week" and self.days and self.days[0] < 7:
            return self.days[0]
        return None


@dataclass(frozen=True)
class OfflineSpan:
    """Consecutive local days of P or C on which the hub was not live."""

    start: dt.date
    end: dt.date
    reason: str          # "before launch" | "paused"
    in_period: str       # "period" | "comparison period" | "period and comparison period"
    launched_on: dt.date | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class LiveState:
    """Whether the hub was live in P and C, and the days it was not."""

    has_data: bool                    # False: "Customer Hub has no data yet"
    no_data_reason: str | None        # why not: "no_hub_data" | "launched_after_period"
                                      # | "not_live_in_period"; None with data
    comparison_live: bool             # False: C has no live day, so nothing to compare
    offline: tuple[OfflineSpan, ...]


@dataclass(frozen=True)
class PeriodNumbers:
    """The dashboard's measures over one period."""

    service_breakdown: dict[str, int]
    active_accounts: int
    revenue_generated: float
    average_order_value: float | None
    signed_in_orders: int

    @property
    def service_interactions(self) -> int:
        return int(sum(self.service_breakdown.values()))


@dataclass(frozen=True)
class HubDashboard:
    """Every card of the Customer Hub dashboard for period P against comparison C.

    Attributes
    ----------
    total_accounts : int
        Profiles with an account created on or before the last day of P.
    service_interactions, active_accounts, revenue_generated, average_order_value : Change
        The four compared measures; value/previous None where not measured (no hub data,
        or a comparison with no live day).
    orders, previous_orders : int or None
        Signed-in, not cancelled orders placed in P (and C): the base of the AOV.
    service_breakdown : dict of str to int
        Service interactions in P by type.
    service_series : DataFrame
        Service interactions per day (or week) of P: one column per type.
    aov_series : DataFrame
        Per day (or week) of P: ``orders`` and ``average_order_value`` (NaN without orders).
    products : DataFrame
        The View report: product_id, product, units, revenue, orders; by revenue.
    reengage : DataFrame
        The re-engagement list (see :func:`reengagement_list`).
    stagnant : tuple of str
        The measures among active_accounts and service_interactions that fell against C.
    """

    period: Period
    comparison: Period | None
    currency: str
    as_of: dt.date
    inactive_after_days: int
    attribution: str
    live: LiveState
    total_accounts: int
    service_interactions: Change
    active_accounts: Change
    revenue_generated: Change
    average_order_value: Change
    orders: int
    previous_orders: int | None
    service_breakdown: dict[str, int | None]
    service_series: pd.DataFrame
    aov_series: pd.DataFrame
    products: pd.DataFrame
    reengage: pd.DataFrame
    buckets: Buckets
    launched_on: dt.date | None = None

    @property
    def has_data(self) -> bool:
        return self.live.has_data

    @property
    def stagnant(self) -> tuple[str, ...]:
        fell = []
        for name in ("active_accounts", "service_interactions"):
            c = getattr(self, name)
            if c.value is not None and c.previous is not None and c.value < c.previous:
                fell.append(name)
        return tuple(fell)

    def metrics(self) -> dict:
        """The ``customer_hub`` section of metrics.json, in the shape of docs/data_contract.md §4."""
        aov = self.average_order_value.as_dict()
        aov["orders"] = int(self.orders)
        return {
            "total_accounts": int(self.total_accounts),
            "service_interactions": self.service_interactions.as_dict(),
            "active_accounts": self.active_accounts.as_dict(),
            "revenue_generated": self.revenue_generated.as_dict(),
            "average_order_value": aov,
            "service_breakdown": dict(self.service_breakdown),
        }


# --------------------------------------------------------------------------- helpers

def change_pct(value, previous) -> float | None:
    """100 x (value - previous) / previous, unrounded; None where previous is 0 or None."""
    if value is None or previous is None or previous == 0:
        return None
    return 100.0 * (float(value) - float(previous)) / float(previous)


def instants_us(timestamps: pd.Series) -> np.ndarray:
    """Tz-aware timestamps as int64 microseconds since the epoch (NaT: int64 min).

    A view, not a copy, when the column is already in microseconds (as Parquet and
    pandas 3 give it).
    """
    values = timestamps.array
    if not isinstance(values, pd.arrays.DatetimeArray):
        values = pd.DatetimeIndex(timestamps).array
    return values.as_unit("us").asi8


def _us(instant: pd.Timestamp) -> int:
    return instant.value // 1000    # Timestamp.value is in nanoseconds whatever its unit


def as_event_categories(event_type: pd.Series) -> pd.Categorical:
    """``event_type`` as a Categorical over EVENT_TYPES (factorized once: fast on text)."""
    if isinstance(event_type.dtype, pd.CategoricalDtype):
        # The data's own categories may be in any order: recode onto EVENT_TYPES.
        return event_type.array.set_categories(EVENT_TYPES)
    codes, uniques = pd.factorize(event_type)
    remap = pd.Index(EVENT_TYPES).get_indexer(uniques)
    return pd.Categorical.from_codes(remap[codes] if len(codes) else codes, EVENT_TYPES)


def _bounds(period: Period) -> tuple[int, int]:
    return _us(period.start_utc), _us(period.end_utc)


def _within(us: np.ndarray, period: Period) -> np.ndarray:
    lo, hi = _bounds(period)
    return (us >= lo) & (us < hi)


def period_buckets(period: Period) -> Buckets:
    """Local days of P; for periods over 90 days, 7-day weeks ending on P's last day.

    Weeks are counted back from the last day so the most recent week is whole; the first
    week holds the remaining days (``days % 7``) when the period is not whole weeks.
    """
    dates = period.dates()
    if period.days <= DAILY_UP_TO_DAYS:
        starts, unit = dates, "day"
    else:
        first = period.days % 7
        starts, unit = ([dates[0]] if first else []) + dates[first::7], "week"
    edges = [_us(local_midnight_utc(d, period.tz)) for d in starts] + [_us(period.end_utc)]
    ends = [*starts[1:], period.end + dt.timedelta(days=1)]
    days = tuple((b - a).days for a, b in zip(starts, ends))
    return Buckets(tuple(starts), np.asarray(edges, dtype=np.int64), unit, days)


# --------------------------------------------------------------------------- the rules

def total_accounts(profiles: pd.DataFrame, period: Period) -> int:
    """Profiles whose ``account_created_at`` falls on or before the last local day of P."""
    created = instants_us(profiles["account_created_at"])
    return int(((created != _NAT) & (created < _bounds(period)[1])).sum())


def service_breakdown(events: pd.DataFrame, period: Period) -> dict[str, int]:
    """Hub events in P of each service type (SERVICE_TYPES order)."""
    in_p = _within(instants_us(events["occurred_at"]), period)
    counts = events["event_type"][in_p].value_counts()
    return {t: int(counts.get(t, 0)) for t in SERVICE_TYPES}


def active_accounts(events: pd.DataFrame, period: Period) -> int:
    """Distinct profiles with a ``hub_opened`` event in P."""
    opened = (_within(instants_us(events["occurred_at"]), period)
              & (events["event_type"] == "hub_opened").to_numpy())
    return int(pd.unique(events["profile_id"].to_numpy()[opened]).size)


def _valid_orders(orders: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Orders placed in P and not cancelled, with ``placed_us``."""
    placed = instants_us(orders["placed_at"])
    keep = _within(placed, period) & orders["cancelled_at"].isna().to_numpy()
    out = orders.loc[keep, ["order_id", "profile_id", "value", "signed_in"]]
    return out.assign(placed_us=placed[keep])


def attributed_lines(orders: pd.DataFrame, order_lines: pd.DataFrame, hub_events: pd.DataFrame,
                     period: Period, attribution_window_days: int,
                     has_added_from_hub: bool = True) -> pd.DataFrame:
    """The order lines whose revenue the hub generated, in orders placed in P, not cancelled.

    A line is attributed where ``added_from_hub`` is true. Where that column is absent
    (``has_added_from_hub`` False) or a line's value is null, the line is attributed where
    the order's profile had a ``hub_add_to_cart`` event for the line's product_id at most
    ``attribution_window_days`` x 24 hours before the order's ``placed_at`` (both ends
    included; an event after the order does not count). Other lines of the same order do
    not count.

    Returns
    -------
    DataFrame
        order_id, line_id, product_id, product_name, quantity, line_total, profile_id and
        ``by`` (``"added_from_hub"`` or ``"window"``: which rule attributed the line).
    """
    cols = ["order_id", "line_id", "product_id", "product_name", "quantity", "line_total"]
    valid = _valid_orders(orders, period)[["order_id", "profile_id", "placed_us"]]
    lines = order_lines.loc[order_lines["order_id"].isin(valid["order_id"])]
    flag = (lines["added_from_hub"] if has_added_from_hub
            else pd.Series(pd.NA, index=lines.index, dtype="boolean")).astype("boolean")
    direct = flag.fillna(False).to_numpy(dtype=bool)
    unknown = flag.isna().to_numpy()
    out = lines.loc[direct, cols].merge(valid[["order_id", "profile_id"]], on="order_id")
    out["by"] = "added_from_hub"
    if unknown.any():
        candidates = lines.loc[unknown, cols].merge(valid, on="order_id")
        hit = _within_window(candidates, hub_events, attribution_window_days)
        window = candidates.loc[hit, cols + ["profile_id"]].assign(by="window")
        out = pd.concat([out, window], ignore_index=True) if len(out) else window
    return out.reset_index(drop=True)


def _within_window(candidates: pd.DataFrame, hub_events: pd.DataFrame,
                   window_days: int) -> np.ndarray:
    """For each candidate line: a hub_add_to_cart of the same profile and product in the window."""
    if not len(candidates) or not len(hub_events):
        return np.zeros(len(candidates), dtype=bool)
    window_us = window_days * _US_PER_DAY
    placed = candidates["placed_us"].to_numpy()
    ev_us = instants_us(hub_events["occurred_at"])
    keep = ((ev_us >= placed.min() - window_us) & (ev_us <= placed.max())
            & (hub_events["event_type"] == "hub_add_to_cart").to_numpy()
            & hub_events["product_id"].notna().to_numpy())
    if not keep.any():
        return np.zeros(len(candidates), dtype=bool)
    carts = pd.DataFrame({
        "profile_id": _plain(hub_events["profile_id"].loc[keep]),
        "product_id": _plain(hub_events["product_id"].loc[keep]),
        "cart_us": ev_us[keep],
    }).sort_values("cart_us", kind="stable", ignore_index=True)
    carts["cart_row"] = np.arange(len(carts))
    left = pd.DataFrame({
        "profile_id": _plain(candidates["profile_id"]),
        "product_id": _plain(candidates["product_id"]),
        "at_us": placed, "row": np.arange(len(candidates)),
    }).sort_values("at_us", kind="stable")
    # The latest add-to-cart at or before the order, of the same profile and product.
    matched = pd.merge_asof(left, carts, left_on="at_us", right_on="cart_us",
                            by=["profile_id", "product_id"], direction="backward")
    # cart_us comes back as float (NaN where unmatched), too coarse for microseconds, so
    # the matched cart's instant is looked up by its row number instead.
    cart_row = matched["cart_row"].to_numpy()
    ok = ~np.isnan(cart_row)
    cart_us = carts["cart_us"].to_numpy()[cart_row[ok].astype(np.int64)]
    ok[ok] = matched["at_us"].to_numpy()[ok] - cart_us <= window_us
    hit = np.zeros(len(candidates), dtype=bool)
    hit[matched["row"].to_numpy()[ok]] = True
    return hit


def _plain(ids: pd.Series) -> np.ndarray:
    # merge_asof wants its `by` keys in one plain dtype on both sides (load_dataset has
    # already made each id family all-integer or all-text).
    if pd.api.types.is_integer_dtype(ids.dtype):
        return ids.to_numpy(dtype=np.int64)
    return ids.astype(str).to_numpy(dtype=object)


def revenue_generated(lines: pd.DataFrame) -> float:
    """Sum of ``line_total`` of the attributed lines (see :func:`attributed_lines`), unrounded."""
    return float(lines["line_total"].sum())


def product_report(lines: pd.DataFrame) -> pd.DataFrame:
    """The View report: the products behind revenue_generated, by revenue (then product_id).

    product is ``product_name`` (its most frequent spelling) or, without one, the product_id.
    """
    if not len(lines):
        return pd.DataFrame({"product_id": pd.Series([], dtype=object),
                             "product": pd.Series([], dtype=object),
                             "units": pd.Series([], dtype="int64"),
                             "revenue": pd.Series([], dtype="float64"),
                             "orders": pd.Series([], dtype="int64")})
    grouped = lines.groupby("product_id", sort=False)
    out = pd.DataFrame({
        "units": grouped["quantity"].sum().astype("int64"),
        "revenue": grouped["line_total"].sum().astype("float64"),
        "orders": grouped["order_id"].nunique().astype("int64"),
    })
    spellings = (lines.groupby(["product_id", "product_name"]).size().rename("n")
                 .reset_index().sort_values(["product_id", "n"], ascending=[True, False],
                                            kind="stable")
                 .drop_duplicates("product_id").set_index("product_id")["product_name"])
    out["product"] = spellings.reindex(out.index)
    out = out.reset_index()
    out["product"] = out["product"].astype(object).where(out["product"].notna(),
                                                         out["product_id"].astype(str))
    out = out.sort_values(["revenue", "product_id"], ascending=[False, True], kind="stable")
    return out[["product_id", "product", "units", "revenue", "orders"]].reset_index(drop=True)


def average_order_value(orders: pd.DataFrame, period: Period) -> tuple[float | None, int]:
    """Mean ``value`` of the signed-in, not cancelled orders placed in P, and their count.

    The mean is unrounded (metrics.json keeps it whole; rounding is for display only).
    """
    valid = _valid_orders(orders, period)
    values = valid["value"].to_numpy()[valid["signed_in"].to_numpy(dtype=bool)]
    if not values.size:
        return None, 0
    return float(values.mean()), int(values.size)


def reengagement_list(profiles: pd.DataFrame, hub_events: pd.DataFrame, as_of: dt.date,
                      tz: str, inactive_after_days: int) -> pd.DataFrame:
    """Accounts to re-engage: no ``hub_opened`` for more than ``inactive_after_days``.

    An account is a profile with ``account_created_at`` on or before the local day
    ``as_of``. Its last open is its latest hub_opened on or before ``as_of``;
    days_since_last_open is as_of minus the local day of that open. It is listed where
    days_since_last_open > inactive_after_days or it never opened the hub. Never-opened
    accounts come first, then the longest-inactive; ties by profile_id.

    Returns
    -------
    DataFrame
        profile_id, email, account_created_at, last_hub_opened_at (UTC; NaT if never),
        days_since_last_open (nullable integer; null if never).
    """
    end_us = _us(local_midnight_utc(as_of + dt.timedelta(days=1), tz))
    created = instants_us(profiles["account_created_at"])
    is_account = (created != _NAT) & (created < end_us)
    accounts = profiles.loc[is_account, ["profile_id", "email", "account_created_at"]]
    ev_us = instants_us(hub_events["occurred_at"])
    opened = (ev_us < end_us) & (hub_events["event_type"] == "hub_opened").to_numpy()
    # Each open's account (-1: not an account), then the latest open per account.
    pos = pd.Index(accounts["profile_id"]).get_indexer(hub_events["profile_id"].to_numpy()[opened])
    known = pos >= 0
    last = np.full(len(accounts), _NAT, dtype=np.int64)
    np.maximum.at(last, pos[known], ev_us[opened][known])
    # More than N days before as_of <=> before local midnight starting day as_of - N.
    cutoff = _us(local_midnight_utc(as_of - dt.timedelta(days=inactive_after_days), tz))
    listed = last < cutoff                       # never opened: last is _NAT, the minimum
    out = accounts.loc[listed]
    last_at = pd.Series(last[listed].view("M8[us]"), index=out.index).dt.tz_localize("UTC")
    local_day = last_at.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    days = (pd.Timestamp(as_of) - local_day).dt.days.astype("Int64")
    out = out.assign(last_hub_opened_at=last_at, days_since_last_open=days)
    order = out.assign(_never=days.isna(), _days=days.fillna(0))
    order = order.sort_values(["_never", "_days", "profile_id"],
                              ascending=[False, False, True], kind="stable")
    return order.drop(columns=["_never", "_days"]).reset_index(drop=True)


def live_state(hub_params, period: Period, comparison: Period | None,
               any_hub_data: bool) -> LiveState:
    """The hub's live state over P and C (days before launched_on or inside paused).

    ``has_data`` is False when there is no hub data at all (``any_hub_data`` False: no
    hub_events and no account) or when no day of P is live (launched after P, or paused
    throughout it). ``comparison_live`` is False when C exists but has no live day.
    """
    spans = []
    live_days = {}
    for name, p in (("period", period), ("comparison period", comparison)):
        if p is None:
            continue
        reasons = [_offline_reason(d, hub_params) for d in p.dates()]
        live_days[name] = sum(r is None for r in reasons)
        spans.extend(_runs(p.dates(), reasons, name, hub_params.launched_on))
    spans = _merge_same_days(spans)
    reason = None
    if not any_hub_data:
        reason = "no_hub_data"
    elif live_days["period"] == 0:
        lo = hub_params.launched_on
        reason = ("launched_after_period" if lo is not None and lo > period.end
                  else "not_live_in_period")
    return LiveState(has_data=reason is None, no_data_reason=reason,
                     comparison_live=comparison is not None and live_days["comparison period"] > 0,
                     offline=tuple(spans))


def _offline_reason(day: dt.date, hub_params) -> str | None:
    if hub_params.launched_on is not None and day < hub_params.launched_on:
        return "before launch"
    if any(r.start <= day <= r.end for r in hub_params.paused):
        return "paused"
    return None


def _runs(days, reasons, where, launched_on) -> list[OfflineSpan]:
    runs, start = [], None
    for i, (d, r) in enumerate(zip(days, reasons)):
        if r is None:
            continue
        if start is None or reasons[i - 1] != r:
            start = d
        if i + 1 == len(days) or reasons[i + 1] != r:
            runs.append(OfflineSpan(start, d, r, where, launched_on))
            start = None
    return runs


def _merge_same_days(spans: list[OfflineSpan]) -> list[OfflineSpan]:
    # A custom comparison may overlap P: name shared offline days once.
    out: dict[tuple, OfflineSpan] = {}
    for s in spans:
        key = (s.start, s.end, s.reason)
        if key in out:
            out[key] = OfflineSpan(s.start, s.end, s.reason, "period and comparison period",
                                   s.launched_on)
        else:
            out[key] = s
    return sorted(out.values(), key=lambda s: (s.start, s.in_period))


# --------------------------------------------------------------------------- the dashboard

def _period_numbers(orders, order_lines, events, period: Period, window_days: int,
                    has_flag: bool) -> tuple[PeriodNumbers, pd.DataFrame]:
    lines = attributed_lines(orders, order_lines, events, period, window_days, has_flag)
    aov, n = average_order_value(orders, period)
    return PeriodNumbers(service_breakdown(events, period), active_accounts(events, period),
                         revenue_generated(lines), aov, n), lines


def _service_series(events, period: Period, buckets: Buckets) -> pd.DataFrame:
    ev_us = instants_us(events["occurred_at"])
    in_p = _within(ev_us, period)
    position = pd.Index(SERVICE_TYPES).get_indexer(EVENT_TYPES)   # -1: not a service type
    codes = position[as_event_categories(events["event_type"][in_p]).codes]
    keep = codes >= 0
    b = buckets.index(ev_us[in_p][keep])
    n, k = len(buckets.starts), len(SERVICE_TYPES)
    grid = np.bincount(b * k + codes[keep], minlength=n * k).reshape(n, k)
    return pd.DataFrame(grid, index=buckets.frame_index(), columns=list(SERVICE_TYPES))


def _aov_series(orders, period: Period, buckets: Buckets) -> pd.DataFrame:
    valid = _valid_orders(orders, period)
    signed = valid["signed_in"].to_numpy(dtype=bool)
    b = buckets.index(valid["placed_us"].to_numpy()[signed])
    n = len(buckets.starts)
    count = np.bincount(b, minlength=n)
    total = np.bincount(b, weights=valid["value"].to_numpy()[signed], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return pd.DataFrame({"orders": count.astype("int64"), "average_order_value": mean},
                        index=buckets.frame_index())


def customer_hub(data, params) -> HubDashboard:
    """Every card of the Customer Hub dashboard (docs/customer_hub.md) for ``params.period``.

    Parameters
    ----------
    data : hubnb.data.Dataset
        The merchant's tables (profiles, orders, order_lines, hub_events are used).
    params : hubnb.params.Params
        ``period``, ``comparison``, ``hub``, ``as_of``, ``timezone``, ``currency``.
    """
    period, comparison, hub = params.period, params.comparison, params.hub
    events = data.hub_events
    any_hub_data = bool(len(events)) or bool(data.profiles["account_created_at"].notna().any())
    live = live_state(hub, period, comparison, any_hub_data)
    # Work on the slices that can matter: orders placed in P or C, their lines, and the
    # events of P, C and the attribution window before them.
    window = hub.attribution_window_days
    lo, hi = _bounds(period)
    if comparison is not None:
        c_lo, c_hi = _bounds(comparison)
        lo, hi = min(lo, c_lo), max(hi, c_hi)
    ev_us = instants_us(events["occurred_at"])
    near_events = events.loc[(ev_us >= lo - window * _US_PER_DAY) & (ev_us < hi),
                             ["profile_id", "occurred_at", "event_type", "product_id"]]
    near_events["event_type"] = as_event_categories(near_events["event_type"])
    placed = instants_us(data.orders["placed_at"])
    orders = data.orders.loc[(placed >= lo) & (placed < hi)]
    lines = data.order_lines.loc[data.order_lines["order_id"].isin(orders["order_id"])]
    has_flag = data.has_added_from_hub
    now, attributed = _period_numbers(orders, lines, near_events, period, window, has_flag)
    before = None
    if comparison is not None:
        before, _ = _period_numbers(orders, lines, near_events, comparison, window, has_flag)
    # Hub measures of a period the hub was not live in are not measurements: None.
    hub_now = now if live.has_data else None
    hub_before = before if (before is not None and live.comparison_live) else None

    def compared(name):
        v = getattr(hub_now, name) if hub_now is not None else None
        p = getattr(hub_before, name) if hub_now is not None and hub_before is not None else None
        return Change.of(v, p)

    buckets = period_buckets(period)
    if has_flag and lines["added_from_hub"].notna().all():
        attribution = "added_from_hub"
    elif has_flag:
        attribution = "added_from_hub, with the attribution window where it is null"
    else:
        attribution = "attribution window"
    return HubDashboard(
        period=period, comparison=comparison, currency=params.currency, as_of=params.as_of,
        inactive_after_days=hub.inactive_after_days, attribution=attribution, live=live,
        launched_on=hub.launched_on,
        total_accounts=total_accounts(data.profiles, period),
        service_interactions=compared("service_interactions"),
        active_accounts=compared("active_accounts"),
        revenue_generated=compared("revenue_generated"),
        # AOV is a measure of checkouts (orders), not of hub events: always measured.
        average_order_value=Change.of(now.average_order_value,
                                      before.average_order_value if before else None),
        orders=now.signed_in_orders,
        previous_orders=before.signed_in_orders if before else None,
        service_breakdown=(dict(now.service_breakdown) if live.has_data
                           else {t: None for t in SERVICE_TYPES}),
        service_series=_service_series(near_events, period, buckets),
        aov_series=_aov_series(orders, period, buckets),
        products=product_report(attributed),
        reengage=reengagement_list(data.profiles, events, params.as_of, params.timezone,
                                   hub.inactive_after_days),
        buckets=buckets,
    )
