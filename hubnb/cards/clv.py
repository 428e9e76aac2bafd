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
from ..i18n import _, ngettext, translated
from ..clv.dashboard import (EXAMPLE_RULES, PLATFORM_PAIRS, churn_bands, compare_with_platform,
                             distribution_summary, example_profiles, global_draws,
                             has_predictions, model_choice_table,
                             next_orders_by_week, top_profiles)
from ..figures import clv as clv_figures
from ..params import ClvParams, OrderFilter
from ..periods import local_dates
from ..render import Card
from ..segments import ASSET_TYPES, SegmentsResult, assets_using_segments, evaluate_segments

MODEL_NAMES = {"bg_nbd": "BG/NBD", "mbg_nbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD"}


def bg_nbd_notice() -> str:
    return _("BG/NBD was chosen by hand (clv.model: bg_nbd). Under BG/NBD a customer can "
             "only drop out right after a repeat order, so every customer with a single "
             "order is held active: churn probability 0 however long they have been "
             "silent. Their churn risk and next order dates mislead win-back flows; "
             "clv.model: auto (Pareto/NBD or MBG/NBD) lets churn rise with silence.")


def diagnostics_warning() -> str:
    return _("Warning: the model fit diagnostics are flagged")


def column_labels() -> dict[str, str]:
    """The readable header of every column a CLV table shows."""
    return {
        "profile_id": _("Profile ID"), "email": _("Email"),
        "historical_orders": _("Historical orders"), "historical_clv": _("Historical CLV"),
        "avg_days_between_orders": _("Average days between orders"),
        "predicted_clv_mean": _("Predicted CLV (mean)"),
        "predicted_clv_lower": _("Predicted CLV, credible from"),
        "predicted_clv_upper": _("Predicted CLV, credible to"),
        "predicted_clv_pred_lower": _("Predicted CLV, likely range from"),
        "predicted_clv_pred_upper": _("Predicted CLV, likely range to"),
        "churn_probability_mean": _("Churn probability (mean)"),
        "p_order_30d_mean": _("Chance of an order in 30 days"),
        "predicted_clv_hubnb": _("Predicted CLV (hubnb)"),
        "predicted_clv_platform": _("Predicted CLV (platform)"),
        "difference": _("Difference"),
        "churn_probability_hubnb": _("Churn probability (hubnb)"),
        "churn_probability_platform": _("Churn probability (platform)"),
        "historical_orders_hubnb": _("Historical orders (hubnb)"),
        "past_repeat_orders": _("Repeat orders before the holdout"),
        "profiles": _("Customers"), "actual_mean": _("Actual orders per customer"),
        "predicted_mean": _("Predicted orders per customer"),
    }


def _label(column: str) -> str:
    labels = column_labels()
    if column in labels:
        return labels[column]
    text = column.replace("_", " ")
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
            out[_label(column)] = values.map(lambda v: fmt.money(v, currency))
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
    parts = [_("placed in the last {days} days").format(days=fmt.count(history_days)),
             _("not cancelled"), _("net of refunds (a fully refunded order does not count)")]
    parts.append(_("from sources {sources}").format(sources=", ".join(orders.sources))
                 if orders.sources else _("from every source"))
    if orders.exclude_pos:
        parts.append(_("point-of-sale orders excluded"))
    if orders.exclude_subscriptions:
        parts.append(_("subscription orders excluded"))
    parts.append(_("zero-value orders excluded") if orders.exclude_zero_value
                 else _("zero-value orders included"))
    return _("Orders {conditions}.").format(conditions="; ".join(parts))


def diagnostics_status(fit) -> tuple[bool, str]:
    """(flagged, text) for the fit's diagnostics; not flagged when there is no fit."""
    if fit is None:
        return False, _("no model fitted")
    d = fit.diagnostics or {}
    text = _("R-hat max {r_hat}, bulk ESS min {ess}, {divergences} divergences, fitted in "
             "{seconds} s").format(r_hat=fmt.number(d.get("r_hat_max"), 3),
                                   ess=fmt.number(d.get("ess_bulk_min"), 0),
                                   divergences=fmt.count(int(d.get("divergences") or 0)),
                                   seconds=fmt.number(d.get("fit_seconds"), 1))
    return bool(d.get("flagged")), text


