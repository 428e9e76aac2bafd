"""Section 1, the current model, and section 8, eligibility: the model and model-choice
cards, the fit diagnostics and the posterior of the global parameters."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ... import format as fmt
from ...clv.dashboard import global_draws, model_choice_table
from ...figures import clv as clv_figures
from ...i18n import _, ngettext
from ...messages import translated
from ...params import ClvParams, OrderFilter
from ...periods import local_dates
from ...render import Card
from .labels import MODEL_NAMES, display_frame


def bg_nbd_notice() -> str:
    return _("BG/NBD was chosen by hand (clv.model: bg_nbd). Under BG/NBD a customer can "
             "only drop out right after a repeat order, so every customer with a single "
             "order is held active: churn probability 0 however long they have been "
             "silent. Their churn risk and next order dates mislead win-back flows; "
             "clv.model: auto (Pareto/NBD, MBG/NBD or MBG/CNBD-k) lets churn rise with "
             "silence.")


def diagnostics_warning() -> str:
    return _("Warning: the model fit diagnostics are flagged")


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
    if d.get("posterior") == "laplace-is":
        return bool(d.get("flagged")), _(
            "importance-sampled Laplace approximation (Pareto k {k}), {ess} effective draws, "
            "fitted in {seconds} s").format(k=fmt.number(d.get("pareto_k"), 2),
                                            ess=fmt.number(d.get("ess_bulk_min"), 0),
                                            seconds=fmt.number(d.get("fit_seconds"), 1))
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
    if clv.model == "auto":
        names = (list(result.selection.candidates) if result.selection is not None
                 else ["pareto_nbd", "mbg_nbd"])
        chosen = _("chosen by PSIS-LOO from {models} (clv.model: auto)").format(
            models=", ".join(MODEL_NAMES[n] for n in names))
    else:
        chosen = _("set by hand (clv.model: {model})").format(model=clv.model)
    d = (result.fit.diagnostics or {}) if result.fit is not None else {}
    if d.get("posterior") == "laplace-is":
        model = _("{model} (purchases), {chosen}, + Gamma-Gamma (spend), Bayesian; with "
                  "{rows} distinct purchase histories the posterior is a Laplace "
                  "approximation, importance-sampled ({draws} draws) instead of NUTS; "
                  "{interval} intervals").format(
            model=MODEL_NAMES.get(name, name), chosen=chosen,
            rows=fmt.count(result.fit.data.purchase_rows if result.fit.data else 0),
            draws=fmt.count(int(d.get("proposal_draws") or 0)),
            interval=fmt.share(clv.credible_interval, 0))
    else:
        model = _("{model} (purchases), {chosen}, + Gamma-Gamma (spend), Bayesian in PyMC; "
                  "{chains} chains x {draws} draws; {interval} intervals").format(
            model=MODEL_NAMES.get(name, name), chosen=chosen, chains=clv.chains,
            draws=fmt.count(clv.draws), interval=fmt.share(clv.credible_interval, 0))
    rows = [
        (_("Historical data"), history),
        (_("Predictions for"), _("{start} to {end} ({days} days)").format(
            start=fmt.day(start), end=fmt.day(end), days=fmt.count(clv.horizon_days))
         if result.fit is not None else _("no predictions (not eligible)")),
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
    if result.fit is not None:
        rows.append((_("Fit"), _("reused from the fit cache: the same data, model, settings "
                                 "and code were fitted before, so nothing was refitted")
                     if (result.fit.diagnostics or {}).get("fit_cache_hit")
                     else _("sampled for this report")))
    if pooling_of(result).get("used"):
        _pooled(card, result, brief=True)
    elif not result.eligible:
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
                    "With clv.model: auto, hubnb fits Pareto/NBD, MBG/NBD and, when the "
                    "customers reorder at steady intervals, MBG/CNBD-k, and keeps the one "
                    "that predicts the customers' purchase histories best (PSIS-LOO).").format(
            setting=p.clv.model, model=MODEL_NAMES[result.fit.model_name]))
        _regularity(card, result)
        return card  # BG/NBD's one-order warning is the model card's, shown once
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
    card.text(_("elpd is the expected log predictive density: how well the model, "
                "fitted without a customer, predicts that customer's purchase history, "
                "summed over all customers (higher is better). A difference smaller "
                "than about twice its standard error means the data cannot tell the two "
                "models apart. Pareto k above 0.7 marks customers whose score is "
                "unreliable."))
    return _regularity(card, result)


def regularity_sentence(reg: dict, winner: str) -> str:
    """What the regularity search found, in a merchant's words."""
    k = int(reg["k"])
    gap = reg.get("median_gap_days")
    every = (" " + _("Customers who reorder do so about every {days} days (the median of "
                     "their average gaps).").format(days=fmt.number(gap, 0))
             if gap is not None else "")
    if reg.get("fixed"):
        return _("The regularity k is fixed at {k} (clv.regularity_k).").format(k=k) + every
    if k == 1:
        return _("Customers do not reorder at steady intervals: the gaps between a "
                 "customer's orders look as random as a Poisson process makes them "
                 "(regularity k = 1), so MBG/CNBD-k adds nothing to MBG/NBD here.") + every
    text = _("Customers tend to reorder at steady intervals: the gaps between a customer's "
             "orders are more regular than chance would make them (regularity k = {k}; "
             "k = 1 would mean no regularity).").format(k=k) + every
    if winner != f"mbg_cnbd_k{k}":
        text += " " + _("{model} still predicted the customers better overall.").format(
            model=MODEL_NAMES[winner])
    return text


