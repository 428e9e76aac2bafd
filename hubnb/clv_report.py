"""The predictive CLV dashboard's cards, around the engine of :mod:`hubnb.clv`.

The engine computes the CLV attributes (:func:`hubnb.clv.compute_clv`); this module turns
its result into the cards of ``notebooks/clv.ipynb``: the model card, five example
profiles, the attributes across the customer base, segments and the marketing assets using
them, the backtest and the posterior, and the comparison with a platform's predictions.

Pure functions (``example_profiles``, ``churn_bands``, ``next_orders_by_week``,
``top_profiles``, ``compare_with_platform``) take frames and return frames. The ``*_card``
functions return a :class:`Card`, HTML that Jupyter shows as the cell's output; a card that
does not apply (not eligible, no backtest, no predictions table) says why in one sentence
instead of failing. The rules are written down in ``docs/clv_dashboard.md``.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .figures import money
from .figures import clv as clv_figures
from .params import ClvParams, OrderFilter
from .segments import assets_using_segments, evaluate_segments, SegmentsResult, ASSET_TYPES

#: Global parameters of each purchase model, then of the Gamma-Gamma spend model.
GLOBAL_PARAMS = {"bg_nbd": ("r", "alpha", "a", "b"), "mbg_nbd": ("r", "alpha", "a", "b"),
                 "pareto_nbd": ("r", "alpha", "s", "beta")}
SPEND_PARAMS = ("p", "q", "v")
MODEL_NAMES = {"bg_nbd": "BG/NBD", "mbg_nbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD"}
BG_NBD_NOTICE = ("BG/NBD was chosen by hand (clv.model: bg_nbd). Under BG/NBD a customer can "
                 "only drop out right after a repeat order, so every customer with a single "
                 "order is held active: churn probability 0 however long they have been "
                 "silent. Their churn risk and next order dates mislead win-back flows; "
                 "clv.model: auto (Pareto/NBD or MBG/NBD) lets churn rise with silence.")
DIAGNOSTICS_WARNING = "Warning: the model fit diagnostics are flagged"


# --------------------------------------------------------------------------- rendering

@dataclass
class Card:
    """A dashboard card: HTML fragments shown in order as the cell's output."""

    parts: list[str] = field(default_factory=list)

    def add(self, fragment: str) -> "Card":
        self.parts.append(fragment)
        return self

    def text(self, sentence: str) -> "Card":
        return self.add(f"<p>{html.escape(sentence)}</p>")

    def notice(self, sentence: str, kind: str = "info") -> "Card":
        return self.add(_notice(sentence, kind))

    def heading(self, title: str, level: int = 4) -> "Card":
        return self.add(f"<h{level}>{html.escape(title)}</h{level}>")

    def table(self, frame: pd.DataFrame) -> "Card":
        return self.add(_table(frame))

    def figure(self, fig, alt: str = "") -> "Card":
        return self.add(clv_figures.figure_html(fig, alt))

    def _repr_html_(self) -> str:
        return "\n".join(self.parts)

    def html(self) -> str:
        """The card's HTML."""
        return self._repr_html_()


_NOTICE_STYLE = {
    "info": "border-left:4px solid #0969da;background:#ddf4ff",
    "warning": "border-left:4px solid #bf8700;background:#fff8c5",
    "error": "border-left:4px solid #cf222e;background:#ffebe9",
}


def _notice(body: str, kind: str = "info", escape: bool = True) -> str:
    text = html.escape(body) if escape else body
    return (f'<div class="hubnb-notice hubnb-{kind}" style="{_NOTICE_STYLE[kind]};'
            f'padding:0.6em 1em;margin:0.5em 0">{text}</div>')


def _key_values(rows, title: str = "") -> str:
    """A two-column table of labels and values, left aligned (the model card)."""
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1.5em;vertical-align:top'>"
        f"{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in rows)
    caption = (f"<caption style='text-align:left;font-weight:bold'>{html.escape(title)}</caption>"
               if title else "")
    return f"<table class='hubnb-card'>{caption}{cells}</table>"


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, na_rep="—", border=0, classes="dataframe hubnb",
                         escape=True)


_WORDS = {"clv": "CLV", "aov": "AOV", "id": "ID", "hubnb": "(hubnb)", "platform": "(platform)",
          "avg": "average", "pred": "predictive", "p": "P", "30d": "30 days"}


#: Column headers that read better written out than built from their words.
_HEADERS = {"p_order_30d_mean": "Chance of an order in 30 days",
            "predicted_clv_pred_lower": "Predicted CLV, likely range from",
            "predicted_clv_pred_upper": "Predicted CLV, likely range to",
            "predicted_clv_lower": "Predicted CLV, credible from",
            "predicted_clv_upper": "Predicted CLV, credible to"}


def _label(column: str) -> str:
    if column in _HEADERS:
        return _HEADERS[column]
    words = [_WORDS.get(w, w) for w in column.split("_")]
    text = " ".join(words)
    return text[0].upper() + text[1:]


