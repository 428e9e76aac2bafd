"""Synthetic demo merchant: a complete dataset directory with known true parameters.

:func:`generate_demo_data` writes a merchant dataset (one file per table) whose
purchase process follows a BG/NBD model and whose spend follows a Gamma-Gamma
model with known parameters, plus a Customer Hub activity log, so that both
dashboards can be run end to end and the CLV fit can be checked against the truth.

What the truth covers
---------------------
The true parameters in ``truth.json`` describe exactly the **model orders**:

* ``source_name`` in ``{"web", "iphone", "android"}`` (web or app),
* ``is_subscription`` False,
* ``cancelled_at`` null,
* not fully refunded (refunds of the order sum to less than its value),
* ``value`` > 0 (always true here).

Those orders are generated first, per profile (time unit: day):

* ``lambda ~ Gamma(shape=r, rate=alpha)``, ``p_drop ~ Beta(a, b)``;
* the first purchase is at the profile's creation (``created_at`` is 1-30
  minutes before it); after each *repeat* purchase the customer dies with
  probability ``p_drop`` (as in BG/NBD proper: nobody drops out at the first
  purchase, which is what eq. 9 of Fader, Hardie & Lee 2005 assumes); while
  alive, inter-purchase times are ``Exponential(lambda)``;
  observation ends at the end of the ``as_of`` local day (America/New_York);
* ``nu ~ Gamma(shape=q, rate=v)`` per profile, and each order's **net** value
  (``value`` minus its refunds) is ``Gamma(shape=p, rate=nu)``, rounded to cents
  (at least 0.01).

About 5 % of the model orders carry a *partial* refund (a tenth of them two
partial refunds). The Gamma-Gamma truth is stated on net values because a CLV
fit nets refunds out (docs/clv.md): the Gamma draw is the order's net value and
its ``value`` is raised by the refunds (the first refund is 10-70 % of the
value, a second one 10-50 % of the rest), so the refunds always sum to less
than the value and the order stays a model order. All refunds are made before
the end of ``as_of``; a fit as of an earlier day (a backtest) sees some of those
orders at their gross value. Gross values of the model orders are *not*
Gamma-Gamma: with the refunds drawn as shares of a Gamma value instead, the
net values' within-customer spread grows and the fitted ``p`` drops by about
0.8 (about 5.2 instead of 6 over 14 seeds of 20,000 profiles).

The model treats same-day orders of a profile as one transaction, which this
continuous-time process does not: about 1 % of the repeat purchases fall on the
local day of the profile's previous one and merge with it, mostly those of the
most frequent buyers. That approximation is not corrected for; it raises the
fitted ``alpha`` by about 3 % (about 62 instead of 60 at 300,000 profiles; at
20,000 profiles that is about one posterior standard deviation) and leaves
``a`` and ``b`` unchanged.

On top of the model orders, *extra* orders are added that a CLV filter removes:

* cancelled orders (about 3 % of the model-order count; web/app; ``cancelled_at``
  set; about a quarter of them fully refunded);
* point-of-sale orders (about 4 %; ``source_name`` ``"pos"``; a few fully refunded);
* subscription orders (monthly, from about 1.5 % of profiles; ``source_name``
  ``"subscription_contract"`` as Shopify writes it, ``is_subscription`` True;
  a few fully refunded).

The Customer Hub (launched 2025-03-01, paused 2026-10-05..2026-10-07, inclusive
local days) is not part of the truth: about 40 % of profiles create an account
on a live day after launch and after their creation, and produce hub events only
on live local days from account creation until they lose interest (or
``as_of``). Activity has a weekly cycle, a slow upward trend and a shift in both
volume and event mix over the last 60 days, so the last 30 days differ from the
30 days before. About 12 % of the model orders of a profile placed after its
account creation get a ``hub_add_to_cart`` event 10 minutes to 3 days before the
order (on a live day) for one of the order's products, and that order line has
``added_from_hub`` True. Those orders are unchanged otherwise, so the purchase
process is not disturbed.

Files and types
---------------
One file per table, ``<table>.parquet`` (or ``<table>.csv``), plus ``truth.json``.
Identifiers are int64 (``profile_id`` 1..profiles in creation order; ``order_id``,
``line_id``, ``refund_id``, ``event_id`` 1..n in time order), except
``product_id`` (``"SKU-0001"``) and ``asset_id``. Timestamps are UTC at whole
seconds: ``timestamp[us, tz=UTC]`` in parquet, ISO 8601 with ``+00:00`` in CSV.
Money is float64 in major units (USD), rounded to cents; an order's ``value`` is
the sum of its lines' ``line_total`` (to the cent).

``profiles``
    profile_id int64, created_at ts, account_created_at ts (null: no hub
    account), email string.
``orders``
    order_id int64, profile_id int64, placed_at ts, value float64, source_name
    string, integration string (``"shopify"``), is_subscription bool, signed_in
    bool, cancelled_at ts (nullable).
``order_lines``
    order_id int64, line_id int64, product_id string, product_name string,
    quantity int64, line_total float64, added_from_hub bool.
``refunds``
    refund_id int64, order_id int64, refunded_at ts, amount float64.
``hub_events``
    event_id int64, profile_id int64, occurred_at ts, event_type string,
    raw_metric string, product_id string (only for ``hub_add_to_cart``).
``marketing_assets``
    asset_type, asset_id, name, status, channels, audiences, form_type (forms
    only) strings; scheduled_at ts (nullable), updated_at ts.
``predictions`` (only with ``with_predictions=True``)
    profile_id int64, historic_clv, predicted_clv, total_clv float64,
    historic_number_of_orders int64, predicted_number_of_orders,
    average_order_value, average_days_between_orders (nullable),
    churn_probability float64, expected_date_of_next_order ts (nullable).
    ``predicted_number_of_orders`` is the BG/NBD conditional expectation over
    the next 365 days (times log-normal noise, sd 0.15), ``predicted_clv`` that
    times the Gamma-Gamma conditional mean spend, ``churn_probability`` is
    ``1 - P(alive)`` (0 for one-order profiles, as BG/NBD implies), and
    ``expected_date_of_next_order`` is only set for repeat customers expected to
    order within two years. Only the model orders enter the historic columns.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .folders import aside, publish

__all__ = [
    "generate_demo_data",
    "TRUE_BG_NBD",
    "true_mbg_cnbd",
    "TRUE_GAMMA_GAMMA",
    "HUB_EVENT_TYPES",
    "RAW_METRICS",
    "MODEL_SOURCES",
    "TABLES",
]

#: True BG/NBD parameters (time unit: day; ``alpha`` in days).
TRUE_BG_NBD = {"r": 0.25, "alpha": 60.0, "a": 0.8, "b": 2.5}
#: True MBG/CNBD-k parameters of a merchant with regular reorders (``--regularity K``):
#: phase rates lambda ~ Gamma(r, alpha), alpha scaled by k so that the mean gap between
#: orders, k alpha / (r - 1) over customers, is 90 days whatever k.
def true_mbg_cnbd(k: int) -> dict:
    return {"k": int(k), "r": 3.0, "alpha": 180.0 / int(k), "a": 0.6, "b": 4.0}


#: True Gamma-Gamma parameters (mean transaction value ``p * v / (q - 1)`` = 72 USD).
TRUE_GAMMA_GAMMA = {"p": 6.0, "q": 3.5, "v": 30.0}
#: Source names of the orders the truth covers.
MODEL_SOURCES = ("web", "iphone", "android")

TIMEZONE = "America/New_York"
CURRENCY = "USD"
HUB_LAUNCHED_ON = _dt.date(2025, 3, 1)
HUB_PAUSED = ((_dt.date(2026, 10, 5), _dt.date(2026, 10, 7)),)
HISTORY_DAYS = 1000
ACCOUNT_SHARE = 0.40
EVENTS_PER_PROFILE = 10.0

HUB_EVENT_TYPES = (
    "hub_opened", "order_tracked", "return_started", "coupon_applied",
    "help_clicked", "chat_started", "hub_add_to_cart", "other",
)
#: Source-system metric name(s) of each hub event type.
RAW_METRICS = {
    "hub_opened": ("Opened Customer Hub",),
    "order_tracked": ("Tracked Order",),
    "return_started": ("Started Return",),
    "coupon_applied": ("Applied Coupon",),
    "help_clicked": ("Clicked Help",),
    "chat_started": ("Started Chat",),
    "hub_add_to_cart": ("Added to Cart from Customer Hub",),
    "other": ("Viewed Wishlist", "Updated Communication Preferences", "Viewed Loyalty Points"),
}
#: Event mix before the last 60 days, and over the last 30 days (ramp between).
_MIX_EARLY = np.array([0.36, 0.20, 0.06, 0.07, 0.08, 0.04, 0.11, 0.08])
_MIX_LATE = np.array([0.33, 0.24, 0.04, 0.11, 0.06, 0.05, 0.11, 0.06])

_TS = pa.timestamp("us", tz="UTC")
#: Arrow schema of every table (``predictions`` only written on request).
TABLES = {
    "profiles": pa.schema([("profile_id", pa.int64()), ("created_at", _TS),
                           ("account_created_at", _TS), ("email", pa.string())]),
    "orders": pa.schema([("order_id", pa.int64()), ("profile_id", pa.int64()),
                         ("placed_at", _TS), ("value", pa.float64()),
                         ("source_name", pa.string()), ("integration", pa.string()),
                         ("is_subscription", pa.bool_()), ("signed_in", pa.bool_()),
                         ("cancelled_at", _TS)]),
    "order_lines": pa.schema([("order_id", pa.int64()), ("line_id", pa.int64()),
                              ("product_id", pa.string()), ("product_name", pa.string()),
                              ("quantity", pa.int64()), ("line_total", pa.float64()),
                              ("added_from_hub", pa.bool_())]),
    "refunds": pa.schema([("refund_id", pa.int64()), ("order_id", pa.int64()),
                          ("refunded_at", _TS), ("amount", pa.float64())]),
    "hub_events": pa.schema([("event_id", pa.int64()), ("profile_id", pa.int64()),
                             ("occurred_at", _TS), ("event_type", pa.string()),
                             ("raw_metric", pa.string()), ("product_id", pa.string())]),
    "marketing_assets": pa.schema([("asset_type", pa.string()), ("asset_id", pa.string()),
                                   ("name", pa.string()), ("status", pa.string()),
                                   ("channels", pa.string()), ("audiences", pa.string()),
                                   ("form_type", pa.string()), ("scheduled_at", _TS),
                                   ("updated_at", _TS)]),
    "predictions": pa.schema([("profile_id", pa.int64()), ("historic_clv", pa.float64()),
                              ("predicted_clv", pa.float64()), ("total_clv", pa.float64()),
                              ("historic_number_of_orders", pa.int64()),
                              ("predicted_number_of_orders", pa.float64()),
                              ("average_order_value", pa.float64()),
                              ("average_days_between_orders", pa.float64()),
                              ("churn_probability", pa.float64()),
                              ("expected_date_of_next_order", _TS)]),
}

_DAY = 86400
_MATERIALS = ("Merino Wool", "Organic Cotton", "Recycled Nylon", "Alpaca", "Linen",
              "Cashmere", "Waxed Canvas", "Full-Grain Leather", "Bamboo", "Polar Fleece")
_ITEMS = ("Beanie", "Scarf", "Socks", "Gloves", "Sweater", "Cardigan", "T-Shirt", "Hoodie",
          "Tote Bag", "Backpack", "Cap", "Blanket", "Joggers", "Vest", "Mittens", "Headband",
          "Leggings", "Polo", "Throw Pillow", "Wallet")
N_PRODUCTS = len(_MATERIALS) * len(_ITEMS)


# --------------------------------------------------------------------------- helpers

def _catalogue() -> tuple[list[str], list[str]]:
    """Product ids and names, the same for every seed (``SKU-0001`` .. ``SKU-0200``)."""
    names = [f"{m} {i}" for i in _ITEMS for m in _MATERIALS]
    perm = np.random.default_rng(20260301).permutation(len(names))
    return [f"SKU-{k + 1:04d}" for k in range(len(names))], [names[k] for k in perm]


def _ts(seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """UTC timestamp array (µs) from int64 epoch seconds; ``valid`` False gives null."""
    us = np.asarray(seconds, dtype=np.int64) * 1_000_000
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(us.view("datetime64[us]"), mask=mask).cast(_TS)


def _dict(codes: np.ndarray, labels, valid: np.ndarray | None = None) -> pa.Array:
    """Dictionary-encoded string array (written as plain strings in parquet)."""
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    idx = pa.array(np.asarray(codes, dtype=np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(labels), pa.string()))


def _money(cents: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(cents, dtype=np.int64) / 100.0, 2)


def _trunc_exp(rng: np.random.Generator, mean: float, upper: np.ndarray) -> np.ndarray:
    """Exponential(mean) truncated to ``[0, upper]`` (vectorised inverse CDF)."""
    upper = np.maximum(np.asarray(upper, dtype=np.float64), 0.0)
    u = rng.random(upper.shape)
    return -mean * np.log1p(-u * -np.expm1(-upper / mean))


#: Rows per block where a per-event computation runs in blocks to bound its temporaries.
_BLOCK = 4_000_000


def _cum_at(t: np.ndarray, knots: np.ndarray, cum: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Value of the piecewise-linear cumulative measure at times ``t`` (seconds)."""
    d = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, len(w) - 1)
    frac = np.clip((t - knots[d]) / (knots[d + 1] - knots[d]), 0.0, 1.0)
    return cum[d] + w[d] * frac