def _regularity(card: Card, result) -> Card:
    """The search over MBG/CNBD-k's k: its grid and what it means."""
    reg = (result.metrics.get("model") or {}).get("regularity")
    if not reg:
        return card
    card.notice(regularity_sentence(reg, result.fit.model_name), "info",
                title=_("Regular reorders"))
    grid = reg.get("grid") or {}
    if grid:
        best = max(grid.values())
        card.table(pd.DataFrame({
            _("Regularity k"): [int(k) for k in grid],
            _("Model"): [MODEL_NAMES["mbg_nbd" if int(k) == 1 else f"mbg_cnbd_k{k}"]
                         + (_(" (best)") if int(k) == int(reg["k"]) else "") for k in grid],
            _("Log posterior at the mode, relative to the best"): [
                fmt.number(v - best, 1) for v in grid.values()],
        }))
        card.text(_("Each k was scored by a quick fit (the posterior mode with the gaps' "
                    "likelihood constant); the search stops once the score has fallen twice "
                    "in a row. Only the best k is compared with the other models by "
                    "PSIS-LOO."))
    return card


def model_choice_reason(sel) -> str:
    """Why the winner won (or that the two cannot be told apart), in the report's language."""
    others = sorted((n for n in sel.candidates if n != sel.winner),
                    key=lambda n: sel.candidates[n]["d_elpd"])
    winner = MODEL_NAMES.get(sel.winner, sel.winner)
    if not others:
        return _("{model} was the only candidate.").format(model=winner)
    other = others[0]           # the runner-up
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
    for rest in others[1:]:
        c = sel.candidates[rest]
        text += " " + _("{model} comes after them, lower than {winner} by {d} (standard "
                        "error {se}).").format(model=MODEL_NAMES[rest], winner=winner,
                                               d=fmt.number(c["d_elpd"], 1),
                                               se=fmt.number(c["d_se"], 1))
    bad = [MODEL_NAMES.get(n, n) for n, k in sel.candidates.items()
           if (k["pareto_k_over_0_7"] or 0) > 0.01]
    if bad:
        text += " " + _("Pareto k is above 0.7 for more than {share} of the customers under "
                        "{models}: those scores are less reliable.").format(
            share=fmt.share(0.01, 0), models=" & ".join(bad))
    if sel.method == "psis-loo (laplace)" and sel.approximate_posterior:
        text += " " + _("The candidates were compared on a quick approximation of each "
                        "(Laplace, checked by importance sampling); with this much data the "
                        "chosen model's approximation is also its posterior, without NUTS "
                        "sampling, so no model has an R-hat.")
    elif sel.method == "psis-loo (laplace)":
        text += " " + _("The candidates were compared on a quick approximation of each "
                        "(Laplace, checked by importance sampling); only the chosen model was "
                        "then sampled in full, so the others have no R-hat or fit time.")
    elif sel.method != "psis-loo":
        text += " " + _("Too few posterior draws for PSIS-LOO: the scores are in-sample log "
                        "predictive densities, which favour the more flexible model; use more "
                        "draws (clv.draws).")
    sampled = [c.get("subsample_profiles") for c in sel.candidates.values()
               if c.get("subsample_profiles")]
    if sampled:
        text += " " + _("With this many customers the scores were estimated from a random "
                        "sample of {n} customers (PSIS-LOO subsampling); the standard errors "
                        "include the sampling.").format(n=fmt.count(sampled[0]))
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


