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
#: ``clv.model``: auto (the best of Pareto/NBD, MBG/NBD and MBG/CNBD-k by PSIS-LOO) or one
#: model.
CLV_MODELS = ("auto", "pareto_nbd", "mbg_nbd", "mbg_cnbd", "bg_nbd")
#: clv.pooling: ``auto`` fits a merchant below the eligibility bar under a batch's
#: population prior (hubnb.clv.population) when one is given; ``off`` never does.
POOLING = ("auto", "off")
#: ``clv.regularity_k``: the largest k a params file may fix (the data contract's 1-6, the
#: grid ``auto`` searches).
MAX_REGULARITY_K = 6
SEGMENT_NAMES = frozenset(
    list(CLV_ATTRIBUTES)
    + [f"{a}_{b}" for a in INTERVAL_ATTRIBUTES for b in ("mean", "lower", "upper")]
    + [f"{a}_{b}" for a in ("predicted_orders", "predicted_clv", "total_clv")
       for b in ("pred_lower", "pred_upper")])

_SLUG = re.compile(r"^[a-z0-9_-]{1,64}$")
#: hubnb's rule: dates lie from 1900-01-01 to 2199-12-31 (as the dataset's timestamps do).
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2199, 12, 31)


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
    #: MBG/CNBD-k's k (``mbg_cnbd`` only); None: chosen by the data.
    regularity_k: int | None = None
    #: ``auto`` | ``off`` (:data:`POOLING`).
    pooling: str = "auto"


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
            "draws", "tune", "seed", "backtest_days", "force", "churn_bands", "regularity_k",
            "pooling"}
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
    data = path.read_bytes()
    try:
        # bytes: PyYAML reads UTF-8 and, from their byte-order mark, UTF-16 files
        raw = yaml.load(data, Loader=_Loader)
    except ParamsError:
        raise
    except yaml.reader.ReaderError as exc:  # not UTF-8, or a control character
        if exc.encoding == "unicode":      # (PyYAML's mark for a character it refuses)
            raise ParamsError("params file", f"{path} holds the character "
                              f"U+{exc.character:04X} ({_one_line(exc.reason)})") from None
        line = data[:exc.position].count(b"\n") + 1
        raise ParamsError("params file", f"{path} has byte 0x{exc.character:02X} on line "
                          f"{line}, which is not UTF-8 ({_one_line(exc.reason)}); save the "
                          "file as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or ""
        raise ParamsError("params file", f"{path} is not valid YAML{where}"
                          + (f": {_one_line(problem)}" if problem else "")) from None
    except RecursionError:
        raise ParamsError("params file", f"{path} is not valid YAML: nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - e.g. ValueError from a !!float tag
        raise ParamsError("params file", f"{path} is not valid YAML: "
                          f"{_one_line(exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError("params file", f"{path} must hold a mapping of keys")
    raw.update(overrides)
    return parse_params(raw, base_dir=path.resolve().parent, source=path.resolve())


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice is an error (PyYAML keeps the last one
    silently) and a date-like value that is no date (2026-02-30) stays text, so that the
    error names its key instead of PyYAML failing with ValueError."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node, deep=deep)
                try:
                    repeated = key in seen
                    seen.add(key)
                except TypeError:           # an unhashable key: PyYAML's own error follows
                    continue
                if repeated:
                    raise ParamsError(_shown(key), f"is given twice (line "
                                      f"{key_node.start_mark.line + 1}); keep one")
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, TypeError, AttributeError, OverflowError):
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _shown(key) -> str:
    """A key as the message names it: as written when it is plain text, else its repr."""
    if isinstance(key, str) and key and key.isprintable() and key.strip() == key \
            and len(key) <= 80:
        return key
    text = repr(key)
    return text if len(text) <= 80 else text[:77] + "..."


def _value(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for a message (reprlib: no giant repr of
    a deep YAML structure is ever built)."""
    import reprlib

    short = reprlib.Repr(maxlevel=3, maxstring=limit, maxother=limit, maxlong=limit)
    text = short.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def parse_params(raw: dict, base_dir: Path = Path("."), source: Path | None = None) -> Params:
    """Validate a params mapping (the parsed YAML) into :class:`Params`."""
    _mapping(raw, "params file")
    _no_unknown(raw, TOP_KEYS, "")
    merchant = _required(raw, "merchant")
    if not isinstance(merchant, str) or not _SLUG.match(merchant):
        raise ParamsError("merchant", f"{_value(merchant)} must be a slug of a-z, 0-9, _ and - "
                          "(at most 64 characters)")
    display_name = raw.get("display_name")
    if display_name is not None and not isinstance(display_name, str):
        raise ParamsError("display_name", f"{_value(display_name)} must be text (put it in "
                          "quotes)")
    tz = _required(raw, "timezone")
    try:
        if not isinstance(tz, str):
            raise ValueError(tz)
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name too long for a file name, or a folder of the zone database
        raise ParamsError("timezone", f"unknown time zone {_value(tz)} (use an IANA name "
                          "such as America/New_York)") from None
    currency = raw.get("currency", "USD")
    if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        raise ParamsError("currency", f"{_value(currency)} is not a 3-letter ISO 4217 code")
    if currency not in iso_currencies():
        raise ParamsError("currency", f"{currency!r} is not an ISO 4217 currency code "
                          "(e.g. USD, EUR, GBP, KRW)")
    locale = raw.get("locale", "en")
    from .i18n import LOCALES, check

    if not isinstance(locale, str):
        raise ParamsError("locale", f"{_value(locale)} is not a supported language; use one "
                          f"of {', '.join(LOCALES)}")
    check(locale)
    data = _required(raw, "data")
    if not isinstance(data, str) or "\x00" in data:
        raise ParamsError("data", f"{_value(data)} must be the dataset folder's path, as text")
    try:
        data_path = (base_dir / data).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ParamsError("data", f"{_value(data)} is not a usable path ({_one_line(exc)})") \
            from None
    if "as_of" in raw and raw["as_of"] is not None:
        as_of = _date(raw["as_of"], "as_of")
    else:
        as_of = dt.datetime.now(ZoneInfo(tz)).date()
    period = _range("period", resolve_period, raw.get("period", "last_30_days"), as_of, tz)
    comparison = _range("comparison", resolve_comparison,
                        raw.get("comparison", "previous_period"), period)
    return Params(
        merchant=merchant,
        display_name=display_name or merchant,
        data=data_path, timezone=tz, currency=currency, as_of=as_of,
        period=period, comparison=comparison,
        hub=_hub(_section(raw, "hub", {})),
        clv=_clv(_section(raw, "clv", {})),
        segments=_segments(_section(raw, "segments", [])),
        source=source,
        locale=str(locale),
    )


def _section(raw: dict, key: str, empty):
    """A section of the file; left out or null (``hub:`` with nothing under it) is empty,
    but ``hub: 0`` or ``segments: false`` is a mistake, not an empty section."""
    value = raw.get(key)
    return empty if value is None else value


def _range(key: str, resolve, spec, *args):
    """The period (or comparison) ``spec`` names, its days within 1900-01-01..2199-12-31."""
    if isinstance(spec, dict) and set(spec) == {"start", "end"}:
        for end in ("start", "end"):
            _date(spec[end], f"{key}.{end}")
    try:
        period = resolve(spec, *args)
    except (ValueError, OverflowError, TypeError) as exc:
        raise ParamsError(key, _one_line(exc)) from None
    if period is not None and (period.start < FIRST_DAY or period.end > LAST_DAY):
        raise ParamsError(key, f"{period.start} to {period.end} is not within "
                          f"{FIRST_DAY} to {LAST_DAY}")
    return period


@functools.cache
def iso_currencies() -> frozenset[str]:
    """The ISO 4217 currency codes Babel knows (``babel.numbers.list_currencies``)."""
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def _hub(raw) -> HubParams:
    _mapping(raw, "hub")
    _no_unknown(raw, HUB_KEYS, "hub.")
    launched = raw.get("launched_on")
    paused = _section(raw, "paused", [])
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
    orders = _section(raw, "orders", {})
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
        raise ParamsError("clv.model", f"{_value(model)} is not a model; use one of "
                          + ", ".join(CLV_MODELS))
    k = raw.get("regularity_k")
    if k is not None:
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_REGULARITY_K:
            raise ParamsError("clv.regularity_k", f"{_value(k)} must be a whole number from 1 "
                              f"to {MAX_REGULARITY_K}, or null (chosen by the data)")
        if model != "mbg_cnbd":
            raise ParamsError("clv.regularity_k", f"applies to clv.model mbg_cnbd only, not "
                              f"{model} (auto chooses k itself)")
    pooling = raw.get("pooling", "auto")
    if pooling is False:            # YAML reads a bare `off` as false
        pooling = "off"
    if not isinstance(pooling, str) or pooling not in POOLING:
        raise ParamsError("clv.pooling", f"{_value(pooling)} must be one of "
                          + ", ".join(POOLING))
    ci = raw.get("credible_interval", 0.9)
    if not isinstance(ci, (int, float)) or isinstance(ci, bool) or not 0 < ci < 1:
        raise ParamsError("clv.credible_interval",
                          f"{_value(ci)} must be a number between 0 and 1")
    bands = raw.get("churn_bands", [0.3, 0.7])
    if (not isinstance(bands, (list, tuple)) or len(bands) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bands)
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
        regularity_k=k,
        pooling=pooling,
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
        if len(name) > 100:
            raise ParamsError(key + ".name", f"{_value(name)} is longer than 100 characters")
        if name in seen:
            raise ParamsError(key + ".name", f"segment {_value(name)} is named twice")
        seen.add(name)
        if not isinstance(where, str):
            raise ParamsError(f"{key}.where ({_shown(name)})", f"{_value(where)} is not a "
                              "condition such as 'historical_clv >= 500' (put it in quotes)")
        out.append(Segment(name, where, segment_attributes(where, f"{key}.where ({_shown(name)})")))
    return tuple(out)


def segment_attributes(where: str, key: str = "where") -> tuple[str, ...]:
    """The CLV attributes a segment condition uses; an error if it uses none or an unknown name."""
    shown = _value(where)
    try:
        tree = ast.parse(where, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # MemoryError: CPython's parser gives up on deep nesting ("too complex to parse")
        raise ParamsError(key, f"{shown} is not a condition such as 'historical_clv >= 500'") \
            from None
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in SEGMENT_NAMES:
                raise ParamsError(key, f"{_value(node.id)} is not a CLV attribute; use one of "
                                  + ", ".join(CLV_ATTRIBUTES))
            names.append(node.id)
        elif not isinstance(node, _CONDITION_NODES) or (
                isinstance(node, ast.Constant) and not _number(node.value)):
            raise ParamsError(key, f"{shown} may only compare attributes with numbers")
    if not names:
        raise ParamsError(key, f"{shown} names no CLV attribute; use one of "
                          + ", ".join(CLV_ATTRIBUTES))
    if not _is_condition(tree.body):
        raise ParamsError(key, f"{shown} is not a comparison (such as 'historical_clv >= 500'),"
                          " nor comparisons joined by and, or, not")
    return tuple(dict.fromkeys(names))


#: What a segment condition is made of: comparisons of attributes and numbers (with + - * /),
#: joined by and, or, not. No calls, attributes, strings or powers (9**9**9 would never end).
_CONDITION_NODES = (ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Name,
                    ast.Constant, ast.Load, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd,
                    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
                    ast.Eq, ast.NotEq)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_condition(node) -> bool:
    """A comparison, or conditions joined by and/or/not (not a bare value: a bare
    ``historical_clv`` would hold for every profile whose CLV is not 0)."""
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BoolOp):
        return all(_is_condition(v) for v in node.values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _is_condition(node.operand)
    return False


def _mapping(raw, key):
    if not isinstance(raw, dict):
        raise ParamsError(key, f"{_value(raw)} must be a mapping of keys")


def _no_unknown(raw: dict, known: set, prefix: str):
    for key in raw:
        if key not in known:
            raise ParamsError(f"{prefix}{_shown(key)}", "unknown key; known keys are "
                              + ", ".join(sorted(known)))


def _required(raw: dict, key: str):
    value = raw.get(key)
    if value is None or (isinstance(value, str) and value == ""):
        raise ParamsError(key, "is required")
    return value


def _date(value, key: str) -> dt.date:
    """A date of the file (a YAML date or YYYY-MM-DD text); the error names ``key`` once."""
    try:
        day = parse_date(value)
    except ValueError:
        raise ParamsError(key, f"{_value(value)} is not a date (YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ParamsError(key, f"{day} is not within {FIRST_DAY} to {LAST_DAY}")
    return day


def _int(raw: dict, name: str, default: int, prefix: str, minimum: int = 0) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParamsError(prefix + name, f"{_value(value)} must be a whole number >= {minimum}")
    return value


def _bool(raw: dict, name: str, default: bool, prefix: str) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise ParamsError(prefix + name, f"{_value(value)} must be true or false")
    return value
