"""The CLV dashboard's analytics: pure functions over the engine's result.

The engine (:func:`hubnb.clv.compute_clv`) computes every CLV attribute of every profile;
these functions pick and aggregate what a card of the CLV dashboard shows: the five example
profiles, churn bands, next orders by week, the top profiles, the distribution summary, the
model choice and the comparison with a platform's predictions. Each takes frames and
returns a frame or a small frozen dataclass; none formats, draws or writes (the cards of
:mod:`hubnb.cards.clv` do). The rules are written down in ``docs/clv_dashboard.md``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..i18n import N_
from ..messages import Message
from ..periods import local_dates
from .purchase import param_names_of

SPEND_PARAMS = ("p", "q", "v")


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A numeric column as floats; all missing when the frame has no such column."""
    if name not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[name], errors="coerce").astype("float64")


def has_predictions(profiles: pd.DataFrame) -> bool:
    """Whether the profiles carry predicted CLV (the model was fitted)."""
    return ("predicted_clv_mean" in profiles.columns
            and profiles["predicted_clv_mean"].notna().any())


def run_clv(report, progress: bool = False):
    """Compute the CLV attributes with the report's params and data (one engine call)."""
    from .compute import compute_clv

    p = report.params
    return compute_clv(report.data.orders, report.data.refunds, report.data.profiles,
                       p.clv, p.as_of, p.timezone, progress=progress,
                       population=getattr(report, "population", None))


def clv_profiles_frame(result) -> pd.DataFrame:
    """``clv_profiles.csv``: the engine's profiles frame, dates written as ISO days."""
    out = result.profiles.copy(deep=False)      # (copy on write: the result is not touched)
    for column in out.columns:
        if column.endswith("_date") or "_date_" in column:
            days = local_dates(out[column], "UTC").to_numpy("datetime64[D]")
            # ISO days by Arrow (pandas' strftime makes a Python string per profile)
            text = pc.cast(pa.array(days, type=pa.date32(), from_pandas=True), pa.string())
            iso = text.to_pandas()
            iso.index = out.index
            out[column] = iso
    return out


def distribution_summary(profiles: pd.DataFrame) -> pd.DataFrame:
    """Total, mean and median per profile of historical CLV and (when fitted) predicted CLV.

    One row per measure (``historical_clv``, ``predicted_clv``); predicted CLV is left out
    when no profile has a prediction.
    """
    rows = []
    for measure, column in (("historical_clv", "historical_clv"),
                            ("predicted_clv", "predicted_clv_mean")):
        values = _column(profiles, column)
        if values.notna().any():
            rows.append({"measure": measure, "total": float(values.sum()),
                         "mean": float(values.mean()), "median": float(values.median())})
    return pd.DataFrame(rows, columns=["measure", "total", "mean", "median"])


def model_choice_table(selection) -> pd.DataFrame:
    """The candidates' PSIS-LOO scores, winner first (numbers unformatted)."""
    rows = []
    for name, c in sorted(selection.candidates.items(),
                          key=lambda kv: kv[0] != selection.winner):
        rows.append({"model": name, "chosen": name == selection.winner,
                     "elpd_loo": c["elpd_loo"], "se": c["se"], "d_elpd": c["d_elpd"],
                     "d_se": c["d_se"], "pareto_k_over_0_7": c["pareto_k_over_0_7"],
                     "r_hat_max": c.get("r_hat_max"), "fit_seconds": c.get("fit_seconds")})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ExampleRule:
    """One of the five example profiles: an orders count and a recency condition.

    A profile matches when ``min_orders <= historical_orders <= max_orders`` and its days
    since the last order, ``(as_of - last_order_date).days`` in local days, is ``<=
    within_days`` (if set) and ``> over_days`` (if set).
    """

    number: int
    title: str
    min_orders: int
    max_orders: float
    within_days: int | None = None
    over_days: int | None = None

    @property
    def description(self) -> str:
        orders = (f"{self.min_orders}+ orders" if self.max_orders == np.inf
                  else f"{self.min_orders} order" + ("s" if self.min_orders > 1 else ""))
        when = (f"last within {self.within_days} days" if self.within_days is not None
                else f"last over {self.over_days} days ago")
        return f"{orders}, {when}"

    def matches(self, orders: pd.Series, days_since_last: pd.Series) -> pd.Series:
        mask = (orders >= self.min_orders) & (orders <= self.max_orders)
        if self.within_days is not None:
            mask &= days_since_last <= self.within_days
        if self.over_days is not None:
            mask &= days_since_last > self.over_days
        return mask.fillna(False).astype(bool)