def display_frame(frame: pd.DataFrame, currency: str) -> pd.DataFrame:
    """A frame of CLV attributes as text for a card: money, percentages, readable headers.

    Columns are formatted by name: CLV, AOV and ``difference`` as money in ``currency``,
    churn probabilities as percentages, dates as days, other numbers with 2 decimals
    (whole numbers without).
    """
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        if column in ("profile_id", "email"):
            out[_label(column)] = values
        elif "clv" in column or "aov" in column or column == "difference":
            out[_label(column)] = values.map(
                lambda v: "—" if pd.isna(v) else money(float(v), currency))
        elif ("churn_probability" in column or "p_order_30d" in column
              or column in ("share", "coverage")):
            out[_label(column)] = values.map(lambda v: _pct(v, 1))
        elif "date" in column:
            out[_label(column)] = values.map(_day)
        elif pd.api.types.is_integer_dtype(values):
            out[_label(column)] = values.map(lambda v: _num(v, 0))
        elif pd.api.types.is_float_dtype(values):
            whole = values.dropna().mod(1).eq(0).all()
            out[_label(column)] = values.map(lambda v: _num(v, 0 if whole else 2))
        else:
            out[_label(column)] = values
    return out


def _pct(value, decimals: int = 0) -> str:
    return "—" if value is None or pd.isna(value) else f"{100 * value:.{decimals}f}%"


def _num(value, decimals: int = 2) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:,.{decimals}f}"


def _day(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%b %d, %Y}"


def local_dates(values, timezone: str) -> pd.Series:
    """Dates (naive midnight timestamps) from dates, naive or tz-aware timestamps.

    A tz-aware timestamp is first converted to ``timezone`` so its date is the local day.
    """
    s = pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()
    converted = pd.to_datetime(s, errors="coerce")
    if isinstance(converted.dtype, pd.DatetimeTZDtype):
        converted = converted.dt.tz_convert(timezone).dt.tz_localize(None)
    return converted.dt.normalize()


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A numeric column as floats; all missing when the frame has no such column."""
    if name not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[name], errors="coerce").astype("float64")


def _has_predictions(profiles: pd.DataFrame) -> bool:
    return ("predicted_clv_mean" in profiles.columns
            and profiles["predicted_clv_mean"].notna().any())


# --------------------------------------------------------------------------- engine

def run_clv(report, progress: bool = False):
    """Compute the CLV attributes with the report's params and data (one engine call)."""
    from .clv import compute_clv

    p = report.params
    return compute_clv(report.data.orders, report.data.refunds, report.data.profiles,
                       p.clv, p.as_of, p.timezone, progress=progress)


def clv_profiles_frame(result) -> pd.DataFrame:
    """``clv_profiles.csv``: the engine's profiles frame, dates written as ISO days."""
    out = result.profiles.copy()
    for column in out.columns:
        if column.endswith("_date") or "_date_" in column:
            dates = local_dates(out[column], "UTC")
            out[column] = dates.dt.strftime("%Y-%m-%d").where(dates.notna(), None)
    return out


def outputs_card(report, result, segments: SegmentsResult | None = None) -> Card:
    """Card 9: the files this notebook writes (or why it writes none)."""
    card = Card()
    if report.output_dir is None:
        return card.text("Run by hand (output_dir is None): clv_profiles.csv, the segment "
                         "lists and the metrics are not written; `hubnb run` writes them.")
    files = [f"clv_profiles.csv ({len(result.profiles):,} profiles)"]
    if segments is not None:
        files += [f"{f} ({n:,} profiles)" for f, n in zip(segments.summary["file"],
                                                          segments.summary["profiles"])]
    files.append("the clv block of metrics.json")
    return card.add("<p>Written:</p><ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in files)
                    + "</ul>")


# --------------------------------------------------------------------------- model card

def order_definition(orders: OrderFilter, history_days: int) -> str:
    """The order definition in force (``clv.orders``, docs/clv.md), in words."""
    parts = [f"placed in the last {history_days:,} days", "not cancelled",
             "net of refunds (a fully refunded order does not count)"]
    parts.append("from sources " + ", ".join(orders.sources) if orders.sources
                 else "from every source")
    if orders.exclude_pos:
        parts.append("point-of-sale orders excluded")
    if orders.exclude_subscriptions:
        parts.append("subscription orders excluded")
    parts.append("zero-value orders excluded" if orders.exclude_zero_value
                 else "zero-value orders included")
    return "Orders " + "; ".join(parts) + "."


def diagnostics_status(fit) -> tuple[bool, str]:
    """(flagged, text) for the fit's diagnostics; not flagged when there is no fit."""
    if fit is None:
        return False, "no model fitted"
    d = fit.diagnostics or {}
    text = (f"R-hat max {_num(d.get('r_hat_max'), 3)}, bulk ESS min {_num(d.get('ess_bulk_min'), 0)}, "
            f"{int(d.get('divergences') or 0)} divergences, fitted in "
            f"{_num(d.get('fit_seconds'), 1)} s")
    return bool(d.get("flagged")), text


