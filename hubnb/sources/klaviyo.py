"""``hubnb pull-klaviyo``: a merchant's Klaviyo account as a dataset directory.

Reads Klaviyo's public REST API (JSON:API; ``Authorization: Klaviyo-API-Key ...`` and a
pinned ``revision`` header) and writes the tables of the data contract:

* ``GET /api/accounts``: the account's time zone and currency (for ``--params-out``);
* ``GET /api/metrics``: metric ids by name;
* ``GET /api/events``, filtered by metric id (and, on a later pull, by datetime), following
  ``links.next`` until it is null: Placed Order becomes ``orders`` and its ``Items``
  ``order_lines``; Refunded Order ``refunds`` and Cancelled Order ``orders.cancelled_at``,
  joined on the order id (``$event_id``); the Customer Hub metrics ``hub_events`` (the
  source metric's name kept in ``raw_metric``); Created Customer Hub Account
  ``profiles.account_created_at``;
* ``GET /api/profiles?additional-fields[profile]=predictive_analytics``: ``profiles`` and
  Klaviyo's own predictions as the ``predictions`` table.

A pull is robust: 429 and 5xx answers are retried after ``Retry-After`` or an exponential
backoff; every page's rows are appended to the pull's state folder (``<out>.pull/``) with
the next page's URL, so an interrupted pull (even by SIGKILL) resumes where it stopped, and
rows are keyed by their Klaviyo id so none is ever counted twice; a later pull asks only
for events after the last one it has. Tables are written aside and swapped in when
complete: a bad or under-scoped key, a malformed page or a dropped connection leaves the
existing dataset as it was. The API key is read from ``KLAVIYO_API_KEY`` and never written
anywhere.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urljoin

import pandas as pd
import yaml

from .. import faults
from ..errors import HubnbError
from ..folders import aside, publish, write_atomic

DEFAULT_BASE_URL = "https://a.klaviyo.com"
#: The API revision every request pins (``revision`` header).
REVISION = "2025-01-15"
EVENTS_PAGE_SIZE = 200
PROFILES_PAGE_SIZE = 100
#: Scopes a read-only private key needs.
SCOPES = ("accounts:read", "metrics:read", "events:read", "profiles:read")
PREDICTION_FIELDS = ("historic_clv", "predicted_clv", "total_clv", "historic_number_of_orders",
                     "predicted_number_of_orders", "average_order_value",
                     "average_days_between_orders", "churn_probability",
                     "expected_date_of_next_order")


class KlaviyoError(HubnbError):
    """The pull could not be completed (key, scope, network or a malformed answer)."""


# --------------------------------------------------------------------------- mapping

@dataclass(frozen=True)
class Mapping:
    """Which Klaviyo metric (and event property) becomes which table and column.

    Names vary by integration and account; a YAML mapping file overrides any of these keys
    (``metrics``, ``hub_metrics``, ``properties``, ``item_properties``).
    """

    metrics: dict = field(default_factory=lambda: {
        "placed_order": "Placed Order", "refunded_order": "Refunded Order",
        "cancelled_order": "Cancelled Order",
        "hub_account_created": "Created Customer Hub Account"})
    hub_metrics: dict = field(default_factory=lambda: {
        "Opened Customer Hub": "hub_opened",
        "Tracked Order in Customer Hub": "order_tracked",
        "Started Return in Customer Hub": "return_started",
        "Applied Coupon in Customer Hub": "coupon_applied",
        "Clicked Help in Customer Hub": "help_clicked",
        "Started Chat in Customer Hub": "chat_started",
        "Added to Cart from Customer Hub": "hub_add_to_cart"})
    properties: dict = field(default_factory=lambda: {
        "order_id": "$event_id", "value": "$value", "items": "Items",
        "source_name": "Source Name", "signed_in": "Signed In",
        "is_subscription": "Subscription", "product_id": "ProductID"})
    item_properties: dict = field(default_factory=lambda: {
        "product_id": "ProductID", "product_name": "ProductName", "quantity": "Quantity",
        "item_price": "ItemPrice", "line_total": "RowTotal",
        "added_from_hub": "AddedFromCustomerHub"})

    def wanted(self) -> dict[str, str]:
        """``{metric name: stream}`` of every metric the pull reads."""
        out = {name: role for role, name in self.metrics.items()}
        out.update({name: "hub" for name in self.hub_metrics})
        return out


HUB_TYPES = ("hub_opened", "order_tracked", "return_started", "coupon_applied", "help_clicked",
             "chat_started", "hub_add_to_cart", "other")


def load_mapping(path=None) -> Mapping:
    """The default mapping, with the keys of the YAML file at ``path`` overriding it."""
    mapping = Mapping()
    if path is None:
        return mapping
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KlaviyoError(f"cannot read the mapping file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise KlaviyoError(f"mapping file {path}: must hold a mapping of keys")
    changes = {}
    for key, value in raw.items():
        if key not in ("metrics", "hub_metrics", "properties", "item_properties"):
            raise KlaviyoError(f"mapping file {path}: unknown key {key!r} (expected metrics, "
                               "hub_metrics, properties, item_properties)")
        if not isinstance(value, dict):
            raise KlaviyoError(f"mapping file {path}: {key} must be a mapping")
        if key == "hub_metrics":
            bad = {v for v in value.values() if v not in HUB_TYPES}
            if bad:
                raise KlaviyoError(f"mapping file {path}: hub_metrics maps to {sorted(bad)}; "
                                   f"event types are {', '.join(HUB_TYPES)}")
            changes[key] = dict(value)      # the hub metrics are replaced as a whole
        else:
            default = getattr(mapping, key)
            unknown = set(value) - set(default)
            if unknown:
                raise KlaviyoError(f"mapping file {path}: unknown {key} {sorted(unknown)} "
                                   f"(expected {', '.join(default)})")
            changes[key] = {**default, **value}
    return replace(mapping, **changes)


# --------------------------------------------------------------------------- the client

class Client:
    """Klaviyo's REST API over HTTP, with retries; the key stays inside this object."""

    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL, revision: str = REVISION,
                 max_retries: int = 6, backoff: float = 1.0, sleep=time.sleep, timeout=60.0):
        import httpx

        if not api_key:
            raise KlaviyoError("no API key: set the KLAVIYO_API_KEY environment variable to a "
                               f"private key with the scopes {', '.join(SCOPES)}")
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, headers={
            "Authorization": f"Klaviyo-API-Key {api_key}", "revision": revision,
            "Accept": "application/vnd.api+json"})
        self.max_retries, self.backoff, self.sleep = max_retries, backoff, sleep

    def close(self) -> None:
        self._http.close()

    def get(self, path_or_url: str, params: dict | None = None) -> dict:
        """One JSON:API document; retried on 429, 5xx and dropped connections."""
        import httpx

        url = path_or_url if "://" in path_or_url else urljoin(self.base_url + "/", path_or_url.lstrip("/"))
        where = _path(url)
        for attempt in range(self.max_retries + 1):
            try:
                response = self._http.get(url, params=params)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__} ({where})"
                if attempt == self.max_retries:
                    raise KlaviyoError(f"the connection to Klaviyo failed {attempt + 1} times: "
                                       f"{problem}") from None
                self.sleep(self._delay(attempt, None))
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                if attempt == self.max_retries:
                    raise KlaviyoError(f"Klaviyo answered {status} to {where} "
                                       f"{attempt + 1} times; try again later") from None
                self.sleep(self._delay(attempt, response.headers.get("Retry-After")))
                continue
            if status == 401:
                raise KlaviyoError("Klaviyo refused the API key (401): check that "
                                   "KLAVIYO_API_KEY holds a valid private key") from None
            if status == 403:
                raise KlaviyoError(f"the API key may not read {where} (403): give it the "
                                   f"scopes {', '.join(SCOPES)}") from None
            if status >= 400:
                raise KlaviyoError(f"Klaviyo answered {status} to {where}: "
                                   f"{_error_detail(response)}") from None
            try:
                document = response.json()
            except ValueError:
                raise KlaviyoError(f"Klaviyo's answer to {where} is not valid JSON "
                                   "(a malformed page); nothing was changed") from None
            if not isinstance(document, dict) or not isinstance(document.get("data"), list):
                raise KlaviyoError(f"Klaviyo's answer to {where} has no data list (a malformed "
                                   "page); nothing was changed")
            return document
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                pass
        return self.backoff * 2 ** attempt * (1 + 0.25 * random.random())


