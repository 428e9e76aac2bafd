"""Benchmark: the Customer Hub dashboard by hubnb against the same numbers in DuckDB SQL.

A demo merchant of 1,000,000 profiles (about 10M hub events, 2.2M orders, 3.6M order
lines) is generated once with :func:`hubnb.demo.generate_demo_data` and cached as Parquet
(default ``$TMPDIR/hubnb-bench/demo_<profiles>_seed<seed>``). Every section of the
dashboard is computed for one period (last 30 days to 2026-11-22, America/New_York) and
its comparison (the previous 30 days): total accounts, service interactions and their
breakdown, active accounts, revenue generated with the View report, average order value,
the per-day series of the two charts, and the full re-engagement list.

Each side runs in its own process (so its peak memory is its own) and is timed twice
from the same starting point, the Parquet files on disk:

* **end to end** — hubnb: ``load_dataset`` (read, type and validate the four tables it
  needs) plus :func:`hubnb.hub.customer_hub`; DuckDB: the SQL queries run directly over
  ``read_parquet`` views, results fetched into Python/pandas.
* **compute only** — hubnb: ``customer_hub`` on the already loaded DataFrames; DuckDB: the
  same queries over tables already loaded into DuckDB's memory.

Two attribution scenarios: ``added_from_hub`` (the demo data's column, present) and
``window`` (the column ignored, so every line goes through the attribution-window rule).
The numbers of both sides are asserted equal. Targets: hubnb within 1.5x of DuckDB, peak
memory under 4 GB.

Usage::

    python benchmarks/hub_bench.py [--profiles 1000000] [--seed 7] [--cache DIR] [--repeat 2]
                                   [--scenario added_from_hub|window|both] [--strict]

Numbers that differ between the two sides fail (AssertionError); a missed target is
printed as MISSED and fails only with --strict.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TZ = "America/New_York"
TABLES = ("profiles", "orders", "order_lines", "hub_events")
SERVICE_TYPES = ("order_tracked", "return_started", "coupon_applied", "help_clicked",
                 "chat_started")
PARAMS = {"merchant": "bench", "timezone": TZ, "currency": "USD", "as_of": "2026-11-22",
          "period": "last_30_days", "comparison": "previous_period",
          "hub": {"launched_on": "2025-03-01",
                  "paused": [{"start": "2026-10-05", "end": "2026-10-07"}],
                  "attribution_window_days": 7, "inactive_after_days": 30}}


def _params(data_dir):
    from hubnb.params import parse_params
    return parse_params({**PARAMS, "data": str(data_dir)})


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- hubnb side

def run_hubnb(data_dir: Path, scenario: str, repeat: int) -> dict:
    from hubnb import hub
    from hubnb.data import load_dataset

    params = _params(data_dir)
    best_total = best_compute = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        data = load_dataset(data_dir, tables=TABLES)
        if scenario == "window":
            data.columns_present["order_lines"].discard("added_from_hub")
        t1 = time.perf_counter()
        dash = hub.customer_hub(data, params)
        t2 = time.perf_counter()
        best_total, best_compute = min(best_total, t2 - t0), min(best_compute, t2 - t1)
        del data
    return {"end_to_end_s": best_total, "compute_s": best_compute, "peak_mb": _peak_mb(),
            "numbers": _hubnb_numbers(dash)}


def _hubnb_numbers(dash) -> dict:
    s = dash.service_series
    a = dash.aov_series
    r = dash.reengage
    return {
        "metrics": dash.metrics(),
        "service_series": [[int(v) for v in row] for row in s[list(SERVICE_TYPES)].to_numpy()],
        "aov_orders": [int(v) for v in a["orders"]],
        "aov_means": [None if math.isnan(v) else float(v) for v in a["average_order_value"]],
        "products": [[str(p.product_id), int(p.units), float(p.revenue), int(p.orders)]
                     for p in dash.products.itertuples()],
        "reengage": {"rows": len(r), "first": [int(v) for v in r["profile_id"].head(20)],
                     "days_sum": int(r["days_since_last_open"].sum()),
                     "never": int(r["days_since_last_open"].isna().sum())},
    }


# ----------------------------------------------------------------------------- DuckDB side

def _ts(t) -> str:
    return f"TIMESTAMPTZ '{t.isoformat()}'"


def duckdb_numbers(con, params, scenario: str) -> dict:
    """Every number of the dashboard, in SQL."""
    from hubnb.periods import local_midnight_utc

    hub = params.hub
    w = hub.attribution_window_days
    flag = "l.added_from_hub" if scenario == "added_from_hub" else "CAST(NULL AS BOOLEAN)"
    types = ", ".join(f"'{t}'" for t in SERVICE_TYPES)
    out = {}
    for name, p in (("P", params.period), ("C", params.comparison)):
        lo, hi = _ts(p.start_utc), _ts(p.end_utc)
        breakdown = dict(con.execute(
            f"SELECT event_type, count(*) FROM hub_events WHERE occurred_at >= {lo} "
            f"AND occurred_at < {hi} AND event_type IN ({types}) GROUP BY 1").fetchall())
        active = con.execute(
            f"SELECT count(DISTINCT profile_id) FROM hub_events WHERE event_type = 'hub_opened' "
            f"AND occurred_at >= {lo} AND occurred_at < {hi}").fetchone()[0]
        aov, orders = con.execute(
            f"SELECT avg(value), count(*) FROM orders WHERE placed_at >= {lo} "
            f"AND placed_at < {hi} AND cancelled_at IS NULL AND signed_in").fetchone()
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE attributed_{name} AS
            WITH po AS (SELECT order_id, profile_id, placed_at FROM orders
                        WHERE placed_at >= {lo} AND placed_at < {hi} AND cancelled_at IS NULL),
            l AS (SELECT l.order_id, l.line_id, l.product_id, l.product_name, l.quantity,
                         l.line_total, {flag} AS flag, po.profile_id, po.placed_at
                  FROM order_lines l JOIN po USING (order_id)),
            carts AS (SELECT profile_id, product_id, occurred_at FROM hub_events
                      WHERE event_type = 'hub_add_to_cart' AND product_id IS NOT NULL
                        AND occurred_at >= {lo} - INTERVAL {w} DAY AND occurred_at < {hi})
            SELECT * FROM l
            WHERE flag OR (flag IS NULL AND EXISTS (
                SELECT 1 FROM carts c WHERE c.profile_id = l.profile_id
                  AND c.product_id = l.product_id AND c.occurred_at <= l.placed_at
                  AND c.occurred_at >= l.placed_at - INTERVAL {w} DAY))""")
        revenue = con.execute(f"SELECT coalesce(sum(line_total), 0) FROM attributed_{name}"
                              ).fetchone()[0]
        out[name] = {"breakdown": {t: int(breakdown.get(t, 0)) for t in SERVICE_TYPES},
                     "active": int(active), "revenue": round(float(revenue), 2),
                     "aov": None if aov is None else round(float(aov), 2),
                     "orders": int(orders)}
    P, C = out["P"], out["C"]
    period = params.period
    lo, hi = _ts(period.start_utc), _ts(period.end_utc)
    total_accounts = con.execute(
        f"SELECT count(*) FROM profiles WHERE account_created_at < {hi}").fetchone()[0]
    day = f"CAST(timezone('{TZ}', {{}}) AS DATE)"
    n_days = period.days
    step = 1 if n_days <= 90 else 7
    bucket = f"(({day}) - DATE '{period.start}') // {step}"
    series = con.execute(f"""
        SELECT {bucket.format('occurred_at')} AS b, event_type, count(*) FROM hub_events
        WHERE occurred_at >= {lo} AND occurred_at < {hi} AND event_type IN ({types})
        GROUP BY ALL""").fetchall()
    n_buckets = len(range(0, n_days, step))
    grid = [[0] * len(SERVICE_TYPES) for _ in range(n_buckets)]
    for b, t, c in series:
        grid[b][SERVICE_TYPES.index(t)] = int(c)
    per_day = con.execute(f"""
        SELECT {bucket.format('placed_at')} AS b, count(*), avg(value) FROM orders
        WHERE placed_at >= {lo} AND placed_at < {hi} AND cancelled_at IS NULL AND signed_in
        GROUP BY ALL""").fetchall()
    aov_orders, aov_means = [0] * n_buckets, [None] * n_buckets
    for b, c, m in per_day:
        aov_orders[b], aov_means[b] = int(c), float(m)
    products = con.execute("""
        SELECT CAST(product_id AS VARCHAR), sum(quantity), round(sum(line_total), 2),
               count(DISTINCT order_id), mode(product_name)
        FROM attributed_P GROUP BY product_id ORDER BY 3 DESC, 1""").fetchall()
    end = _ts(local_midnight_utc(params.as_of + dt.timedelta(days=1), TZ))
    reengage = con.execute(f"""
        WITH last AS (SELECT profile_id, max(occurred_at) AS last_open FROM hub_events
                      WHERE event_type = 'hub_opened' AND occurred_at < {end}
                      GROUP BY profile_id),
        acc AS (SELECT p.profile_id, p.email, p.account_created_at,
                       last.last_open AS last_hub_opened_at,
                       DATE '{params.as_of}' - CAST(timezone('{TZ}', last.last_open) AS DATE)
                           AS days_since_last_open
                FROM profiles p LEFT JOIN last USING (profile_id)
                WHERE p.account_created_at < {end})
        SELECT * FROM acc
        WHERE days_since_last_open IS NULL OR days_since_last_open > {hub.inactive_after_days}
        ORDER BY days_since_last_open IS NULL DESC, days_since_last_open DESC, profile_id
        """).df()

    def change(v, prev):
        return None if prev in (None, 0) else round(100.0 * (v - prev) / prev, 1)

    def compared(v, prev):
        return {"value": v, "previous": prev, "change_pct": change(v, prev)}

    si, si_c = sum(P["breakdown"].values()), sum(C["breakdown"].values())
    aov = compared(P["aov"], C["aov"]) if P["aov"] is not None else {
        "value": None, "previous": C["aov"], "change_pct": None}
    aov["orders"] = P["orders"]
    return {
        "metrics": {
            "total_accounts": int(total_accounts),
            "service_interactions": compared(si, si_c),
            "active_accounts": compared(P["active"], C["active"]),
            "revenue_generated": compared(P["revenue"], C["revenue"]),
            "average_order_value": aov,
            "service_breakdown": P["breakdown"],
        },
        "service_series": grid, "aov_orders": aov_orders, "aov_means": aov_means,
        "products": [[p[0], int(p[1]), float(p[2]), int(p[3])] for p in products],
        "reengage": {"rows": len(reengage),
                     "first": [int(v) for v in reengage["profile_id"].head(20)],
                     "days_sum": int(reengage["days_since_last_open"].sum()),
                     "never": int(reengage["days_since_last_open"].isna().sum())},
    }