def model_card(result, report) -> Card:
    """Card 1, the current model: data used, prediction window, order definition, model and
    diagnostics (with a visible warning when ``fit.diagnostics['flagged']``)."""
    p = report.params
    clv: ClvParams = p.clv
    card = Card()
    first = (local_dates(result.orders["local_date"], p.timezone).min()
             if len(result.orders) else None)
    history = (f"{_day(first)} to {_day(p.as_of)}" if first is not None and not pd.isna(first)
               else "no counted orders")
    start = p.as_of + dt.timedelta(days=1)
    end = p.as_of + dt.timedelta(days=clv.horizon_days)
    flagged, status = diagnostics_status(result.fit)
    name = result.fit.model_name if result.fit is not None else clv.model
    chosen = ("chosen by PSIS-LOO from Pareto/NBD and MBG/NBD (clv.model: auto)"
              if clv.model == "auto" else f"set by hand (clv.model: {clv.model})")
    model = (f"{MODEL_NAMES.get(name, name)} (purchases), {chosen}, + Gamma-Gamma (spend), "
             f"Bayesian in PyMC; {clv.chains} chains x {clv.draws:,} draws; "
             f"{clv.credible_interval:.0%} intervals")
    rows = [
        ("Historical data", history),
        ("Predictions for", f"{_day(start)} to {_day(end)} ({clv.horizon_days} days)"
         if result.eligible else "no predictions (not eligible)"),
        ("Last updated", f"data as of {_day(p.as_of)} ({p.timezone})"),
        ("Profiles used", f"{len(result.profiles):,} profiles with a counted order"),
        ("Orders used", f"{len(result.orders):,}"),
        ("Order definition", order_definition(clv.orders, clv.history_days)),
        ("Model", model if result.fit is not None else "not fitted"),
        ("Diagnostics", status if not flagged else "FLAGGED: " + status),
    ]
    if not result.eligible:
        card.add(_not_eligible_html(result.reasons, brief=True))
    if result.fit is not None and result.fit.model_name == "bg_nbd":
        card.notice(BG_NBD_NOTICE, "warning")
    if flagged:
        reasons = (result.fit.diagnostics or {}).get("flag_reasons") or []
        body = (f"<strong>{html.escape(DIAGNOSTICS_WARNING)}</strong>: "
                + html.escape("; ".join(reasons) or status)
                + ". The predictions below may be unreliable: check the trace and rank plots "
                  "under “How good is the model”, and consider more draws (clv.draws) or "
                  "more data.")
        card.add(_notice(body, "warning", escape=False))
    card.add(_key_values(rows, "Current model"))
    return card


# --------------------------------------------------------------------------- model choice

def model_choice_table(selection) -> pd.DataFrame:
    """The candidates' PSIS-LOO scores, winner first (numbers unformatted)."""
    rows = []
    for name, c in sorted(selection.candidates.items(),
                          key=lambda kv: kv[0] != selection.winner):
        rows.append({"model": MODEL_NAMES.get(name, name), "chosen": name == selection.winner,
                     "elpd_loo": c["elpd_loo"], "se": c["se"], "d_elpd": c["d_elpd"],
                     "d_se": c["d_se"], "pareto_k_over_0_7": c["pareto_k_over_0_7"],
                     "r_hat_max": c.get("r_hat_max"), "fit_seconds": c.get("fit_seconds")})
    return pd.DataFrame(rows)


def model_choice_card(result, report) -> Card:
    """Card 1b: which purchase model the data chose (``clv.model: auto``), and why."""
    p = report.params
    card = Card()
    if result.fit is None:
        return card.text("No model was fitted (the merchant is not eligible for predictive "
                         "CLV), so there is no model to choose.")
    sel = result.selection
    if sel is None:
        card.text(f"The purchase model was set by hand: clv.model is {p.clv.model} "
                  f"({MODEL_NAMES[result.fit.model_name]}). With clv.model: auto, hubnb fits "
                  "Pareto/NBD and MBG/NBD and keeps the one that predicts the customers' "
                  "purchase histories better (PSIS-LOO).")
        if result.fit.model_name == "bg_nbd":
            card.notice(BG_NBD_NOTICE, "warning")
        return card
    table = model_choice_table(sel)
    shown = pd.DataFrame({
        "Model": [m + (" (chosen)" if c else "") for m, c in zip(table["model"], table["chosen"])],
        "elpd (PSIS-LOO)": table["elpd_loo"].map(lambda v: _num(v, 1)),
        "SE": table["se"].map(lambda v: _num(v, 1)),
        "Difference to the chosen model": [("—" if c else _num(-v, 1))
                                           for v, c in zip(table["d_elpd"], table["chosen"])],
        "SE of the difference": [("—" if c else _num(v, 1))
                                 for v, c in zip(table["d_se"], table["chosen"])],
        "Customers with Pareto k > 0.7": table["pareto_k_over_0_7"].map(lambda v: _pct(v, 2)),
        "R-hat max": table["r_hat_max"].map(lambda v: _num(v, 3)),
        "Fit (s)": table["fit_seconds"].map(lambda v: _num(v, 1)),
    })
    card.notice(sel.reason, "info")
    card.table(shown)
    return card.text("elpd is the expected log predictive density: how well the model, fitted "
                     "without a customer, predicts that customer's purchase history, summed "
                     "over all customers (higher is better). A difference smaller than about "
                     "twice its standard error means the data cannot tell the two models "
                     "apart. Pareto k above 0.7 marks customers whose score is unreliable.")