def model_card(result, report) -> Card:
    """Card 1, the current model: data used, prediction window, order definition, model and
    diagnostics (with a visible warning when ``fit.diagnostics['flagged']``)."""
    p = report.params
    clv: ClvParams = p.clv
    card = Card()
    first = (local_dates(result.orders["local_date"], p.timezone).min()
             if len(result.orders) else None)
    history = (_("{first} to {last}").format(first=fmt.day(first), last=fmt.day(p.as_of))
               if first is not None and not pd.isna(first) else _("no counted orders"))
    start = p.as_of + dt.timedelta(days=1)
    end = p.as_of + dt.timedelta(days=clv.horizon_days)
    flagged, status = diagnostics_status(result.fit)
    name = result.fit.model_name if result.fit is not None else clv.model
    chosen = (_("chosen by PSIS-LOO from Pareto/NBD and MBG/NBD (clv.model: auto)")
              if clv.model == "auto"
              else _("set by hand (clv.model: {model})").format(model=clv.model))
    model = _("{model} (purchases), {chosen}, + Gamma-Gamma (spend), Bayesian in PyMC; "
              "{chains} chains x {draws} draws; {interval} intervals").format(
        model=MODEL_NAMES.get(name, name), chosen=chosen, chains=clv.chains,
        draws=fmt.count(clv.draws), interval=fmt.share(clv.credible_interval, 0))
    rows = [
        (_("Historical data"), history),
        (_("Predictions for"), _("{start} to {end} ({days} days)").format(
            start=fmt.day(start), end=fmt.day(end), days=fmt.count(clv.horizon_days))
         if result.eligible else _("no predictions (not eligible)")),
        (_("Last updated"), _("data as of {day} ({timezone})").format(day=fmt.day(p.as_of),
                                                                       timezone=p.timezone)),
        (_("Profiles used"), ngettext("{n} profile with a counted order",
                                      "{n} profiles with a counted order",
                                      len(result.profiles)).format(
            n=fmt.count(len(result.profiles)))),
        (_("Orders used"), fmt.count(len(result.orders))),
        (_("Order definition"), order_definition(clv.orders, clv.history_days)),
        (_("Model"), model if result.fit is not None else _("not fitted")),
        (_("Diagnostics"), status if not flagged
         else _("FLAGGED: {status}").format(status=status)),
    ]
    if not result.eligible:
        _not_eligible(card, result.reasons, brief=True)
    if result.fit is not None and result.fit.model_name == "bg_nbd":
        card.notice(bg_nbd_notice(), "warning")
    if flagged:
        reasons = (result.fit.diagnostics or {}).get("flag_reasons") or []
        card.notice("; ".join(map(translated, reasons)) or status, "warning",
                    title=diagnostics_warning(),
                    after=_("The predictions below may be unreliable: check the trace and rank "
                            "plots under “How good is the model”, and consider more draws "
                            "(clv.draws) or more data."))
    card.key_values(rows, _("Current model"))
    return card


def model_choice_card(result, report) -> Card:
    """Card 1b: which purchase model the data chose (``clv.model: auto``), and why."""
    p = report.params
    card = Card()
    if result.fit is None:
        return card.text(_("No model was fitted (the merchant is not eligible for predictive "
                           "CLV), so there is no model to choose."))
    sel = result.selection
    if sel is None:
        card.text(_("The purchase model was set by hand: clv.model is {setting} ({model}). "
                    "With clv.model: auto, hubnb fits Pareto/NBD and MBG/NBD and keeps the one "
                    "that predicts the customers' purchase histories better (PSIS-LOO).").format(
            setting=p.clv.model, model=MODEL_NAMES[result.fit.model_name]))
        if result.fit.model_name == "bg_nbd":
            card.notice(bg_nbd_notice(), "warning")
        return card
    table = model_choice_table(sel)
    shown = pd.DataFrame({
        _("Model"): [MODEL_NAMES.get(m, m) + (_(" (chosen)") if c else "")
                     for m, c in zip(table["model"], table["chosen"])],
        _("elpd (PSIS-LOO)"): table["elpd_loo"].map(lambda v: fmt.number(v, 1)),
        _("SE"): table["se"].map(lambda v: fmt.number(v, 1)),
        _("Difference to the chosen model"): [(fmt.DASH if c else fmt.number(-v, 1))
                                              for v, c in zip(table["d_elpd"], table["chosen"])],
        _("SE of the difference"): [(fmt.DASH if c else fmt.number(v, 1))
                                    for v, c in zip(table["d_se"], table["chosen"])],
        _("Customers with Pareto k > 0.7"): table["pareto_k_over_0_7"].map(
            lambda v: fmt.share(v, 2)),
        _("R-hat max"): table["r_hat_max"].map(lambda v: fmt.number(v, 3)),
        _("Fit (s)"): table["fit_seconds"].map(lambda v: fmt.number(v, 1)),
    })
    card.notice(model_choice_reason(sel), "info")
    card.table(shown)
    return card.text(_("elpd is the expected log predictive density: how well the model, "
                       "fitted without a customer, predicts that customer's purchase history, "
                       "summed over all customers (higher is better). A difference smaller "
                       "than about twice its standard error means the data cannot tell the two "
                       "models apart. Pareto k above 0.7 marks customers whose score is "
                       "unreliable."))