def run_duckdb(data_dir: Path, scenario: str, repeat: int, threads: int) -> dict:
    import duckdb

    params = _params(data_dir)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")   # interval arithmetic in plain 24-hour days
    con.execute(f"SET threads = {threads}")
    for t in TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data_dir / t}.parquet')")
    best_total = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        numbers = duckdb_numbers(con, params, scenario)
        best_total = min(best_total, time.perf_counter() - t0)
    t0 = time.perf_counter()
    for t in TABLES:
        con.execute(f"DROP VIEW {t}")
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{data_dir / t}.parquet')")
    load = time.perf_counter() - t0
    best_compute = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        again = duckdb_numbers(con, params, scenario)
        best_compute = min(best_compute, time.perf_counter() - t0)
    assert_same(again, numbers)
    return {"end_to_end_s": best_total, "compute_s": best_compute, "load_s": load,
            "peak_mb": _peak_mb(), "numbers": numbers}


# ----------------------------------------------------------------------------- comparison

def assert_same(a, b, path="numbers"):
    """Exact for counts and ids; money within a cent, means within 1e-6 (summation order)."""
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: {len(a)} rows != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and abs(a - b) <= 0.01 + 1e-9 * abs(a), \
            f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def ensure_data(cache: Path, profiles: int, seed: int) -> Path:
    data_dir = cache / f"demo_{profiles}_seed{seed}"
    if (data_dir / "truth.json").is_file():
        return data_dir
    from hubnb.demo import generate_demo_data
    cache.mkdir(parents=True, exist_ok=True)
    print(f"generating the demo merchant ({profiles:,} profiles) in {data_dir} ...", flush=True)
    t0 = time.perf_counter()
    generate_demo_data(data_dir, profiles, seed)
    print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    return data_dir


