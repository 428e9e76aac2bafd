"""`hubnb pull-klaviyo` against a real HTTP server speaking Klaviyo's JSON:API (tests/klaviyo_server.py)."""

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hubnb.sources import klaviyo
from hubnb.sources.klaviyo import Client, KlaviyoError, pull
from klaviyo_server import DEFAULT_API_KEY, FakeKlaviyo, events_of, sample_account

HUB = {"Opened Customer Hub": "hub_opened", "Tracked Order in Customer Hub": "order_tracked",
       "Started Return in Customer Hub": "return_started",
       "Applied Coupon in Customer Hub": "coupon_applied",
       "Clicked Help in Customer Hub": "help_clicked",
       "Started Chat in Customer Hub": "chat_started",
       "Added to Cart from Customer Hub": "hub_add_to_cart"}


def quiet(_message):
    pass


@pytest.fixture
def sample():
    return sample_account(40, seed=1)


@pytest.fixture
def server(sample):
    with FakeKlaviyo(**sample) as fake:
        yield fake


def read(folder: Path) -> dict:
    return {p.stem: pd.read_csv(p, keep_default_na=True) for p in sorted(folder.glob("*.csv"))}


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_a_pull_writes_every_table_of_the_contract(tmp_path, server, sample):
    result = pull(tmp_path / "acme", api_key=DEFAULT_API_KEY, base_url=server.url,
                  params_out=tmp_path / "params" / "acme.yaml", log=quiet)
    tables = read(tmp_path / "acme")
    placed = events_of(sample, "Placed Order")
    # expected counts, from the sample's own events
    assert len(tables["orders"]) == len(placed)
    assert len(tables["order_lines"]) == sum(len(e["event_properties"]["Items"]) for e in placed)
    assert len(tables["refunds"]) == len(events_of(sample, "Refunded Order"))
    assert len(tables["hub_events"]) == sum(len(events_of(sample, n)) for n in HUB)
    assert len(tables["profiles"]) == len(sample["profiles"])
    with_predictions = [p for p in sample["profiles"]
                        if any(v is not None for v in p["predictive_analytics"].values())]
    assert len(tables["predictions"]) == len(with_predictions)
    orders = tables["orders"].set_index("order_id")
    first = placed[0]
    row = orders.loc[int(first["event_properties"]["$event_id"])]
    assert row["value"] == pytest.approx(first["event_properties"]["$value"])
    assert row["profile_id"] == first["profile_id"] and row["integration"] == "shopify"
    assert row["source_name"] == first["event_properties"]["Source Name"]
    assert bool(row["signed_in"]) == first["event_properties"]["Signed In"]
    cancelled = {int(e["event_properties"]["$event_id"]) for e in events_of(sample, "Cancelled Order")}
    assert set(orders.index[orders["cancelled_at"].notna()]) == cancelled
    assert dict(tables["hub_events"].groupby("raw_metric")["event_type"].first()) == \
        {n: t for n, t in HUB.items() if events_of(sample, n)}
    accounts = tables["profiles"]["account_created_at"].notna().sum()
    assert accounts == len({e["profile_id"] for e in events_of(sample, "Created Customer Hub Account")})
    assert result.unmatched == ["Ordered Product", "Subscribed to List", "Viewed Product"]
    params = yaml.safe_load((tmp_path / "params" / "acme.yaml").read_text())
    assert (params["timezone"], params["currency"]) == ("Europe/Rome", "EUR")
    assert params["data"] == "../acme"
    # the API as documented: key, pinned revision, events filtered by metric id and paged
    for request in server.requests:
        assert request["headers"]["authorization"] == f"Klaviyo-API-Key {DEFAULT_API_KEY}"
        assert request["headers"]["revision"] == klaviyo.REVISION
    events = server.requests_to("/api/events")
    assert {r["query"]["filter"] for r in events} == {
        f'equals(metric_id,"{server.metric_id(n)}")'
        for n in ["Placed Order", "Refunded Order", "Cancelled Order",
                  "Created Customer Hub Account", *HUB]}
    assert all(r["query"]["page[size]"] == "200" for r in events)
    profiles = server.requests_to("/api/profiles")
    assert profiles[0]["query"]["additional-fields[profile]"] == "predictive_analytics"


