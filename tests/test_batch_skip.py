"""A merchant skipped as unchanged: the index shows when its reports were made, and that it
was not run again."""

import json
import re
import time

from hubnb import i18n
from hubnb.batch import MerchantOutcome, _write_status
from hubnb.report_html import _when
from hubnb.run import write_index

MADE = "2026-03-01T08:30:00+00:00"


def merchant_folder(out, slug="shop", clv=None):
    folder = out / slug
    folder.mkdir(parents=True)
    metrics = {"merchant": slug, "display_name": "Shop", "currency": "USD",
               "generated_at": MADE, "customer_hub": {"total_accounts": 3}}
    if clv is not None:
        metrics["clv"] = clv
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "customer_hub.html").write_text("<html></html>")
    return folder


def outcome(folder, status):
    return MerchantOutcome("shop.yaml", folder.name, status, 0.01, str(folder),
                           str(folder / "run.log") if status != "skipped" else "")


def row(index_html: str, slug: str) -> str:
    return re.search(rf'<tr data-status="[^"]*"[^>]*>\s*<td data-sort="{slug}">.*?</tr>',
                     index_html, re.S).group(0)


def test_a_skipped_merchants_last_run_is_the_time_of_its_reports(tmp_path):
    out = tmp_path / "out"
    folder = merchant_folder(out)
    _write_status(folder, outcome(folder, "skipped"), keep_previous=True)
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "skipped" and status["last_run"] == MADE
    assert status["skipped_at"] > MADE                       # the skip itself: now
    for locale in ("en", "it"):
        html = write_index(out, locale).read_text()
        with i18n.using(locale):
            made, note = _when(MADE), i18n.gettext("unchanged since the last run: not run again")
        shop = row(html, "shop")
        assert made in shop and f'data-sort="{MADE}"' in shop
        assert f'<span class="small">{note}</span>' in shop
    assert "saltato" in shop and "invariato dall'ultima esecuzione" in shop


def test_a_merchant_that_ran_shows_the_time_of_its_run_and_no_skip_note(tmp_path):
    out = tmp_path / "out"
    folder = merchant_folder(out)
    before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    _write_status(folder, outcome(folder, "ok"))
    status = json.loads((folder / "status.json").read_text())
    assert status["last_run"] >= before and "skipped_at" not in status
    assert "not run again" not in row(write_index(out).read_text(), "shop")


def test_a_not_eligible_merchant_stays_not_eligible_over_several_skips(tmp_path):
    out = tmp_path / "out"
    folder = merchant_folder(out, clv={"eligible": False})
    _write_status(folder, outcome(folder, "not eligible"))
    for _ in range(2):
        _write_status(folder, outcome(folder, "skipped"), keep_previous=True)
        status = json.loads((folder / "status.json").read_text())
        assert status["status_before_skip"] == "not eligible" and status["last_run"] == MADE
        shop = row(write_index(out).read_text(), "shop")
        assert 'data-status="not eligible"' in shop and _when(MADE) in shop
