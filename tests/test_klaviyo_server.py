"""The fake Klaviyo API itself (tests/klaviyo_server.py), spoken to with urllib."""

import collections
import http.client
import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from klaviyo_server import (DEFAULT_API_KEY, METRIC_NAMES, FakeKlaviyo, events_of,
                            sample_account)

HEADERS = {"Authorization": f"Klaviyo-API-Key {DEFAULT_API_KEY}", "revision": "2025-01-15",
           "Accept": "application/vnd.api+json"}


@pytest.fixture(scope="module")
def sample():
    return sample_account()


@pytest.fixture
def fake(sample):
    with FakeKlaviyo(**sample) as server:
        yield server


def get(url, headers=HEADERS, **params):
    """``(status, headers, parsed body or raw bytes)``; HTTP errors are answers too."""
    if params:
        url = f"{url}?{urlencode(params)}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, head, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, head, body = exc.code, exc.headers, exc.read()
    try:
        return status, head, json.loads(body)
    except ValueError:
        return status, head, body


def metric_filter(fake, name, extra=None):
    condition = f'equals(metric_id,"{fake.metric_id(name)}")'
    return f"and({condition},{extra})" if extra else condition


def all_pages(url, **params):
    """Every item following links.next, and the number of pages."""
    items, pages = [], 0
    while url:
        status, _, body = get(url, **params)
        assert status == 200, body
        items += body["data"]
        url, params = body["links"]["next"], {}
        pages += 1
    return items, pages


def test_sample_is_deterministic_and_realistic(sample):
    assert sample_account() == sample
    assert sample_account(seed=1) != sample
    assert [m["name"] for m in sample["metrics"]] == list(METRIC_NAMES)
    placed = events_of(sample, "Placed Order")
    assert len(placed) >= 100
    order_ids = [e["event_properties"]["$event_id"] for e in placed]
    assert len(set(order_ids)) == len(order_ids)
    for e in placed:
        p = e["event_properties"]
        assert p["Source Name"] in ("web", "pos", "iphone", "android")
        assert p["$value"] == round(sum(i["RowTotal"] for i in p["Items"]), 2)
        assert all(i["RowTotal"] == round(i["Quantity"] * i["ItemPrice"], 2) for i in p["Items"])
        assert e["datetime"].endswith("+00:00")
    per_profile = collections.Counter(e["profile_id"] for e in placed)
    counts = [per_profile.get(p["id"], 0) for p in sample["profiles"]]
    assert 0 in counts and 1 in counts and max(counts) >= 3
    for p in sample["profiles"]:
        pa = p["predictive_analytics"]
        n = per_profile.get(p["id"], 0)
        assert (pa["historic_number_of_orders"] or 0) == n
        if n:
            assert 0 <= pa["churn_probability"] <= 1
            assert (pa["expected_date_of_next_order"] is None) == (n == 1)
    value = {e["event_properties"]["$event_id"]: e["event_properties"]["$value"] for e in placed}
    refunded = collections.defaultdict(float)
    for e in events_of(sample, "Refunded Order"):
        refunded[e["event_properties"]["$event_id"]] += e["event_properties"]["$value"]
    assert refunded and all(amount <= value[o] + 1e-9 for o, amount in refunded.items())
    assert all(e["event_properties"]["$event_id"] in value
               for e in events_of(sample, "Cancelled Order"))
    hub = {e["profile_id"]: e["datetime"]
           for e in events_of(sample, "Created Customer Hub Account")}
    assert len(hub) == len(sample["profiles"]) // 2
    for name in METRIC_NAMES:
        if "Customer Hub" in name and not name.startswith("Created"):
            events = events_of(sample, name)
            assert events, name
            assert all(e["datetime"] >= hub[e["profile_id"]] for e in events), name


def test_auth_scope_and_revision(sample):
    with FakeKlaviyo(**sample, scopes=("accounts:read", "metrics:read")) as fake:
        status, _, body = get(f"{fake.url}/api/accounts", headers={"revision": "2025-01-15"})
        assert status == 401 and body["errors"][0]["code"] == "not_authenticated"
        wrong = {**HEADERS, "Authorization": "Klaviyo-API-Key pk_nope"}
        assert get(f"{fake.url}/api/accounts", headers=wrong)[0] == 401
        status, _, body = get(f"{fake.url}/api/events", filter=metric_filter(fake, "Placed Order"))
        assert status == 403 and body["errors"][0]["code"] == "permission_denied"
        no_revision = {k: v for k, v in HEADERS.items() if k != "revision"}
        status, _, body = get(f"{fake.url}/api/accounts", headers=no_revision)
        assert status == 400 and body["errors"][0]["status"] == 400
        assert get(f"{fake.url}/api/nothing")[0] == 404
        status, _, body = get(f"{fake.url}/api/accounts")
        assert status == 200
        account = body["data"][0]
        assert account["id"] == "ACC1" and account["attributes"]["timezone"] == "Europe/Rome"
        assert account["attributes"]["preferred_currency"] == "EUR"
        assert body["links"]["next"] is None
        assert [r["status"] for r in fake.requests] == [401, 401, 403, 400, 404, 200]
        assert fake.requests[-1]["headers"]["revision"] == "2025-01-15"


