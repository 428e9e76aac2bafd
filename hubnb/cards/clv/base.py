"""Section 3: CLV across the customer base (distribution, churn risk, next order dates, top
profiles)."""

from __future__ import annotations

import pandas as pd

from ... import format as fmt
from ...clv.dashboard import (
    churn_bands,
    distribution_summary,
    has_predictions,
    next_orders_by_week,
    top_profiles,
)
from ...figures import clv as clv_figures
from ...i18n import _
from ...render import Card
from .labels import display_frame


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
    if result.fit is not None and has_predictions(result.profiles):
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