def model_choice_reason(sel) -> str:
    """Why the winner won (or that the two cannot be told apart), in the report's language."""
    others = [n for n in sel.candidates if n != sel.winner]
    winner = MODEL_NAMES.get(sel.winner, sel.winner)
    if not others:
        return _("{model} was the only candidate.").format(model=winner)
    other = others[0]
    c = sel.candidates[other]
    values = {"winner": winner, "other": MODEL_NAMES.get(other, other),
              "d": fmt.number(c["d_elpd"], 1), "se": fmt.number(c["d_se"], 1)}
    if sel.clear:
        text = _("{winner} predicts each customer's purchase history from the others better "
                 "than {other}: its expected log predictive density is higher by {d} "
                 "(standard error {se}), more than twice the uncertainty of the difference, so "
                 "the data clearly prefer it.").format(**values)
    else:
        text = _("{winner} and {other} predict these customers about equally well: {winner}'s "
                 "expected log predictive density is higher by {d}, within about two standard "
                 "errors ({se}) of no difference. hubnb keeps {winner}, the higher score; the "
                 "predictions of either would be much the same.").format(**values)
    bad = [MODEL_NAMES.get(n, n) for n, k in sel.candidates.items()
           if (k["pareto_k_over_0_7"] or 0) > 0.01]
    if bad:
        text += " " + _("Pareto k is above 0.7 for more than {share} of the customers under "
                        "{models}: those scores are less reliable.").format(
            share=fmt.share(0.01, 0), models=" & ".join(bad))
    if sel.method != "psis-loo":
        text += " " + _("Too few posterior draws for PSIS-LOO: the scores are in-sample log "
                        "predictive densities, which favour the more flexible model; use more "
                        "draws (clv.draws).")
    return text


def _not_eligible(card: Card, reasons, brief: bool = False) -> Card:
    after = "" if brief else _(
        "Historical attributes (historical orders, historical CLV, average days between "
        "orders) are still computed for every profile and written to clv_profiles.csv; "
        "predicted attributes, churn risk and the backtest need the model. To fit the model "
        "anyway, set clv.force: true in the params file (the predictions of a small history "
        "are uncertain).")
    return card.notice(_("The data is below Klaviyo's eligibility rules:"), "error",
                       title=_("Predictive CLV is not available for this merchant yet."),
                       items=[translated(r) for r in reasons] or [_("no reason given")],
                       after=after)


def eligibility_card(result, report) -> Card:
    """Card 8: why the merchant is not eligible and what data would make it eligible."""
    card = Card()
    if result.eligible:
        return card.text(_("The merchant meets the eligibility rules (at least 500 customers "
                           "with orders, 180 days of history, orders in the last 30 days, some "
                           "customers with 3+ orders), or clv.force is set: predictions were "
                           "made."))
    _not_eligible(card, result.reasons)
    hist = result.profiles[[c for c in ("profile_id", "email", "historical_orders",
                                        "historical_clv", "avg_days_between_orders")
                            if c in result.profiles.columns]]
    if len(hist):
        card.text(_("Historical attributes of the {n} profiles with a counted order (largest "
                    "historical CLV first):").format(n=fmt.count(len(hist))))
        card.table(display_frame(hist.sort_values(["historical_clv", "profile_id"],
                                                  ascending=[False, True]).head(10),
                                 report.params.currency))
    return card


def credible_label() -> str:
    return _("How sure we are of the average (credible interval)")


def predictive_label() -> str:
    return _("Likely range of this customer's actual value (predictive interval)")


def next_order_text(date, as_of: dt.date, horizon_days: int) -> str:
    """A next order date as shown: beyond the prediction window it reads "not expected
    within <horizon> days" rather than a date years ahead (the CSV keeps the date)."""
    if date is None or pd.isna(date):
        return fmt.DASH
    if pd.Timestamp(date) > pd.Timestamp(as_of) + pd.Timedelta(days=horizon_days):
        return _("not expected within {days} days").format(days=fmt.count(horizon_days))
    return fmt.day(date)