EXAMPLE_RULES = (
    ExampleRule(1, "Loyal and active", 3, np.inf, within_days=90),
    ExampleRule(2, "Second order, active", 2, 2, within_days=90),
    ExampleRule(3, "New customer", 1, 1, within_days=60),
    ExampleRule(4, "Lapsed loyal customer", 3, np.inf, over_days=180),
    ExampleRule(5, "One-time customer, lapsed", 1, 1, over_days=60),
)


def example_profiles(profiles: pd.DataFrame, as_of: dt.date,
                     timezone: str = "UTC") -> pd.DataFrame:
    """The five example profiles, one row per rule of :data:`EXAMPLE_RULES`.

    Among the profiles matching a rule, the pick is the one whose ``predicted_clv_mean`` is
    nearest the median ``predicted_clv_mean`` of that group; ties go to the smallest
    ``profile_id``. When the model was not fitted (no predicted CLV), ``historical_clv``
    stands in. Columns: example, title, rule, group_size, days_since_last, then the picked
    profile's columns (missing when no profile matches).
    """
    profiles = profiles.reset_index(drop=True)
    last = local_dates(profiles["last_order_date"], timezone)
    days_since_last = (pd.Timestamp(as_of) - last).dt.days
    value_column = "predicted_clv_mean" if has_predictions(profiles) else "historical_clv"
    orders = pd.to_numeric(profiles["historical_orders"], errors="coerce")
    rows = []
    for rule in EXAMPLE_RULES:
        group = profiles.loc[rule.matches(orders, days_since_last)]
        row = {"example": rule.number, "title": rule.title, "rule": rule.description,
               "group_size": len(group), "picked_by": value_column}
        if len(group):
            values = pd.to_numeric(group[value_column], errors="coerce")
            distance = (values - values.median()).abs()
            ranked = pd.DataFrame({"distance": distance, "profile_id": group["profile_id"]})
            # NaN distances (a profile with no value) sort last.
            pick = ranked.sort_values(["distance", "profile_id"], na_position="last").index[0]
            row["days_since_last"] = int(days_since_last[pick])
            row.update(profiles.loc[pick].to_dict())
        rows.append(row)
    return pd.DataFrame(rows)


def churn_bands(profiles: pd.DataFrame, bands: tuple[float, float]) -> pd.DataFrame:
    """Profiles and revenue at stake per churn risk band.

    Low: churn_probability_mean < medium_from; Medium: medium_from <= p < high_from;
    High: p >= high_from (``churn_from`` and ``churn_to`` hold each band's limits). Revenue
    at stake is the band's sum of ``predicted_clv_mean``. Profiles without a churn
    probability are in no band.
    """
    medium_from, high_from = bands
    p = _column(profiles, "churn_probability_mean")
    clv = _column(profiles, "predicted_clv_mean").fillna(0.0)
    masks = [("Low", 0.0, medium_from, p < medium_from),
             ("Medium", medium_from, high_from, (p >= medium_from) & (p < high_from)),
             ("High", high_from, 1.0, p >= high_from)]
    total = int(p.notna().sum())
    rows = [{"band": name, "churn_from": low, "churn_to": high, "profiles": int(m.sum()),
             "share": (m.sum() / total) if total else np.nan,
             "revenue_at_stake": float(clv[m].sum())} for name, low, high, m in masks]
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class NextOrderWeeks:
    """Expected next order dates counted by week.

    ``weeks`` has week_start (Monday) and profiles for every week from the one holding
    ``as_of + 1 day`` to the one holding ``as_of + horizon_days``; ``beyond_horizon`` counts
    later dates, ``undefined`` profiles with no expected date.
    """

    weeks: pd.DataFrame
    beyond_horizon: int
    undefined: int