def _path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path or "/"


def _error_detail(response) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(str(e.get("detail") or e.get("title")) for e in errors) or response.reason_phrase
    except (ValueError, AttributeError):
        return response.reason_phrase


# --------------------------------------------------------------------------- pull state

class PullState:
    """``<out>.pull/``: per stream, the raw rows fetched so far and where to go on.

    ``state.json`` holds, per stream, the next page's URL (None when the stream is done),
    the datetime of its newest event and the length in bytes of ``<stream>.jsonl``, the
    rows, appended page by page. A pull killed while appending a page leaves rows past
    that length (whole rows; a torn last one after a full disk or a power cut): they are
    cut off on opening, and the page is fetched again from the saved URL, so the rows are
    those of an uninterrupted pull. Rows carry their Klaviyo id, and tables keep the first
    row of an id besides.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        try:
            self.data = json.loads((folder / "state.json").read_text())
        except (OSError, ValueError):
            self.data = {"streams": {}}
        self._cut_to_saved()

    def _cut_to_saved(self) -> None:
        """Each stream's rows file back to its saved length (the rows of saved pages)."""
        streams = self.data["streams"]
        files = {p.name: p for p in self.folder.glob("*.jsonl")}
        lost = False
        for name, s in list(streams.items()):
            path = files.pop(f"{_file(name)}.jsonl", None)
            size = path.stat().st_size if path else 0
            if "bytes" in s:
                saved = s["bytes"]
            else:                              # a state from before the lengths were kept
                saved = path.read_bytes().rfind(b"\n") + 1 if path else 0
            if size > saved:
                with open(path, "r+b") as handle:
                    handle.truncate(saved)
            elif size < saved:                 # rows lost: pull the stream again
                if path:
                    path.unlink()
                streams.pop(name)
                lost = True
        for path in files.values():            # rows of a stream whose state was reset
            path.unlink()
        if lost:
            self.save()

    def stream(self, name: str) -> dict:
        return self.data["streams"].setdefault(name, {})

    def append(self, name: str, rows: list[dict], next_url: str | None) -> None:
        with open(self.folder / f"{_file(name)}.jsonl", "ab") as handle:
            for row in rows:
                handle.write(json.dumps(row).encode() + b"\n")
            faults.point("pull-append")
            handle.flush()
            size = handle.tell()
        s = self.stream(name)
        s["next"], s["bytes"] = next_url, size
        s["rows"] = s.get("rows", 0) + len(rows)
        if rows and rows[-1].get("datetime"):
            s["newest"] = max(s.get("newest") or "", max(r.get("datetime") or "" for r in rows))
        self.save()
        faults.point("pull-page")

    def rows(self, name: str) -> list[dict]:
        path = self.folder / f"{_file(name)}.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]

    def reset(self, name: str) -> None:
        self.data["streams"].pop(name, None)
        self.save()        # first: rows without a stream are cut off on opening
        (self.folder / f"{_file(name)}.jsonl").unlink(missing_ok=True)

    def save(self) -> None:
        tmp = self.folder / "state.json.tmp"
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.folder / "state.json")


