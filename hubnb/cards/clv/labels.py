"""What every CLV card calls things: model names, column and attribute labels, interval labels."""

from __future__ import annotations

import pandas as pd

from ... import format as fmt
from ...i18n import _

from ...clv.purchase import MODEL_NAMES  # noqa: F401  (re-exported)


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


def credible_label() -> str:
    return _("How sure we are of the average (credible interval)")


def predictive_label() -> str:
    return _("Likely range of this customer's actual value (predictive interval)")


def attribute_names() -> dict[str, str]:
    """The CLV attributes compared with the platform, by name."""
    return {"predicted_clv": _("Predicted CLV"), "churn_probability": _("Churn probability"),
            "predicted_orders": _("Predicted orders"), "total_clv": _("Total CLV"),
            "aov": _("Average order value"), "historical_clv": _("Historical CLV"),
            "historical_orders": _("Historical orders"),
            "avg_days_between_orders": _("Average days between orders"),
            "days_to_next_order": _("Days to next order")}