def test_pages_are_followed_to_the_end_with_no_row_twice(tmp_path, server, sample, monkeypatch):
    monkeypatch.setattr(klaviyo, "EVENTS_PAGE_SIZE", 13)
    monkeypatch.setattr(klaviyo, "PROFILES_PAGE_SIZE", 7)
    pull(tmp_path / "acme", api_key=DEFAULT_API_KEY, base_url=server.url, log=quiet)
    tables = read(tmp_path / "acme")
    placed = events_of(sample, "Placed Order")
    pages = [r for r in server.requests_to("/api/events")
             if r["query"]["filter"].endswith(f'"{server.metric_id("Placed Order")}")')]
    assert len(pages) == -(-len(placed) // 13)            # ceil: every page, then stop
    assert tables["orders"]["order_id"].is_unique and len(tables["orders"]) == len(placed)
    assert len(server.requests_to("/api/profiles")) == -(-len(sample["profiles"]) // 7)


def test_429_and_500_are_retried_after_retry_after_or_a_backoff(tmp_path, server):
    waits = []
    client = Client(DEFAULT_API_KEY, server.url, sleep=waits.append, backoff=0.5)
    server.fail("/api/events", 429, retry_after=3)
    server.fail("/api/profiles", 500)
    pull(tmp_path / "acme", client=client, log=quiet)
    assert waits[0] == 3.0                          # Retry-After honoured
    assert 0.5 <= waits[1] <= 0.5 * 1.25            # first backoff step, with jitter
    assert [r["status"] for r in server.requests_to("/api/profiles")][:2] == [500, 200]


def test_an_interrupted_pull_resumes_where_it_stopped(tmp_path, sample, monkeypatch):
    monkeypatch.setattr(klaviyo, "EVENTS_PAGE_SIZE", 20)
    with FakeKlaviyo(**sample) as whole:
        pull(tmp_path / "whole", api_key=DEFAULT_API_KEY, base_url=whole.url, log=quiet)
    with FakeKlaviyo(**sample) as fake:
        fake.drop("/api/events", at=4)              # the 4th page: Placed Order's 4th
        with pytest.raises(KlaviyoError, match="connection to Klaviyo failed"):
            pull(tmp_path / "acme", client=Client(DEFAULT_API_KEY, fake.url, max_retries=0),
                 log=quiet)
        assert not (tmp_path / "acme").exists()    # nothing half-written
        state = json.loads((tmp_path / "acme.pull" / "state.json").read_text())
        assert state["streams"]["events:Placed Order"]["rows"] == 60   # 3 pages of 20
        before = len(fake.requests_to("/api/events"))
        pull(tmp_path / "acme", api_key=DEFAULT_API_KEY, base_url=fake.url, log=quiet)
        resumed = fake.requests_to("/api/events")[before]
        assert "page[cursor]" in resumed["query"]   # went on from the saved next page
    got, want = read(tmp_path / "acme"), read(tmp_path / "whole")
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name])


def test_a_later_pull_adds_only_new_events(tmp_path, sample):
    with FakeKlaviyo(**sample) as fake:
        pull(tmp_path / "acme", api_key=DEFAULT_API_KEY, base_url=fake.url,
             since="2026-03-01", log=quiet)
        first = read(tmp_path / "acme")["orders"]
        kept = [e for e in events_of(sample, "Placed Order") if e["datetime"] >= "2026-03-01"]
        assert len(first) == len(kept)
        newest = max(e["datetime"] for e in kept)
        new = dict(kept[-1], id="EVNEW1", datetime="2026-11-20T10:00:00+00:00",
                   timestamp=1795168800,
                   event_properties={**kept[-1]["event_properties"], "$event_id": "990001"})
        fake.events.append({**new, "_key": (1795168800.0, "EVNEW1")})
        n = len(fake.requests)
        pull(tmp_path / "acme", api_key=DEFAULT_API_KEY, base_url=fake.url, log=quiet)
        placed = [r for r in fake.requests[n:] if r["path"].startswith("/api/events")
                  and server_metric(fake, r) == "Placed Order"]
        assert placed[0]["query"]["filter"] == (
            f'and(equals(metric_id,"{fake.metric_id("Placed Order")}"),'
            f"greater-than(datetime,{newest}))")
    second = read(tmp_path / "acme")["orders"]
    assert len(second) == len(first) + 1 and 990001 in set(second["order_id"])


def server_metric(fake, request) -> str:
    return next(m["name"] for m in fake.metrics if f'"{m["id"]}"' in request["query"]["filter"])