def next_orders_by_week(profiles: pd.DataFrame, as_of: dt.date, horizon_days: int,
                        timezone: str = "UTC") -> NextOrderWeeks:
    """Count the profiles whose ``expected_next_order_date_mean`` falls in each week."""
    dates = local_dates(profiles.get("expected_next_order_date_mean",
                                     pd.Series(pd.NaT, index=profiles.index)), timezone)
    first = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    last = pd.Timestamp(as_of) + pd.Timedelta(days=horizon_days)
    in_window = dates.between(first, last)
    starts = pd.date_range(first - pd.Timedelta(days=first.weekday()), last, freq="7D")
    inside = dates[in_window]
    counts = (inside - pd.to_timedelta(inside.dt.weekday, unit="D")).value_counts()
    weeks = pd.DataFrame({"week_start": starts.date,
                          "profiles": [int(counts.get(s, 0)) for s in starts]})
    return NextOrderWeeks(weeks=weeks, beyond_horizon=int((dates > last).sum()),
                          undefined=int(dates.isna().sum()))


def top_profiles(profiles: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` profiles with the largest predicted_clv_mean (ties: smallest profile_id)."""
    columns = ["profile_id", "email", "historical_orders", "historical_clv",
               "predicted_clv_mean", "predicted_clv_lower", "predicted_clv_upper",
               "predicted_clv_pred_lower", "predicted_clv_pred_upper",
               "churn_probability_mean", "p_order_30d_mean"]
    have = profiles[[c for c in columns if c in profiles.columns]]
    return (have.dropna(subset=["predicted_clv_mean"])
            .sort_values(["predicted_clv_mean", "profile_id"], ascending=[False, True])
            .head(n).reset_index(drop=True))


def global_draws(fit, model: str) -> dict[str, np.ndarray]:
    """Posterior draws of the global parameters (purchase model, then spend model)."""
    names = tuple(getattr(fit, "param_names", ())) or param_names_of(model) + SPEND_PARAMS
    idata = fit.idata
    sources = idata.values() if isinstance(idata, dict) else [idata]
    draws = {}
    for source in sources:
        draws.update(posterior_draws(source, names))
    return {n: draws[n] for n in names if n in draws}


def posterior_draws(idata, names=None) -> dict[str, np.ndarray]:
    """Draws (chain x draw) of every scalar variable of the posterior, by name.

    Accepts ArviZ 1 ``DataTree`` and ArviZ 0.x ``InferenceData`` objects; ``names`` keeps
    only those variables, in that order.
    """
    post = idata["posterior"] if not hasattr(idata, "posterior") else idata.posterior
    if hasattr(post, "to_dataset"):
        post = post.to_dataset()
    out = {}
    for name, var in post.data_vars.items():
        if set(var.dims) <= {"chain", "draw"}:
            out[str(name)] = np.asarray(var.transpose("chain", "draw").values, dtype=float)
    if names is not None:
        out = {n: out[n] for n in names if n in out}
    return out


PLATFORM_PAIRS = (
    ("predicted_clv_mean", "predicted_clv", "predicted_clv", "money"),
    ("churn_probability_mean", "churn_probability", "churn_probability", "share"),
    ("predicted_orders_mean", "predicted_number_of_orders", "predicted_orders", "count"),
    ("total_clv_mean", "total_clv", "total_clv", "money"),
    ("aov_mean", "average_order_value", "aov", "money"),
    ("historical_clv", "historic_clv", "historical_clv", "money"),
    ("historical_orders", "historic_number_of_orders", "historical_orders", "count"),
    ("avg_days_between_orders", "average_days_between_orders", "avg_days_between_orders", "count"),
    ("days_to_next_order_mean", "days_to_next_order", "days_to_next_order", "count"),
)


@dataclass(frozen=True)
class PlatformComparison:
    """hubnb's attributes against a ``predictions`` table, joined on profile_id.

    Attributes
    ----------
    summary : DataFrame
        Per attribute: profiles with both values, correlation, both means, mean absolute
        difference.
    disagreements : DataFrame
        The profiles whose predicted CLV differs most.
    joined : DataFrame
        Per joined profile: ``<attribute>_hubnb`` and ``<attribute>_platform`` columns.
    reason : str
        Why there is nothing to compare (empty when there is).
    """

    summary: pd.DataFrame
    disagreements: pd.DataFrame
    joined: pd.DataFrame
    reason: str = ""


def compare_with_platform(profiles: pd.DataFrame, predictions: pd.DataFrame,
                          as_of: dt.date, table_present: bool = True,
                          n_disagreements: int = 10) -> PlatformComparison:
    """Compare hubnb's CLV attributes with the platform's on the profiles both have.

    The platform's ``expected_date_of_next_order`` is compared as days after ``as_of``
    (``days_to_next_order``). Correlation is Pearson's over the profiles with both values.
    """
    empty = pd.DataFrame()
    if not table_present:
        return PlatformComparison(empty, empty, empty, Message(N_("no predictions table in the dataset")))
    if predictions.empty:
        return PlatformComparison(empty, empty, empty, Message(N_("the predictions table has no rows")))
    platform = predictions.copy()
    if "expected_date_of_next_order" in platform:
        nxt = local_dates(platform["expected_date_of_next_order"], "UTC")
        platform["days_to_next_order"] = (nxt - pd.Timestamp(as_of)).dt.days
    merged = profiles.merge(platform, on="profile_id", how="inner", suffixes=("", "__p"))
    if merged.empty:
        return PlatformComparison(empty, empty, empty,
                                  Message(N_("no profile of the predictions table has a "
                                             "counted order")))
    joined = pd.DataFrame({"profile_id": merged["profile_id"]})
    if "email" in merged:
        joined["email"] = merged["email"]
    rows = []
    for ours, theirs, label, _ in PLATFORM_PAIRS:
        theirs_col = theirs + "__p" if theirs + "__p" in merged else theirs
        if ours not in merged or theirs_col not in merged:
            continue
        a = pd.to_numeric(merged[ours], errors="coerce").astype(float)
        b = pd.to_numeric(merged[theirs_col], errors="coerce").astype(float)
        joined[f"{label}_hubnb"], joined[f"{label}_platform"] = a, b
        both = a.notna() & b.notna()
        if not both.any():
            continue
        corr = a[both].corr(b[both]) if both.sum() > 1 else np.nan
        rows.append({"attribute": label, "profiles": int(both.sum()), "correlation": corr,
                     "hubnb_mean": a[both].mean(), "platform_mean": b[both].mean(),
                     "mean_abs_difference": (a[both] - b[both]).abs().mean()})
    summary = pd.DataFrame(rows, columns=["attribute", "profiles", "correlation", "hubnb_mean",
                                          "platform_mean", "mean_abs_difference"])
    if summary.empty:
        return PlatformComparison(summary, empty, joined,
                                  Message(N_("no attribute has values on both sides")))
    disagreements = empty
    if {"predicted_clv_hubnb", "predicted_clv_platform"} <= set(joined.columns):
        d = joined.assign(difference=joined["predicted_clv_hubnb"]
                          - joined["predicted_clv_platform"])
        d = d.dropna(subset=["difference"])
        keep = [c for c in ("profile_id", "email", "predicted_clv_hubnb", "predicted_clv_platform",
                            "difference", "churn_probability_hubnb",
                            "churn_probability_platform", "historical_orders_hubnb")
                if c in d.columns]
        disagreements = (d.assign(_abs=d["difference"].abs())
                         .sort_values(["_abs", "profile_id"], ascending=[False, True])
                         [keep].head(n_disagreements).reset_index(drop=True))
    return PlatformComparison(summary, disagreements, joined)
