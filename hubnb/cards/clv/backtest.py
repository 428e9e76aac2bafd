"""Section 6, how good the model is (the backtest), and section 7, the comparison with the
platform's predictions."""

from __future__ import annotations

import pandas as pd

from ... import format as fmt
from ...clv.dashboard import PLATFORM_PAIRS, compare_with_platform
from ...clv.laplace import LARGE_ROWS
from ...figures import clv as clv_figures
from ...i18n import _
from ...messages import translated
from ...render import Card
from .base import _needs_model
from .labels import MODEL_NAMES, attribute_names, display_frame


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
    if s.get("sample_of"):
        card.text(_("The model was fitted on all {all} customers; its holdout was scored on "
                    "a random sample of {sample} of them (more than {limit} distinct purchase "
                    "histories: the scores of a sample this size are within a fraction of a "
                    "point of those of every customer, at a fraction of the time).").format(
            all=fmt.count(s["sample_of"]), sample=fmt.count(s.get("profiles")),
            limit=fmt.count(LARGE_ROWS)))
    card.table(backtest_scores_table(backtests, ci, chosen=result.fit.model_name))
    approximated = [MODEL_NAMES[n] for n, b in backtests.items()
                    if (b.summary or {}).get("posterior") == "laplace-is"
                    and n != result.fit.model_name]
    if approximated:
        card.text(_("Every candidate was backtested. {models}: fitted on their quick "
                    "approximation (Laplace, checked by importance sampling, the one the "
                    "candidates were compared on) rather than sampled in full, which makes "
                    "their backtests cheap and their intervals a little less exact than the "
                    "chosen model's.").format(models=", ".join(approximated)))
    for name, b in backtests.items():
        d = (b.summary or {}).get("diagnostics") or {}
        if d.get("flagged"):
            card.notice(_("Warning: the diagnostics of the backtest's {model} fit are flagged "
                          "(R-hat max {r_hat}, {divergences} divergences): read its scores "
                          "with caution.").format(
                model=MODEL_NAMES[name], r_hat=fmt.number(d.get("r_hat_max"), 3),
                divergences=fmt.count(d.get("divergences", 0))), "warning")
    _calibration(card, backtests, ci, result.fit.model_name, calibration_end)
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


def _ordered(backtests: dict, chosen: str) -> list[str]:
    """The chosen model first, then the others as they came."""
    return [chosen] * (chosen in backtests) + [n for n in backtests if n != chosen]


def _calibration(card: Card, backtests: dict, ci: float, chosen: str, calibration_end) -> None:
    """The reliability diagram of p_order_30d and the weekly tracking, every candidate."""
    names = _ordered(backtests, chosen)
    diagrams = {MODEL_NAMES[n]: backtests[n].reliability for n in names
                if getattr(backtests[n], "reliability", None) is not None}
    if diagrams:
        card.figure(clv_figures.reliability_chart(diagrams),
                    _("Backtest: predicted chance of an order within 30 days against the "
                      "share that ordered"))
        errors = {MODEL_NAMES[n]: (backtests[n].summary or {}).get("p_order_30d_calibration_error")
                  for n in names}
        card.text(_("The customers are split into ten groups of equal size by their "
                    "predicted chance of an order within 30 days of the calibration end; each "
                    "point is a group's mean prediction against the share of it that did "
                    "order. Points on the diagonal mean a calibrated model. Calibration error "
                    "(the customers' mean gap between the two): {errors}.").format(
            errors="; ".join(f"{m} {fmt.share(e, 1)}" for m, e in errors.items())))
        first, rel = next(iter(diagrams.items()))
        card.table(pd.DataFrame({
            _("Group"): rel["bin"].astype(int),
            _("Customers"): rel["profiles"].map(fmt.count),
            _("Predicted chance ({model})").format(model=first): rel["predicted"].map(
                lambda v: fmt.share(v, 1)),
            _("Share that ordered"): rel["observed"].map(lambda v: fmt.share(v, 1)),
        }))
    tracks = {MODEL_NAMES[n]: backtests[n].tracking for n in names
              if getattr(backtests[n], "tracking", None) is not None
              and len(backtests[n].tracking)}
    if tracks and calibration_end:
        card.figure(clv_figures.tracking_chart(tracks, ci, calibration_end),
                    _("Backtest: cumulative repeat orders week by week, actual against each "
                      "model"))
        card.text(_("The backtest's customers' repeat orders, summed week by week after the "
                    "calibration end, against each model's prediction: its mean and its {ci} "
                    "predictive band (the uncertainty of the parameters and the randomness "
                    "of purchases).").format(ci=fmt.share(ci, 0)))


def backtest_scores_table(backtests: dict, credible_interval: float,
                          chosen: str | None = None) -> pd.DataFrame:
    """One column per backtested model: the scores merchants rely on, as text."""
    ci = credible_interval
    rows = {}
    for name in _ordered(backtests, chosen):
        s = backtests[name].summary or {}
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
            _("Calibration error of the chance of an order within 30 days"): fmt.share(
                s.get("p_order_30d_calibration_error"), 1),
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


def platform_card(result, report) -> Card:
    """Card 7: hubnb's predictions against the dataset's ``predictions`` table."""
    p, data = report.params, report.data
    card = Card()
    cmp = compare_with_platform(result.profiles, data.predictions, p.as_of,
                                table_present=data.present.get("predictions", False))
    if cmp.reason:
        return card.text(_("Nothing to compare: {reason}.").format(reason=translated(cmp.reason)))
    if result.fit is None:
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
