"""A fake of Klaviyo's public REST API (JSON:API) on 127.0.0.1, for the pull's tests.

``FakeKlaviyo(**sample_account())`` serves, on a real HTTP/1.1 server (keep-alive, a
daemon thread, port 0):

* ``GET /api/accounts``, ``/api/metrics``, ``/api/events``, ``/api/profiles`` (with or
  without a trailing slash), as Klaviyo shapes them: ``{"data": [...], "links": {"self",
  "next", "prev"}}``, ``Content-Type: application/vnd.api+json``;
* the checks Klaviyo makes: ``Authorization: Klaviyo-API-Key <key>`` (401), the key's scopes
  (403), a ``revision`` header (400), the query's parameters (400), unknown paths (404);
* cursor paging: ``page[cursor]`` holds the sort key of the last item served, so a saved
  ``links.next`` URL gives exactly the remaining items whenever it is used again;
* faults, each consumed when it fires: ``fail`` (429/5xx, optional ``Retry-After``),
  ``drop`` (the connection closed without an answer) and ``malformed`` (a 200 whose body is
  not JSON, or JSON without ``data``).

Input records (what ``sample_account`` returns and ``FakeKlaviyo`` takes):

* account: ``{"id", "contact_information", "industry", "timezone", "preferred_currency",
  "public_api_key", "locale"}`` (every key but ``id`` becomes an attribute);
* metric: ``{"id", "name", "created", "updated", "integration"}``;
* event: ``{"id", "metric_id", "profile_id", "datetime", "event_properties", "uuid"}``
  (``timestamp`` is derived from ``datetime``);
* profile: ``{"id", "email", "created", "updated", ..., "properties",
  "predictive_analytics"}`` (``predictive_analytics`` is served only when asked for with
  ``additional-fields[profile]=predictive_analytics``).

Standard library only.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import random
import re
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

DEFAULT_API_KEY = "pk_test_123"
DEFAULT_SCOPES = ("accounts:read", "metrics:read", "events:read", "profiles:read")
JSON_API = "application/vnd.api+json"
DEFAULT_MALFORMED_BODY = b'{"data": [ {"type":'

#: Profiles are served 20 a page unless ``page[size]`` says otherwise (Klaviyo's default).
PROFILES_DEFAULT_PAGE_SIZE = 20

ENDPOINT_SCOPES = {"accounts": "accounts:read", "metrics": "metrics:read",
                   "events": "events:read", "profiles": "profiles:read"}

_TITLES = {
    400: ("invalid", "Invalid input."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    429: ("throttled", "Request was throttled."),
    500: ("error", "A server error occurred."),
    502: ("bad_gateway", "Bad gateway."),
    503: ("service_unavailable", "Service temporarily unavailable."),
    504: ("gateway_timeout", "Gateway timeout."),
}
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


# --------------------------------------------------------------------------- helpers

def parse_datetime(text: str) -> dt.datetime:
    """An ISO 8601 datetime (``Z`` or an offset; naive means UTC) as an aware UTC datetime."""
    value = dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def iso(value: dt.datetime) -> str:
    """``2026-03-01T09:15:00+00:00`` (UTC, seconds)."""
    return value.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()


def _epoch(text: str) -> float:
    return parse_datetime(text).timestamp()


class _BadRequest(Exception):
    def __init__(self, detail: str, parameter: str | None = None):
        super().__init__(detail)
        self.detail, self.parameter = detail, parameter


def _error_body(status: int, detail: str | None = None, source: dict | None = None,
                code: str | None = None, title: str | None = None) -> dict:
    default_code, default_title = _TITLES.get(status, ("error", "An error occurred."))
    return {"errors": [{"id": str(uuid.uuid4()), "status": status,
                        "code": code or default_code, "title": title or default_title,
                        "detail": detail or title or default_title,
                        "source": source if source is not None else {"pointer": "/data/"}}]}


def _split_args(text: str) -> list[str]:
    """``a,"b,c",f(x,y)`` → ``['a', '"b,c"', 'f(x,y)']``: commas outside quotes, () and []."""
    out, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == "\\":
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                raise _BadRequest("unbalanced parentheses in filter", "filter")
        elif ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    if quote or depth:
        raise _BadRequest("unbalanced quotes or parentheses in filter", "filter")
    out.append(text[start:].strip())
    return out


_TERM = re.compile(r"^([a-z-]+)\((.*)\)$", re.S)
_OPS = {"equals", "any", "greater-than", "greater-or-equal", "less-than", "less-or-equal"}


def _string_literal(text: str, field: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return json.loads(text)
    raise _BadRequest(f"filter on {field}: {text!r} must be a string in double quotes", "filter")


def parse_filter(text: str) -> list[tuple[str, str, object]]:
    """Klaviyo's filter syntax as ``[(operator, field, value), ...]`` (``and`` flattened)."""
    match = _TERM.match(text.strip())
    if not match:
        raise _BadRequest(f"invalid filter {text!r}", "filter")
    op, inner = match.groups()
    if op == "and":
        terms = []
        for part in _split_args(inner):
            terms += parse_filter(part)
        return terms
    if op not in _OPS:
        raise _BadRequest(f"unsupported filter operator {op!r}", "filter")
    args = _split_args(inner)
    if len(args) != 2:
        raise _BadRequest(f"{op}() takes a field and a value", "filter")
    field, raw = args
    return [(op, field, raw)]