@pytest.mark.parametrize("fault, message", [
    ("bad key", "refused the API key (401)"),
    ("scope", "may not read /api/events (403): give it the scopes"),
    ("malformed", "not valid JSON (a malformed page)"),
    ("shape", "has no data list (a malformed page)"),
])
def test_failures_stop_with_one_line_and_leave_the_dataset_untouched(tmp_path, sample, fault,
                                                                     message):
    with FakeKlaviyo(**sample) as fake:
        pull(tmp_path / "acme", api_key=DEFAULT_API_KEY, base_url=fake.url, log=quiet)
    before = snapshot(tmp_path / "acme")
    kwargs = {"scopes": ("accounts:read", "metrics:read", "profiles:read")} if fault == "scope" else {}
    with FakeKlaviyo(**sample, **kwargs) as fake:
        if fault in ("malformed", "shape"):
            fake.malformed("/api/events", at=2, kind="body" if fault == "malformed" else "shape")
        key = "pk_wrong_999" if fault == "bad key" else DEFAULT_API_KEY
        with pytest.raises(KlaviyoError, match=re.escape(message)) as error:
            pull(tmp_path / "acme", api_key=key, base_url=fake.url, log=quiet)
    assert key not in str(error.value) and "\n" not in str(error.value)
    assert snapshot(tmp_path / "acme") == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unknown_metric_names_are_an_error_and_a_mapping_file_fixes_them(tmp_path, sample):
    for m in sample["metrics"]:
        if m["name"] == "Placed Order":
            m["name"] = "Order Placed"
    with FakeKlaviyo(**sample) as fake:
        with pytest.raises(KlaviyoError, match="no metric named 'Placed Order'.*Order Placed"):
            pull(tmp_path / "acme", api_key=DEFAULT_API_KEY, base_url=fake.url, log=quiet)
        mapping = tmp_path / "mapping.yaml"
        mapping.write_text("metrics:\n  placed_order: Order Placed\n")
        lines = []
        result = pull(tmp_path / "acme", api_key=DEFAULT_API_KEY, base_url=fake.url,
                      mapping=mapping, log=lines.append)
    assert result.counts["orders"] == len(events_of(sample, "Order Placed"))
    assert lines[-1] == ("metrics that match nothing (map them in --mapping to use them): "
                         "Ordered Product, Subscribed to List, Viewed Product")
    assert any(line.startswith("Order Placed: ") and "events" in line for line in lines)
    mapping.write_text("metrics:\n  placed: Order Placed\n")
    with pytest.raises(KlaviyoError, match="unknown metrics \\['placed'\\]"):
        pull(tmp_path / "acme", api_key=DEFAULT_API_KEY, base_url="http://127.0.0.1:9",
             mapping=mapping, log=quiet)


def test_the_key_never_reaches_files_logs_or_reports(tmp_path):
    secret = "pk_secret_" + os.urandom(8).hex()
    sample = sample_account(120, seed=3)
    with FakeKlaviyo(**sample, api_key=secret) as fake:
        env = {**os.environ, "KLAVIYO_API_KEY": secret, "KLAVIYO_BASE_URL": fake.url}
        proc = subprocess.run([sys.executable, "-m", "hubnb.cli", "pull-klaviyo", "--out",
                               str(tmp_path / "data" / "acme"), "--params-out",
                               str(tmp_path / "params" / "acme.yaml")],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "Placed Order: " in proc.stderr and "profiles: 120" in proc.stderr
        wrong = subprocess.run([sys.executable, "-m", "hubnb.cli", "pull-klaviyo", "--out",
                                str(tmp_path / "data" / "acme")], capture_output=True,
                               text=True, timeout=120,
                               env={**env, "KLAVIYO_API_KEY": secret[::-1]})
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert "hubnb: error: Klaviyo refused the API key (401)" in wrong.stderr
    # the pulled merchant runs: its CLV report compares hubnb with Klaviyo side by side
    params = tmp_path / "params" / "acme.yaml"
    raw = yaml.safe_load(params.read_text())
    raw.update(as_of="2026-10-31", clv={"force": True, "draws": 150, "tune": 150,
                                        "chains": 1, "model": "mbg_nbd"})
    params.write_text(yaml.safe_dump(raw))
    run = subprocess.run([sys.executable, "-m", "hubnb.cli", "run", str(params), "--out",
                          str(tmp_path / "outputs")], capture_output=True, text=True,
                         timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    clv = (tmp_path / "outputs" / "acme" / "clv.html").read_text()
    assert "Mean (hubnb)" in clv and "Mean (platform)" in clv
    texts = [proc.stdout, proc.stderr, wrong.stdout, wrong.stderr, run.stdout, run.stderr]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    assert not any(secret in text or secret[::-1] in text for text in texts)
