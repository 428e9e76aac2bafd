"""Periods: whole local days in the merchant's time zone, both ends included.

A period is stored as its first and last local day. Its bounds in absolute time are
local midnight of the first day and local midnight of the day after the last day, so a
day that has 23 or 25 hours (a daylight-saving change) is still exactly one day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

PRESETS = {
    "last_7_days": 7,
    "last_30_days": 30,
    "last_90_days": 90,
    "last_365_days": 365,
}
OTHER_PRESETS = ("month_to_date", "year_to_date")
COMPARISONS = ("previous_period", "previous_year", "none")


@dataclass(frozen=True)
class Period:
    """Inclusive range of local days ``start``..``end`` in time zone ``tz``."""

    start: dt.date
    end: dt.date
    tz: str

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        """Number of local days in the period."""
        return (self.end - self.start).days + 1

    @property
    def start_utc(self) -> pd.Timestamp:
        """Local midnight starting the first day, in UTC."""
        return local_midnight_utc(self.start, self.tz)

    @property
    def end_utc(self) -> pd.Timestamp:
        """Local midnight after the last day, in UTC (exclusive bound)."""
        return local_midnight_utc(self.end + dt.timedelta(days=1), self.tz)

    def contains(self, timestamps: pd.Series) -> pd.Series:
        """Boolean mask of the tz-aware ``timestamps`` that fall on a day of the period."""
        return (timestamps >= self.start_utc) & (timestamps < self.end_utc)

    def dates(self) -> list[dt.date]:
        """The local days of the period, in order."""
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def local_midnight_utc(day: dt.date, tz: str) -> pd.Timestamp:
    """UTC instant of local midnight starting ``day`` in ``tz``."""
    local = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return pd.Timestamp(local).tz_convert("UTC")


def local_dates(values, tz: str) -> pd.Series:
    """The local calendar day of each value, as a naive ``datetime64`` at midnight.

    A tz-aware timestamp is converted to ``tz`` first, so its date is the local day; dates
    and naive timestamps are taken as local already; what does not parse is NaT.
    """
    s = pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    converted = pd.to_datetime(s, errors="coerce")
    if isinstance(converted.dtype, pd.DatetimeTZDtype):
        converted = converted.dt.tz_convert(tz).dt.tz_localize(None)
    return converted.dt.normalize()


def resolve_period(spec, as_of: dt.date, tz: str) -> Period:
    """The period a params value names.

    ``last_N_days`` ends on ``as_of`` and starts N-1 days before; ``month_to_date`` and
    ``year_to_date`` start on the first day of the month/year of ``as_of``; a mapping
    ``{start, end}`` is a custom range.
    """
    if isinstance(spec, str):
        if spec in PRESETS:
            return Period(as_of - dt.timedelta(days=PRESETS[spec] - 1), as_of, tz)
        if spec == "month_to_date":
            return Period(as_of.replace(day=1), as_of, tz)
        if spec == "year_to_date":
            return Period(as_of.replace(month=1, day=1), as_of, tz)
        raise ValueError(
            f"unknown period {spec!r}; use one of {', '.join([*PRESETS, *OTHER_PRESETS])} "
            "or {start: YYYY-MM-DD, end: YYYY-MM-DD}")
    start, end = _custom_range(spec)
    return Period(start, end, tz)


def resolve_comparison(spec, period: Period) -> Period | None:
    """The comparison period: ``previous_period``, ``previous_year``, ``none`` or custom."""
    if spec is None or spec == "none":
        return None
    if spec == "previous_period":
        end = period.start - dt.timedelta(days=1)
        return Period(end - dt.timedelta(days=period.days - 1), end, period.tz)
    if spec == "previous_year":
        return Period(_one_year_earlier(period.start), _one_year_earlier(period.end), period.tz)
    if isinstance(spec, str):
        raise ValueError(
            f"unknown comparison {spec!r}; use one of {', '.join(COMPARISONS)} "
            "or {start: YYYY-MM-DD, end: YYYY-MM-DD}")
    start, end = _custom_range(spec)
    return Period(start, end, period.tz)


def _one_year_earlier(day: dt.date) -> dt.date:
    # 29 February has no twin a year earlier: the last day of that February stands in.
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def _custom_range(spec) -> tuple[dt.date, dt.date]:
    if not isinstance(spec, dict) or set(spec) != {"start", "end"}:
        raise ValueError("a custom range is a mapping with exactly the keys start and end")
    start, end = (parse_date(spec[k], k) for k in ("start", "end"))
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return start, end


def parse_date(value, what: str = "date") -> dt.date:
    """A ``datetime.date`` from a YAML date or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{what} {value!r} is not a date (YYYY-MM-DD)")