# --------------------------------------------------------------------------- faults

class _Fault:
    def __init__(self, kind, prefix, times=1, at=None, status=None, retry_after=None,
                 body=None, shape=False):
        self.kind, self.prefix, self.remaining, self.at = kind, prefix, times, at
        self.status, self.retry_after, self.body, self.shape = status, retry_after, body, shape
        self.seen = 0          # requests to the prefix since the fault was added

    def __repr__(self):
        return (f"_Fault({self.kind}, {self.prefix!r}, remaining={self.remaining}, "
                f"at={self.at}, seen={self.seen})")


# --------------------------------------------------------------------------- the server

class FakeKlaviyo:
    """A fake Klaviyo REST API on ``self.url`` (``http://127.0.0.1:PORT``); a context manager.

    ``requests`` lists every request received (failed ones too), as ``{"method", "path",
    "query", "headers", "status"}``: ``query`` the decoded parameters, ``headers`` with
    lower-case names, ``status`` the answer's status (None for a dropped connection).
    """

    def __init__(self, account: dict, metrics: list[dict], events: list[dict],
                 profiles: list[dict], api_key: str = DEFAULT_API_KEY, page_size_max: int = 200,
                 profile_page_size_max: int = 100, scopes=DEFAULT_SCOPES,
                 metrics_page_size: int | None = None):
        self.account = dict(account)
        self.metrics = [dict(m) for m in metrics]
        self.events = [dict(e) for e in events]
        self.profiles = [dict(p) for p in profiles]
        self.api_key = api_key
        self.page_size_max = page_size_max
        self.profile_page_size_max = profile_page_size_max
        self.scopes = tuple(scopes)
        self.metrics_page_size = metrics_page_size
        self.requests: list[dict] = []
        self.faults: list[_Fault] = []
        self._lock = threading.Lock()
        for e in self.events:
            e["_key"] = (_epoch(e["datetime"]), e["id"])

        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"FakeKlaviyo:{self.port}", daemon=True)
        self._thread.start()
        self._stopped = False

    # ---- life cycle

    def __enter__(self) -> "FakeKlaviyo":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ---- faults

    def fail(self, path_prefix: str, status: int, times: int = 1, retry_after=None,
             at: int | None = None) -> None:
        """Answer ``status`` (429, 5xx...) with a JSON:API error ``times`` times to requests
        whose path starts with ``path_prefix``: the next ones, or from the ``at``-th one on
        (counted from 1 since this call). ``retry_after`` becomes a ``Retry-After`` header."""
        with self._lock:
            self.faults.append(_Fault("fail", path_prefix, times=times, at=at, status=status,
                                      retry_after=retry_after))

    def drop(self, path_prefix: str, at: int | None = None, times: int = 1) -> None:
        """Close the connection without any answer on the ``at``-th request to the prefix
        (counted from 1 since this call; None: the next one)."""
        with self._lock:
            self.faults.append(_Fault("drop", path_prefix, times=times, at=at))

    def malformed(self, path_prefix: str, at: int | None = None,
                  body: bytes = DEFAULT_MALFORMED_BODY, kind: str = "body",
                  times: int = 1) -> None:
        """Answer 200 on the ``at``-th request to the prefix with a body that is not JSON
        (``kind="body"``: ``body``) or JSON without ``data`` (``kind="shape"``)."""
        if kind not in ("body", "shape"):
            raise ValueError("kind is 'body' or 'shape'")
        with self._lock:
            self.faults.append(_Fault("malformed", path_prefix, times=times, at=at, body=body,
                                      shape=kind == "shape"))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    # ---- inspection helpers

    def requests_to(self, path_prefix: str) -> list[dict]:
        """The recorded requests whose path starts with ``path_prefix``."""
        with self._lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]

    def metric_id(self, name: str) -> str:
        return next(m["id"] for m in self.metrics if m["name"] == name)

    # ---- the request handling (called from the handler threads)

    def _record(self, method: str, target: str, headers) -> tuple[dict, _Fault | None]:
        parts = urlsplit(target)
        record = {"method": method, "path": parts.path,
                  "query": dict(parse_qsl(parts.query, keep_blank_values=True)),
                  "headers": {k.lower(): v for k, v in headers.items()}, "status": None}
        with self._lock:
            self.requests.append(record)
            fired = None
            for fault in self.faults:
                if not parts.path.startswith(fault.prefix) or fault.remaining <= 0:
                    continue
                fault.seen += 1
                if fired is None and (fault.at is None or fault.seen >= fault.at):
                    fault.remaining -= 1
                    fired = fault
            self.faults = [f for f in self.faults if f.remaining > 0]
        return record, fired

    def _answer(self, record: dict, raw_query: str) -> tuple[int, dict, object]:
        """``(status, extra headers, JSON document)`` of a request that no fault caught."""
        headers = record["headers"]
        auth = headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme != "Klaviyo-API-Key" or key.strip() != self.api_key:
            return 401, {}, _error_body(401, "Missing or invalid private key.")
        revision = headers.get("revision", "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?", revision):
            return 400, {}, _error_body(
                400, "A valid revision header (YYYY-MM-DD) is required: got "
                f"{revision!r}." if revision else "Missing revision header (YYYY-MM-DD).",
                source={"header": "revision"}, code="invalid")
        if record["method"] != "GET":
            return 405, {}, _error_body(405, f"Method \"{record['method']}\" not allowed.")
        path = record["path"].rstrip("/")
        m = re.fullmatch(r"/api/(accounts|metrics|events|profiles)", path)
        if not m:
            return 404, {}, _error_body(404, f"No endpoint at {record['path']}.")
        endpoint = m.group(1)
        if ENDPOINT_SCOPES[endpoint] not in self.scopes:
            return 403, {}, _error_body(
                403, f"Your API key is missing required scopes: {ENDPOINT_SCOPES[endpoint]}.")
        try:
            query = self._query(raw_query)
            return 200, {}, getattr(self, f"_{endpoint}")(record["path"], query)
        except _BadRequest as exc:
            source = {"parameter": exc.parameter} if exc.parameter else {"pointer": "/data/"}
            return 400, {}, _error_body(400, exc.detail, source=source)

    @staticmethod
    def _query(raw_query: str) -> dict:
        pairs = parse_qsl(raw_query, keep_blank_values=True)
        names = [k for k, _ in pairs]
        for name in names:
            if names.count(name) > 1:
                raise _BadRequest(f"parameter {name} given more than once", name)
        return dict(pairs)

    @staticmethod
    def _allow(query: dict, allowed: set[str]) -> None:
        for name in query:
            if name in allowed or re.fullmatch(r"fields\[[a-z-]+\]", name):
                continue
            raise _BadRequest(f"'{name}' is not a valid query parameter for this endpoint", name)

    def _self_url(self, path: str, query: dict) -> str:
        return f"{self.url}{path}" + (f"?{urlencode(query)}" if query else "")

    @staticmethod
    def _sparse(kind: str, attributes: dict, query: dict) -> dict:
        wanted = query.get(f"fields[{kind}]")
        if not wanted:
            return attributes
        names = {n.strip() for n in wanted.split(",") if n.strip()}
        return {k: v for k, v in attributes.items() if k in names}

    @staticmethod
    def _page_size(query: dict, default: int, maximum: int) -> int:
        raw = query.get("page[size]")
        if raw is None:
            return default
        try:
            size = int(raw)
        except ValueError:
            raise _BadRequest(f"page[size] must be an integer, not {raw!r}", "page[size]") from None
        if not 1 <= size <= maximum:
            raise _BadRequest(f"page[size] must be between 1 and {maximum}, not {size}",
                              "page[size]")
        return size

    @staticmethod
    def _cursor(query: dict):
        raw = query.get("page[cursor]")
        if raw is None:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            return tuple(data["after"])
        except (ValueError, KeyError, TypeError):
            raise _BadRequest(f"invalid page[cursor] {raw!r}", "page[cursor]") from None

    def _page(self, path: str, query: dict, items: list, key, size: int | None,
              reverse: bool = False) -> tuple[list, str | None]:
        """The page after ``page[cursor]`` of ``items`` sorted by ``key``, and the next URL."""
        items = sorted(items, key=key, reverse=reverse)
        after = self._cursor(query)
        if after is not None:
            after = tuple(after)
            items = [i for i in items if (key(i) < after if reverse else key(i) > after)]
        if size is None or len(items) <= size:
            return items, None
        page = items[:size]
        token = base64.urlsafe_b64encode(
            json.dumps({"after": list(key(page[-1]))}).encode()).decode().rstrip("=")
        following = {k: v for k, v in query.items() if k != "page[cursor]"}
        following["page[cursor]"] = token
        return page, self._self_url(path, following)

    # ---- endpoints

    def _accounts(self, path: str, query: dict) -> dict:
        self._allow(query, set())
        a = self.account
        attributes = {k: v for k, v in a.items() if k != "id"}
        return {"data": [{"type": "account", "id": a["id"],
                          "attributes": self._sparse("account", attributes, query),
                          "links": {"self": f"{self.url}/api/accounts/{a['id']}/"}}],
                "links": {"self": self._self_url(path, query), "next": None, "prev": None}}

    def _metrics(self, path: str, query: dict) -> dict:
        self._allow(query, {"page[cursor]"})
        page, next_url = self._page(path, query, self.metrics, key=lambda m: (m["id"],),
                                    size=self.metrics_page_size)
        data = [{"type": "metric", "id": m["id"],
                 "attributes": self._sparse("metric", {
                     "name": m["name"], "created": m.get("created"), "updated": m.get("updated"),
                     "integration": m.get("integration")}, query),
                 "links": {"self": f"{self.url}/api/metrics/{m['id']}/"}} for m in page]
        return {"data": data, "links": {"self": self._self_url(path, query), "next": next_url,
                                        "prev": None}}

    def _events(self, path: str, query: dict) -> dict:
        self._allow(query, {"filter", "sort", "page[size]", "page[cursor]"})
        raw_filter = query.get("filter")
        if not raw_filter:
            raise _BadRequest("the fake needs filter=equals(metric_id,\"...\")", "filter")
        tests, metric_ids = [], []
        for op, field, raw in parse_filter(raw_filter):
            if field in ("metric_id", "profile_id"):
                if op == "equals":
                    value = _string_literal(raw, field)
                    if field == "metric_id":
                        metric_ids.append(value)
                    tests.append(lambda e, f=field, v=value: e[f] == v)
                elif op == "any" and field == "profile_id":
                    try:
                        values = set(json.loads(raw))
                    except ValueError:
                        raise _BadRequest(f"any({field}, ...) needs a JSON list",
                                          "filter") from None
                    tests.append(lambda e, v=values: e["profile_id"] in v)
                else:
                    raise _BadRequest(f"operator {op} is not allowed on {field}", "filter")
            elif field in ("datetime", "timestamp"):
                if op in ("equals", "any"):
                    raise _BadRequest(f"operator {op} is not allowed on {field}", "filter")
                try:
                    bound = parse_datetime(raw.strip('"')).timestamp()
                except ValueError:
                    hint = (" (a '+' in a query string must be sent as %2B)" if " " in raw else "")
                    raise _BadRequest(f"invalid datetime {raw!r} in filter{hint}",
                                      "filter") from None
                compare = {"greater-than": lambda x, b: x > b,
                           "greater-or-equal": lambda x, b: x >= b,
                           "less-than": lambda x, b: x < b,
                           "less-or-equal": lambda x, b: x <= b}[op]
                tests.append(lambda e, c=compare, b=bound: c(e["_key"][0], b))
            else:
                raise _BadRequest(f"filtering events on {field!r} is not supported", "filter")
        if len(metric_ids) != 1:
            raise _BadRequest("the fake needs exactly one equals(metric_id,\"...\") in the "
                              "filter", "filter")
        sort = query.get("sort", "datetime")
        if sort not in ("datetime", "-datetime", "timestamp", "-timestamp"):
            raise _BadRequest(f"invalid sort {sort!r}", "sort")
        size = self._page_size(query, self.page_size_max, self.page_size_max)
        chosen = [e for e in self.events if all(t(e) for t in tests)]
        page, next_url = self._page(path, query, chosen, key=lambda e: e["_key"], size=size,
                                    reverse=sort.startswith("-"))
        data = []
        for e in page:
            url = f"{self.url}/api/events/{e['id']}"
            data.append({
                "type": "event", "id": e["id"],
                "attributes": self._sparse("event", {
                    "timestamp": int(e["_key"][0]),
                    "event_properties": e.get("event_properties") or {},
                    "datetime": iso(parse_datetime(e["datetime"])),
                    "uuid": e.get("uuid") or str(uuid.UUID(bytes=hashlib.md5(
                        e["id"].encode()).digest()))}, query),
                "relationships": {
                    "profile": {"data": {"type": "profile", "id": e["profile_id"]},
                                "links": {"self": f"{url}/relationships/profile/",
                                          "related": f"{url}/profile/"}},
                    "metric": {"data": {"type": "metric", "id": e["metric_id"]},
                               "links": {"self": f"{url}/relationships/metric/",
                                         "related": f"{url}/metric/"}}},
                "links": {"self": f"{url}/"}})
        return {"data": data, "links": {"self": self._self_url(path, query), "next": next_url,
                                        "prev": None}}

    def _profiles(self, path: str, query: dict) -> dict:
        self._allow(query, {"page[size]", "page[cursor]", "additional-fields[profile]"})
        extra = {n.strip() for n in query.get("additional-fields[profile]", "").split(",")
                 if n.strip()}
        unknown = extra - {"predictive_analytics", "subscriptions"}
        if unknown:
            raise _BadRequest(f"invalid additional-fields[profile]: {sorted(unknown)}",
                              "additional-fields[profile]")
        size = self._page_size(query, min(PROFILES_DEFAULT_PAGE_SIZE, self.profile_page_size_max),
                               self.profile_page_size_max)
        page, next_url = self._page(path, query, self.profiles, key=lambda p: (p["id"],),
                                    size=size)
        data = []
        for p in page:
            attributes = {k: v for k, v in p.items()
                          if k not in ("id", "predictive_analytics", "subscriptions")}
            if "predictive_analytics" in extra:
                attributes["predictive_analytics"] = p.get("predictive_analytics")
            if "subscriptions" in extra:
                attributes["subscriptions"] = p.get("subscriptions")
            data.append({"type": "profile", "id": p["id"],
                         "attributes": self._sparse("profile", attributes, query),
                         "links": {"self": f"{self.url}/api/profiles/{p['id']}/"}})
        return {"data": data, "links": {"self": self._self_url(path, query), "next": next_url,
                                        "prev": None}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeKlaviyo/1.0"
    timeout = 30
    # the headers and the body go out in two writes: with Nagle's algorithm the body then
    # waited for the client's delayed ACK, 40 ms an answer
    disable_nagle_algorithm = True
    server_fake: FakeKlaviyo

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _handle(self) -> None:
        fake = self.server_fake
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        record, fault = fake._record(self.command, self.path, self.headers)
        raw_query = urlsplit(self.path).query
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        headers: dict = {}
        if fault is not None and fault.kind == "fail":
            status = fault.status
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            body = json.dumps(_error_body(status)).encode()
        elif fault is not None and fault.kind == "malformed":
            status = 200
            if fault.shape:
                body = json.dumps({"links": {"self": fake.url + record["path"], "next": None,
                                             "prev": None}}).encode()
            else:
                body = fault.body
        else:
            status, headers, document = fake._answer(record, raw_query)
            body = json.dumps(document).encode()
        record["status"] = status
        self.send_response(status, _REASONS.get(status))
        self.send_header("Content-Type", JSON_API)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


# --------------------------------------------------------------------------- sample data

METRIC_NAMES = (
    "Placed Order", "Ordered Product", "Refunded Order", "Cancelled Order",
    "Opened Customer Hub", "Tracked Order in Customer Hub", "Started Return in Customer Hub",
    "Applied Coupon in Customer Hub", "Clicked Help in Customer Hub",
    "Started Chat in Customer Hub", "Added to Cart from Customer Hub",
    "Created Customer Hub Account", "Viewed Product", "Subscribed to List")
SHOP_METRICS = ("Placed Order", "Ordered Product", "Refunded Order", "Cancelled Order",
                "Viewed Product")
SHOPIFY = {"object": "integration", "id": "0eMvjm", "name": "Shopify", "category": "eCommerce"}
KLAVIYO = {"object": "integration", "id": "7FtS4J", "name": "Klaviyo", "category": "Internal"}

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def metric_id_of(name: str) -> str:
    """The 6-character metric id ``sample_account`` gives ``name`` (the same for any seed)."""
    n = int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big")
    return "".join(_B62[(n >> (6 * i)) % 62] for i in range(6))


PRODUCTS = (
    ("7401183985861", "Linen Shirt", 59.90), ("7401183985862", "Organic Cotton Tee", 24.50),
    ("7401183985863", "Wool Beanie", 19.00), ("7401183985864", "Denim Jacket", 129.00),
    ("7401183985865", "Chino Trousers", 79.00), ("7401183985866", "Canvas Sneakers", 89.95),
    ("7401183985867", "Leather Belt", 45.00), ("7401183985868", "Silk Scarf", 65.00),
    ("7401183985869", "Merino Sweater", 109.00), ("7401183985870", "Cotton Socks (3 pack)", 14.90),
    ("7401183985871", "Rain Jacket", 149.00), ("7401183985872", "Tote Bag", 29.00),
)
FIRST_NAMES = ("Giulia", "Marco", "Sofia", "Luca", "Chiara", "Matteo", "Francesca", "Andrea",
               "Elena", "Davide", "Sara", "Alessandro", "Martina", "Lorenzo", "Valentina",
               "Simone", "Anna", "Federico", "Laura", "Paolo")
LAST_NAMES = ("Rossi", "Bianchi", "Ferrari", "Esposito", "Romano", "Colombo", "Ricci",
              "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Costa", "Giordano")
CITIES = (("Milano", "Lombardia"), ("Roma", "Lazio"), ("Torino", "Piemonte"),
          ("Bologna", "Emilia-Romagna"), ("Firenze", "Toscana"), ("Napoli", "Campania"))
HELP_TOPICS = ("Shipping", "Returns", "Sizing", "Payment", "Account")


def events_of(sample: dict, name: str) -> list[dict]:
    """The sample's events of the metric called ``name``, in datetime order."""
    mid = next(m["id"] for m in sample["metrics"] if m["name"] == name)
    return [e for e in sample["events"] if e["metric_id"] == mid]


def sample_account(n_profiles: int = 40, seed: int = 0, start: str = "2026-01-05",
                   days: int = 300) -> dict:
    """A deterministic e-commerce merchant: ``{"account", "metrics", "events", "profiles"}``.

    Every event lies in ``[start, start + days)``. About 18% of the profiles never order,
    34% once, half are repeat buyers (2 to 9 orders); half have a Customer Hub account and
    its events after the account's creation; half the carts added from the hub become
    orders (so a few never-buyers do buy). ~3 orders a profile on average.
    """
    rng = random.Random(seed)
    t_start = parse_datetime(start)
    t_end = t_start + dt.timedelta(days=days)
    span = (t_end - t_start).total_seconds()

    def at(fraction_low: float, fraction_high: float) -> dt.datetime:
        """A daytime moment between two fractions of the window."""
        low = t_start + dt.timedelta(seconds=span * fraction_low)
        day = t_start + dt.timedelta(seconds=span * rng.uniform(fraction_low, fraction_high))
        moment = day.replace(hour=rng.randint(7, 22), minute=rng.randint(0, 59),
                             second=rng.randint(0, 59), microsecond=0)
        if moment <= low:             # never before the lower bound (same day, earlier hour)
            moment = (low + dt.timedelta(minutes=rng.randint(1, 90))).replace(microsecond=0)
        return min(moment, t_end - dt.timedelta(seconds=1))

    def clip(moment: dt.datetime) -> dt.datetime | None:
        return moment if t_start <= moment < t_end else None

    used_ids: set[str] = set()

    def event_id() -> str:
        while True:
            candidate = "".join(rng.choice(_B62) for _ in range(11))
            if candidate not in used_ids:
                used_ids.add(candidate)
                return candidate

    metric_ids = {name: metric_id_of(name) for name in METRIC_NAMES}
    metrics = []
    for i, name in enumerate(METRIC_NAMES):
        created = dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.timezone.utc) + dt.timedelta(days=7 * i)
        metrics.append({"id": metric_ids[name], "name": name, "created": iso(created),
                        "updated": iso(created + dt.timedelta(days=30)),
                        "integration": dict(SHOPIFY if name in SHOP_METRICS else KLAVIYO)})

    raw_events: list[dict] = []      # without ids yet: {"metric", "profile", "at", "props"}

    def emit(metric: str, profile: str, moment: dt.datetime | None, props: dict) -> bool:
        if moment is None or not (t_start <= moment < t_end):
            return False
        raw_events.append({"metric": metric, "profile": profile, "at": moment, "props": props})
        return True

    profiles, orders = [], []        # orders: {"profile", "at", "hub_product"}
    for n in range(n_profiles):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        pid = "01H" + "".join(rng.choice(_CROCKFORD) for _ in range(23))
        if rng.random() < 0.3:       # a customer from before the window
            created = t_start - dt.timedelta(days=rng.uniform(5, 400))
            created = created.replace(microsecond=0)
        else:
            created = at(0.0, 0.6) - dt.timedelta(hours=rng.uniform(0.1, 48))
            created = max(created, t_start).replace(microsecond=0)
        kind = rng.random()
        n_orders = 0 if kind < 0.18 else 1 if kind < 0.52 else rng.randint(2, 9)
        begin = max((created - t_start).total_seconds() / span, 0.0)
        if n_orders:
            first_at = max(at(begin, begin + (1 - begin) * 0.5), created + dt.timedelta(minutes=3))
            f0 = (first_at - t_start).total_seconds() / span
            moments = [first_at] + [at(f0, 1.0) for _ in range(n_orders - 1)]
            for moment in moments:
                orders.append({"profile": pid, "at": moment, "hub_product": None})
        city, region = rng.choice(CITIES)
        profile = {"id": pid, "email": f"{first}.{last}{n}@example.com".lower().replace(" ", ""),
                   "phone_number": None, "external_id": None, "first_name": first,
                   "last_name": last, "organization": None, "locale": "it-IT", "title": None,
                   "image": None, "created": iso(created), "updated": None,
                   "last_event_date": None,
                   "location": {"address1": None, "address2": None, "city": city,
                                "country": "Italy", "region": region, "zip": None,
                                "timezone": "Europe/Rome", "ip": None},
                   "properties": {"Accepts Marketing": rng.random() < 0.6,
                                  "Shopify Tags": rng.sample(["vip", "newsletter", "wholesale",
                                                              "b2c"], k=rng.randint(0, 2))},
                   "_created": created, "_hub": None}
        profiles.append(profile)
        if rng.random() < 0.6:
            emit("Subscribed to List", pid, clip(max(created, t_start) + dt.timedelta(minutes=1)),
                 {"List": "Newsletter", "$event_id": f"sub-{pid}"})
        for _ in range(rng.randint(0, 6)):
            pid_product = rng.choice(PRODUCTS)
            emit("Viewed Product", pid, at(begin, 1.0),
                 {"ProductID": pid_product[0], "ProductName": pid_product[1],
                  "Price": pid_product[2], "URL": f"https://shop.example.com/p/{pid_product[0]}"})

    # The Customer Hub: about half of the profiles create an account, then use it.
    hub_users = sorted(rng.sample(range(n_profiles), k=n_profiles // 2))
    hub_users = [profiles[i] for i in hub_users]
    for p in hub_users:
        begin = max((p["_created"] - t_start).total_seconds() / span, 0.0)
        created = max(at(begin, min(begin + 0.5, 0.85)), p["_created"] + dt.timedelta(minutes=1))
        p["_hub"] = created
        emit("Created Customer Hub Account", p["id"], created, {"Source": "Customer Hub"})
        sessions = ([] if rng.random() < 0.1
                    else [created + dt.timedelta(seconds=rng.randint(5, 90))])
        f0 = (created - t_start).total_seconds() / span
        sessions += [at(f0, 1.0) for _ in range(rng.randint(0, 8))]
        for s in sessions:
            if not emit("Opened Customer Hub", p["id"], clip(s), {"Page": "Home"}):
                continue
            step = s
            for metric, chance in (("Applied Coupon in Customer Hub", 0.15),
                                   ("Clicked Help in Customer Hub", 0.12),
                                   ("Started Chat in Customer Hub", 0.06),
                                   ("Added to Cart from Customer Hub", 0.25)):
                if rng.random() >= chance:
                    continue
                step = step + dt.timedelta(seconds=rng.randint(20, 400))
                if metric == "Applied Coupon in Customer Hub":
                    props = {"CouponCode": rng.choice(["HUB10", "WELCOME15", "VIP20"])}
                elif metric == "Clicked Help in Customer Hub":
                    props = {"Topic": rng.choice(HELP_TOPICS)}
                elif metric == "Started Chat in Customer Hub":
                    props = {"Channel": "Chat"}
                else:
                    product = rng.choice(PRODUCTS)
                    props = {"ProductID": product[0], "ProductName": product[1],
                             "Price": product[2], "Quantity": 1}
                if emit(metric, p["id"], clip(step), props) and metric.startswith("Added"):
                    if rng.random() < 0.5:       # the cart became an order
                        moment = step + dt.timedelta(minutes=rng.randint(3, 180))
                        if moment < t_end:
                            orders.append({"profile": p["id"], "at": moment,
                                           "hub_product": props["ProductID"]})

    # Every session action at least once (small samples), right after some hub opening.
    opened = [r for r in raw_events if r["metric"] == "Opened Customer Hub"]
    for metric, props in (("Applied Coupon in Customer Hub", {"CouponCode": "HUB10"}),
                          ("Clicked Help in Customer Hub", {"Topic": "Shipping"}),
                          ("Started Chat in Customer Hub", {"Channel": "Chat"})):
        if opened and not any(r["metric"] == metric for r in raw_events):
            r = rng.choice(opened)
            emit(metric, r["profile"], clip(r["at"] + dt.timedelta(seconds=45)), props)

    # Orders: ids in time order, lines, totals; Placed Order and Ordered Product events.
    by_profile = {p["id"]: p for p in profiles}
    orders.sort(key=lambda o: (o["at"], o["profile"]))
    next_order_id = 5630000000000
    for o in orders:
        next_order_id += rng.randint(1000, 90000)
        o["id"] = str(next_order_id)
        p = by_profile[o["profile"]]
        picks = rng.sample(PRODUCTS, k=rng.choices([1, 2, 3], weights=[6, 3, 1])[0])
        if o["hub_product"] and all(x[0] != o["hub_product"] for x in picks):
            picks[0] = next(x for x in PRODUCTS if x[0] == o["hub_product"])
        items = []
        for product_id, name, price in picks:
            quantity = rng.choices([1, 2, 3], weights=[8, 2, 1])[0]
            items.append({"ProductID": product_id, "ProductName": name, "Quantity": quantity,
                          "ItemPrice": price, "RowTotal": round(quantity * price, 2),
                          "AddedFromCustomerHub": product_id == o["hub_product"]})
        o["value"] = round(sum(i["RowTotal"] for i in items), 2)
        has_hub = p["_hub"] is not None and p["_hub"] <= o["at"]
        props = {"$event_id": o["id"], "$value": o["value"], "Items": items,
                 "Source Name": rng.choices(["web", "pos", "iphone", "android"],
                                            weights=[60, 10, 15, 15])[0],
                 "Signed In": rng.random() < (0.85 if has_hub else 0.35),
                 "ItemNames": [i["ProductName"] for i in items],
                 "Discount Codes": []}
        if rng.random() < 0.1:
            props["Subscription"] = True
        emit("Placed Order", o["profile"], o["at"], props)
        for k, item in enumerate(items):
            emit("Ordered Product", o["profile"], o["at"],
                 {"$event_id": f"{o['id']}-{k + 1}", "$value": item["RowTotal"],
                  "OrderId": o["id"], **item})
        # Customer Hub users track their orders, and start some returns.
        if has_hub:
            if rng.random() < 0.55:
                moment = o["at"] + dt.timedelta(days=rng.uniform(0.5, 5))
                if emit("Opened Customer Hub", o["profile"], clip(moment), {"Page": "Orders"}):
                    emit("Tracked Order in Customer Hub", o["profile"],
                         clip(moment + dt.timedelta(seconds=rng.randint(10, 120))),
                         {"OrderId": o["id"], "$event_id": f"track-{o['id']}"})
            if rng.random() < 0.12:
                moment = o["at"] + dt.timedelta(days=rng.uniform(4, 20))
                if emit("Opened Customer Hub", o["profile"], clip(moment), {"Page": "Orders"}):
                    if emit("Started Return in Customer Hub", o["profile"],
                            clip(moment + dt.timedelta(seconds=rng.randint(10, 300))),
                            {"OrderId": o["id"], "ProductID": items[0]["ProductID"],
                             "Reason": rng.choice(["Too small", "Too large", "Not as described",
                                                   "Changed my mind"])}):
                        o["return_at"] = moment
                        o["return_amount"] = items[0]["RowTotal"]

    # Refunds (after most returns, and a few other orders; partial or full, sometimes two
    # partial ones) and cancellations (a few orders without a refund).
    def refund(o, moment, amount, reason) -> bool:
        if not emit("Refunded Order", o["profile"], clip(moment),
                    {"$event_id": o["id"], "$value": amount, "Reason": reason}):
            return False
        o["refunded"] = amount
        if amount < o["value"] and rng.random() < 0.3:
            second = round(min(o["value"] - amount, o["value"] * 0.1), 2)
            if second > 0:
                emit("Refunded Order", o["profile"],
                     clip(moment + dt.timedelta(days=rng.uniform(1, 5))),
                     {"$event_id": o["id"], "$value": second, "Reason": "Goodwill"})
        return True

    for o in orders:
        if "return_at" in o and rng.random() < 0.7:
            refund(o, o["return_at"] + dt.timedelta(days=rng.uniform(2, 7)), o["return_amount"],
                   "Return")
    others = [o for o in orders if "refunded" not in o]
    for o in rng.sample(others, k=min(len(others), max(3, round(0.06 * len(orders))))):
        amount = o["value"] if rng.random() < 0.5 else round(
            o["value"] * rng.choice([0.2, 0.3, 0.5]), 2)
        refund(o, o["at"] + dt.timedelta(days=rng.uniform(3, 20)), amount, "Other")
    others = [o for o in orders if "refunded" not in o]
    for o in rng.sample(others, k=min(len(others), max(2, round(0.035 * len(orders))))):
        emit("Cancelled Order", o["profile"],
             clip(o["at"] + dt.timedelta(hours=rng.uniform(0.5, 40))),
             {"$event_id": o["id"], "$value": o["value"], "Reason": "customer"})

    # Events: ids, sorted by datetime then id.
    events = []
    for r in raw_events:
        eid = event_id()
        events.append({"id": eid, "metric_id": metric_ids[r["metric"]], "profile_id": r["profile"],
                       "datetime": iso(r["at"]), "timestamp": int(r["at"].timestamp()),
                       "event_properties": r["props"],
                       "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4))})
    events.sort(key=lambda e: (e["datetime"], e["id"]))

    # Profiles: updated, last event, predictions consistent with the orders.
    last_event: dict[str, dt.datetime] = {}
    for r in raw_events:
        last_event[r["profile"]] = max(last_event.get(r["profile"], r["at"]), r["at"])
    placed: dict[str, list] = {}
    for o in orders:
        placed.setdefault(o["profile"], []).append(o)
    for p in profiles:
        created = p.pop("_created")
        p.pop("_hub")
        last = last_event.get(p["id"])
        p["updated"] = iso(max(created, last) if last else created + dt.timedelta(minutes=5))
        p["last_event_date"] = iso(last) if last else None
        p["predictive_analytics"] = _predictions(placed.get(p["id"], []), t_end, rng)
    profiles.sort(key=lambda p: p["id"])

    account = {
        "id": "ACC1",
        "contact_information": {
            "default_sender_name": "Bottega Lina",
            "default_sender_email": "ciao@bottegalina.example",
            "website_url": "https://shop.example.com", "organization_name": "Bottega Lina S.r.l.",
            "street_address": {"address1": "Via Tortona 15", "address2": None, "city": "Milano",
                               "region": "MI", "country": "IT", "zip": "20144"}},
        "industry": "Apparel", "timezone": "Europe/Rome", "preferred_currency": "EUR",
        "public_api_key": "AbC123", "locale": "it-IT"}
    return {"account": account, "metrics": metrics, "events": events, "profiles": profiles}


def _predictions(orders: list[dict], now: dt.datetime, rng: random.Random) -> dict:
    """Klaviyo's predictive analytics for a profile with these orders (None fields if none)."""
    if not orders:
        return {k: None for k in ("historic_clv", "predicted_clv", "total_clv",
                                  "historic_number_of_orders", "predicted_number_of_orders",
                                  "average_order_value", "average_days_between_orders",
                                  "churn_probability", "expected_date_of_next_order")}
    orders = sorted(orders, key=lambda o: o["at"])
    n = len(orders)
    historic = round(sum(o["value"] for o in orders), 2)
    aov = round(historic / n, 2)
    recency = (now - orders[-1]["at"]).total_seconds() / 86400
    if n == 1:
        gap = None
        churn = round(min(0.97, 0.55 + recency / 600 + rng.uniform(0, 0.1)), 3)
        predicted_n = round(rng.uniform(0.1, 0.6) * (1 - churn) * 2, 2)
        next_order = None
    else:
        gap = (orders[-1]["at"] - orders[0]["at"]).total_seconds() / 86400 / (n - 1)
        gap = max(gap, 1.0)
        churn = round(min(0.99, max(0.01, 1 - 2.718281828 ** (-(recency / gap) / 3))), 3)
        predicted_n = round(365 / gap * (1 - churn) * rng.uniform(0.4, 0.8), 2)
        next_day = (orders[-1]["at"] + dt.timedelta(days=gap)).date()
        if next_day < now.date():
            next_day = now.date() + dt.timedelta(days=rng.randint(3, 60))
        next_order = f"{next_day.isoformat()}T00:00:00+00:00"
        gap = round(gap, 1)
    predicted = round(predicted_n * aov, 2)
    return {"historic_clv": historic, "predicted_clv": predicted,
            "total_clv": round(historic + predicted, 2), "historic_number_of_orders": n,
            "predicted_number_of_orders": predicted_n, "average_order_value": aov,
            "average_days_between_orders": gap, "churn_probability": churn,
            "expected_date_of_next_order": next_order}