def _cum_inv(u: np.ndarray, knots: np.ndarray, cum: np.ndarray, w: np.ndarray):
    """Times (float seconds) at which the cumulative measure reaches ``u``, and their day."""
    d = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, len(w) - 1)
    wd = w[d]
    safe = np.where(wd > 0, wd, 1.0)
    frac = np.clip((u - cum[d]) / safe, 1e-6, 1 - 1e-6)
    frac = np.where(wd > 0, frac, np.nan)  # lands on a dead day: caller drops it
    return knots[d] + frac * (knots[d + 1] - knots[d]), d


def _segment_starts(counts: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _as_date(as_of) -> _dt.date:
    if isinstance(as_of, _dt.datetime):
        return as_of.date()
    if isinstance(as_of, _dt.date):
        return as_of
    return _dt.date.fromisoformat(str(as_of))


# --------------------------------------------------------------------------- generator

def generate_demo_data(out_dir, profiles: int, seed: int,
                       as_of=_dt.date(2026, 11, 22), fmt: str = "parquet",
                       with_predictions: bool = False, regularity: int = 0) -> dict:
    """Write a synthetic merchant dataset directory with known true parameters.

    Parameters
    ----------
    out_dir : str or path-like
        Directory to create. It is written as a sibling temporary directory and
        renamed into place at the end, so a crash never leaves a half-written
        dataset. An existing *empty* directory or an earlier demo dataset
        (one with ``truth.json``) is replaced; any other existing path is refused.
    profiles : int
        Number of profiles (each makes at least one order).
    seed : int
        Seed of the random generator; the same seed gives byte-identical files.
    as_of : datetime.date, default 2026-11-22
        Last local day (America/New_York) of the data; history spans the
        ``HISTORY_DAYS`` (1000) days up to it.
    fmt : {"parquet", "csv"}
        File format of the tables.
    with_predictions : bool, default False
        Also write a ``predictions`` table (Klaviyo-style predicted CLV) computed
        from the true parameters with the BG/NBD closed form plus noise, for a
        random 90 % of the profiles.
    regularity : int, default 0
        0: purchases from BG/NBD (``TRUE_BG_NBD``). K >= 1: from MBG/CNBD-K
        (:func:`true_mbg_cnbd`): Erlang-K gaps between a customer's orders (K = 1
        exponential: MBG/NBD), a dropout chance right after every order, the first
        included. The truth then has ``mbg_cnbd`` (k, r, alpha, a, b) instead of
        ``bg_nbd``.

    Returns
    -------
    dict
        The truth, as written to ``out_dir/truth.json``: ``bg_nbd`` (r, alpha,
        a, b), ``gamma_gamma`` (p, q, v), ``time_unit``, ``seed``, ``profiles``,
        ``as_of``, ``hub`` (``launched_on``, ``paused``), ``timezone``,
        ``currency``, ``model_orders`` (which orders the truth covers) and
        ``rows`` (rows per table).

    Raises
    ------
    ValueError
        Bad ``profiles`` or ``fmt``.
    FileExistsError
        ``out_dir`` exists and is neither empty nor an earlier demo dataset.
    """
    profiles = int(profiles)
    if profiles < 1:
        raise ValueError(f"profiles must be >= 1, got {profiles}")
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    regularity = int(regularity)
    if not 0 <= regularity <= 12:
        raise ValueError(f"regularity must be from 1 to 12 (or 0: BG/NBD), got {regularity}")
    as_of = _as_date(as_of)
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir() or (any(out_dir.iterdir())
                                    and not (out_dir / "truth.json").exists()):
            raise FileExistsError(
                f"{out_dir} exists and is not an earlier demo dataset; choose another --out")

    state = _run_steps(profiles, int(seed), as_of, regularity)
    purchases = ({"mbg_cnbd": true_mbg_cnbd(regularity)} if regularity
                 else {"bg_nbd": dict(TRUE_BG_NBD)})
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = aside(out_dir)   # swept by a later publish if this process is killed
    try:
        rows = _write_tables(_table_stream(state, with_predictions), tmp, fmt)
        del state
        truth = {
            **purchases,
            "gamma_gamma": dict(TRUE_GAMMA_GAMMA),
            "time_unit": "day",
            "seed": int(seed),
            "profiles": profiles,
            "as_of": as_of.isoformat(),
            "hub": {"launched_on": HUB_LAUNCHED_ON.isoformat(),
                    "paused": [{"start": s.isoformat(), "end": e.isoformat()}
                               for s, e in HUB_PAUSED]},
            "timezone": TIMEZONE,
            "currency": CURRENCY,
            "model_orders": {"source_name": list(MODEL_SOURCES), "is_subscription": False,
                             "cancelled": False, "fully_refunded": False,
                             "same_day_orders": "not merged by the generator",
                             "gamma_gamma_value": "net of refunds"},
            "rows": {name: rows[name] for name in _TABLE_ORDER if name in rows},
        }
        (tmp / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
        publish(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return truth


def _write_tables(stream, where: Path, fmt: str) -> dict:
    """Write each ``(name, table)`` of ``stream`` to ``where`` and return the row counts.

    One thread writes a table while the stream builds the next (pyarrow releases the GIL
    while encoding), so at most two tables are held at once."""
    from concurrent.futures import ThreadPoolExecutor

    def write(name, table):
        if fmt == "parquet":
            # store_schema=False: dictionary columns read back as plain strings.
            pq.write_table(table, where / f"{name}.parquet", store_schema=False)
        else:
            cols = []
            for field, col in zip(table.schema, table.columns):
                if pa.types.is_timestamp(field.type):
                    col = pc.strftime(col.cast(pa.timestamp("s", tz="UTC")),
                                      format="%Y-%m-%dT%H:%M:%S+00:00")
                elif pa.types.is_dictionary(field.type):
                    col = col.cast(pa.string())
                cols.append(col)
            pacsv.write_csv(pa.table(cols, names=table.column_names),
                            where / f"{name}.csv")

    rows, pending = {}, None
    with ThreadPoolExecutor(max_workers=1) as pool:
        for name, table in stream:
            rows[name] = table.num_rows
            if pending is not None:
                pending.result()
            pending = pool.submit(write, name, table)
            del table
        if pending is not None:
            pending.result()
    return rows


# --------------------------------------------------------------------------- steps
#
# The generator is a fixed sequence of named steps (``_STEPS``) over one
# ``_DemoState``. Each step reads what earlier steps left on the state, draws
# from its *own* random stream and sets its outputs on the state, so a step can
# be run alone on a hand-made state, and a change in how many numbers one step
# draws never shifts another step's draws. The step order, the stream each step
# uses and the order of the draws within a step fix the output for a seed
# (``generate_demo_data`` promises byte-identical files): changing any of them
# changes every dataset generated so far.

#: Kinds of orders (``_DemoState.o_kind``); only ``_MODEL`` orders are in the truth.
_MODEL, _CANCELLED, _POS, _SUBSCRIPTION = 0, 1, 2, 3
#: ``source_name`` labels (``_DemoState.o_src`` indexes them).
_SOURCES = MODEL_SOURCES + ("pos", "subscription_contract")
_ADD_TO_CART = HUB_EVENT_TYPES.index("hub_add_to_cart")


def _product_popularity() -> np.ndarray:
    """Zipf-like product weights (sum 1), shared by order lines and hub add-to-cart events."""
    pop = 1.0 / (np.arange(N_PRODUCTS) + 5.0) ** 1.1
    pop /= pop.sum()
    return pop


class _Streams(NamedTuple):
    """One independent random generator per step, spawned from the seed.

    The field order is the spawn order and so part of the output: children of a
    ``SeedSequence`` depend only on their index, so a new stream may be added
    at the end (or ``spare`` taken) without changing the others.
    """

    prof: np.random.Generator
    bg: np.random.Generator
    val: np.random.Generator
    extra: np.random.Generator
    lines: np.random.Generator
    ref: np.random.Generator
    acct: np.random.Generator
    ev: np.random.Generator
    link: np.random.Generator
    sign: np.random.Generator
    pred: np.random.Generator
    spare: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> "_Streams":
        return cls(*(np.random.default_rng(s)
                     for s in np.random.SeedSequence(seed).spawn(len(cls._fields))))


@dataclass(frozen=True, eq=False)
class _DayGrid:
    """The ``HISTORY_DAYS`` local days (America/New_York) up to ``as_of``.

    Attributes
    ----------
    tz : ZoneInfo
        The merchant's time zone.
    first_day : datetime.date
        First local day of the history.
    n_days : int
        Number of local days.
    knots : ndarray of float64, shape (n_days + 1,)
        Local midnights in UTC epoch seconds; day ``k`` is ``[knots[k], knots[k+1])``
        (23, 24 or 25 hours: the DST changes are real).
    t0, t_end : float
        Start of the first day and end of the ``as_of`` day (``knots[0]``, ``knots[-1]``).
    day_no : ndarray of int, shape (n_days,)
        ``0 .. n_days - 1``.
    live : ndarray of bool, shape (n_days,)
        The Customer Hub is up that day (launched, not paused).
    weekday : ndarray of int, shape (n_days,)
        Monday 0 .. Sunday 6.
    w_live, c_live : ndarray of float64
        ``live`` as weights per day and their cumulative sum from 0 (length
        ``n_days + 1``): the "live time" measure the hub steps draw on.
    """

    tz: ZoneInfo
    first_day: _dt.date
    n_days: int
    knots: np.ndarray
    t0: float
    t_end: float
    day_no: np.ndarray
    live: np.ndarray
    weekday: np.ndarray
    w_live: np.ndarray
    c_live: np.ndarray

    @classmethod
    def ending(cls, as_of: _dt.date, n_days: int = HISTORY_DAYS) -> "_DayGrid":
        """The grid of the ``n_days`` local days that end with ``as_of``."""
        tz = ZoneInfo(TIMEZONE)
        first_day = as_of - _dt.timedelta(days=n_days - 1)
        knots = np.array([int(_dt.datetime.combine(first_day + _dt.timedelta(days=k),
                                                   _dt.time(), tzinfo=tz).timestamp())
                          for k in range(n_days + 1)], dtype=np.float64)
        day_dates = [first_day + _dt.timedelta(days=k) for k in range(n_days)]
        live = np.array([d >= HUB_LAUNCHED_ON and not any(s <= d <= e for s, e in HUB_PAUSED)
                         for d in day_dates])
        w_live = live.astype(np.float64)
        return cls(tz=tz, first_day=first_day, n_days=n_days, knots=knots,
                   t0=knots[0], t_end=knots[-1], day_no=np.arange(n_days), live=live,
                   weekday=np.array([d.weekday() for d in day_dates]),
                   w_live=w_live, c_live=np.concatenate([[0.0], np.cumsum(w_live)]))


@dataclass(eq=False)
class _DemoState:
    """What the generator's steps share: inputs, the day grid and every step's output.

    Times are float64 UTC epoch seconds (whole seconds), money is int64 cents,
    profiles and orders are 0-based row positions (ids are added when the
    tables are assembled). Fields after ``grid`` are None until the step that
    sets them has run; each step's docstring says what it reads and sets.
    """

    n: int
    as_of: _dt.date
    rng: _Streams
    grid: _DayGrid
    regularity: int = 0  # 0: BG/NBD purchases; K: MBG/CNBD-K
    # _profiles
    first: np.ndarray | None = None  # first purchase (a model order), sorted
    created: np.ndarray | None = None  # profile creation, 1-30 min before ``first``
    # _model_orders
    nu: np.ndarray | None = None  # per-profile Gamma-Gamma rate
    bg_owner: np.ndarray | None = None
    bg_t: np.ndarray | None = None
    bg_cents: np.ndarray | None = None  # net value (the Gamma draw)
    bg_src: np.ndarray | None = None
    # _extra_orders: all orders, sorted by (time, profile)
    o_owner: np.ndarray | None = None
    o_t: np.ndarray | None = None
    o_cents: np.ndarray | None = None  # value; _refunds raises partially refunded ones
    o_kind: np.ndarray | None = None  # _MODEL, _CANCELLED, _POS, _SUBSCRIPTION
    o_src: np.ndarray | None = None  # index into _SOURCES
    o_can: np.ndarray | None = None  # cancelled_at, NaN when not cancelled
    # _hub_accounts
    has_acct: np.ndarray | None = None
    acct_t: np.ndarray | None = None  # t_end where there is no account
    # _signed_in (_hub_add_to_cart sets more)
    after_acct: np.ndarray | None = None
    o_signed: np.ndarray | None = None
    # _refunds
    o_net: np.ndarray | None = None  # value minus refunds of model orders
    ref_o: np.ndarray | None = None
    ref_t: np.ndarray | None = None
    ref_c: np.ndarray | None = None
    # _order_lines
    k_lines: np.ndarray | None = None  # lines per order
    l_order: np.ndarray | None = None
    l_start: np.ndarray | None = None  # first line of each order
    l_cents: np.ndarray | None = None
    l_prod: np.ndarray | None = None
    l_qty: np.ndarray | None = None
    # _hub_events (drawn events), then _event_log (final, sorted log)
    ev_t: np.ndarray | None = None
    ev_owner: np.ndarray | None = None
    ev_type: np.ndarray | None = None
    ev_prod: np.ndarray | None = None  # -1: no product
    # _hub_add_to_cart
    l_hub: np.ndarray | None = None
    lk_t: np.ndarray | None = None
    lk_owner: np.ndarray | None = None
    lk_prod: np.ndarray | None = None
    # _event_log
    ev_raw: np.ndarray | None = None
    raw_labels: list[str] | None = None

    @classmethod
    def new(cls, n: int, seed: int, as_of: _dt.date) -> "_DemoState":
        """The state before any step: ``n`` profiles, streams of ``seed``, the grid of ``as_of``."""
        return cls(n=n, as_of=as_of, rng=_Streams.from_seed(seed), grid=_DayGrid.ending(as_of))


def _profiles(s: _DemoState) -> None:
    """Draw each profile's first purchase and creation time.

    First purchases follow a mildly growing acquisition rate over the history
    (density proportional to ``1 + 0.6 x`` on ``x`` in [0, 1], drawn by inverse
    CDF) and are sorted, so profile ids are in creation order.

    Reads ``n``, ``grid``; draws from ``rng.prof``; sets ``first`` and ``created``
    (1-30 minutes before ``first``).
    """
    n, t0, t_end = s.n, s.grid.t0, s.grid.t_end
    g = 0.6
    u = s.rng.prof.random(n)
    x = (-1.0 + np.sqrt(1.0 + 2.0 * g * u * (1.0 + g / 2.0))) / g
    first = np.sort(t0 + x * (t_end - t0))
    s.first = np.minimum(np.floor(first), t_end - 1)
    s.created = s.first - s.rng.prof.integers(60, 1800, n)


def _model_orders(s: _DemoState) -> None:
    """Draw the BG/NBD purchases and their Gamma-Gamma net values (the truth).

    Reads ``n``, ``grid``, ``first``; draws from ``rng.bg`` (purchase times) and
    ``rng.val`` (values, sources); sets ``nu``, ``bg_owner``, ``bg_t``,
    ``bg_cents`` and ``bg_src`` (the first ``n`` orders are the first purchases).
    """
    n, t_end, first = s.n, s.grid.t_end, s.first
    bg, gg = TRUE_BG_NBD, TRUE_GAMMA_GAMMA
    r_bg, r_val = s.rng.bg, s.rng.val
    T_days = (t_end - first) / _DAY
    if s.regularity:
        rep_owner, rep_t = _regular_orders(s, T_days)
        rep_t = np.minimum(np.floor(first[rep_owner] + rep_t * _DAY), t_end - 1)
        s.bg_owner = np.concatenate([np.arange(n), rep_owner])
        s.bg_t = np.concatenate([first, rep_t])
        s.nu = r_val.gamma(gg["q"], 1.0 / gg["v"], n)
        s.bg_cents = np.maximum(np.round(r_val.gamma(gg["p"], 1.0 / s.nu[s.bg_owner]) * 100), 1)
        s.bg_src = r_val.choice(3, size=s.bg_owner.size, p=[0.72, 0.16, 0.12])
        return
    lam = r_bg.gamma(bg["r"], 1.0 / bg["alpha"], n)
    p_drop = np.clip(r_bg.beta(bg["a"], bg["b"], n), 1e-12, 1.0)
    # BG/NBD (FHL 2005): no dropout at the first purchase; after each *repeat*
    # purchase the customer dies with probability p_drop, so the number of
    # repeat purchases before death is Geometric(p_drop) on {1, 2, ...}.
    n_repeat_max = r_bg.geometric(p_drop)
    # Poisson process while alive: m arrivals uniform on [0, T), keep the first
    # n_repeat_max of each profile (vectorised: sort by (profile, time), rank).
    m = r_bg.poisson(lam * T_days)
    owner = np.repeat(np.arange(n), m)
    arr = r_bg.random(owner.size) * T_days[owner]
    order = np.argsort(owner * (T_days.max() + 1.0) + arr, kind="stable")
    arr = arr[order]
    rank = np.arange(owner.size) - _segment_starts(m)[owner]
    keep = rank < n_repeat_max[owner]
    rep_owner, rep_t = owner[keep], np.floor(first[owner[keep]] + arr[keep] * _DAY)
    rep_t = np.minimum(rep_t, t_end - 1)
    s.bg_owner = np.concatenate([np.arange(n), rep_owner])
    s.bg_t = np.concatenate([first, rep_t])
    s.nu = r_val.gamma(gg["q"], 1.0 / gg["v"], n)
    s.bg_cents = np.maximum(np.round(r_val.gamma(gg["p"], 1.0 / s.nu[s.bg_owner]) * 100), 1)
    s.bg_src = r_val.choice(3, size=s.bg_owner.size, p=[0.72, 0.16, 0.12])  # web, iphone, android


def _regular_orders(s: _DemoState, T_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MBG/CNBD-k repeat orders (owner, days after the first order): Erlang-k gaps of phase
    rate lambda ~ Gamma(r, alpha); right after each order, the first included, dropout
    with probability p ~ Beta(a, b). Drawn round by round over the customers still
    buying."""
    n, truth, rng = s.n, true_mbg_cnbd(s.regularity), s.rng.bg
    k = truth["k"]
    lam = rng.gamma(truth["r"], 1.0 / truth["alpha"], n)
    p_drop = np.clip(rng.beta(truth["a"], truth["b"], n), 1e-12, 1.0)
    who = np.flatnonzero(rng.random(n) >= p_drop)       # survived the first order
    t = np.zeros(n)
    owners, times = [], []
    while who.size:
        t[who] += rng.gamma(k, 1.0 / lam[who])
        inside = who[t[who] < T_days[who]]
        owners.append(inside)
        times.append(t[inside].copy())
        who = inside[rng.random(inside.size) >= p_drop[inside]]
    owner = np.concatenate(owners) if owners else np.zeros(0, np.int64)
    days = np.concatenate(times) if times else np.zeros(0)
    return owner, days


def _extra_orders(s: _DemoState) -> None:
    """Add the orders a CLV filter removes and sort all orders by time.

    Cancelled orders (3 % of the model-order count, web/app), point-of-sale
    orders (4 %) and monthly subscriptions (from 1.5 % of the profiles), at
    random times after the owner's first purchase.

    Reads ``n``, ``grid``, ``first``, ``nu``, ``bg_*``; draws from ``rng.extra``;
    sets the order columns ``o_owner``, ``o_t``, ``o_cents``, ``o_kind``,
    ``o_src`` and ``o_can``, sorted by (time, profile) so that order ids are in
    time order.
    """
    n, t_end, first, gg = s.n, s.grid.t_end, s.first, TRUE_GAMMA_GAMMA
    r_extra = s.rng.extra
    n_bg = s.bg_owner.size

    def random_times(k, min_gap):
        own = r_extra.integers(0, n, k)
        span = np.maximum(t_end - min_gap - first[own], 0.0)
        return own, np.floor(first[own] + r_extra.random(k) * span)

    n_can = int(round(0.03 * n_bg))
    can_owner, can_t = random_times(n_can, 3600)
    can_cents = np.maximum(np.round(r_extra.gamma(gg["p"], 1.0 / s.nu[can_owner]) * 100), 1)
    can_src = r_extra.choice(3, size=n_can, p=[0.72, 0.16, 0.12])
    can_at = np.minimum(can_t + r_extra.integers(300, 2 * _DAY, n_can), t_end - 1)
    can_at = np.maximum(can_at, can_t)

    n_pos = int(round(0.04 * n_bg))
    pos_owner, pos_t = random_times(n_pos, 0)
    pos_cents = np.maximum(np.round(r_extra.gamma(4.0, 12.0, n_pos) * 100), 1)

    subs = np.flatnonzero(r_extra.random(n) < 0.015)
    s_start = first[subs] + r_extra.random(subs.size) * (t_end - first[subs])
    s_max = np.floor((t_end - 1 - s_start) / (30 * _DAY)).astype(np.int64) + 1
    s_n = np.minimum(r_extra.geometric(1 / 6, subs.size), s_max)
    sub_owner = np.repeat(subs, s_n)
    k_in = np.arange(sub_owner.size) - _segment_starts(s_n)[np.repeat(np.arange(subs.size), s_n)]
    sub_t = np.floor(np.repeat(s_start, s_n) + k_in * 30 * _DAY)
    sub_cents = np.repeat(np.round(r_extra.uniform(25, 60, subs.size)) * 100 - 1, s_n)

    n_sub = sub_owner.size
    o_owner = np.concatenate([s.bg_owner, can_owner, pos_owner, sub_owner])
    o_t = np.concatenate([s.bg_t, can_t, pos_t, sub_t])
    o_cents = np.concatenate([s.bg_cents, can_cents, pos_cents, sub_cents]).astype(np.int64)
    o_kind = np.concatenate([np.full(n_bg, _MODEL, np.int8), np.full(n_can, _CANCELLED, np.int8),
                             np.full(n_pos, _POS, np.int8), np.full(n_sub, _SUBSCRIPTION, np.int8)])
    o_src = np.concatenate([s.bg_src, can_src, np.full(n_pos, _SOURCES.index("pos")),
                            np.full(n_sub, _SOURCES.index("subscription_contract"))])
    o_can = np.concatenate([np.full(n_bg, np.nan), can_at, np.full(n_pos + n_sub, np.nan)])
    srt = np.lexsort((o_owner, o_t))
    s.o_owner, s.o_t, s.o_cents, s.o_kind, s.o_src, s.o_can = (
        a[srt] for a in (o_owner, o_t, o_cents, o_kind, o_src, o_can))


def _hub_accounts(s: _DemoState) -> None:
    """Give about 40 % of the profiles a Customer Hub account.

    The account is created on a live day, after launch and at least a minute
    after the profile, with a front-loaded delay (exponential, mean 45 live
    days, truncated to the live time left); profiles with no live time left get
    none.

    Reads ``n``, ``grid``, ``created``; draws from ``rng.acct``; sets
    ``has_acct`` and ``acct_t`` (whole seconds; ``t_end`` without an account).
    """
    g, r_acct = s.grid, s.rng.acct
    knots, c_live, w_live, t_end = g.knots, g.c_live, g.w_live, g.t_end
    launch_t = knots[int(np.clip((HUB_LAUNCHED_ON - g.first_day).days, 0, g.n_days))]
    start = np.maximum(s.created + 60, launch_t)
    c_lo = _cum_at(start, knots, c_live, w_live)
    room = c_live[-1] - c_lo
    has_acct = (r_acct.random(s.n) < ACCOUNT_SHARE) & (room > 0.01)
    delay = _trunc_exp(r_acct, 45.0, room)
    acct_t, _ = _cum_inv(c_lo + np.minimum(delay, np.maximum(room - 1e-4, 0)),
                         knots, c_live, w_live)
    has_acct &= np.isfinite(acct_t)
    acct_t = np.where(has_acct, np.floor(np.nan_to_num(acct_t, nan=t_end)), t_end)
    s.has_acct = has_acct & (acct_t < t_end)
    s.acct_t = acct_t


def _signed_in(s: _DemoState) -> None:
    """Mark half of the orders placed after the owner's account creation as signed in.

    Reads ``o_owner``, ``o_t``, ``has_acct``, ``acct_t``; draws from ``rng.sign``;
    sets ``after_acct`` and ``o_signed`` (``_hub_add_to_cart`` adds more).
    """
    after_acct = s.has_acct[s.o_owner] & (s.o_t >= s.acct_t[s.o_owner])
    s.after_acct = after_acct
    s.o_signed = after_acct & (s.rng.sign.random(s.o_t.size) < 0.5)


def _refunds(s: _DemoState) -> None:
    """Draw partial refunds of model orders and full refunds of extra orders.

    Runs before the order lines because a partial refund raises its order's
    value: the Gamma-Gamma truth is on *net* values, what a CLV fit sees, so a
    partially refunded model order keeps its Gamma draw as net value and its
    value becomes that plus the refunds (the first refund 10-70 % of the value,
    a second one, for a tenth of them, 10-50 % of the rest). The refunds of an
    order therefore sum to less than its value and it stays a model order.
    Full refunds hit a quarter of the cancelled orders (after the cancellation)
    and a few POS and subscription orders. All refunds fall before ``t_end``.

    Reads ``grid``, ``o_t``, ``o_cents``, ``o_kind``, ``o_can``; draws from
    ``rng.ref``; sets ``o_net`` (the values before this step), ``o_cents`` (a
    new array, raised values) and the refunds ``ref_o`` (order row),
    ``ref_t``, ``ref_c`` sorted by (time, order).
    """
    t_end, r_ref = s.grid.t_end, s.rng.ref
    o_t, o_kind, o_can = s.o_t, s.o_kind, s.o_can
    o_net = s.o_cents  # value minus refunds (model orders; extras are not used)
    o_cents = o_net.copy()
    ref_o, ref_t, ref_c = [], [], []
    cand = np.flatnonzero((o_kind == _MODEL) & (o_t < t_end - 7200))
    part = cand[r_ref.random(cand.size) < 0.05]
    frac = r_ref.uniform(0.1, 0.7, part.size)
    second = r_ref.random(part.size) < 0.1
    frac2 = r_ref.uniform(0.1, 0.5, part.size)
    net = o_cents[part]
    # at least a cent per refund, so a refund is never 0 and the net stays the draw
    gross = np.maximum(np.round(net / ((1 - frac) * np.where(second, 1 - frac2, 1.0))),
                       net + 1 + second).astype(np.int64)
    total = gross - net
    a1 = np.where(second, np.clip(np.round(gross * frac), 1, total - 1), total).astype(np.int64)
    a2 = total - a1
    o_cents[part] = gross
    t1 = o_t[part] + 60 + np.floor(_trunc_exp(r_ref, 10 * _DAY, t_end - o_t[part] - 3600))
    ref_o += [part]; ref_t += [t1]; ref_c += [a1]
    t2 = t1 + 60 + np.floor(_trunc_exp(r_ref, 5 * _DAY, t_end - t1 - 61))
    ref_o += [part[second]]; ref_t += [t2[second]]; ref_c += [a2[second]]
    full_p = np.select([o_kind == _CANCELLED, o_kind == _POS, o_kind == _SUBSCRIPTION],
                       [0.25, 0.04, 0.03], 0.0)
    full = np.flatnonzero((r_ref.random(o_t.size) < full_p) & (o_t < t_end - 7200))
    base_t = np.where(np.isnan(o_can[full]), o_t[full], o_can[full])
    tf = np.minimum(base_t + 60 + np.floor(_trunc_exp(r_ref, 3 * _DAY, t_end - base_t - 61)),
                    t_end - 1)
    tf = np.maximum(tf, o_t[full] + 1)
    ref_o += [full]; ref_t += [tf]; ref_c += [o_cents[full]]
    ref_o, ref_t, ref_c = (np.concatenate(a) for a in (ref_o, ref_t, ref_c))
    rs = np.lexsort((ref_o, ref_t))
    s.ref_o, s.ref_t, s.ref_c = ref_o[rs], ref_t[rs], ref_c[rs]
    s.o_net, s.o_cents = o_net, o_cents


def _order_lines(s: _DemoState) -> None:
    """Split each order into 1-3 lines of distinct products.

    Line totals are integer cents, at least one each, summing exactly to the
    order's value (Gamma(2) shares, the last line takes the rounding rest), so
    ``value`` equals the sum of ``line_total`` to the cent.

    Reads ``o_cents``; draws from ``rng.lines``; sets ``k_lines``, ``l_order``
    (order row of each line, lines grouped by order), ``l_start``, ``l_cents``,
    ``l_prod`` (catalogue index) and ``l_qty``.
    """
    r_lines, o_cents = s.rng.lines, s.o_cents
    n_ord = o_cents.size
    k_lines = r_lines.choice(np.array([1, 2, 3]), size=n_ord, p=[0.55, 0.30, 0.15])
    k_lines = np.minimum(k_lines, o_cents)  # a 2-cent order cannot have 3 lines
    l_order = np.repeat(np.arange(n_ord), k_lines)
    n_lines = l_order.size
    l_start = _segment_starts(k_lines)
    l_pos = np.arange(n_lines) - l_start[l_order]
    w = r_lines.gamma(2.0, 1.0, n_lines)
    w /= np.bincount(l_order, weights=w, minlength=n_ord)[l_order]
    l_cents = np.floor(w * (o_cents - k_lines)[l_order]).astype(np.int64) + 1
    last = l_start + k_lines - 1
    l_cents[last] = o_cents - (np.bincount(l_order, weights=l_cents, minlength=n_ord)
                               .astype(np.int64) - l_cents[last])
    l_prod = r_lines.choice(N_PRODUCTS, size=n_lines, p=_product_popularity())
    for _ in range(8):  # distinct products within an order (up to 3 lines: look 2 back)
        dup = np.zeros(n_lines, dtype=bool)
        for back in (1, 2):
            j = np.flatnonzero(l_pos >= back)
            dup[j] |= l_prod[j] == l_prod[j - back]
        if not dup.any():
            break
        l_prod[dup] = (l_prod[dup] + r_lines.integers(1, N_PRODUCTS, dup.sum())) % N_PRODUCTS
    s.k_lines, s.l_order, s.l_start = k_lines, l_order, l_start
    s.l_cents, s.l_prod = l_cents, l_prod
    s.l_qty = r_lines.choice(np.array([1, 2, 3]), size=n_lines, p=[0.75, 0.18, 0.07])


def _hub_events(s: _DemoState) -> None:
    """Draw the hub activity of the accounts: Poisson counts on a weighted live-time measure.

    Each account is active on live days from its creation until it loses
    interest (exponential, mean 300 days) with a Gamma(0.7) engagement; the
    day weights carry a weekly cycle, a slow upward trend and a volume shift
    over the last 60 days (ramping in over 30), and the event mix moves from
    ``_MIX_EARLY`` to ``_MIX_LATE`` along the same ramp. The total is scaled to
    about ``EVENTS_PER_PROFILE`` events per profile.

    Reads ``n``, ``grid``, ``has_acct``, ``acct_t``; draws from ``rng.ev``; sets
    ``ev_t`` (float seconds, NaN when a draw lands on a dead day), ``ev_owner``,
    ``ev_type`` (index into ``HUB_EVENT_TYPES``) and ``ev_prod`` (-1 except
    for add-to-cart events). ``_event_log`` finishes the log.
    """
    g, r_ev, n = s.grid, s.rng.ev, s.n
    knots, n_days, live, day_no = g.knots, g.n_days, g.live, g.day_no
    first_live = int(np.argmax(live)) if live.any() else n_days
    trend = 1.0 + 0.5 * np.clip((day_no - first_live) / max(n_days - first_live, 1), 0.0, 1.0)
    week = np.array([1.0, 1.05, 1.0, 1.0, 0.95, 0.8, 0.85])[g.weekday]
    shift = np.clip((day_no - (n_days - 60)) / 30.0, 0.0, 1.0)  # 0 .. ramp .. 1 (last 30 d)
    w_ev = g.w_live * trend * week * (1.0 + 0.15 * shift)
    c_ev = np.concatenate([[0.0], np.cumsum(w_ev)])
    accts = np.flatnonzero(s.has_acct)
    a_t = s.acct_t[accts]
    a_end = np.minimum(g.t_end, a_t + r_ev.exponential(300 * _DAY, accts.size))
    e_lo = _cum_at(a_t, knots, c_ev, w_ev)
    expo = np.maximum(_cum_at(a_end, knots, c_ev, w_ev) - e_lo, 0.0)
    engage = r_ev.gamma(0.7, 1 / 0.7, accts.size)
    scale = EVENTS_PER_PROFILE * n / max(float((engage * expo).sum()), 1e-12)
    n_ev = r_ev.poisson(engage * expo * scale)
    # the largest arrays of the run (about 100M events at 10M profiles): built in place,
    # and inverted a block at a time
    ev_a = np.repeat(np.arange(accts.size, dtype=np.int32), n_ev)
    ev_u = r_ev.random(ev_a.size)
    ev_u *= expo[ev_a]
    ev_u += e_lo[ev_a]
    ev_t = np.empty(ev_u.size)
    ev_day = np.empty(ev_u.size, dtype=np.int32)
    for lo in range(0, ev_u.size, _BLOCK):
        ev_t[lo:lo + _BLOCK], ev_day[lo:lo + _BLOCK] = _cum_inv(ev_u[lo:lo + _BLOCK],
                                                                knots, c_ev, w_ev)
    ev_owner = accts.astype(np.int32)[ev_a]  # profiles < 2**31
    del ev_a, ev_u  # the largest arrays of the run: free them before the next draws
    cum_early, cum_late = np.cumsum(_MIX_EARLY), np.cumsum(_MIX_LATE)
    sh = shift[ev_day]
    del ev_day
    uu = r_ev.random(ev_t.size)
    ev_type = np.zeros(ev_t.size, dtype=np.int8)
    for k in range(len(HUB_EVENT_TYPES) - 1):
        ev_type += uu > ((1 - sh) * cum_early[k] + sh * cum_late[k])
    del sh, uu
    s.ev_prod = np.where(ev_type == _ADD_TO_CART,
                         r_ev.choice(N_PRODUCTS, size=ev_t.size, p=_product_popularity()),
                         -1).astype(np.int16)
    s.ev_t, s.ev_owner, s.ev_type = ev_t, ev_owner, ev_type


def _hub_add_to_cart(s: _DemoState) -> None:
    """Link about 12 % of the model orders placed after account creation to the hub.

    Each linked order gets a ``hub_add_to_cart`` event 10 minutes to 3 days
    before it (kept only on a live day, after the account's creation) for the
    product of one of its lines, which is marked ``added_from_hub``; the order
    counts as signed in. Nothing else about the order changes, so the purchase
    process (the truth) is untouched.

    Reads ``grid``, ``o_owner``, ``o_t``, ``o_kind``, ``after_acct``,
    ``o_signed``, ``acct_t``, ``k_lines``, ``l_start``, ``l_prod``; draws from
    ``rng.link``; sets ``l_hub``, ``o_signed`` (a new array) and the link
    events ``lk_t``, ``lk_owner``, ``lk_prod``.
    """
    g, r_link = s.grid, s.rng.link
    o_owner, o_t = s.o_owner, s.o_t
    cand = np.flatnonzero((s.o_kind == _MODEL) & s.after_acct)
    cand = cand[r_link.random(cand.size) < 0.12]
    lk_t = o_t[cand] - r_link.integers(600, 3 * _DAY, cand.size)
    lk_day = np.searchsorted(g.knots, lk_t, side="right") - 1
    ok = (lk_t >= s.acct_t[o_owner[cand]]) & (lk_day >= 0) & (lk_day < g.n_days)
    ok[ok] = g.live[lk_day[ok]]
    cand, lk_t = cand[ok], lk_t[ok]
    pick = np.floor(r_link.random(cand.size) * s.k_lines[cand]).astype(np.int64)
    lk_line = s.l_start[cand] + pick  # one of the order's lines, uniformly
    l_hub = np.zeros(s.l_prod.size, dtype=bool)
    l_hub[lk_line] = True
    o_signed = s.o_signed.copy()
    o_signed[cand] = True
    s.l_hub, s.o_signed = l_hub, o_signed
    s.lk_t, s.lk_owner, s.lk_prod = lk_t, o_owner[cand], s.l_prod[lk_line]


def _event_log(s: _DemoState) -> None:
    """Merge the drawn and the linked hub events into the final, sorted log.

    Keeps only events at whole seconds on live local days, from the account's
    creation and before ``t_end`` (a safety net: the draws already aim there),
    sorts them by (time, profile) so event ids are in time order, and names
    each event's source metric (``"other"`` spread over its few raw metrics).

    Reads ``grid``, ``acct_t``, ``ev_*``, ``lk_*``; draws from ``rng.ev`` (after
    ``_hub_events``); replaces ``ev_t``, ``ev_owner``, ``ev_type``, ``ev_prod``
    and sets ``ev_raw`` (index into ``raw_labels``) and ``raw_labels``.
    """
    g = s.grid
    # one array at a time, each drawn array dropped as soon as its merged copy exists: at
    # 10M profiles each is about 100M events
    ev_t = np.floor(np.concatenate([s.ev_t, s.lk_t.astype(np.float64)]))
    s.ev_t = None
    ev_owner = np.concatenate([s.ev_owner, s.lk_owner.astype(s.ev_owner.dtype)])
    s.ev_owner = None
    good = np.isfinite(ev_t) & (ev_t < g.t_end) & (ev_t >= s.acct_t[ev_owner])
    d_chk = np.clip(np.searchsorted(g.knots, np.where(good, ev_t, g.t0), side="right") - 1,
                    0, g.n_days - 1)
    good &= g.live[d_chk]
    del d_chk
    ev_t, ev_owner = ev_t[good], ev_owner[good]
    es = np.lexsort((ev_owner, ev_t))
    ev_t = ev_t[es]
    ev_owner = ev_owner[es]
    ev_type = np.concatenate([s.ev_type, np.full(s.lk_t.size, _ADD_TO_CART, np.int8)])[good][es]
    s.ev_type = None
    ev_prod = np.concatenate([s.ev_prod, s.lk_prod.astype(s.ev_prod.dtype)])[good][es]
    s.ev_prod = None
    del good, es

    raw_labels, raw_first = [], []
    for name in HUB_EVENT_TYPES:
        raw_first.append(len(raw_labels))
        raw_labels.extend(RAW_METRICS[name])
    ev_raw = np.asarray(raw_first, dtype=np.int16)[ev_type]
    other = ev_type == HUB_EVENT_TYPES.index("other")
    ev_raw[other] += s.rng.ev.integers(0, len(RAW_METRICS["other"]), int(other.sum()))
    s.ev_t, s.ev_owner, s.ev_type, s.ev_prod = ev_t, ev_owner, ev_type, ev_prod
    s.ev_raw, s.raw_labels = ev_raw, raw_labels


#: The generator, in order (see the note above ``_MODEL``: the order is part of the output).
_STEPS = (_profiles, _model_orders, _extra_orders, _hub_accounts, _signed_in, _refunds,
          _order_lines, _hub_events, _hub_add_to_cart, _event_log)


def _build_tables(n: int, seed: int, as_of: _dt.date, with_predictions: bool,
                  regularity: int = 0) -> dict:
    """Run every step of ``_STEPS`` on a fresh state and assemble the arrow tables."""
    return _assemble_tables(_run_steps(n, seed, as_of, regularity), with_predictions)


def _run_steps(n: int, seed: int, as_of: _dt.date, regularity: int = 0) -> "_DemoState":
    s = _DemoState.new(n, seed, as_of)
    s.regularity = regularity
    for step in _STEPS:
        step(s)
    return s


#: The tables in the order of ``truth.json``'s ``rows`` (and of :func:`_assemble_tables`).
_TABLE_ORDER = ("profiles", "orders", "order_lines", "refunds", "hub_events",
                "marketing_assets", "predictions")


def _assemble_tables(s: _DemoState, with_predictions: bool) -> dict:
    """Arrow tables (``TABLES`` schemas) from a state all of ``_STEPS`` have run on,
    in ``_TABLE_ORDER`` (:func:`_table_stream` builds them one at a time)."""
    tables = dict(_table_stream(s, with_predictions))
    return {name: tables[name] for name in _TABLE_ORDER if name in tables}


def _table_stream(s: _DemoState, with_predictions: bool):
    """Yield ``(name, arrow table)`` for every table, largest first, and drop from the state
    the arrays of each table once it is built (nothing later reads them), so a caller that
    writes and drops each table holds one table and what is left of the state: at 10M
    profiles the hub events alone are about 100M rows.

    Ids are added here: profile, order, line, refund and event ids are row
    positions plus one. Draws from ``rng.pred`` only through ``_predictions``.
    """
    sku, names = _catalogue()
    n_ord, n_lines, n_events = s.o_t.size, s.l_order.size, s.ev_t.size
    yield "hub_events", pa.table({
        "event_id": pa.array(np.arange(1, n_events + 1, dtype=np.int64)),
        "profile_id": pa.array(s.ev_owner.astype(np.int64) + 1),
        "occurred_at": _ts(s.ev_t),
        "event_type": _dict(s.ev_type, HUB_EVENT_TYPES),
        "raw_metric": _dict(s.ev_raw, s.raw_labels),
        "product_id": _dict(np.maximum(s.ev_prod, 0), sku, s.ev_prod >= 0),
    })
    s.ev_t = s.ev_owner = s.ev_type = s.ev_raw = s.ev_prod = None
    yield "order_lines", pa.table({
        "order_id": pa.array(s.l_order.astype(np.int64) + 1),
        "line_id": pa.array(np.arange(1, n_lines + 1, dtype=np.int64)),
        "product_id": _dict(s.l_prod, sku),
        "product_name": _dict(s.l_prod, names),
        "quantity": pa.array(s.l_qty.astype(np.int64)),
        "line_total": pa.array(_money(s.l_cents)),
        "added_from_hub": pa.array(s.l_hub),
    })
    s.l_order = s.l_prod = s.l_qty = s.l_cents = s.l_hub = None
    yield "orders", pa.table({
        "order_id": pa.array(np.arange(1, n_ord + 1, dtype=np.int64)),
        "profile_id": pa.array(s.o_owner.astype(np.int64) + 1),
        "placed_at": _ts(s.o_t),
        "value": pa.array(_money(s.o_cents)),
        "source_name": _dict(s.o_src, _SOURCES),
        "integration": _dict(np.zeros(n_ord, np.int32), ["shopify"]),
        "is_subscription": pa.array(s.o_kind == _SUBSCRIPTION),
        "signed_in": pa.array(s.o_signed),
        "cancelled_at": _ts(np.nan_to_num(s.o_can, nan=0.0), ~np.isnan(s.o_can)),
    })
    prof_id = np.arange(1, s.n + 1, dtype=np.int64)
    emails = pc.binary_join_element_wise(
        "customer", pc.cast(pa.array(prof_id), pa.string()), "@example.com", "")
    yield "profiles", pa.table({
        "profile_id": pa.array(prof_id),
        "created_at": _ts(s.created),
        "account_created_at": _ts(s.acct_t, s.has_acct),
        "email": emails,
    })
    del prof_id, emails
    yield "refunds", pa.table({
        "refund_id": pa.array(np.arange(1, s.ref_o.size + 1, dtype=np.int64)),
        "order_id": pa.array(s.ref_o.astype(np.int64) + 1),
        "refunded_at": _ts(s.ref_t),
        "amount": pa.array(_money(s.ref_c)),
    })
    yield "marketing_assets", _marketing_assets(s.as_of, s.grid.tz)
    if with_predictions:
        yield "predictions", _predictions(s)


def _marketing_assets(as_of: _dt.date, tz: ZoneInfo) -> pa.Table:
    """About 15 campaigns, flows and forms with dates relative to ``as_of``."""
    def at(days, hour=10):
        d = as_of + _dt.timedelta(days=days)
        return int(_dt.datetime.combine(d, _dt.time(hour), tzinfo=tz).timestamp())

    rows = [  # type, id, name, status, channels, audiences, form_type, scheduled, updated
        ("campaign", "cmp_0001", "Black Friday Early Access", "Scheduled", "email;sms",
         "VIP;Likely to buy soon", None, 4, -1),
        ("campaign", "cmp_0002", "Black Friday Main Send", "Scheduled", "email",
         "Newsletter;Customers", None, 6, -2),
        ("campaign", "cmp_0003", "New Winter Collection", "Sent", "email",
         "Newsletter", None, -12, -12),
        ("campaign", "cmp_0004", "VIP Thank You Gift", "Sent", "email;sms",
         "VIP", None, -30, -30),
        ("campaign", "cmp_0005", "Back in Stock: Merino Beanies", "Sent", "sms",
         "SMS Subscribers;Likely to buy soon", None, -45, -45),
        ("campaign", "cmp_0006", "Holiday Gift Guide", "Draft", "email",
         "Newsletter;VIP", None, None, -3),
        ("campaign", "cmp_0007", "Cyber Monday Reminder", "Draft", "sms",
         "SMS Subscribers", None, None, -5),
        ("flow", "flw_0001", "Welcome Series", "Live", "email",
         "Newsletter", None, None, -200),
        ("flow", "flw_0002", "Abandoned Cart Reminder", "Live", "email;sms",
         "Customers", None, None, -90),
        ("flow", "flw_0003", "Win-back: Likely to Buy Soon", "Live", "email",
         "Likely to buy soon", None, None, -60),
        ("flow", "flw_0004", "VIP Early Access", "Manual", "email",
         "VIP", None, None, -20),
        ("flow", "flw_0005", "Post-purchase Review Request", "Draft", "email",
         "Customers", None, None, -8),
        ("form", "frm_0001", "10% Off Newsletter Popup", "Live", "email",
         "Newsletter", "popup", None, -150),
        ("form", "frm_0002", "SMS Signup Flyout", "Live", "sms",
         "SMS Subscribers", "flyout", None, -70),
        ("form", "frm_0003", "Footer Signup", "Draft", "email",
         "Newsletter", "embed", None, -15),
    ]
    cols = list(zip(*rows))
    sched = np.array([at(v) if v is not None else 0 for v in cols[7]], dtype=np.int64)
    sched_ok = np.array([v is not None for v in cols[7]])
    upd = np.array([at(v, 15) for v in cols[8]], dtype=np.int64)
    s = pa.string()
    return pa.table({
        "asset_type": pa.array(cols[0], s), "asset_id": pa.array(cols[1], s),
        "name": pa.array(cols[2], s), "status": pa.array(cols[3], s),
        "channels": pa.array(cols[4], s), "audiences": pa.array(cols[5], s),
        "form_type": pa.array(cols[6], s),
        "scheduled_at": _ts(sched, sched_ok), "updated_at": _ts(upd),
    })


def _predictions(s: _DemoState) -> pa.Table:
    """Klaviyo-style predictions from the true parameters (closed form + noise).

    Only the model orders enter, at their net values (``o_net``), because those
    are what the true parameters describe. Reads ``n``, ``as_of``, ``grid``,
    ``first``, ``o_owner``, ``o_t``, ``o_net``, ``o_kind``; draws from ``rng.pred``.
    """
    from scipy.special import hyp2f1

    rng, n, as_of, tz, t_end = s.rng.pred, s.n, s.as_of, s.grid.tz, s.grid.t_end
    o_owner, o_t, o_cents, o_kind, first = s.o_owner, s.o_t, s.o_net, s.o_kind, s.first
    prof_id = np.arange(1, n + 1, dtype=np.int64)

    bg, gg = TRUE_BG_NBD, TRUE_GAMMA_GAMMA
    r, alpha, a, b = bg["r"], bg["alpha"], bg["a"], bg["b"]
    sel = o_kind == _MODEL
    own, t = o_owner[sel], o_t[sel]
    cnt = np.bincount(own, minlength=n)
    spend = np.bincount(own, weights=o_cents[sel], minlength=n) / 100.0
    last = np.full(n, -np.inf)
    np.maximum.at(last, own, t)
    x = cnt - 1.0
    t_x = (last - first) / _DAY
    T = (t_end - first) / _DAY
    horizon = 365.0
    with np.errstate(all="ignore"):
        z = horizon / (alpha + T + horizon)
        num = (a + b + x - 1) / (a - 1) * (
            1 - ((alpha + T) / (alpha + T + horizon)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
        odds = np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
        p_alive = 1.0 / (1.0 + odds)
        pred_n = np.clip(num / (1.0 + odds), 0.0, None)
    aov = spend / cnt
    p, q, v = gg["p"], gg["q"], gg["v"]
    exp_aov = p * (v + cnt * aov) / (p * cnt + q - 1)
    pick = np.flatnonzero(rng.random(n) < 0.9)
    noise = rng.lognormal(0.0, 0.15, pick.size)
    pred_n = pred_n[pick] * noise
    pred_clv = np.round(pred_n * exp_aov[pick], 2)
    hist = np.round(spend[pick], 2)
    gap = np.where(cnt[pick] > 1, t_x[pick] / np.maximum(x[pick], 1), np.nan)
    # like Klaviyo: a date only for repeat customers, here when expected within two years
    noon = int(_dt.datetime.combine(as_of, _dt.time(12), tzinfo=tz).timestamp())
    has_next = (cnt[pick] >= 2) & (pred_n >= 0.5)
    nxt = noon + np.round(horizon / np.maximum(pred_n, 0.5) * _DAY)
    return pa.table({
        "profile_id": pa.array(prof_id[pick]),
        "historic_clv": pa.array(hist),
        "predicted_clv": pa.array(pred_clv),
        "total_clv": pa.array(np.round(hist + pred_clv, 2)),
        "historic_number_of_orders": pa.array(cnt[pick].astype(np.int64)),
        "predicted_number_of_orders": pa.array(np.round(pred_n, 2)),
        "average_order_value": pa.array(np.round(aov[pick], 2)),
        "average_days_between_orders": pa.array(np.round(gap, 1), mask=np.isnan(gap)),
        "churn_probability": pa.array(np.round(1.0 - p_alive[pick], 3)),
        "expected_date_of_next_order": _ts(np.where(has_next, nxt, 0), has_next),
    })