def profile_attributes(example: pd.Series, currency: str, horizon_days: int,
                       as_of: dt.date | None = None) -> pd.DataFrame:
    """Every CLV attribute of one profile with its intervals, as text for a table.

    Two intervals stand apart: the credible interval of the model's average for this
    profile, and (orders, CLV, total CLV) the posterior predictive interval of what the
    profile will actually do, purchase randomness included.
    """
    def span(low, high):
        return _("{low} to {high}").format(low=low, high=high)

    def interval(name, text, pred_text=None):
        mean, low, high = (example.get(f"{name}_{s}") for s in ("mean", "lower", "upper"))
        if mean is None or pd.isna(mean):
            return fmt.DASH, fmt.DASH, fmt.DASH if pred_text else ""
        pred = ""
        if pred_text:
            plo, phi = example.get(f"{name}_pred_lower"), example.get(f"{name}_pred_upper")
            pred = (fmt.DASH if plo is None or pd.isna(plo) or phi is None or pd.isna(phi)
                    else span(pred_text(plo), pred_text(phi)))
        return text(mean), span(text(low), text(high)), pred

    window_end = (None if as_of is None
                  else pd.Timestamp(as_of) + pd.Timedelta(days=horizon_days))

    def date_interval():
        mean, low, high = (example.get(f"expected_next_order_date_{s}")
                           for s in ("mean", "lower", "upper"))
        if mean is None or pd.isna(mean):
            return fmt.DASH, fmt.DASH, ""
        if window_end is None:
            return fmt.day(mean), span(fmt.day(low), fmt.day(high)), ""
        after = _("after {day}").format(day=fmt.day(window_end))
        low_text = after if pd.Timestamp(low) > window_end else fmt.day(low)
        high_text = after if pd.Timestamp(high) > window_end else fmt.day(high)
        shown = low_text if low_text == high_text else span(low_text, high_text)
        return next_order_text(mean, as_of, horizon_days), shown, ""

    cash = lambda v: fmt.money(v, currency)  # noqa: E731
    count = lambda v: fmt.number(v, 2)  # noqa: E731
    whole = lambda v: fmt.number(v, 0)  # noqa: E731  (predictive bounds of counts are whole)
    days = lambda v: fmt.number(v, 0)  # noqa: E731
    share = lambda v: fmt.share(v, 1)  # noqa: E731
    last = fmt.day(example.get("last_order_date"))
    if not pd.isna(example.get("days_since_last", np.nan)):
        last = _("{day} ({days} days before as of)").format(
            day=last, days=fmt.count(int(example["days_since_last"])))
    window = fmt.count(horizon_days)
    rows = [
        (_("Historical orders"), fmt.number(example.get("historical_orders"), 0), "", ""),
        (_("Historical CLV"), cash(example.get("historical_clv")), "", ""),
        (_("Average days between orders"),
         fmt.number(example.get("avg_days_between_orders"), 1), "", ""),
        (_("First order"), fmt.day(example.get("first_order_date")), "", ""),
        (_("Last order"), last, "", ""),
        (_("Predicted orders (next {days} days)").format(days=window),
         *interval("predicted_orders", count, whole)),
        (_("Predicted CLV (next {days} days)").format(days=window),
         *interval("predicted_clv", cash, cash)),
        (_("Total CLV"), *interval("total_clv", cash, cash)),
        (_("Average order value (future orders)"), *interval("aov", cash)),
        (_("Churn probability"), *interval("churn_probability", share)),
        (_("Chance of an order in the next 30 days"), *interval("p_order_30d", share)),
        (_("Days to next order (median wait if still active)"),
         *interval("days_to_next_order", days)),
        (_("Expected next order date"), *date_interval()),
    ]
    return pd.DataFrame(rows, columns=[_("Attribute"), _("Value (mean)"), credible_label(),
                                       predictive_label()])


def example_profiles_card(result, report) -> Card:
    """Card 2: the five example profiles, each with every attribute and its order timeline."""
    p = report.params
    examples = example_profiles(result.profiles, p.as_of, p.timezone)
    card = Card()
    if not result.eligible:
        card.notice(_("Not eligible: only the historical attributes are shown; the examples "
                      "are picked by historical CLV instead of predicted CLV."), "warning")
    orders = result.orders
    rules = {rule.number: rule for rule in EXAMPLE_RULES}
    for _row, ex in examples.iterrows():
        rule = example_rule_text(rules[ex["example"]])
        card.heading(_("{number}. {title}: {rule}").format(
            number=ex["example"], title=example_title(ex["example"]), rule=rule))
        if ex["group_size"] == 0:
            card.text(_("No profile has {rule}.").format(rule=rule))
            continue
        who = (ex.get("email") if isinstance(ex.get("email"), str)
               else _("profile {id}").format(id=ex["profile_id"]))
        text = (_("{who} (profile {id}): of the {n} profiles with {rule}, the one whose "
                  "predicted CLV is nearest the group's median.")
                if ex["picked_by"] == "predicted_clv_mean" else
                _("{who} (profile {id}): of the {n} profiles with {rule}, the one whose "
                  "historical CLV is nearest the group's median."))
        card.text(text.format(who=who, id=ex["profile_id"], n=fmt.count(ex["group_size"]),
                              rule=rule))
        card.table(profile_attributes(ex, p.currency, p.clv.horizon_days, p.as_of))
        own = orders.loc[orders["profile_id"] == ex["profile_id"]]
        title = _("Orders of {who} and the expected next order").format(who=who)
        fig = clv_figures.example_timeline(own, ex, p.as_of, p.currency,
                                           p.clv.credible_interval, p.clv.horizon_days,
                                           title=title)
        card.figure(fig, title)
    if result.eligible:
        card.text(_("Two ranges stand beside each prediction. The {ci} credible interval says "
                    "how sure the model is of this customer's average; the {ci} predictive "
                    "interval is where the customer's actual orders and spend over the window "
                    "will fall, the chance of each purchase included: compare that one with "
                    "what happens. The next order date is the median wait to the next order if "
                    "the customer is still active.").format(
            ci=fmt.share(p.clv.credible_interval, 0)))
    return card


