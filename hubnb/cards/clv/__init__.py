"""The predictive CLV dashboard's cards (``notebooks/clv.ipynb``).

One module per dashboard section: :mod:`.model` (the current model, eligibility),
:mod:`.examples` (example profiles), :mod:`.base` (CLV across the customer base),
:mod:`.segments` (segments, assets, outputs) and :mod:`.backtest` (backtest, platform
comparison); :mod:`.labels` names things for all of them.

Each ``*_card`` function takes the engine's result (:func:`hubnb.clv.dashboard.run_clv`)
and the report, and returns a :class:`~hubnb.render.Card`; the numbers behind a card come
from the pure functions of :mod:`hubnb.clv.dashboard`. A card that does not apply (not
eligible, no backtest, no predictions table) says why in one sentence instead of failing.
The rules are written down in ``docs/clv_dashboard.md``.
"""

from .backtest import backtest_card, backtest_scores_table, platform_card
from .base import (
    churn_band_label,
    churn_band_meanings,
    churn_band_names,
    churn_risk_card,
    distribution_card,
    next_orders_card,
    top_profiles_card,
)
from .examples import (
    example_profiles_card,
    example_rule_text,
    example_title,
    next_order_text,
    profile_attributes,
)
from .labels import (
    MODEL_NAMES,
    attribute_names,
    column_labels,
    credible_label,
    display_frame,
    predictive_label,
)
from .model import (
    bg_nbd_notice,
    diagnostics_status,
    diagnostics_warning,
    eligibility_card,
    model_card,
    model_choice_card,
    model_choice_reason,
    order_definition,
    posterior_card,
)
from .segments import assets_card, clv_segments, outputs_card, segments_card

__all__ = [
    "MODEL_NAMES",
    "column_labels",
    "display_frame",
    "credible_label",
    "predictive_label",
    "attribute_names",
    "bg_nbd_notice",
    "diagnostics_warning",
    "order_definition",
    "diagnostics_status",
    "model_card",
    "model_choice_card",
    "model_choice_reason",
    "eligibility_card",
    "posterior_card",
    "next_order_text",
    "profile_attributes",
    "example_profiles_card",
    "example_title",
    "example_rule_text",
    "churn_band_meanings",
    "churn_band_names",
    "churn_band_label",
    "distribution_card",
    "churn_risk_card",
    "next_orders_card",
    "top_profiles_card",
    "clv_segments",
    "segments_card",
    "assets_card",
    "outputs_card",
    "backtest_card",
    "backtest_scores_table",
    "platform_card",
]