def _side(side: str, data_dir: Path, scenario: str, repeat: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--side", side, "--data", str(data_dir),
           "--scenario", scenario, "--repeat", str(repeat), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"{side} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cache", type=Path,
                    default=Path(tempfile.gettempdir()) / "hubnb-bench")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="DuckDB threads (default: every core)")
    ap.add_argument("--scenario", choices=("added_from_hub", "window", "both"), default="both")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a target is missed (numbers that differ always fail)")
    ap.add_argument("--side", choices=("hubnb", "duckdb"), help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.side:   # a child process: one side, one scenario, JSON on stdout
        import warnings
        warnings.simplefilter("ignore")   # e.g. DuckDB's .df() under pandas 3
        run = run_hubnb if args.side == "hubnb" else run_duckdb
        kw = {"threads": args.threads} if args.side == "duckdb" else {}
        print(json.dumps(run(args.data, args.scenario, args.repeat, **kw)))
        return 0

    data_dir = ensure_data(args.cache, args.profiles, args.seed)
    rows = json.loads((data_dir / "truth.json").read_text())["rows"]
    print(f"data: {data_dir} — " + ", ".join(f"{t} {rows[t]:,}" for t in TABLES))
    print(f"period: {PARAMS['period']} to {PARAMS['as_of']} ({TZ}) vs {PARAMS['comparison']}; "
          f"DuckDB threads: {args.threads}; best of {args.repeat}\n")
    scenarios = ("added_from_hub", "window") if args.scenario == "both" else (args.scenario,)
    ok = True
    for scenario in scenarios:
        h = _side("hubnb", data_dir, scenario, args.repeat, args.threads)
        d = _side("duckdb", data_dir, scenario, args.repeat, args.threads)
        assert_same(h["numbers"], d["numbers"])
        m = h["numbers"]["metrics"]
        print(f"scenario {scenario!r}: numbers equal (revenue generated "
              f"{m['revenue_generated']['value']:,.2f}, active accounts "
              f"{m['active_accounts']['value']:,}, re-engagement list "
              f"{h['numbers']['reengage']['rows']:,} rows)")
        for what in ("end_to_end_s", "compute_s"):
            ratio = h[what] / d[what]
            met = ratio <= 1.5
            ok &= met
            label = "end to end (from parquet)" if what == "end_to_end_s" else "compute only"
            print(f"  {label:27s} hubnb {h[what]:6.2f} s   DuckDB {d[what]:6.2f} s   "
                  f"ratio {ratio:4.2f}x  {'met' if met else 'MISSED'} (target <= 1.5x)")
        print(f"  {'peak memory':27s} hubnb {h['peak_mb']:6.0f} MB  DuckDB {d['peak_mb']:6.0f} MB"
              f"  {'met' if h['peak_mb'] < 4096 else 'MISSED'} (target hubnb < 4 GB)")
        ok &= h["peak_mb"] < 4096
        print(f"  hubnb load_dataset part: {h['end_to_end_s'] - h['compute_s']:.2f} s; "
              f"DuckDB load into memory (untimed above): {d['load_s']:.2f} s\n")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