def example_title(number: int) -> str:
    """The name of each of the five example profiles."""
    return {1: _("Loyal and active"), 2: _("Second order, active"), 3: _("New customer"),
            4: _("Lapsed loyal customer"), 5: _("One-time customer, lapsed")}[int(number)]


def example_rule_text(rule) -> str:
    """An :class:`~hubnb.clv.dashboard.ExampleRule` in words: ``3+ orders, last within 90
    days``."""
    if rule.max_orders == np.inf:
        orders = _("{n}+ orders").format(n=rule.min_orders)
    else:
        orders = ngettext("{n} order", "{n} orders", rule.min_orders).format(n=rule.min_orders)
    if rule.within_days is not None:
        return _("{orders}, last within {days} days").format(orders=orders, days=rule.within_days)
    return _("{orders}, last over {days} days ago").format(orders=orders, days=rule.over_days)


def churn_band_meanings() -> dict[str, str]:
    """What each churn band means for a merchant, and what to do with it."""
    return {
        "Low": _("probably still buying: regular flows; no discount needed"),
        "Medium": _("slipping away: re-engage now (reminders, new arrivals) before they are "
                    "lost"),
        "High": _("probably lapsed: win-back offers, or leave out of paid audiences"),
    }


def churn_band_names() -> dict[str, str]:
    return {"Low": _("Low"), "Medium": _("Medium"), "High": _("High")}


def churn_band_label(band: pd.Series) -> str:
    """A band's churn probability limits as text: ``< 30%``, ``30% to < 70%``, ``>= 70%``."""
    if band["band"] == "Low":
        return f"< {fmt.share(band['churn_to'], 0)}"
    if band["band"] == "High":
        return f">= {fmt.share(band['churn_from'], 0)}"
    return _("{low} to < {high}").format(low=fmt.share(band["churn_from"], 0),
                                         high=fmt.share(band["churn_to"], 0))


def _needs_model(result, card: Card, what: str) -> bool:
    """``what`` names the missing card, already translated."""
    if result.eligible and has_predictions(result.profiles):
        return False
    card.text(_("No {what}: the merchant is not eligible for predictive CLV, so the model "
                "was not fitted (see “Not eligible” below).").format(what=what))
    return True


def distribution_card(result, report) -> Card:
    """Card 3a: distribution of historical and predicted CLV over the profiles."""
    p = report.params
    card = Card()
    prof = result.profiles
    if not len(prof):
        return card.text(_("No profile has a counted order, so there is no CLV to show."))
    fig = clv_figures.clv_distribution(prof, p.currency, p.clv.horizon_days)
    card.figure(fig, _("Distribution of historical and predicted CLV per profile"))
    summary = distribution_summary(prof)
    names = {"historical_clv": _("Historical CLV"),
             "predicted_clv": _("Predicted CLV (next {days} days)").format(
                 days=fmt.count(p.clv.horizon_days))}
    return card.table(pd.DataFrame({
        "": summary["measure"].map(names),
        _("Total"): summary["total"].map(lambda v: fmt.money(v, p.currency, 0)),
        _("Mean per profile"): summary["mean"].map(lambda v: fmt.money(v, p.currency)),
        _("Median per profile"): summary["median"].map(lambda v: fmt.money(v, p.currency))}))


def churn_risk_card(result, report) -> Card:
    """Card 3b: profiles and revenue at stake per churn risk band."""
    p = report.params
    card = Card()
    if _needs_model(result, card, _("churn risk")):
        return card
    bands = churn_bands(result.profiles, p.clv.churn_bands)
    labels = [churn_band_label(band) for _row, band in bands.iterrows()]
    names = bands["band"].map(churn_band_names())
    title = _("Churn risk: profiles per band")
    card.figure(clv_figures.churn_band_chart(bands, labels, p.currency, names=list(names),
                                             title=title),
                _("Churn risk: profiles per band, with the predicted CLV at stake"))
    shown = pd.DataFrame({
        _("Band"): names, _("Churn probability"): labels,
        _("What it means"): bands["band"].map(churn_band_meanings()),
        _("Profiles"): bands["profiles"].map(fmt.count),
        _("Share"): bands["share"].map(lambda v: fmt.share(v, 0)),
        _("Revenue at stake (predicted CLV)"): bands["revenue_at_stake"].map(
            lambda v: fmt.money(v, p.currency, 0))})
    card.text(_("Churn probability is the chance that the customer will not order again. It "
                "rises the longer a customer stays silent, faster for customers who used to "
                "order often. Use the bands as segments, e.g. churn_probability >= {high} for "
                "win-back flows (clv.churn_bands sets the limits).").format(
        high=f"{p.clv.churn_bands[1]:g}"))
    if result.fit is not None and result.fit.model_name == "bg_nbd":
        one_time = int((result.profiles["historical_orders"] == 1).sum())
        card.notice(_("BG/NBD holds the {n} customers with a single order active: churn "
                      "probability 0 and all in the Low band, however long ago they ordered. "
                      "Use clv.model: auto for a churn risk that rises with silence.").format(
            n=fmt.count(one_time)), "warning")
    return card.table(shown)