def _file(stream: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in stream)


# --------------------------------------------------------------------------- the pull

@dataclass
class PullResult:
    """What a pull wrote: the tables' row counts, the metrics nobody mapped, the account."""

    out: Path
    counts: dict
    unmatched: list
    account: dict
    params_out: Path | None = None


def pull(out, api_key: str | None = None, base_url: str | None = None, since=None,
         mapping=None, params_out=None, log=print, client: Client | None = None) -> PullResult:
    """Pull a Klaviyo account into the dataset directory ``out``.

    ``since`` (a date or ISO datetime) starts each metric's events there on its first
    pull; a later pull of the same ``out`` keeps the events it has and asks only for those
    after the newest one (to pull an earlier history again, delete ``<out>.pull/``).
    """
    out = Path(out).resolve()
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    api_key = api_key if api_key is not None else os.environ.get("KLAVIYO_API_KEY", "")
    base_url = base_url or os.environ.get("KLAVIYO_BASE_URL") or DEFAULT_BASE_URL
    since_iso = _since(since)
    own_client = client is None
    client = client or Client(api_key, base_url)
    state = PullState(out.with_name(out.name + ".pull"))
    try:
        account = _first(client.get("/api/accounts"))
        metrics = _all_metrics(client)
        wanted = mapping.wanted()
        by_name = {}
        for m in metrics:
            by_name.setdefault(m["attributes"].get("name"), m)
        unmatched = sorted(n for n in by_name if n not in wanted)
        missing = [n for n in mapping.metrics.values() if n not in by_name]
        if mapping.metrics["placed_order"] in missing:
            raise KlaviyoError(f"the account has no metric named "
                               f"{mapping.metrics['placed_order']!r}: name it in the mapping "
                               f"file (metrics.placed_order); its metrics are: "
                               + ", ".join(sorted(n for n in by_name if n)))
        for name in wanted:
            if name in by_name:
                _pull_events(client, state, by_name[name], since_iso, log)
        _pull_profiles(client, state, log)
        tables = build_tables(state, mapping, {m["id"]: m for m in metrics})
        counts = write_tables(tables, out)
        written = None
        if params_out:
            written = write_params(Path(params_out), out, account, tables)
        for name in missing:
            log(f"note: no metric named {name!r} in the account (its table stays empty)")
        if unmatched:
            log("metrics that match nothing (map them in --mapping to use them): "
                + ", ".join(unmatched))
        return PullResult(out, counts, unmatched, account.get("attributes", {}), written)
    finally:
        if own_client:
            client.close()


