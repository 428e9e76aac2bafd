import datetime as dt

import pandas as pd
import pytest

from hubnb.periods import Period, local_dates, resolve_comparison, resolve_period

D = dt.date
NY = "America/New_York"


@pytest.mark.parametrize("preset, start", [
    ("last_7_days", D(2026, 1, 26)),      # the contract's example: as_of 1 Feb -> 26 Jan..1 Feb
    ("last_30_days", D(2026, 1, 3)),
    ("last_90_days", D(2025, 11, 4)),
    ("last_365_days", D(2025, 2, 2)),
    ("month_to_date", D(2026, 2, 1)),
    ("year_to_date", D(2026, 1, 1)),
])
def test_presets_end_on_as_of_and_include_both_ends(preset, start):
    p = resolve_period(preset, D(2026, 2, 1), NY)
    assert (p.start, p.end) == (start, D(2026, 2, 1))
    assert p.days == (D(2026, 2, 1) - start).days + 1


def test_last_n_days_has_n_days():
    for n in (7, 30, 90, 365):
        assert resolve_period(f"last_{n}_days", D(2026, 11, 22), NY).days == n


def test_custom_range_and_bad_ranges():
    p = resolve_period({"start": "2026-10-01", "end": D(2026, 10, 31)}, D(2026, 11, 22), NY)
    assert (p.start, p.end, p.days) == (D(2026, 10, 1), D(2026, 10, 31), 31)
    with pytest.raises(ValueError, match="before start"):
        resolve_period({"start": "2026-10-31", "end": "2026-10-01"}, D(2026, 11, 22), NY)
    with pytest.raises(ValueError, match="unknown period"):
        resolve_period("last_week", D(2026, 11, 22), NY)


def test_previous_period_is_same_length_ending_the_day_before():
    p = resolve_period("last_30_days", D(2026, 11, 22), NY)
    c = resolve_comparison("previous_period", p)
    assert (c.start, c.end) == (D(2026, 9, 24), D(2026, 10, 23))   # the contract's metrics example
    assert c.days == p.days


def test_previous_year_and_leap_day():
    p = Period(D(2024, 2, 1), D(2024, 2, 29), NY)
    c = resolve_comparison("previous_year", p)
    assert (c.start, c.end) == (D(2023, 2, 1), D(2023, 2, 28))


def test_comparison_none_and_custom():
    p = resolve_period("last_7_days", D(2026, 11, 22), NY)
    assert resolve_comparison("none", p) is None
    c = resolve_comparison({"start": "2025-11-16", "end": "2025-11-22"}, p)
    assert (c.start, c.end) == (D(2025, 11, 16), D(2025, 11, 22))


def test_bounds_are_local_midnights_across_a_dst_change():
    # New York leaves daylight saving time on 2026-11-01: that day has 25 hours.
    p = Period(D(2026, 10, 31), D(2026, 11, 1), NY)
    assert p.start_utc == pd.Timestamp("2026-10-31T04:00:00Z")   # EDT, UTC-4
    assert p.end_utc == pd.Timestamp("2026-11-02T05:00:00Z")     # EST, UTC-5
    assert (p.end_utc - p.start_utc) == pd.Timedelta(hours=49)


def test_contains_counts_events_on_the_edges_in_local_time():
    p = Period(D(2026, 11, 1), D(2026, 11, 1), NY)
    ts = pd.Series(pd.to_datetime([
        "2026-11-01T00:00:00-04:00",   # first local instant of the day (EDT)
        "2026-11-01T01:30:00-04:00",   # the hour that happens twice: first time
        "2026-11-01T01:30:00-05:00",   # ... and second time
        "2026-11-01T23:59:59-05:00",   # last local second (EST)
        "2026-11-02T00:00:00-05:00",   # next day
        "2026-10-31T23:59:59-04:00",   # day before
    ], utc=True))
    assert p.contains(ts).tolist() == [True, True, True, True, False, False]
    days = local_dates(ts, NY)
    assert days.dt.date.tolist()[:4] == [D(2026, 11, 1)] * 4