def next_orders_card(result, report) -> Card:
    """Card 3c: expected next order dates by week over the prediction window."""
    p = report.params
    card = Card()
    if _needs_model(result, card, _("expected next order dates")):
        return card
    weeks = next_orders_by_week(result.profiles, p.as_of, p.clv.horizon_days, p.timezone)
    title = _("Expected next order dates, by week")
    card.figure(clv_figures.next_orders_by_week_chart(weeks.weeks, title=title), title)
    text = _("{within} profiles' expected next order dates fall within the next {days} days; "
             "{beyond} are not expected to order within {days} days (their dates, further "
             "ahead, are in clv_profiles.csv). The date is the median wait to the next order "
             "if the customer is still active; weigh it by the churn probability.").format(
        within=fmt.count(weeks.weeks["profiles"].sum()), days=fmt.count(p.clv.horizon_days),
        beyond=fmt.count(weeks.beyond_horizon))
    if weeks.undefined:
        text += " " + _("{n} profiles have no date (the model was not fitted).").format(
            n=fmt.count(weeks.undefined))
    return card.text(text)


def top_profiles_card(result, report, n: int = 15) -> Card:
    """Card 3d: the profiles with the largest predicted CLV, with intervals."""
    p = report.params
    card = Card()
    if _needs_model(result, card, _("predicted CLV ranking")):
        return card
    top = top_profiles(result.profiles, n)
    card.figure(clv_figures.top_profiles_chart(top, p.currency, p.clv.credible_interval),
                _("Top profiles by predicted CLV, with credible intervals"))
    return card.table(display_frame(top, p.currency))


def clv_segments(result, report) -> SegmentsResult:
    """The params segments evaluated over the CLV profiles (last updated: the as_of day)."""
    return evaluate_segments(result.profiles, report.params.segments,
                             last_updated=report.params.as_of.isoformat())


def segments_card(report, segments: SegmentsResult) -> Card:
    """Card 4: writes ``segments/<slug>.csv`` per segment and shows the segments table."""
    card = Card()
    if segments.summary.empty:
        return card.text(_("The params file defines no segment over the CLV attributes."))
    written = [report.write_csv(name, frame) for name, frame in segments.files().items()]
    summary = segments.summary.assign(
        note=segments.summary["note"].map(translated),
        profiles=segments.summary["profiles"].map(fmt.count),
        last_updated=segments.summary["last_updated"].map(fmt.day)).rename(columns={
            "segment": _("Segment"), "condition": _("Condition"), "profiles": _("Profiles"),
            "clv_attributes": _("CLV attributes used"), "last_updated": _("Last updated"),
            "file": _("Profile list"), "note": _("Note")})
    card.table(summary)
    if all(w is None for w in written):
        card.text(_("Profile lists are not written when the notebook runs by hand "
                    "(output_dir is None); `hubnb run` writes them."))
    return card


def assets_card(report) -> Card:
    """Card 5: campaigns, flows and forms whose audiences include a CLV segment."""
    data, p = report.data, report.params
    found = assets_using_segments(data.marketing_assets, [s.name for s in p.segments],
                                  table_present=data.present.get("marketing_assets", False),
                                  timezone=p.timezone)
    card = Card()
    for kind in ASSET_TYPES:
        card.heading({"campaign": _("Campaigns"), "flow": _("Flows"), "form": _("Forms")}[kind])
        table = found.tables[kind]
        if table.empty:
            card.text(_("None: {reason}.").format(reason=translated(found.reasons[kind])))
        else:
            card.table(table.drop(columns=["asset_id"]).rename(columns={
                "name": _("Name"), "status": _("Status"), "channels": _("Channels"),
                "type": _("Type"), "clv_segments": _("CLV segments"), "date": _("Date")}))
    return card