def pooling_of(result) -> dict:
    """metrics.json's ``clv.pooling`` of a result (empty when absent)."""
    return (result.metrics or {}).get("pooling") or {}


def _pooled(card: Card, result, brief: bool = False) -> Card:
    """The notice of a merchant below the bar whose CLV was fitted under its batch's
    population prior: with how many peers, and how much they decided."""
    pooling = pooling_of(result)
    text = _("This merchant is below Klaviyo's eligibility rules, so its model borrows "
             "strength from {n} eligible merchants of the same batch: their population is the "
             "prior of its parameters. The peers decided {share} of the result (the share of "
             "the posterior precision that comes from the prior: {purchase} for purchases and "
             "dropout, {spend} for spend); the merchant's own data decided the rest. The "
             "intervals are wider where its own data say less.").format(
        n=fmt.count(pooling.get("peers")), share=fmt.share(pooling.get("prior_share"), 0),
        purchase=fmt.share(pooling.get("prior_share_purchase"), 0),
        spend=fmt.share(pooling.get("prior_share_spend"), 0))
    card.notice(text, "info", title=_("Pooled with its peers"),
                items=() if brief else [translated(r) for r in result.reasons])
    d = pooling.get("population_diagnostics") or {}
    if pooling.get("population_flagged") and not brief:
        card.notice(_("The population model's sampler was not clean (R-hat max {r_hat}, {n} "
                      "divergent transitions): its prior may be too narrow or off centre. More "
                      "eligible merchants in the batch make it sturdier.").format(
            r_hat=fmt.number(d.get("r_hat_max"), 3), n=fmt.count(d.get("divergences") or 0)),
            "warning")
    return card


def _learned_on(iso) -> str:
    try:
        return fmt.day(dt.datetime.fromisoformat(iso).date())
    except (TypeError, ValueError):
        return fmt.DASH


def eligibility_card(result, report) -> Card:
    """Card 8: why the merchant is not eligible and what data would make it eligible (or,
    pooled, how much its peers decided)."""
    card = Card()
    pooling = pooling_of(result)
    if result.eligible:
        return card.text(_("The merchant meets the eligibility rules (at least 500 customers "
                           "with orders, 180 days of history, orders in the last 30 days, some "
                           "customers with 3+ orders), or clv.force is set: predictions were "
                           "made."))
    if pooling.get("used"):
        _pooled(card, result)
        by = pooling.get("prior_share_by_coordinate") or {}
        if by:
            card.table(pd.DataFrame({
                _("Parameter (log scale)"): list(by),
                _("Share decided by the peers"): [fmt.share(v, 0) for v in by.values()]}))
        return card.text(_("The population was learned by hubnb batch from the eligible "
                           "merchants (population.json, {when}); a merchant needs at least "
                           "{floor} customers with a counted order to be pooled.").format(
            when=_learned_on(pooling.get("population_generated_at")),
            floor=fmt.count(pooling.get("floor_customers"))))
    _not_eligible(card, result.reasons)
    reason = pooling.get("reason")
    if reason:
        card.text(_("Not pooled with other merchants: {reason}.").format(
            reason=translated(reason)))
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
