"""The dashboards' cards, one function per card, every one returning a :class:`~hubnb.render.Card`.

:mod:`hubnb.cards.common` holds what both reports show (the header, the parameters and
provenance, the data-quality table); :mod:`hubnb.cards.hub` the Customer Hub dashboard's
cards and :mod:`hubnb.cards.clv` the predictive CLV dashboard's. A card takes the computed
result (and the report, for its params and output folder), formats numbers through
:mod:`hubnb.format`, draws through :mod:`hubnb.figures`, and never computes a metric. A
card that does not apply says why in one sentence instead of failing.
"""

from ..render import Card

__all__ = ["Card"]