def test_events_paged_once_each_in_order(fake, sample):
    expected = events_of(sample, "Placed Order")
    items, pages = all_pages(f"{fake.url}/api/events", sort="datetime", **{
        "filter": metric_filter(fake, "Placed Order"), "page[size]": 7})
    assert [e["id"] for e in items] == [e["id"] for e in expected]
    assert pages == -(-len(expected) // 7)
    first = items[0]
    assert first["type"] == "event"
    assert first["relationships"]["metric"]["data"]["id"] == fake.metric_id("Placed Order")
    assert first["attributes"]["datetime"] == expected[0]["datetime"]
    assert first["attributes"]["timestamp"] == expected[0]["timestamp"]
    assert first["attributes"]["event_properties"]["Items"]
    query = fake.requests[-1]["query"]
    assert query["page[size]"] == "7" and query["sort"] == "datetime" and "page[cursor]" in query
    # bad page sizes and a missing metric filter
    assert get(f"{fake.url}/api/events", **{"filter": metric_filter(fake, "Placed Order"),
                                            "page[size]": 201})[0] == 400
    assert get(f"{fake.url}/api/events", sort="datetime")[0] == 400


def test_datetime_filter(fake, sample):
    expected = events_of(sample, "Opened Customer Hub")
    middle = expected[len(expected) // 2]["datetime"]
    for op, keep in (("greater-or-equal", lambda d: d >= middle),
                     ("greater-than", lambda d: d > middle)):
        items, _ = all_pages(f"{fake.url}/api/events", **{
            "filter": metric_filter(fake, "Opened Customer Hub", f"{op}(datetime,{middle})"),
            "sort": "datetime", "page[size]": 10})
        assert [e["id"] for e in items] == [e["id"] for e in expected if keep(e["datetime"])]
    # a '+' sent raw (decoded as a space) is an error, as it would be on Klaviyo
    raw = (f"{fake.url}/api/events?filter=and(equals(metric_id,%22"
           f"{fake.metric_id('Opened Customer Hub')}%22),greater-than(datetime,{middle}))")
    assert get(raw)[0] == 400


def test_429_with_retry_after_then_ok(fake):
    fake.fail("/api/metrics", 429, retry_after=3)
    status, head, body = get(f"{fake.url}/api/metrics")
    assert status == 429 and head["Retry-After"] == "3"
    assert body["errors"][0]["code"] == "throttled"
    status, _, body = get(f"{fake.url}/api/metrics")
    assert status == 200 and len(body["data"]) == len(METRIC_NAMES)
    assert body["data"][0]["attributes"]["integration"]["name"] in ("Shopify", "Klaviyo")


def test_drop_then_resume_from_saved_next(fake, sample):
    expected = [e["id"] for e in events_of(sample, "Placed Order")]
    fake.drop("/api/events", at=2)
    status, _, body = get(f"{fake.url}/api/events", **{
        "filter": metric_filter(fake, "Placed Order"), "sort": "datetime", "page[size]": 20})
    saved = body["links"]["next"]
    got = [e["id"] for e in body["data"]]
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        get(saved)
    assert fake.requests[-1]["status"] is None
    rest, _ = all_pages(saved)
    got += [e["id"] for e in rest]
    assert got == expected


def test_malformed_bodies(fake):
    fake.malformed("/api/metrics", at=1)
    status, _, body = get(f"{fake.url}/api/metrics")
    assert status == 200 and body == b'{"data": [ {"type":'
    fake.malformed("/api/metrics", kind="shape")
    status, _, body = get(f"{fake.url}/api/metrics")
    assert status == 200 and "data" not in body
    assert get(f"{fake.url}/api/metrics")[2]["data"]


def test_predictive_analytics_only_when_asked(fake, sample):
    plain, pages = all_pages(f"{fake.url}/api/profiles", **{"page[size]": 15})
    assert pages == 3 and len(plain) == len(sample["profiles"])
    assert all("predictive_analytics" not in p["attributes"] for p in plain)
    assert all(p["attributes"]["email"] and p["attributes"]["created"] for p in plain)
    asked, _ = all_pages(f"{fake.url}/api/profiles", **{
        "additional-fields[profile]": "predictive_analytics", "page[size]": 100})
    assert [p["id"] for p in asked] == [p["id"] for p in plain]
    by_id = {p["id"]: p for p in sample["profiles"]}
    for p in asked:
        assert p["attributes"]["predictive_analytics"] == by_id[p["id"]]["predictive_analytics"]
    assert get(f"{fake.url}/api/profiles", **{"page[size]": 101})[0] == 400
