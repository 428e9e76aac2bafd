"""The Bayesian predictive CLV engine.

``compute_clv`` is the entry point; the pieces follow pymc-marketing's layout:
:mod:`~hubnb.clv.orders` (which orders count, RFM summary), one module per purchase model
behind :class:`~hubnb.clv.purchase.PurchaseModel` (:mod:`~hubnb.clv.bg_nbd`,
:mod:`~hubnb.clv.mbg_nbd`, :mod:`~hubnb.clv.pareto_nbd`, :mod:`~hubnb.clv.mbg_cnbd`),
:mod:`~hubnb.clv.models` (the joint PyMC model with Gamma-Gamma, and fitting),
:mod:`~hubnb.clv.predict`, :mod:`~hubnb.clv.selection` (``clv.model: auto``),
:mod:`~hubnb.clv.backtest`, :mod:`~hubnb.clv.eligibility`.
See docs/clv.md.
"""

from .backtest import BacktestResult, run_backtest
from .compute import PROFILE_COLUMNS, ClvResult, compute_clv
from .eligibility import eligibility_reasons
from .models import (
                     BetaGeoModel,
                     ClvModel,
                     FitResult,
                     GammaGammaModel,
                     ModifiedBetaGeoModel,
                     ParetoNBDModel,
)
from .orders import counted_orders, historical_attributes, rfm_summary
from .predict import Predictions, predict
from .selection import ModelChoice, choose_model

__all__ = [
    "compute_clv", "ClvResult", "FitResult", "BacktestResult", "Predictions",
    "ClvModel", "BetaGeoModel", "ModifiedBetaGeoModel", "ParetoNBDModel", "GammaGammaModel",
    "ModelChoice", "choose_model",
    "counted_orders", "historical_attributes", "rfm_summary", "eligibility_reasons",
    "predict", "run_backtest", "PROFILE_COLUMNS",
]