def backtest_card(result, report) -> Card:
    """Card 6a: the backtest (fit up to as_of - backtest_days, score the rest)."""
    p = report.params
    card = Card()
    if _needs_model(result, card, _("backtest")):
        return card
    bt = result.backtest
    if bt is None:
        return card.text(_("No backtest: clv.backtest_days is 0 in the params file. Set it "
                           "(e.g. 90) to fit the model on the data before as_of minus that "
                           "many days and compare its predictions with the orders that "
                           "followed."))
    s = bt.summary or {}
    ci = p.clv.credible_interval
    backtests = result.backtests or {bt.summary.get("model", p.clv.model): bt}
    calibration_end = s.get("calibration_end")
    if calibration_end:
        card.text(_("Each model was fitted on the orders up to {day} and predicted the next "
                    "{days} days; {buyers} of the {customers} customers ordered in that holdout "
                    "({orders} orders).").format(
            day=fmt.day(calibration_end), days=fmt.number(s.get("holdout_days"), 0),
            buyers=fmt.number(s.get("buyers"), 0), customers=fmt.number(s.get("profiles"), 0),
            orders=fmt.number(s.get("actual_orders"), 0)))
    card.table(backtest_scores_table(backtests, ci, chosen=result.fit.model_name))
    for name, b in backtests.items():
        d = (b.summary or {}).get("diagnostics") or {}
        if d.get("flagged"):
            card.notice(_("Warning: the diagnostics of the backtest's {model} fit are flagged "
                          "(R-hat max {r_hat}, {divergences} divergences): read its scores "
                          "with caution.").format(
                model=MODEL_NAMES[name], r_hat=fmt.number(d.get("r_hat_max"), 3),
                divergences=fmt.count(d.get("divergences", 0))), "warning")
    card.text(_("Coverage: the share of customers whose actual holdout orders (spend) fall "
                "inside their {ci} predictive interval; a well calibrated model is near {ci}. "
                "Orders are whole numbers, so an interval such as 0 to 1 order holds more than "
                "its nominal share; the model's own expected coverage is shown beside it, and "
                "a calibrated model matches it. AUC: the chance that a customer who ordered in "
                "the holdout is ranked ahead of one who did not, by low churn probability or by "
                "an early next order date; {half} is chance, {full} a perfect ranking. Orders "
                "on the same local day count as one, as in the model. The charts below are for "
                "the chosen model.").format(ci=fmt.share(ci, 0), half=fmt.share(0.5, 0),
                                            full=fmt.share(1.0, 0)))
    holdout_days = int(s.get("holdout_days") or p.clv.backtest_days)
    if bt.by_past_orders is not None and len(bt.by_past_orders):
        card.figure(clv_figures.backtest_by_past_orders_chart(bt.by_past_orders, holdout_days),
                    _("Backtest: holdout orders per customer, actual against predicted"))
        card.table(display_frame(bt.by_past_orders, p.currency))
    if bt.cumulative is not None and len(bt.cumulative):
        card.figure(clv_figures.backtest_cumulative_chart(bt.cumulative, ci),
                    _("Backtest: cumulative repeat orders, actual against predicted"))
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
        label = MODEL_NAMES.get(name, name) + (_(" (chosen)") if name == chosen and
                                               len(backtests) > 1 else "")
        level = fmt.share(ci, 0)
        rows[label] = {
            _("Actual orders in the holdout"): fmt.number(s.get("actual_orders"), 0),
            _("Predicted orders (mean)"): fmt.number(pred.get("mean"), 0),
            _("Predicted orders ({ci} predictive interval)").format(ci=level):
                _("{low} to {high}").format(low=fmt.number(pred.get("lower"), 0),
                                            high=fmt.number(pred.get("upper"), 0)),
            _("Error of the holdout total"): fmt.change(s.get("total_error_pct")),
            _("Correlation per customer (actual vs predicted)"):
                fmt.number(s.get("correlation"), 3),
            _("Mean absolute error per customer (orders)"): fmt.number(s.get("mae"), 3),
            _("Coverage of the {ci} predictive intervals: orders").format(ci=level):
                fmt.share(cov.get("orders"), 1),
            _("Coverage the model expected for whole-number orders"):
                fmt.share(cov.get("orders_expected"), 1),
            _("Coverage of the {ci} predictive intervals: spend").format(ci=level):
                fmt.share(cov.get("clv"), 1),
            _("Churn ranks the holdout's buyers (AUC)"): fmt.share(auc.get("churn"), 1),
            _("Next order date ranks the holdout's buyers (AUC)"):
                fmt.share(auc.get("next_order_date"), 1),
            _("Fit time (s)"): fmt.number((s.get("diagnostics") or {}).get("fit_seconds"), 1),
        }
    return pd.DataFrame(rows).rename_axis(_("Backtest")).reset_index()