def _since(since) -> str | None:
    if since is None or since == "":
        return None
    if isinstance(since, dt.datetime):
        value = since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)
    elif isinstance(since, dt.date):
        value = dt.datetime(since.year, since.month, since.day, tzinfo=dt.timezone.utc)
    else:
        try:
            value = dt.datetime.fromisoformat(str(since))
        except ValueError:
            raise KlaviyoError(f"--since {since!r} is not a date (YYYY-MM-DD)") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat()


def _first(document: dict) -> dict:
    if not document["data"]:
        raise KlaviyoError("Klaviyo returned no account for this key")
    return document["data"][0]


def _all_metrics(client: Client) -> list[dict]:
    metrics, url, params = [], "/api/metrics", None
    while url:
        page = client.get(url, params)
        metrics += page["data"]
        url, params = (page.get("links") or {}).get("next"), None
    return metrics


def _pull_events(client: Client, state: PullState, metric: dict, since_iso, log) -> None:
    name = metric["attributes"]["name"]
    stream = f"events:{name}"
    s = state.stream(stream)
    if s.get("next"):
        url, params = s["next"], None            # resume an interrupted pull
        log(f"{name}: resuming after {s.get('rows', 0):,} events")
    else:
        after = s.get("newest")
        condition = f'equals(metric_id,"{metric["id"]}")'
        if after:
            condition = f"and({condition},greater-than(datetime,{after}))"
        elif since_iso:
            condition = f"and({condition},greater-or-equal(datetime,{since_iso}))"
        url, params = "/api/events", {"filter": condition, "sort": "datetime",
                                      "page[size]": EVENTS_PAGE_SIZE}
    before = s.get("rows", 0)
    pages = 0
    while url:
        page = client.get(url, params)
        rows = [_event_row(e) for e in page["data"]]
        url, params = (page.get("links") or {}).get("next"), None
        state.append(stream, rows, url)
        pages += 1
    state.stream(stream)["next"] = None
    state.save()
    log(f"{name}: {state.stream(stream).get('rows', 0) - before:,} new events "
        f"({pages} page{'s' if pages != 1 else ''}), {state.stream(stream).get('rows', 0):,} "
        "in all")


