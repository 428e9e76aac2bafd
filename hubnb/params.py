"""The params file: one YAML file per merchant, validated up front.

Every key is checked before any work starts; a wrong file raises
:class:`hubnb.errors.ParamsError` naming the key (``period``, ``clv.orders.sources``,
``segments[1].where``...).
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .errors import ParamsError
from .periods import Period, parse_date, resolve_comparison, resolve_period

#: The CLV attributes a segment condition may use (docs/clv.md). A bare name means the
#: posterior mean; ``_lower``/``_upper`` name the credible-interval bounds.
CLV_ATTRIBUTES = (
    "historical_orders", "historical_clv", "avg_days_between_orders",
    "predicted_orders", "predicted_clv", "total_clv", "aov",
    "churn_probability", "days_to_next_order", "p_order_30d",
)
INTERVAL_ATTRIBUTES = ("predicted_orders", "predicted_clv", "total_clv", "aov",
                       "churn_probability", "days_to_next_order", "p_order_30d")
#: ``clv.model``: auto (the better of Pareto/NBD and MBG/NBD by PSIS-LOO) or one model.
CLV_MODELS = ("auto", "pareto_nbd", "mbg_nbd", "bg_nbd")
SEGMENT_NAMES = frozenset(
    list(CLV_ATTRIBUTES)
    + [f"{a}_{b}" for a in INTERVAL_ATTRIBUTES for b in ("mean", "lower", "upper")]
    + [f"{a}_{b}" for a in ("predicted_orders", "predicted_clv", "total_clv")
       for b in ("pred_lower", "pred_upper")])

_SLUG = re.compile(r"^[a-z0-9_-]+$")


@dataclass(frozen=True)
class DateRange:
    """Inclusive range of local days."""

    start: dt.date
    end: dt.date

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class HubParams:
    launched_on: dt.date | None = None
    paused: tuple[DateRange, ...] = ()
    attribution_window_days: int = 7
    inactive_after_days: int = 30


@dataclass(frozen=True)
class OrderFilter:
    """Which orders count for CLV (Klaviyo's "custom metric")."""

    sources: tuple[str, ...] | None = None
    exclude_pos: bool = False
    exclude_subscriptions: bool = False
    exclude_zero_value: bool = True


@dataclass(frozen=True)
class ClvParams:
    horizon_days: int = 365
    history_days: int = 1500
    orders: OrderFilter = field(default_factory=OrderFilter)
    model: str = "auto"
    credible_interval: float = 0.9
    chains: int = 2
    draws: int = 1000
    tune: int = 1000
    seed: int = 1
    backtest_days: int = 0
    force: bool = False
    churn_bands: tuple[float, float] = (0.3, 0.7)


@dataclass(frozen=True)
class Segment:
    name: str
    where: str
    attributes: tuple[str, ...]


@dataclass(frozen=True)
class Params:
    """A merchant's validated parameters (docs/data_contract.md §2)."""

    merchant: str
    display_name: str
    data: Path
    timezone: str
    currency: str
    as_of: dt.date
    period: Period
    comparison: Period | None
    hub: HubParams
    clv: ClvParams
    segments: tuple[Segment, ...]
    source: Path | None = None
    locale: str = "en"


TOP_KEYS = {"merchant", "display_name", "data", "timezone", "currency", "locale", "as_of",
            "period", "comparison", "hub", "clv", "segments"}
HUB_KEYS = {"launched_on", "paused", "attribution_window_days", "inactive_after_days"}
CLV_KEYS = {"horizon_days", "history_days", "orders", "model", "credible_interval", "chains",
            "draws", "tune", "seed", "backtest_days", "force", "churn_bands"}
ORDER_KEYS = {"sources", "exclude_pos", "exclude_subscriptions", "exclude_zero_value"}


def load_params(path, **overrides) -> Params:
    """Read and validate a params file.

    Parameters
    ----------
    path : str or Path
        The YAML file. ``data`` inside it is relative to the file's folder.
    **overrides
        Top-level keys replacing the file's (used by tests and notebooks).
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError("params file", f"{path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError("params file", f"{path} is not valid YAML ({exc.__class__.__name__})")
    if not isinstance(raw, dict):
        raise ParamsError("params file", f"{path} must hold a mapping of keys")
    raw.update(overrides)
    return parse_params(raw, base_dir=path.resolve().parent, source=path.resolve())


def parse_params(raw: dict, base_dir: Path = Path("."), source: Path | None = None) -> Params:
    """Validate a params mapping (the parsed YAML) into :class:`Params`."""
    _no_unknown(raw, TOP_KEYS, "")
    merchant = _required(raw, "merchant")
    if not isinstance(merchant, str) or not _SLUG.match(merchant):
        raise ParamsError("merchant", f"{merchant!r} must be a slug of a-z, 0-9, _ and -")
    tz = _required(raw, "timezone")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise ParamsError("timezone", f"unknown time zone {tz!r} (use an IANA name such as "
                          "America/New_York)") from None
    currency = raw.get("currency", "USD")
    if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        raise ParamsError("currency", f"{currency!r} is not a 3-letter ISO 4217 code")
    if currency not in iso_currencies():
        raise ParamsError("currency", f"{currency!r} is not an ISO 4217 currency code "
                          "(e.g. USD, EUR, GBP, KRW)")
    locale = raw.get("locale", "en")
    from .i18n import check

    check(str(locale) if locale is not None else "None")
    data = _required(raw, "data")
    data_path = (base_dir / str(data)).resolve()
    if "as_of" in raw and raw["as_of"] is not None:
        as_of = _date(raw["as_of"], "as_of")
    else:
        as_of = dt.datetime.now(ZoneInfo(tz)).date()
    try:
        period = resolve_period(raw.get("period", "last_30_days"), as_of, tz)
    except ValueError as exc:
        raise ParamsError("period", str(exc)) from None
    try:
        comparison = resolve_comparison(raw.get("comparison", "previous_period"), period)
    except ValueError as exc:
        raise ParamsError("comparison", str(exc)) from None
    return Params(
        merchant=merchant,
        display_name=str(raw.get("display_name") or merchant),
        data=data_path, timezone=str(tz), currency=currency, as_of=as_of,
        period=period, comparison=comparison,
        hub=_hub(raw.get("hub") or {}),
        clv=_clv(raw.get("clv") or {}),
        segments=_segments(raw.get("segments") or []),
        source=source,
        locale=str(locale),
    )


@functools.cache
def iso_currencies() -> frozenset[str]:
    """The ISO 4217 currency codes Babel knows (``babel.numbers.list_currencies``)."""
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def _hub(raw) -> HubParams:
    _mapping(raw, "hub")
    _no_unknown(raw, HUB_KEYS, "hub.")
    launched = raw.get("launched_on")
    paused = raw.get("paused") or []
    if not isinstance(paused, list):
        raise ParamsError("hub.paused", "must be a list of {start, end} ranges")
    ranges = []
    for i, item in enumerate(paused):
        key = f"hub.paused[{i}]"
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise ParamsError(key, "must be a mapping with exactly start and end")
        start, end = _date(item["start"], key + ".start"), _date(item["end"], key + ".end")
        if end < start:
            raise ParamsError(key, f"end {end} is before start {start}")
        ranges.append(DateRange(start, end))
    return HubParams(
        launched_on=_date(launched, "hub.launched_on") if launched is not None else None,
        paused=tuple(ranges),
        attribution_window_days=_int(raw, "attribution_window_days", 7, "hub.", minimum=0),
        inactive_after_days=_int(raw, "inactive_after_days", 30, "hub.", minimum=1),
    )


def _clv(raw) -> ClvParams:
    _mapping(raw, "clv")
    _no_unknown(raw, CLV_KEYS, "clv.")
    orders = raw.get("orders") or {}
    _mapping(orders, "clv.orders")
    _no_unknown(orders, ORDER_KEYS, "clv.orders.")
    sources = orders.get("sources")
    if sources is not None:
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
            raise ParamsError("clv.orders.sources", "must be null or a non-empty list of source names")
        sources = tuple(sources)
    order_filter = OrderFilter(
        sources=sources,
        exclude_pos=_bool(orders, "exclude_pos", False, "clv.orders."),
        exclude_subscriptions=_bool(orders, "exclude_subscriptions", False, "clv.orders."),
        exclude_zero_value=_bool(orders, "exclude_zero_value", True, "clv.orders."),
    )
    model = raw.get("model", "auto")
    if model not in CLV_MODELS:
        raise ParamsError("clv.model", f"{model!r} is not a model; use one of "
                          + ", ".join(CLV_MODELS))
    ci = raw.get("credible_interval", 0.9)
    if not isinstance(ci, (int, float)) or isinstance(ci, bool) or not 0 < ci < 1:
        raise ParamsError("clv.credible_interval", f"{ci!r} must be a number between 0 and 1")
    bands = raw.get("churn_bands", [0.3, 0.7])
    if (not isinstance(bands, (list, tuple)) or len(bands) != 2
            or not all(isinstance(b, (int, float)) for b in bands)
            or not 0 < bands[0] < bands[1] < 1):
        raise ParamsError("clv.churn_bands", "must be two numbers 0 < medium < high < 1, "
                          "the churn probabilities where medium and high risk start")
    return ClvParams(
        horizon_days=_int(raw, "horizon_days", 365, "clv.", minimum=1),
        history_days=_int(raw, "history_days", 1500, "clv.", minimum=1),
        orders=order_filter, model=model, credible_interval=float(ci),
        chains=_int(raw, "chains", 2, "clv.", minimum=1),
        draws=_int(raw, "draws", 1000, "clv.", minimum=10),
        tune=_int(raw, "tune", 1000, "clv.", minimum=10),
        seed=_int(raw, "seed", 1, "clv.", minimum=0),
        backtest_days=_int(raw, "backtest_days", 0, "clv.", minimum=0),
        force=_bool(raw, "force", False, "clv."),
        churn_bands=(float(bands[0]), float(bands[1])),
    )


def _segments(raw) -> tuple[Segment, ...]:
    if not isinstance(raw, list):
        raise ParamsError("segments", "must be a list of {name, where}")
    out, seen = [], set()
    for i, item in enumerate(raw):
        key = f"segments[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "where"}:
            raise ParamsError(key, "must be a mapping with exactly name and where")
        name, where = item["name"], item["where"]
        if not isinstance(name, str) or not name.strip():
            raise ParamsError(key + ".name", "must be a non-empty name")
        if name in seen:
            raise ParamsError(key + ".name", f"segment {name!r} is named twice")
        seen.add(name)
        out.append(Segment(name, str(where), segment_attributes(str(where), f"{key}.where ({name})")))
    return tuple(out)


def segment_attributes(where: str, key: str = "where") -> tuple[str, ...]:
    """The CLV attributes a segment condition uses; an error if it uses none or an unknown name."""
    try:
        tree = ast.parse(where, mode="eval")
    except SyntaxError:
        raise ParamsError(key, f"{where!r} is not a condition such as 'historical_clv >= 500'") from None
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in SEGMENT_NAMES:
                raise ParamsError(key, f"{node.id!r} is not a CLV attribute; use one of "
                                  + ", ".join(CLV_ATTRIBUTES))
            names.append(node.id)
        elif isinstance(node, (ast.Call, ast.Attribute, ast.Subscript, ast.Lambda)):
            raise ParamsError(key, f"{where!r} may only compare attributes with numbers")
    if not names:
        raise ParamsError(key, f"{where!r} names no CLV attribute; use one of "
                          + ", ".join(CLV_ATTRIBUTES))
    return tuple(dict.fromkeys(names))


def _mapping(raw, key):
    if not isinstance(raw, dict):
        raise ParamsError(key, "must be a mapping of keys")


def _no_unknown(raw: dict, known: set, prefix: str):
    for key in raw:
        if key not in known:
            raise ParamsError(f"{prefix}{key}", "unknown key; known keys are "
                              + ", ".join(sorted(known)))


def _required(raw: dict, key: str):
    if raw.get(key) in (None, ""):
        raise ParamsError(key, "is required")
    return raw[key]


def _date(value, key: str) -> dt.date:
    try:
        return parse_date(value, key)
    except ValueError as exc:
        raise ParamsError(key, str(exc)) from None


def _int(raw: dict, name: str, default: int, prefix: str, minimum: int = 0) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParamsError(prefix + name, f"{value!r} must be a whole number >= {minimum}")
    return value


def _bool(raw: dict, name: str, default: bool, prefix: str) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise ParamsError(prefix + name, f"{value!r} must be true or false")
    return value