# --------------------------------------------------------------------------- eligibility

def _not_eligible_html(reasons, brief: bool = False) -> str:
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons) or "<li>no reason given</li>"
    body = ("<strong>Predictive CLV is not available for this merchant yet.</strong> "
            "The data is below Klaviyo's eligibility rules:"
            f"<ul style='margin:0.3em 0'>{items}</ul>")
    if not brief:
        body += ("Historical attributes (historical orders, historical CLV, average days "
                 "between orders) are still computed for every profile and written to "
                 "clv_profiles.csv; predicted attributes, churn risk and the backtest need "
                 "the model. To fit the model anyway, set <code>clv.force: true</code> in "
                 "the params file (the predictions of a small history are uncertain).")
    return _notice(body, "error", escape=False)


def eligibility_card(result, report) -> Card:
    """Card 8: why the merchant is not eligible and what data would make it eligible."""
    card = Card()
    if result.eligible:
        return card.text("The merchant meets the eligibility rules (at least 500 customers "
                         "with orders, 180 days of history, orders in the last 30 days, some "
                         "customers with 3+ orders), or clv.force is set: predictions were made.")
    card.add(_not_eligible_html(result.reasons))
    hist = result.profiles[[c for c in ("profile_id", "email", "historical_orders",
                                        "historical_clv", "avg_days_between_orders")
                            if c in result.profiles.columns]]
    if len(hist):
        card.text(f"Historical attributes of the {len(hist):,} profiles with a counted order "
                  "(largest historical CLV first):")
        card.table(display_frame(hist.sort_values(["historical_clv", "profile_id"],
                                                  ascending=[False, True]).head(10),
                                 report.params.currency))
    return card


# --------------------------------------------------------------------------- five examples

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
    value_column = "predicted_clv_mean" if _has_predictions(profiles) else "historical_clv"
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


CREDIBLE_LABEL = "How sure we are of the average (credible interval)"
PREDICTIVE_LABEL = "Likely range of this customer's actual value (predictive interval)"


def next_order_text(date, as_of: dt.date, horizon_days: int) -> str:
    """A next order date as shown: beyond the prediction window it reads "not expected
    within <horizon> days" rather than a date years ahead (the CSV keeps the date)."""
    if date is None or pd.isna(date):
        return "—"
    if pd.Timestamp(date) > pd.Timestamp(as_of) + pd.Timedelta(days=horizon_days):
        return f"not expected within {horizon_days:,} days"
    return _day(date)


def profile_attributes(example: pd.Series, currency: str, horizon_days: int,
                       as_of: dt.date | None = None) -> pd.DataFrame:
    """Every CLV attribute of one profile with its intervals, as text for a table.

    Two intervals stand apart: the credible interval of the model's average for this
    profile, and (orders, CLV, total CLV) the posterior predictive interval of what the
    profile will actually do, purchase randomness included.
    """
    def interval(name, fmt, pred_fmt=None):
        mean, low, high = (example.get(f"{name}_{s}") for s in ("mean", "lower", "upper"))
        if mean is None or pd.isna(mean):
            return "—", "—", "—" if pred_fmt else ""
        pred = ""
        if pred_fmt:
            plo, phi = example.get(f"{name}_pred_lower"), example.get(f"{name}_pred_upper")
            pred = ("—" if plo is None or pd.isna(plo) or phi is None or pd.isna(phi)
                    else f"{pred_fmt(plo)} to {pred_fmt(phi)}")
        return fmt(mean), f"{fmt(low)} to {fmt(high)}", pred

    window_end = (None if as_of is None
                  else pd.Timestamp(as_of) + pd.Timedelta(days=horizon_days))

    def date_interval():
        mean, low, high = (example.get(f"expected_next_order_date_{s}")
                           for s in ("mean", "lower", "upper"))
        if mean is None or pd.isna(mean):
            return "—", "—", ""
        if window_end is None:
            return _day(mean), f"{_day(low)} to {_day(high)}", ""
        after = f"after {_day(window_end)}"
        low_text = after if pd.Timestamp(low) > window_end else _day(low)
        high_text = after if pd.Timestamp(high) > window_end else _day(high)
        span = low_text if low_text == high_text else f"{low_text} to {high_text}"
        return next_order_text(mean, as_of, horizon_days), span, ""

    cash = lambda v: "—" if v is None or pd.isna(v) else money(float(v), currency)  # noqa: E731
    count = lambda v: _num(v, 2)  # noqa: E731
    whole = lambda v: _num(v, 0)  # noqa: E731  (predictive bounds of counts are whole)
    days = lambda v: _num(v, 0)  # noqa: E731
    share = lambda v: _pct(v, 1)  # noqa: E731
    rows = [
        ("Historical orders", _num(example.get("historical_orders"), 0), "", ""),
        ("Historical CLV", cash(example.get("historical_clv")), "", ""),
        ("Average days between orders", _num(example.get("avg_days_between_orders"), 1), "", ""),
        ("First order", _day(example.get("first_order_date")), "", ""),
        ("Last order", _day(example.get("last_order_date"))
         + (f" ({int(example['days_since_last'])} days before as of)"
            if not pd.isna(example.get("days_since_last", np.nan)) else ""), "", ""),
        (f"Predicted orders (next {horizon_days} days)",
         *interval("predicted_orders", count, whole)),
        (f"Predicted CLV (next {horizon_days} days)", *interval("predicted_clv", cash, cash)),
        ("Total CLV", *interval("total_clv", cash, cash)),
        ("Average order value (future orders)", *interval("aov", cash)),
        ("Churn probability", *interval("churn_probability", share)),
        ("Chance of an order in the next 30 days", *interval("p_order_30d", share)),
        ("Days to next order (median wait if still active)",
         *interval("days_to_next_order", days)),
        ("Expected next order date", *date_interval()),
    ]
    return pd.DataFrame(rows, columns=["Attribute", "Value (mean)", CREDIBLE_LABEL,
                                       PREDICTIVE_LABEL])