def _event_row(event: dict) -> dict:
    try:
        attributes = event["attributes"]
        relationships = event.get("relationships") or {}
        profile = ((relationships.get("profile") or {}).get("data") or {}).get("id")
        metric = ((relationships.get("metric") or {}).get("data") or {}).get("id")
        return {"id": event["id"], "datetime": attributes["datetime"], "profile_id": profile,
                "metric_id": metric, "properties": attributes.get("event_properties") or {}}
    except (KeyError, TypeError):
        raise KlaviyoError("an event of Klaviyo's answer lacks its id, attributes or "
                           "datetime (a malformed page); nothing was changed") from None


def _pull_profiles(client: Client, state: PullState, log) -> None:
    stream = "profiles"
    s = state.stream(stream)
    if s.get("next"):
        url, params = s["next"], None
        log(f"profiles: resuming after {s.get('rows', 0):,}")
    else:
        state.reset(stream)                       # profiles are read whole on every pull
        url, params = "/api/profiles", {"additional-fields[profile]": "predictive_analytics",
                                        "page[size]": PROFILES_PAGE_SIZE}
    while url:
        page = client.get(url, params)
        rows = []
        for p in page["data"]:
            try:
                a = p["attributes"]
                rows.append({"id": p["id"], "email": a.get("email"), "created": a.get("created"),
                             "predictive_analytics": a.get("predictive_analytics")})
            except (KeyError, TypeError):
                raise KlaviyoError("a profile of Klaviyo's answer lacks its id or attributes "
                                   "(a malformed page); nothing was changed") from None
        url, params = (page.get("links") or {}).get("next"), None
        state.append(stream, rows, url)
    s = state.stream(stream)
    s["next"], s["complete"] = None, True
    state.save()
    log(f"profiles: {s.get('rows', 0):,}")


# --------------------------------------------------------------------------- tables

