"""Sections 4, 5 and 9: segments using CLV, the assets that use them, and the outputs written."""

from __future__ import annotations

from ... import format as fmt
from ...i18n import _, ngettext
from ...messages import translated
from ...render import Card
from ...segments import ASSET_TYPES, SegmentsResult, assets_using_segments, evaluate_segments


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