def example_profiles_card(result, report) -> Card:
    """Card 2: the five example profiles, each with every attribute and its order timeline."""
    p = report.params
    examples = example_profiles(result.profiles, p.as_of, p.timezone)
    card = Card()
    if not result.eligible:
        card.notice("Not eligible: only the historical attributes are shown; the examples are "
                    "picked by historical CLV instead of predicted CLV.", "warning")
    orders = result.orders
    for _, ex in examples.iterrows():
        card.heading(f"{ex['example']}. {ex['title']}: {ex['rule']}")
        if ex["group_size"] == 0:
            card.text(f"No profile has {ex['rule']}.")
            continue
        who = ex.get("email") if isinstance(ex.get("email"), str) else f"profile {ex['profile_id']}"
        basis = "predicted CLV" if ex["picked_by"] == "predicted_clv_mean" else "historical CLV"
        card.text(f"{who} (profile {ex['profile_id']}): of the {ex['group_size']:,} profiles "
                  f"with {ex['rule']}, the one whose {basis} is nearest the group's median.")
        card.table(profile_attributes(ex, p.currency, p.clv.horizon_days, p.as_of))
        own = orders.loc[orders["profile_id"] == ex["profile_id"]]
        fig = clv_figures.example_timeline(own, ex, p.as_of, p.currency,
                                           p.clv.credible_interval, p.clv.horizon_days)
        card.figure(fig, f"order timeline of example {ex['example']}")
    if result.eligible:
        ci = p.clv.credible_interval
        card.text(f"Two ranges stand beside each prediction. The {ci:.0%} credible interval "
                  "says how sure the model is of this customer's average; the "
                  f"{ci:.0%} predictive interval is where the customer's actual orders and "
                  "spend over the window will fall, the chance of each purchase included: "
                  "compare that one with what happens. The next order date is the median "
                  "wait to the next order if the customer is still active.")
    return card


# --------------------------------------------------------------------------- customer base

#: What each churn band means for a merchant, and what to do with it.
CHURN_BAND_MEANINGS = {
    "Low": "probably still buying: regular flows; no discount needed",
    "Medium": "slipping away: re-engage now (reminders, new arrivals) before they are lost",
    "High": "probably lapsed: win-back offers, or leave out of paid audiences",
}


def churn_bands(profiles: pd.DataFrame, bands: tuple[float, float]) -> pd.DataFrame:
    """Profiles and revenue at stake per churn risk band.

    Low: churn_probability_mean < medium_from; Medium: medium_from <= p < high_from;
    High: p >= high_from. Revenue at stake is the band's sum of ``predicted_clv_mean``;
    ``historical_orders_median`` and ``days_since_last_median`` (when the frame has
    ``last_order_date`` and ``as_of`` is given) describe who is in the band. Profiles
    without a churn probability are in no band.
    """
    medium_from, high_from = bands
    p = _column(profiles, "churn_probability_mean")
    clv = _column(profiles, "predicted_clv_mean").fillna(0.0)
    masks = [("Low", f"< {medium_from:.0%}", p < medium_from),
             ("Medium", f"{medium_from:.0%} to < {high_from:.0%}",
              (p >= medium_from) & (p < high_from)),
             ("High", f">= {high_from:.0%}", p >= high_from)]
    total = int(p.notna().sum())
    rows = [{"band": name, "churn_probability": label, "meaning": CHURN_BAND_MEANINGS[name],
             "profiles": int(m.sum()),
             "share": (m.sum() / total) if total else np.nan,
             "revenue_at_stake": float(clv[m].sum())} for name, label, m in masks]
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


def _needs_model(result, card: Card, what: str) -> bool:
    if result.eligible and _has_predictions(result.profiles):
        return False
    card.text(f"No {what}: the merchant is not eligible for predictive CLV, so the model "
              "was not fitted (see “Not eligible” below).")
    return True