def _unique(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for row in rows:
        if row["id"] not in seen:
            seen.add(row["id"])
            out.append(row)
    return out


def build_tables(state: PullState, mapping: Mapping, metrics: dict) -> dict:
    """The contract's tables from the pulled rows (every row once, by Klaviyo id)."""
    props, item = mapping.properties, mapping.item_properties
    rows = {name: _unique(state.rows(f"events:{name}")) for name in mapping.wanted()}
    placed = rows.get(mapping.metrics["placed_order"], [])
    cancelled = {}
    for e in sorted(rows.get(mapping.metrics["cancelled_order"], []), key=lambda r: r["datetime"]):
        cancelled.setdefault(str(e["properties"].get(props["order_id"], "")), e["datetime"])
    orders, lines = [], []
    for e in placed:
        p = e["properties"]
        order_id = str(p.get(props["order_id"]) or e["id"])
        metric = metrics.get(e["metric_id"]) or {}
        integration = ((metric.get("attributes") or {}).get("integration") or {}).get("name")
        orders.append({"order_id": order_id, "profile_id": e["profile_id"],
                       "placed_at": e["datetime"], "value": _number(p.get(props["value"])),
                       "source_name": p.get(props["source_name"]) or "web",
                       "integration": (integration or "").lower() or None,
                       "is_subscription": bool(p.get(props["is_subscription"], False)),
                       "signed_in": bool(p.get(props["signed_in"], False)),
                       "cancelled_at": cancelled.get(order_id)})
        for i, it in enumerate(p.get(props["items"]) or [], start=1):
            if not isinstance(it, dict):
                continue
            quantity = it.get(item["quantity"], 1)
            total = it.get(item["line_total"])
            if total is None and it.get(item["item_price"]) is not None:
                total = _number(it[item["item_price"]]) * (quantity or 1)
            added = it.get(item["added_from_hub"])
            lines.append({"order_id": order_id, "line_id": str(i),
                          "product_id": str(it.get(item["product_id"]) or f"unknown-{i}"),
                          "product_name": it.get(item["product_name"]),
                          "quantity": int(quantity or 1), "line_total": _number(total),
                          "added_from_hub": None if added is None else bool(added)})
    refunds = [{"refund_id": e["id"], "order_id": str(e["properties"].get(props["order_id"], "")),
                "refunded_at": e["datetime"], "amount": _number(e["properties"].get(props["value"]))}
               for e in rows.get(mapping.metrics["refunded_order"], [])]
    refunds = [r for r in refunds if r["amount"] and r["amount"] > 0]
    hub = []
    for name, event_type in mapping.hub_metrics.items():
        for e in rows.get(name, []):
            product = e["properties"].get(props["product_id"]) if event_type == "hub_add_to_cart" else None
            hub.append({"event_id": e["id"], "profile_id": e["profile_id"],
                        "occurred_at": e["datetime"], "event_type": event_type,
                        "product_id": None if product is None else str(product),
                        "raw_metric": name})
    accounts = {}
    for e in sorted(rows.get(mapping.metrics["hub_account_created"], []),
                    key=lambda r: r["datetime"]):
        accounts.setdefault(e["profile_id"], e["datetime"])
    profiles, predictions = [], []
    for p in _unique(state.rows("profiles")):
        profiles.append({"profile_id": p["id"], "created_at": p.get("created"),
                         "account_created_at": accounts.get(p["id"]), "email": p.get("email")})
        pa = p.get("predictive_analytics")
        if isinstance(pa, dict) and any(pa.get(k) is not None for k in PREDICTION_FIELDS):
            predictions.append({"profile_id": p["id"], **{k: pa.get(k) for k in PREDICTION_FIELDS}})
    frames = {
        "profiles": pd.DataFrame(profiles, columns=["profile_id", "created_at",
                                                    "account_created_at", "email"]),
        "orders": pd.DataFrame(orders, columns=["order_id", "profile_id", "placed_at", "value",
                                                "source_name", "integration", "is_subscription",
                                                "signed_in", "cancelled_at"]),
        "order_lines": pd.DataFrame(lines, columns=["order_id", "line_id", "product_id",
                                                    "product_name", "quantity", "line_total",
                                                    "added_from_hub"]),
        "refunds": pd.DataFrame(refunds, columns=["refund_id", "order_id", "refunded_at",
                                                  "amount"]),
        "hub_events": pd.DataFrame(hub, columns=["event_id", "profile_id", "occurred_at",
                                                 "event_type", "product_id", "raw_metric"]),
        "predictions": pd.DataFrame(predictions, columns=["profile_id", *PREDICTION_FIELDS]),
    }
    if frames["order_lines"]["added_from_hub"].isna().all():
        # no item says where it was added: hubnb attributes by the window instead
        frames["order_lines"] = frames["order_lines"].drop(columns=["added_from_hub"])
    return frames


def _number(value):
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise KlaviyoError(f"a money value of Klaviyo's answer is not a number: {value!r}") from None


def write_tables(tables: dict, out: Path) -> dict:
    """Write the tables aside as CSV and swap them in: ``out`` changes only when complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = aside(out)   # swept by a later publish if this process is killed
    try:
        for name, frame in tables.items():
            frame.to_csv(staging / f"{name}.csv", index=False)
        # the written tables must read back under the data contract before they replace
        from ..data import load_dataset

        load_dataset(staging)
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {name: len(frame) for name, frame in tables.items()}


def write_params(path: Path, data_dir: Path, account: dict, tables: dict) -> Path:
    """A starting params file: time zone and currency from the account (``GET /api/accounts``)."""
    a = account.get("attributes") or {}
    contact = a.get("contact_information") or {}
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in data_dir.name.lower()).strip("-")
    hub = tables["hub_events"]
    launched = (pd.to_datetime(hub["occurred_at"], utc=True).min().date().isoformat()
                if len(hub) else None)
    params = {
        "merchant": slug or "merchant",
        "display_name": contact.get("organization_name") or data_dir.name,
        "data": os.path.relpath(data_dir, path.resolve().parent),
        "timezone": a.get("timezone") or "UTC",
        "currency": a.get("preferred_currency") or "USD",
        "period": "last_30_days", "comparison": "previous_period",
        "hub": {"launched_on": launched} if launched else {},
        "clv": {"model": "auto", "backtest_days": 90},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, "# Written by hubnb pull-klaviyo: check and edit before running.\n"
                        + yaml.safe_dump(params, sort_keys=False))
