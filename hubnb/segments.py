"""Segments over the CLV attributes, and the marketing assets that use them.

A segment of the params file (docs/data_contract.md §2) is a condition over the CLV attributes of
docs/clv.md, e.g. ``predicted_orders >= 1 and churn_probability < 0.3``. In a condition:

- a bare interval attribute (``predicted_orders``) means its posterior mean, the
  ``predicted_orders_mean`` column of ``clv_profiles.csv``;
- ``_mean``, ``_lower`` and ``_upper`` suffixes name that column exactly;
- the historical attributes (``historical_orders``, ``historical_clv``,
  ``avg_days_between_orders``) have one column each.

A comparison with a missing value is false: a profile with one order has no
``avg_days_between_orders`` and ``avg_days_between_orders < 30`` does not hold for it (but
``not avg_days_between_orders >= 30`` does: write the comparison you mean). When the model was
not fitted (not eligible), the predicted attributes are missing for everyone and a segment
whose condition names any of them is empty, with a note saying why.

:func:`assets_using_segments` finds the campaigns, flows and forms whose audiences name a
CLV segment (Klaviyo's "Campaigns, flows and forms using CLV").
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import pandas as pd

from .i18n import N_
from .messages import Message
from .params import CLV_ATTRIBUTES, INTERVAL_ATTRIBUTES, Segment, segment_attributes

#: The kinds of marketing asset, in the order the report shows them.
ASSET_TYPES = ("campaign", "flow", "form")
#: The attributes known without the model (docs/clv.md).
HISTORICAL_ATTRIBUTES = ("historical_orders", "historical_clv", "avg_days_between_orders")


def attribute_column(name: str) -> str:
    """The profiles-frame column a name of a segment condition stands for.

    >>> attribute_column("predicted_clv"), attribute_column("churn_probability_upper")
    ('predicted_clv_mean', 'churn_probability_upper')
    """
    return f"{name}_mean" if name in INTERVAL_ATTRIBUTES else name


def segment_mask(profiles: pd.DataFrame, segment: Segment) -> pd.Series:
    """Boolean mask of the profiles that meet ``segment.where``.

    The condition is checked again with :func:`hubnb.params.segment_attributes` (a
    condition naming no CLV attribute, or anything but attributes compared with numbers,
    raises :class:`hubnb.errors.ParamsError`), then evaluated by ``DataFrame.eval`` over a
    frame that holds only the attributes it names, each under the name the condition uses.
    """
    names = segment_attributes(segment.where, f"segments ({segment.name}).where")
    frame = pd.DataFrame(index=profiles.index)
    for name in names:
        column = attribute_column(name)
        if column not in profiles.columns:
            # A not-eligible run has no predicted columns at all: nothing meets the condition.
            frame[name] = float("nan")
        else:
            frame[name] = pd.to_numeric(profiles[column], errors="coerce").astype("float64")
    if frame.empty:
        return pd.Series(False, index=profiles.index, dtype=bool)
    result = frame.eval(segment.where, engine="python")
    return pd.Series(result, index=profiles.index).fillna(False).astype(bool)


def segment_file_name(name: str, taken: set[str] | None = None) -> str:
    """The file a segment's profile list is written to: ``segments/<slug>.csv``.

    The slug is the name in lower case with every run of characters other than ``a-z`` and
    ``0-9`` replaced by one ``_`` (leading and trailing ``_`` dropped): "Likely to buy soon"
    is ``segments/likely_to_buy_soon.csv``. A name with no letter or digit is ``segment``;
    a slug already in ``taken`` gets ``_2``, ``_3``...
    """
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "segment"
    candidate, n = slug, 1
    while taken is not None and candidate in taken:
        n += 1
        candidate = f"{slug}_{n}"
    if taken is not None:
        taken.add(candidate)
    return f"segments/{candidate}.csv"


@dataclass(frozen=True)
class SegmentsResult:
    """The CLV segments of a run.

    Attributes
    ----------
    summary : DataFrame
        One row per segment, most profiles first: segment, condition, profiles,
        clv_attributes, last_updated, file, note.
    members : dict of str to DataFrame
        Per segment name, its profile list as written to ``file``: profile_id, email and
        the columns of the attributes its condition uses.
    """

    summary: pd.DataFrame
    members: dict[str, pd.DataFrame] = field(default_factory=dict)

    def files(self) -> dict[str, pd.DataFrame]:
        """File name (``segments/<slug>.csv``) to the frame to write there."""
        names = dict(zip(self.summary["segment"], self.summary["file"]))
        return {names[name]: frame for name, frame in self.members.items()}


SUMMARY_COLUMNS = ["segment", "condition", "profiles", "clv_attributes", "last_updated",
                   "file", "note"]


def evaluate_segments(profiles: pd.DataFrame, segments: tuple[Segment, ...],
                      last_updated: dt.date | dt.datetime | str) -> SegmentsResult:
    """Evaluate every params segment over the CLV profiles frame.

    Parameters
    ----------
    profiles : DataFrame
        One row per profile with the CLV attributes (``ClvResult.profiles``).
    segments : tuple of Segment
        ``Params.segments``, already validated.
    last_updated : date, datetime or str
        When the attributes were computed (the run's ``as_of``), shown per segment.
    """
    rows, members, taken = [], {}, set()
    predicted_missing = ("predicted_clv_mean" not in profiles.columns
                         or profiles["predicted_clv_mean"].isna().all())
    for segment in segments:
        uses_predictions = any(a not in HISTORICAL_ATTRIBUTES for a in segment.attributes)
        mask = segment_mask(profiles, segment)
        if predicted_missing and uses_predictions:
            mask = pd.Series(False, index=profiles.index, dtype=bool)
        columns = [attribute_column(a) for a in segment.attributes]
        keep = ["profile_id", "email"] + [c for c in dict.fromkeys(columns) if c in profiles]
        keep = [c for c in keep if c in profiles.columns]
        members[segment.name] = profiles.loc[mask, keep].reset_index(drop=True)
        note = (Message(N_("the CLV model was not fitted, so its predicted attributes are "
                           "missing"))
                if predicted_missing and uses_predictions else "")
        rows.append({
            "segment": segment.name, "condition": segment.where, "profiles": int(mask.sum()),
            "clv_attributes": ", ".join(segment.attributes),
            "last_updated": str(last_updated), "file": segment_file_name(segment.name, taken),
            "note": note,
        })
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if len(summary):
        order = sorted(range(len(rows)), key=lambda i: (-rows[i]["profiles"], rows[i]["segment"]))
        summary = summary.iloc[order].reset_index(drop=True)
    return SegmentsResult(summary=summary, members=members)


@dataclass(frozen=True)
class AssetsUsingSegments:
    """Campaigns, flows and forms whose audiences include a CLV segment.

    Attributes
    ----------
    tables : dict of str to DataFrame
        Per asset type (``campaign``, ``flow``, ``form``) the matching assets, latest first.
    reasons : dict of str to str
        Per asset type whose table is empty, why.
    """

    tables: dict[str, pd.DataFrame]
    reasons: dict[str, str]


ASSET_COLUMNS = {
    "campaign": ["asset_id", "name", "status", "channels", "clv_segments", "date"],
    "flow": ["asset_id", "name", "status", "channels", "clv_segments", "date"],
    "form": ["asset_id", "name", "status", "type", "channels", "clv_segments", "date"],
}


def assets_using_segments(marketing_assets: pd.DataFrame, segment_names,
                          table_present: bool = True, timezone: str = "UTC") -> AssetsUsingSegments:
    """The marketing assets whose ``audiences`` include one of ``segment_names``.

    ``audiences`` is a ``;``-separated list; an entry matches a segment when it equals the
    segment's name ignoring surrounding spaces and letter case. Each row has the asset's
    status and channels, ``type`` (a form's ``form_type``; forms only), the CLV segments it
    uses and ``date``: the local day (in ``timezone``) of ``scheduled_at``, or of
    ``updated_at`` where it has no ``scheduled_at``.

    Parameters
    ----------
    marketing_assets : DataFrame
        The dataset's ``marketing_assets`` table (empty when absent).
    segment_names : iterable of str
        The names of the params segments.
    table_present : bool
        Whether the dataset had a ``marketing_assets`` file; an absent one is named as the
        reason of every empty table.
    """
    names = {n.strip().lower(): n for n in segment_names}
    tables, reasons = {}, {}
    for kind in ASSET_TYPES:
        tables[kind] = pd.DataFrame(columns=ASSET_COLUMNS[kind])
        if not table_present:
            reasons[kind] = Message(N_("no marketing_assets table in the dataset"))
            continue
        if not names:
            reasons[kind] = Message(N_("the params file defines no CLV segment"))
            continue
        assets = marketing_assets.loc[marketing_assets["asset_type"].astype("string")
                                      .str.strip().str.lower() == kind]
        if assets.empty:
            reasons[kind] = Message({
                "campaign": N_("the marketing_assets table has no campaigns"),
                "flow": N_("the marketing_assets table has no flows"),
                "form": N_("the marketing_assets table has no forms")}[kind])
            continue
        used = assets["audiences"].map(lambda a: _segments_in(a, names))
        hits = assets.loc[used.map(len) > 0].copy()
        if hits.empty:
            reasons[kind] = Message({
                "campaign": N_("no campaign's audience includes a CLV segment ({segments})"),
                "flow": N_("no flow's audience includes a CLV segment ({segments})"),
                "form": N_("no form's audience includes a CLV segment ({segments})")}[kind],
                segments=", ".join(sorted(names.values())))
            continue
        hits["clv_segments"] = used[hits.index].map("; ".join)
        when = hits["scheduled_at"].where(hits["scheduled_at"].notna(), hits["updated_at"])
        hits["date"] = pd.to_datetime(when, utc=True).dt.tz_convert(timezone).dt.date
        hits["type"] = hits["form_type"]
        hits = hits.sort_values(["date", "name"], ascending=[False, True], na_position="last")
        tables[kind] = hits[ASSET_COLUMNS[kind]].reset_index(drop=True)
    return AssetsUsingSegments(tables=tables, reasons=reasons)


def _segments_in(audiences, names: dict[str, str]) -> list[str]:
    if audiences is None or audiences is pd.NA or (isinstance(audiences, float)):
        return []
    found = []
    for entry in str(audiences).split(";"):
        name = names.get(entry.strip().lower())
        if name is not None and name not in found:
            found.append(name)
    return found


__all__ = ["CLV_ATTRIBUTES", "ASSET_TYPES", "attribute_column", "segment_mask",
           "segment_file_name", "evaluate_segments", "SegmentsResult",
           "assets_using_segments", "AssetsUsingSegments"]
