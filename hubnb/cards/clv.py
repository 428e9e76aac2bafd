"""The predictive CLV dashboard's cards (``notebooks/clv.ipynb``, one section each).

Each ``*_card`` function takes the engine's result (:func:`hubnb.clv.dashboard.run_clv`)
and the report, and returns a :class:`~hubnb.render.Card`; the numbers behind a card come
from the pure functions of :mod:`hubnb.clv.dashboard`. A card that does not apply (not
eligible, no backtest, no predictions table) says why in one sentence instead of failing.
The rules are written down in ``docs/clv_dashboard.md``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .. import format as fmt
from ..clv.dashboard import (PLATFORM_PAIRS, churn_bands, compare_with_platform,
                             distribution_summary, example_profiles, global_draws,
                             has_predictions, local_dates, model_choice_table,
                             next_orders_by_week, top_profiles)
from ..figures import clv as clv_figures
from ..params import ClvParams, OrderFilter
from ..render import Card
from ..segments import ASSET_TYPES, SegmentsResult, assets_using_segments, evaluate_segments

MODEL_NAMES = {"bg_nbd": "BG/NBD", "mbg_nbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD"}
BG_NBD_NOTICE = ("BG/NBD was chosen by hand (clv.model: bg_nbd). Under BG/NBD a customer can "
                 "only drop out right after a repeat order, so every customer with a single "
                 "order is held active: churn probability 0 however long they have been "
                 "silent. Their churn risk and next order dates mislead win-back flows; "
                 "clv.model: auto (Pareto/NBD or MBG/NBD) lets churn rise with silence.")
DIAGNOSTICS_WARNING = "Warning: the model fit diagnostics are flagged"
_WORDS = {"clv": "CLV", "aov": "AOV", "id": "ID", "hubnb": "(hubnb)", "platform": "(platform)",
          "avg": "average", "pred": "predictive", "p": "P", "30d": "30 days"}
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
                lambda v: "—" if pd.isna(v) else fmt.money(float(v), currency))
        elif ("churn_probability" in column or "p_order_30d" in column
              or column in ("share", "coverage")):
            out[_label(column)] = values.map(lambda v: fmt.share(v, 1))
        elif "date" in column:
            out[_label(column)] = values.map(fmt.day)
        elif pd.api.types.is_integer_dtype(values):
            out[_label(column)] = values.map(lambda v: fmt.number(v, 0))
        elif pd.api.types.is_float_dtype(values):
            whole = values.dropna().mod(1).eq(0).all()
            out[_label(column)] = values.map(lambda v: fmt.number(v, 0 if whole else 2))
        else:
            out[_label(column)] = values
    return out


def order_definition(orders: OrderFilter, history_days: int) -> str:
    """The order definition in force (``clv.orders``, docs/clv.md), in words."""
    parts = [f"placed in the last {fmt.count(history_days)} days", "not cancelled",
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
    text = (f"R-hat max {fmt.number(d.get('r_hat_max'), 3)}, bulk ESS min {fmt.number(d.get('ess_bulk_min'), 0)}, "
            f"{int(d.get('divergences') or 0)} divergences, fitted in "
            f"{fmt.number(d.get('fit_seconds'), 1)} s")
    return bool(d.get("flagged")), text


def model_card(result, report) -> Card:
    """Card 1, the current model: data used, prediction window, order definition, model and
    diagnostics (with a visible warning when ``fit.diagnostics['flagged']``)."""
    p = report.params
    clv: ClvParams = p.clv
    card = Card()
    first = (local_dates(result.orders["local_date"], p.timezone).min()
             if len(result.orders) else None)
    history = (f"{fmt.day(first)} to {fmt.day(p.as_of)}" if first is not None and not pd.isna(first)
               else "no counted orders")
    start = p.as_of + dt.timedelta(days=1)
    end = p.as_of + dt.timedelta(days=clv.horizon_days)
    flagged, status = diagnostics_status(result.fit)
    name = result.fit.model_name if result.fit is not None else clv.model
    chosen = ("chosen by PSIS-LOO from Pareto/NBD and MBG/NBD (clv.model: auto)"
              if clv.model == "auto" else f"set by hand (clv.model: {clv.model})")
    model = (f"{MODEL_NAMES.get(name, name)} (purchases), {chosen}, + Gamma-Gamma (spend), "
             f"Bayesian in PyMC; {clv.chains} chains x {fmt.count(clv.draws)} draws; "
             f"{clv.credible_interval:.0%} intervals")
    rows = [
        ("Historical data", history),
        ("Predictions for", f"{fmt.day(start)} to {fmt.day(end)} ({clv.horizon_days} days)"
         if result.eligible else "no predictions (not eligible)"),
        ("Last updated", f"data as of {fmt.day(p.as_of)} ({p.timezone})"),
        ("Profiles used", f"{fmt.count(len(result.profiles))} profiles with a counted order"),
        ("Orders used", f"{fmt.count(len(result.orders))}"),
        ("Order definition", order_definition(clv.orders, clv.history_days)),
        ("Model", model if result.fit is not None else "not fitted"),
        ("Diagnostics", status if not flagged else "FLAGGED: " + status),
    ]
    if not result.eligible:
        _not_eligible(card, result.reasons, brief=True)
    if result.fit is not None and result.fit.model_name == "bg_nbd":
        card.notice(BG_NBD_NOTICE, "warning")
    if flagged:
        reasons = (result.fit.diagnostics or {}).get("flag_reasons") or []
        card.notice("; ".join(reasons) or status, "warning", title=DIAGNOSTICS_WARNING,
                    after="The predictions below may be unreliable: check the trace and rank "
                          "plots under “How good is the model”, and consider more draws "
                          "(clv.draws) or more data.")
    card.key_values(rows, "Current model")
    return card


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
        "Model": [MODEL_NAMES.get(m, m) + (" (chosen)" if c else "")
                  for m, c in zip(table["model"], table["chosen"])],
        "elpd (PSIS-LOO)": table["elpd_loo"].map(lambda v: fmt.number(v, 1)),
        "SE": table["se"].map(lambda v: fmt.number(v, 1)),
        "Difference to the chosen model": [("—" if c else fmt.number(-v, 1))
                                           for v, c in zip(table["d_elpd"], table["chosen"])],
        "SE of the difference": [("—" if c else fmt.number(v, 1))
                                 for v, c in zip(table["d_se"], table["chosen"])],
        "Customers with Pareto k > 0.7": table["pareto_k_over_0_7"].map(lambda v: fmt.share(v, 2)),
        "R-hat max": table["r_hat_max"].map(lambda v: fmt.number(v, 3)),
        "Fit (s)": table["fit_seconds"].map(lambda v: fmt.number(v, 1)),
    })
    card.notice(sel.reason, "info")
    card.table(shown)
    return card.text("elpd is the expected log predictive density: how well the model, fitted "
                     "without a customer, predicts that customer's purchase history, summed "
                     "over all customers (higher is better). A difference smaller than about "
                     "twice its standard error means the data cannot tell the two models "
                     "apart. Pareto k above 0.7 marks customers whose score is unreliable.")


def _not_eligible(card: Card, reasons, brief: bool = False) -> Card:
    after = "" if brief else (
        "Historical attributes (historical orders, historical CLV, average days between "
        "orders) are still computed for every profile and written to clv_profiles.csv; "
        "predicted attributes, churn risk and the backtest need the model. To fit the model "
        "anyway, set clv.force: true in the params file (the predictions of a small history "
        "are uncertain).")
    return card.notice("The data is below Klaviyo's eligibility rules:", "error",
                       title="Predictive CLV is not available for this merchant yet.",
                       items=list(reasons) or ["no reason given"], after=after)


def eligibility_card(result, report) -> Card:
    """Card 8: why the merchant is not eligible and what data would make it eligible."""
    card = Card()
    if result.eligible:
        return card.text("The merchant meets the eligibility rules (at least 500 customers "
                         "with orders, 180 days of history, orders in the last 30 days, some "
                         "customers with 3+ orders), or clv.force is set: predictions were made.")
    _not_eligible(card, result.reasons)
    hist = result.profiles[[c for c in ("profile_id", "email", "historical_orders",
                                        "historical_clv", "avg_days_between_orders")
                            if c in result.profiles.columns]]
    if len(hist):
        card.text(f"Historical attributes of the {fmt.count(len(hist))} profiles with a counted order "
                  "(largest historical CLV first):")
        card.table(display_frame(hist.sort_values(["historical_clv", "profile_id"],
                                                  ascending=[False, True]).head(10),
                                 report.params.currency))
    return card


CREDIBLE_LABEL = "How sure we are of the average (credible interval)"
PREDICTIVE_LABEL = "Likely range of this customer's actual value (predictive interval)"
def next_order_text(date, as_of: dt.date, horizon_days: int) -> str:
    """A next order date as shown: beyond the prediction window it reads "not expected
    within <horizon> days" rather than a date years ahead (the CSV keeps the date)."""
    if date is None or pd.isna(date):
        return "—"
    if pd.Timestamp(date) > pd.Timestamp(as_of) + pd.Timedelta(days=horizon_days):
        return f"not expected within {fmt.count(horizon_days)} days"
    return fmt.day(date)


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
            return fmt.day(mean), f"{fmt.day(low)} to {fmt.day(high)}", ""
        after = f"after {fmt.day(window_end)}"
        low_text = after if pd.Timestamp(low) > window_end else fmt.day(low)
        high_text = after if pd.Timestamp(high) > window_end else fmt.day(high)
        span = low_text if low_text == high_text else f"{low_text} to {high_text}"
        return next_order_text(mean, as_of, horizon_days), span, ""

    cash = lambda v: "—" if v is None or pd.isna(v) else fmt.money(float(v), currency)  # noqa: E731
    count = lambda v: fmt.number(v, 2)  # noqa: E731
    whole = lambda v: fmt.number(v, 0)  # noqa: E731  (predictive bounds of counts are whole)
    days = lambda v: fmt.number(v, 0)  # noqa: E731
    share = lambda v: fmt.share(v, 1)  # noqa: E731
    rows = [
        ("Historical orders", fmt.number(example.get("historical_orders"), 0), "", ""),
        ("Historical CLV", cash(example.get("historical_clv")), "", ""),
        ("Average days between orders", fmt.number(example.get("avg_days_between_orders"), 1), "", ""),
        ("First order", fmt.day(example.get("first_order_date")), "", ""),
        ("Last order", fmt.day(example.get("last_order_date"))
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
        card.text(f"{who} (profile {ex['profile_id']}): of the {fmt.count(ex['group_size'])} profiles "
                  f"with {ex['rule']}, the one whose {basis} is nearest the group's median.")
        card.table(profile_attributes(ex, p.currency, p.clv.horizon_days, p.as_of))
        own = orders.loc[orders["profile_id"] == ex["profile_id"]]
        fig = clv_figures.example_timeline(own, ex, p.as_of, p.currency,
                                           p.clv.credible_interval, p.clv.horizon_days,
                                           title=f"Orders of {who} and the expected next order")
        card.figure(fig, f"Orders of example {ex['example']} on a time line, with the expected next order")
    if result.eligible:
        ci = p.clv.credible_interval
        card.text(f"Two ranges stand beside each prediction. The {ci:.0%} credible interval "
                  "says how sure the model is of this customer's average; the "
                  f"{ci:.0%} predictive interval is where the customer's actual orders and "
                  "spend over the window will fall, the chance of each purchase included: "
                  "compare that one with what happens. The next order date is the median "
                  "wait to the next order if the customer is still active.")
    return card


CHURN_BAND_MEANINGS = {
    "Low": "probably still buying: regular flows; no discount needed",
    "Medium": "slipping away: re-engage now (reminders, new arrivals) before they are lost",
    "High": "probably lapsed: win-back offers, or leave out of paid audiences",
}


def churn_band_label(band: pd.Series) -> str:
    """A band's churn probability limits as text: ``< 30%``, ``30% to < 70%``, ``>= 70%``."""
    if band["band"] == "Low":
        return f"< {fmt.share(band['churn_to'], 0)}"
    if band["band"] == "High":
        return f">= {fmt.share(band['churn_from'], 0)}"
    return f"{fmt.share(band['churn_from'], 0)} to < {fmt.share(band['churn_to'], 0)}"


def _needs_model(result, card: Card, what: str) -> bool:
    if result.eligible and has_predictions(result.profiles):
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
    card.figure(fig, "Distribution of historical and predicted CLV per profile")
    summary = distribution_summary(prof)
    names = {"historical_clv": "Historical CLV",
             "predicted_clv": f"Predicted CLV (next {p.clv.horizon_days} days)"}
    return card.table(pd.DataFrame({
        "": summary["measure"].map(names),
        "Total": summary["total"].map(lambda v: fmt.money(v, p.currency, 0)),
        "Mean per profile": summary["mean"].map(lambda v: fmt.money(v, p.currency)),
        "Median per profile": summary["median"].map(lambda v: fmt.money(v, p.currency))}))


def churn_risk_card(result, report) -> Card:
    """Card 3b: profiles and revenue at stake per churn risk band."""
    p = report.params
    card = Card()
    if _needs_model(result, card, "churn risk"):
        return card
    bands = churn_bands(result.profiles, p.clv.churn_bands)
    labels = [churn_band_label(band) for _, band in bands.iterrows()]
    card.figure(clv_figures.churn_band_chart(bands, labels, p.currency),
                "Churn risk: profiles per band, with the predicted CLV at stake")
    shown = pd.DataFrame({
        "Band": bands["band"], "Churn probability": labels,
        "What it means": bands["band"].map(CHURN_BAND_MEANINGS),
        "Profiles": bands["profiles"].map(fmt.count),
        "Share": bands["share"].map(lambda v: fmt.share(v, 0)),
        "Revenue at stake (predicted CLV)": bands["revenue_at_stake"].map(
            lambda v: fmt.money(v, p.currency, 0))})
    card.text("Churn probability is the chance that the customer will not order again. It "
              "rises the longer a customer stays silent, faster for customers who used to "
              "order often. Use the bands as segments, e.g. churn_probability >= "
              f"{p.clv.churn_bands[1]:g} for win-back flows (clv.churn_bands sets the limits).")
    if result.fit is not None and result.fit.model_name == "bg_nbd":
        one_time = int((result.profiles["historical_orders"] == 1).sum())
        card.notice(f"BG/NBD holds the {fmt.count(one_time)} customers with a single order active: "
                    "churn probability 0 and all in the Low band, however long ago they "
                    "ordered. Use clv.model: auto for a churn risk that rises with silence.",
                    "warning")
    return card.table(shown)


def next_orders_card(result, report) -> Card:
    """Card 3c: expected next order dates by week over the prediction window."""
    p = report.params
    card = Card()
    if _needs_model(result, card, "expected next order dates"):
        return card
    weeks = next_orders_by_week(result.profiles, p.as_of, p.clv.horizon_days, p.timezone)
    card.figure(clv_figures.next_orders_by_week_chart(weeks.weeks), "Expected next order dates, by week")
    text = (f"{fmt.count(weeks.weeks['profiles'].sum())} profiles' expected next order dates fall "
            f"within the next {p.clv.horizon_days} days; {fmt.count(weeks.beyond_horizon)} are not "
            f"expected to order within {p.clv.horizon_days} days (their dates, further "
            "ahead, are in clv_profiles.csv). The date is the median wait to the next order "
            "if the customer is still active; weigh it by the churn probability.")
    if weeks.undefined:
        text += f" {fmt.count(weeks.undefined)} profiles have no date (the model was not fitted)."
    return card.text(text)


def top_profiles_card(result, report, n: int = 15) -> Card:
    """Card 3d: the profiles with the largest predicted CLV, with intervals."""
    p = report.params
    card = Card()
    if _needs_model(result, card, "predicted CLV ranking"):
        return card
    top = top_profiles(result.profiles, n)
    card.figure(clv_figures.top_profiles_chart(top, p.currency, p.clv.credible_interval),
                "Top profiles by predicted CLV, with credible intervals")
    return card.table(display_frame(top, p.currency))


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
        card.text(f"Each model was fitted on the orders up to {fmt.day(calibration_end)} and "
                  f"predicted the next {fmt.number(s.get('holdout_days'), 0)} days; "
                  f"{fmt.number(s.get('buyers'), 0)} of the {fmt.number(s.get('profiles'), 0)} customers "
                  f"ordered in that holdout ({fmt.number(s.get('actual_orders'), 0)} orders).")
    card.table(backtest_scores_table(backtests, ci, chosen=result.fit.model_name))
    for name, b in backtests.items():
        d = (b.summary or {}).get("diagnostics") or {}
        if d.get("flagged"):
            card.notice(f"Warning: the diagnostics of the backtest's {MODEL_NAMES[name]} fit "
                        f"are flagged (R-hat max {fmt.number(d.get('r_hat_max'), 3)}, "
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
                    "Backtest: holdout orders per customer, actual against predicted")
        card.table(display_frame(bt.by_past_orders, p.currency).rename(columns={
            "Past repeat orders": "Repeat orders before the holdout", "Profiles": "Customers",
            "Actual mean": "Actual orders per customer",
            "Predicted mean": "Predicted orders per customer"}))
    if bt.cumulative is not None and len(bt.cumulative):
        card.figure(clv_figures.backtest_cumulative_chart(bt.cumulative, ci),
                    "Backtest: cumulative repeat orders, actual against predicted")
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
            "Actual orders in the holdout": fmt.number(s.get("actual_orders"), 0),
            "Predicted orders (mean)": fmt.number(pred.get("mean"), 0),
            f"Predicted orders ({ci:.0%} predictive interval)":
                f"{fmt.number(pred.get('lower'), 0)} to {fmt.number(pred.get('upper'), 0)}",
            "Error of the holdout total": ("—" if s.get("total_error_pct") is None
                                           else fmt.change(s["total_error_pct"])),
            "Correlation per customer (actual vs predicted)": fmt.number(s.get("correlation"), 3),
            "Mean absolute error per customer (orders)": fmt.number(s.get("mae"), 3),
            f"Coverage of the {ci:.0%} predictive intervals: orders": fmt.share(cov.get("orders"), 1),
            "Coverage the model expected for whole-number orders":
                fmt.share(cov.get("orders_expected"), 1),
            f"Coverage of the {ci:.0%} predictive intervals: spend": fmt.share(cov.get("clv"), 1),
            "Churn ranks the holdout's buyers (AUC)": fmt.share(auc.get("churn"), 1),
            "Next order date ranks the holdout's buyers (AUC)": fmt.share(auc.get("next_order_date"), 1),
            "Fit time (s)": fmt.number((s.get("diagnostics") or {}).get("fit_seconds"), 1),
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
    card.figure(clv_figures.posterior_chart(draws, p.clv.credible_interval),
                "Posterior of the global parameters")
    card.figure(clv_figures.trace_rank_chart(draws), "Trace and rank plots",
                collapsed="Trace and rank plots (click to open)")
    return card


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
    card.text(f"{fmt.count(int(cmp.summary['profiles'].max()))} profiles are in both. The platform's "
              f"horizon may differ from hubnb's {p.clv.horizon_days} days; correlation "
              "measures whether both rank customers alike.")
    shown = cmp.summary.copy()
    kinds = {label: kind for _, _, label, kind in PLATFORM_PAIRS}
    text = {"money": lambda v: fmt.money(v, p.currency), "share": lambda v: fmt.share(v, 1),
            "count": lambda v: fmt.number(v, 2)}
    for c in ("hubnb_mean", "platform_mean", "mean_abs_difference"):
        shown[c] = [text[kinds[a]](v) for a, v in zip(shown["attribute"], shown[c])]
    shown["correlation"] = shown["correlation"].map(lambda v: fmt.number(v, 3))
    shown["profiles"] = shown["profiles"].map(lambda v: fmt.number(v, 0))
    card.table(shown.rename(columns={
        "attribute": "Attribute", "profiles": "Profiles in both", "correlation": "Correlation",
        "hubnb_mean": "Mean (hubnb)", "platform_mean": "Mean (platform)",
        "mean_abs_difference": "Mean absolute difference"}))
    if {"predicted_clv_hubnb", "churn_probability_hubnb"} & set(cmp.joined.columns):
        card.figure(clv_figures.platform_scatter(cmp.joined, p.currency),
                    "hubnb against the platform, per profile")
    if len(cmp.disagreements):
        card.heading("Largest disagreements in predicted CLV")
        card.table(display_frame(cmp.disagreements, p.currency))
    return card


def outputs_card(report, result, segments: SegmentsResult | None = None) -> Card:
    """Card 9: the files this notebook writes (or why it writes none)."""
    card = Card()
    if report.output_dir is None:
        return card.text("Run by hand (output_dir is None): clv_profiles.csv, the segment "
                         "lists and the metrics are not written; `hubnb run` writes them.")
    files = [f"clv_profiles.csv ({fmt.count(len(result.profiles))} profiles)"]
    if segments is not None:
        files += [f"{f} ({fmt.count(n)} profiles)" for f, n in zip(segments.summary["file"],
                                                          segments.summary["profiles"])]
    files.append("the clv block of metrics.json")
    return card.items(files, "Written:")