def distribution_card(result, report) -> Card:
    """Card 3a: distribution of historical and predicted CLV over the profiles."""
    p = report.params
    card = Card()
    prof = result.profiles
    if not len(prof):
        return card.text("No profile has a counted order, so there is no CLV to show.")
    fig = clv_figures.clv_distribution(prof, p.currency, p.clv.horizon_days)
    card.figure(fig, "distribution of CLV")
    hist = _column(prof, "historical_clv")
    pred = _column(prof, "predicted_clv_mean")
    rows = [("Historical CLV", money(hist.sum(), p.currency, 0), money(hist.mean(), p.currency),
             money(hist.median(), p.currency))]
    if pred.notna().any():
        rows.append((f"Predicted CLV (next {p.clv.horizon_days} days)",
                     money(pred.sum(), p.currency, 0), money(pred.mean(), p.currency),
                     money(pred.median(), p.currency)))
    return card.table(pd.DataFrame(rows, columns=["", "Total", "Mean per profile",
                                                   "Median per profile"]))


def churn_risk_card(result, report) -> Card:
    """Card 3b: profiles and revenue at stake per churn risk band."""
    p = report.params
    card = Card()
    if _needs_model(result, card, "churn risk"):
        return card
    bands = churn_bands(result.profiles, p.clv.churn_bands)
    card.figure(clv_figures.churn_band_chart(bands, p.currency), "churn risk bands")
    shown = bands.assign(share=bands["share"].map(_pct),
                         profiles=bands["profiles"].map(lambda v: _num(v, 0)),
                         revenue_at_stake=bands["revenue_at_stake"].map(
                             lambda v: money(v, p.currency, 0)))
    card.text("Churn probability is the chance that the customer will not order again. It "
              "rises the longer a customer stays silent, faster for customers who used to "
              "order often. Use the bands as segments, e.g. churn_probability >= "
              f"{p.clv.churn_bands[1]:g} for win-back flows (clv.churn_bands sets the limits).")
    if result.fit is not None and result.fit.model_name == "bg_nbd":
        one_time = int((result.profiles["historical_orders"] == 1).sum())
        card.notice(f"BG/NBD holds the {one_time:,} customers with a single order active: "
                    "churn probability 0 and all in the Low band, however long ago they "
                    "ordered. Use clv.model: auto for a churn risk that rises with silence.",
                    "warning")
    return card.table(shown.rename(columns={
        "band": "Band", "churn_probability": "Churn probability", "meaning": "What it means",
        "profiles": "Profiles", "share": "Share",
        "revenue_at_stake": "Revenue at stake (predicted CLV)"}))


def next_orders_card(result, report) -> Card:
    """Card 3c: expected next order dates by week over the prediction window."""
    p = report.params
    card = Card()
    if _needs_model(result, card, "expected next order dates"):
        return card
    weeks = next_orders_by_week(result.profiles, p.as_of, p.clv.horizon_days, p.timezone)
    card.figure(clv_figures.next_orders_by_week_chart(weeks.weeks), "next orders by week")
    text = (f"{weeks.weeks['profiles'].sum():,} profiles' expected next order dates fall "
            f"within the next {p.clv.horizon_days} days; {weeks.beyond_horizon:,} are not "
            f"expected to order within {p.clv.horizon_days} days (their dates, further "
            "ahead, are in clv_profiles.csv). The date is the median wait to the next order "
            "if the customer is still active; weigh it by the churn probability.")
    if weeks.undefined:
        text += f" {weeks.undefined:,} profiles have no date (the model was not fitted)."
    return card.text(text)


def top_profiles_card(result, report, n: int = 15) -> Card:
    """Card 3d: the profiles with the largest predicted CLV, with intervals."""
    p = report.params
    card = Card()
    if _needs_model(result, card, "predicted CLV ranking"):
        return card
    top = top_profiles(result.profiles, n)
    card.figure(clv_figures.top_profiles_chart(top, p.currency, p.clv.credible_interval),
                "top profiles")
    return card.table(display_frame(top, p.currency))


# --------------------------------------------------------------------------- segments

def clv_segments(result, report) -> SegmentsResult:
    """The params segments evaluated over the CLV profiles (last updated: the as_of day)."""
    return evaluate_segments(result.profiles, report.params.segments,
                             last_updated=report.params.as_of.isoformat())


def segments_card(report, segments: SegmentsResult) -> Card:
    """Card 4: writes ``segments/<slug>.csv`` per segment and shows the segments table."""
    card = Card()
    if segments.summary.empty:
        return card.text("The params file defines no segment over the CLV attributes.")
    written = [report.write_csv(name, frame) for name, frame in segments.files().items()]
    summary = segments.summary.rename(columns={
        "segment": "Segment", "condition": "Condition", "profiles": "Profiles",
        "clv_attributes": "CLV attributes used", "last_updated": "Last updated",
        "file": "Profile list", "note": "Note"})
    card.table(summary)
    if all(w is None for w in written):
        card.text("Profile lists are not written when the notebook runs by hand "
                  "(output_dir is None); `hubnb run` writes them.")
    return card