def posterior_card(result, report) -> Card:
    """Card 6b: posterior of the global parameters; trace and rank plots collapsed."""
    p = report.params
    card = Card()
    if result.fit is None:
        return card.text(_("No posterior: the model was not fitted (the merchant is not "
                           "eligible for predictive CLV)."))
    flagged, status = diagnostics_status(result.fit)
    if flagged:
        card.notice("; ".join(map(translated, result.fit.diagnostics.get("flag_reasons")
                                  or [status])), "warning", title=diagnostics_warning())
    else:
        card.text(_("Diagnostics: {status}.").format(status=status))
    summary = getattr(result.fit, "params_summary", None)
    if summary is not None and len(summary):
        shown = (summary.reset_index() if summary.index.name else summary).copy()
        for c in shown.columns:
            if pd.api.types.is_float_dtype(shown[c]):
                shown[c] = shown[c].map(fmt.significant)
        card.table(shown.rename(columns={"parameter": _("Parameter"), "mean": _("Mean"),
                                         "sd": _("SD"), "r_hat": "R-hat",
                                         "ess_bulk": _("Bulk ESS")}))
    draws = global_draws(result.fit, result.fit.model_name)
    if not draws:
        return card.text(_("The fit holds no posterior draws of the global parameters to "
                           "plot."))
    card.figure(clv_figures.posterior_chart(draws, p.clv.credible_interval),
                _("Posterior of the global parameters"))
    card.figure(clv_figures.trace_rank_chart(draws), _("Trace and rank plots"),
                collapsed=_("Trace and rank plots (click to open)"))
    return card


def platform_card(result, report) -> Card:
    """Card 7: hubnb's predictions against the dataset's ``predictions`` table."""
    p, data = report.params, report.data
    card = Card()
    cmp = compare_with_platform(result.profiles, data.predictions, p.as_of,
                                table_present=data.present.get("predictions", False))
    if cmp.reason:
        return card.text(_("Nothing to compare: {reason}.").format(reason=translated(cmp.reason)))
    if not result.eligible:
        card.notice(_("Not eligible: only the historical attributes can be compared."),
                    "warning")
    card.text(_("{n} profiles are in both. The platform's horizon may differ from hubnb's "
                "{days} days; correlation measures whether both rank customers alike.").format(
        n=fmt.count(int(cmp.summary["profiles"].max())), days=fmt.count(p.clv.horizon_days)))
    shown = cmp.summary.copy()
    kinds = {label: kind for _, _, label, kind in PLATFORM_PAIRS}
    text = {"money": lambda v: fmt.money(v, p.currency), "share": lambda v: fmt.share(v, 1),
            "count": lambda v: fmt.number(v, 2)}
    for c in ("hubnb_mean", "platform_mean", "mean_abs_difference"):
        shown[c] = [text[kinds[a]](v) for a, v in zip(shown["attribute"], shown[c])]
    shown["correlation"] = shown["correlation"].map(lambda v: fmt.number(v, 3))
    shown["profiles"] = shown["profiles"].map(lambda v: fmt.number(v, 0))
    shown["attribute"] = shown["attribute"].map(lambda a: attribute_names().get(a, a))
    card.table(shown.rename(columns={
        "attribute": _("Attribute"), "profiles": _("Profiles in both"),
        "correlation": _("Correlation"), "hubnb_mean": _("Mean (hubnb)"),
        "platform_mean": _("Mean (platform)"),
        "mean_abs_difference": _("Mean absolute difference")}))
    if {"predicted_clv_hubnb", "churn_probability_hubnb"} & set(cmp.joined.columns):
        card.figure(clv_figures.platform_scatter(cmp.joined, p.currency),
                    _("hubnb against the platform, per profile"))
    if len(cmp.disagreements):
        card.heading(_("Largest disagreements in predicted CLV"))
        card.table(display_frame(cmp.disagreements, p.currency))
    return card


def outputs_card(report, result, segments: SegmentsResult | None = None) -> Card:
    """Card 9: the files this notebook writes (or why it writes none)."""
    card = Card()
    if report.output_dir is None:
        return card.text(_("Run by hand (output_dir is None): clv_profiles.csv, the segment "
                           "lists and the metrics are not written; `hubnb run` writes them."))

    def listed(name, n):
        return ngettext("{file} ({n} profile)", "{file} ({n} profiles)", int(n)).format(
            file=name, n=fmt.count(n))

    files = [listed("clv_profiles.csv", len(result.profiles))]
    if segments is not None:
        files += [listed(f, n) for f, n in zip(segments.summary["file"],
                                               segments.summary["profiles"])]
    files.append(_("the clv block of metrics.json"))
    return card.items(files, _("Written:"))


def attribute_names() -> dict[str, str]:
    """The CLV attributes compared with the platform, by name."""
    return {"predicted_clv": _("Predicted CLV"), "churn_probability": _("Churn probability"),
            "predicted_orders": _("Predicted orders"), "total_clv": _("Total CLV"),
            "aov": _("Average order value"), "historical_clv": _("Historical CLV"),
            "historical_orders": _("Historical orders"),
            "avg_days_between_orders": _("Average days between orders"),
            "days_to_next_order": _("Days to next order")}