def assets_card(report) -> Card:
    """Card 5: campaigns, flows and forms whose audiences include a CLV segment."""
    data, p = report.data, report.params
    found = assets_using_segments(data.marketing_assets, [s.name for s in p.segments],
                                  table_present=data.present.get("marketing_assets", False),
                                  timezone=p.timezone)
    card = Card()
    for kind in ASSET_TYPES:
        card.heading({"campaign": "Campaigns", "flow": "Flows", "form": "Forms"}[kind])
        table = found.tables[kind]
        if table.empty:
            card.text(f"None: {found.reasons[kind]}.")
        else:
            card.table(table.drop(columns=["asset_id"]).rename(columns={
                "name": "Name", "status": "Status", "channels": "Channels", "type": "Type",
                "clv_segments": "CLV segments", "date": "Date"}))
    return card


# --------------------------------------------------------------------------- model quality

def global_draws(fit, model: str) -> dict[str, np.ndarray]:
    """Posterior draws of the global parameters (purchase model, then spend model)."""
    names = tuple(getattr(fit, "param_names", ())) or GLOBAL_PARAMS[model] + SPEND_PARAMS
    idata = fit.idata
    sources = idata.values() if isinstance(idata, dict) else [idata]
    draws = {}
    for source in sources:
        draws.update(clv_figures.posterior_draws(source, names))
    return {n: draws[n] for n in names if n in draws}


def backtest_card(result, report) -> Card:
    """Card 6a: the backtest (fit up to as_of - backtest_days, score the rest)."""
    p = report.params
    card = Card()
    if _needs_model(result, card, "backtest"):
        return card
    bt = result.backtest
    if bt is None:
        return card.text("No backtest: clv.backtest_days is 0 in the params file. Set it "
                         "(e.g. 90) to fit the model on the data before as_of minus that many "
                         "days and compare its predictions with the orders that followed.")
    s = bt.summary or {}
    ci = p.clv.credible_interval
    backtests = result.backtests or {bt.summary.get("model", p.clv.model): bt}
    calibration_end = s.get("calibration_end")
    if calibration_end:
        card.text(f"Each model was fitted on the orders up to {_day(calibration_end)} and "
                  f"predicted the next {_num(s.get('holdout_days'), 0)} days; "
                  f"{_num(s.get('buyers'), 0)} of the {_num(s.get('profiles'), 0)} customers "
                  f"ordered in that holdout ({_num(s.get('actual_orders'), 0)} orders).")
    card.table(backtest_scores_table(backtests, ci, chosen=result.fit.model_name))
    for name, b in backtests.items():
        d = (b.summary or {}).get("diagnostics") or {}
        if d.get("flagged"):
            card.notice(f"Warning: the diagnostics of the backtest's {MODEL_NAMES[name]} fit "
                        f"are flagged (R-hat max {_num(d.get('r_hat_max'), 3)}, "
                        f"{d.get('divergences', 0)} divergences): read its scores with "
                        "caution.", "warning")
    card.text(f"Coverage: the share of customers whose actual holdout orders (spend) fall "
              f"inside their {ci:.0%} predictive interval; a well calibrated model is near "
              f"{ci:.0%}. Orders are whole numbers, so an interval such as 0 to 1 order holds "
              "more than its nominal share; the model's own expected coverage is shown beside "
              "it, and a calibrated model matches it. AUC: the "
              "chance that a customer who ordered in the holdout is ranked ahead of one who "
              "did not, by low churn probability or by an early next order date; 50% is "
              "chance, 100% a perfect ranking. Orders on the same local day count as one, as "
              "in the model. The charts below are for the chosen model.")
    holdout_days = int(s.get("holdout_days") or p.clv.backtest_days)
    if bt.by_past_orders is not None and len(bt.by_past_orders):
        card.figure(clv_figures.backtest_by_past_orders_chart(bt.by_past_orders, holdout_days),
                    "backtest by past orders")
        card.table(display_frame(bt.by_past_orders, p.currency).rename(columns={
            "Past repeat orders": "Repeat orders before the holdout", "Profiles": "Customers",
            "Actual mean": "Actual orders per customer",
            "Predicted mean": "Predicted orders per customer"}))
    if bt.cumulative is not None and len(bt.cumulative):
        card.figure(clv_figures.backtest_cumulative_chart(bt.cumulative, ci),
                    "cumulative orders")
    return card


def backtest_scores_table(backtests: dict, credible_interval: float,
                          chosen: str | None = None) -> pd.DataFrame:
    """One column per backtested model: the scores merchants rely on, as text."""
    ci = credible_interval
    rows = {}
    for name, b in backtests.items():
        s = b.summary or {}
        pred = s.get("predicted_orders") or {}
        cov = s.get("coverage") or {}
        auc = s.get("auc") or {}
        label = MODEL_NAMES.get(name, name) + (" (chosen)" if name == chosen and
                                               len(backtests) > 1 else "")
        rows[label] = {
            "Actual orders in the holdout": _num(s.get("actual_orders"), 0),
            "Predicted orders (mean)": _num(pred.get("mean"), 0),
            f"Predicted orders ({ci:.0%} predictive interval)":
                f"{_num(pred.get('lower'), 0)} to {_num(pred.get('upper'), 0)}",
            "Error of the holdout total": ("—" if s.get("total_error_pct") is None
                                           else f"{s['total_error_pct']:+.1f}%"),
            "Correlation per customer (actual vs predicted)": _num(s.get("correlation"), 3),
            "Mean absolute error per customer (orders)": _num(s.get("mae"), 3),
            f"Coverage of the {ci:.0%} predictive intervals: orders": _pct(cov.get("orders"), 1),
            "Coverage the model expected for whole-number orders":
                _pct(cov.get("orders_expected"), 1),
            f"Coverage of the {ci:.0%} predictive intervals: spend": _pct(cov.get("clv"), 1),
            "Churn ranks the holdout's buyers (AUC)": _pct(auc.get("churn"), 1),
            "Next order date ranks the holdout's buyers (AUC)": _pct(auc.get("next_order_date"), 1),
            "Fit time (s)": _num((s.get("diagnostics") or {}).get("fit_seconds"), 1),
        }
    return pd.DataFrame(rows).rename_axis("Backtest").reset_index()


def posterior_card(result, report) -> Card:
    """Card 6b: posterior of the global parameters; trace and rank plots collapsed."""
    p = report.params
    card = Card()
    if result.fit is None:
        return card.text("No posterior: the model was not fitted (the merchant is not "
                         "eligible for predictive CLV).")
    flagged, status = diagnostics_status(result.fit)
    if flagged:
        card.notice(f"{DIAGNOSTICS_WARNING}: "
                    + "; ".join(result.fit.diagnostics.get("flag_reasons") or [status]),
                    "warning")
    else:
        card.text(f"Diagnostics: {status}.")
    summary = getattr(result.fit, "params_summary", None)
    if summary is not None and len(summary):
        shown = (summary.reset_index() if summary.index.name else summary).copy()
        for c in shown.columns:
            if pd.api.types.is_float_dtype(shown[c]):
                shown[c] = shown[c].map(lambda v: "—" if pd.isna(v) else f"{v:.4g}")
        card.table(shown)
    draws = global_draws(result.fit, result.fit.model_name)
    if not draws:
        return card.text("The fit holds no posterior draws of the global parameters to plot.")
    card.figure(clv_figures.posterior_chart(draws, p.clv.credible_interval), "posterior")
    card.add(clv_figures.details_html(clv_figures.trace_rank_chart(draws),
                                      "Trace and rank plots (click to open)"))
    return card


# --------------------------------------------------------------------------- platform

#: hubnb column, predictions column, label, kind.
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
        return PlatformComparison(empty, empty, empty, "no predictions table in the dataset")
    if predictions.empty:
        return PlatformComparison(empty, empty, empty, "the predictions table has no rows")
    platform = predictions.copy()
    if "expected_date_of_next_order" in platform:
        nxt = local_dates(platform["expected_date_of_next_order"], "UTC")
        platform["days_to_next_order"] = (nxt - pd.Timestamp(as_of)).dt.days
    merged = profiles.merge(platform, on="profile_id", how="inner", suffixes=("", "__p"))
    if merged.empty:
        return PlatformComparison(empty, empty, empty,
                                  "no profile of the predictions table has a counted order")
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
                                  "no attribute has values on both sides")
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


def platform_card(result, report) -> Card:
    """Card 7: hubnb's predictions against the dataset's ``predictions`` table."""
    p, data = report.params, report.data
    card = Card()
    cmp = compare_with_platform(result.profiles, data.predictions, p.as_of,
                                table_present=data.present.get("predictions", False))
    if cmp.reason:
        return card.text(f"Nothing to compare: {cmp.reason}.")
    if not result.eligible:
        card.notice("Not eligible: only the historical attributes can be compared.", "warning")
    card.text(f"{int(cmp.summary['profiles'].max()):,} profiles are in both. The platform's "
              f"horizon may differ from hubnb's {p.clv.horizon_days} days; correlation "
              "measures whether both rank customers alike.")
    shown = cmp.summary.copy()
    kinds = {label: kind for _, _, label, kind in PLATFORM_PAIRS}
    fmt = {"money": lambda v: money(v, p.currency), "share": lambda v: _pct(v, 1),
           "count": lambda v: _num(v, 2)}
    for c in ("hubnb_mean", "platform_mean", "mean_abs_difference"):
        shown[c] = [fmt[kinds[a]](v) for a, v in zip(shown["attribute"], shown[c])]
    shown["correlation"] = shown["correlation"].map(lambda v: _num(v, 3))
    shown["profiles"] = shown["profiles"].map(lambda v: _num(v, 0))
    card.table(shown.rename(columns={
        "attribute": "Attribute", "profiles": "Profiles in both", "correlation": "Correlation",
        "hubnb_mean": "Mean (hubnb)", "platform_mean": "Mean (platform)",
        "mean_abs_difference": "Mean absolute difference"}))
    if {"predicted_clv_hubnb", "churn_probability_hubnb"} & set(cmp.joined.columns):
        card.figure(clv_figures.platform_scatter(cmp.joined, p.currency), "platform scatter")
    if len(cmp.disagreements):
        card.heading("Largest disagreements in predicted CLV")
        card.table(display_frame(cmp.disagreements, p.currency))
    return card
