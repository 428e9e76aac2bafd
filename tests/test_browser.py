"""The reports of a real ``hubnb run`` in a real browser (issue #10, item 7).

Headless Chromium (Debian's ``chromium``, installed by the session fixture when missing)
opens both reports and the index of a run on a small demo merchant, follows the table of
contents and the index's report links, and checks from screenshots that the figures are
drawn. Every page must load with no network and log no console error.

The index of a ``hubnb batch`` (issue #11) is driven the same way, over two batches of four
quick merchants where one fails the second time: its failed row is marked and tinted, keeps
its last good numbers (said to be stale) and links its failure log; the table sorts by a
number column both ways and filters by status; its report links open.

The page contract: each report has ``<nav id="toc">`` with one ``<a href="#...">`` per
section (every ``<h2>``), figures are ``<img>`` with a non-empty ``alt`` and a base64 PNG
``src``; ``index.html`` has ``<table id="reports">`` linking ``<merchant>/<report>.html``.

Screenshots go to a folder the test prints (``HUBNB_BROWSER_SHOTS`` chooses it), so a
person can look at what the browser saw.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from browser import Watch, mean_colour, pixels

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parent.parent
MERCHANT = "demo"
REPORTS = ("customer_hub", "clv")
# A figure is drawn when at least 2% of its pixels differ from its background and some
# are dark (axis labels, lines); a page when it has any text at all.
FIGURE_DRAWN, FIGURE_DARK = 0.02, 0.001
PAGE_DRAWN, PAGE_DARK = 0.01, 0.0005
MIN_SECTIONS = 5
OPEN_DETAILS = """el => {
    for (let d = el.closest('details'); d; d = d.parentElement?.closest('details')) d.open = true;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """``hubnb run`` of params/demo.yaml on 600 demo profiles, with a short MCMC: the
    outputs folder (index.html and demo/)."""
    from hubnb.demo import generate_demo_data
    from hubnb.run import run

    start = time.perf_counter()
    root = tmp_path_factory.mktemp("browser-run")
    generate_demo_data(root / "data", 600, 3, with_predictions=True)
    raw = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    raw["data"] = "./data"
    raw["clv"].update(chains=2, draws=300, tune=200, force=True)
    (root / "demo.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    run(root / "demo.yaml", out_root=root / "outputs", log=lambda m: None)
    print(f"\nhubnb run for the browser test: {time.perf_counter() - start:.0f} s")
    return root / "outputs"


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("HUBNB_BROWSER_SHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {folder}")
    return folder


@pytest.fixture
def tab(browser):
    """A fresh page (1280x800) with a :class:`Watch` on it; ``tab.watch.assert_clean``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  service_workers="block")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.watch = Watch()
    page.watch.attach(page)
    yield page
    context.close()


def open_report(tab, site, report):
    path = site / MERCHANT / f"{report}.html"
    assert path.is_file(), f"hubnb run wrote no {path.name}: {sorted(os.listdir(path.parent))}"
    tab.goto(path.as_uri(), wait_until="load")
    return path


def assert_drawn(png: bytes, what: str, saved: Path, drawn: float, dark: float):
    saved.write_bytes(png)
    px = pixels(png)
    assert px.drawn >= drawn, f"{what} looks blank: {px} (screenshot {saved})"
    assert px.dark >= dark, f"{what} has no text or lines: {px} (screenshot {saved})"
    return px


def test_demo_reports_hold_only_the_report(site):
    """The demo merchant's reports: no warning, error, stderr or path (report_checks)."""
    from report_checks import own_warnings, report_problems

    assert report_problems(site / "demo", [site.parent]) == []
    assert own_warnings(site / "demo") == []


@pytest.mark.parametrize("report", REPORTS)
def test_report_loads_offline_without_errors_and_is_not_blank(tab, site, shots, report):
    open_report(tab, site, report)
    tab.wait_for_load_state("networkidle")
    assert tab.locator("h1").first.inner_text().strip(), "the report has no title"
    assert_drawn(tab.screenshot(full_page=True), f"{report}.html", shots / f"{report}.png",
                 PAGE_DRAWN, PAGE_DARK)
    tab.watch.assert_clean(f"{report}.html")


@pytest.mark.parametrize("report", REPORTS)
def test_table_of_contents_reaches_every_section(tab, site, report):
    open_report(tab, site, report)
    links = tab.locator("nav#toc a[href^='#']")
    assert links.count() > 0, f"{report}.html has no <nav id='toc'> with #links"
    hrefs = links.evaluate_all("as => as.map(a => a.getAttribute('href'))")
    targets = [unquote(h[1:]) for h in hrefs]
    missing = tab.evaluate("ids => ids.filter(id => !document.getElementById(id))", targets)
    assert not missing, f"table of contents links to ids the page lacks: {missing}"
    sections = tab.locator("h2").evaluate_all(
        "hs => hs.filter(h => !h.closest('nav#toc')).map(h => h.id || h.textContent.trim())")
    assert len(sections) >= MIN_SECTIONS, f"{report}.html has only {len(sections)} sections"
    unlinked = [s for s in sections if targets.count(s) != 1]
    assert not unlinked, f"sections not linked exactly once from the contents: {unlinked}"

    # Click every entry from the top of the page: the target comes into view, the address
    # names it, and the page scrolls further down for every later entry.
    viewport = tab.viewport_size["height"]
    scrolled = []
    for i, target in enumerate(targets):
        tab.evaluate("window.scrollTo(0, 0)")
        links.nth(i).click()
        tab.wait_for_function(
            """([id, h]) => { const r = document.getElementById(id).getBoundingClientRect();
                              return r.top >= -1 && r.top < h; }""",
            arg=[target, viewport], timeout=5_000)
        assert unquote(tab.evaluate("location.hash")) == f"#{target}"
        element = tab.evaluate_handle("id => document.getElementById(id)", target)
        box = element.as_element().bounding_box()
        assert box is not None and -1 <= box["y"] < viewport, (target, box)
        scrolled.append(tab.evaluate("window.scrollY"))
    assert scrolled[-1] > 0, "following the contents never scrolled the page"
    assert scrolled == sorted(scrolled), \
        f"contents not in page order: {list(zip(targets, scrolled))}"
    tab.watch.assert_clean(f"{report}.html")


@pytest.mark.parametrize("report", REPORTS)
def test_figures_are_described_images_that_are_drawn(tab, site, shots, report):
    open_report(tab, site, report)
    figures = tab.locator("img")
    n = figures.count()
    assert n >= 1, f"{report}.html has no figure"
    for i in range(n):
        img = figures.nth(i)
        alt = (img.get_attribute("alt") or "").strip()
        src = img.get_attribute("src") or ""
        assert alt, f"figure {i + 1} of {report}.html has no alt text"
        assert src.startswith("data:image/png;base64,"), \
            f"figure {i + 1} ({alt}) is not an inline PNG: src {src[:60]!r}"
        img.evaluate(OPEN_DETAILS)      # a figure folded away in <details> is still drawn
        img.scroll_into_view_if_needed()
        assert img.evaluate("el => el.complete && el.naturalWidth > 0"), \
            f"figure {i + 1} ({alt}) did not decode"
        assert_drawn(img.screenshot(), f"figure {i + 1} of {report}.html ({alt})",
                     shots / f"{report}-figure-{i + 1:02d}.png", FIGURE_DRAWN, FIGURE_DARK)
    tab.watch.assert_clean(f"{report}.html")


def test_index_links_open_both_reports(tab, site, shots):
    index = site / "index.html"
    tab.goto(index.as_uri(), wait_until="load")
    rows = tab.locator("table#reports tr")
    assert rows.count() >= 2, "index.html has no <table id='reports'> with a merchant row"
    assert_drawn(tab.screenshot(full_page=True), "index.html", shots / "index.png",
                 PAGE_DRAWN, PAGE_DARK)
    for report in REPORTS:
        href = f"{MERCHANT}/{report}.html"
        link = tab.locator(f"table#reports tr a[href='{href}']")
        assert link.count() == 1, f"index.html has no single link to {href}"
        with tab.expect_navigation(wait_until="load"):
            link.click()
        assert tab.url == (site / href).as_uri()
        title = tab.locator("h1").first.inner_text().strip()
        expected = {"customer_hub": "hub", "clv": "clv"}[report]
        assert expected in title.lower(), f"{href} opened with title {title!r}"
        tab.go_back(wait_until="load")
        assert tab.url == index.as_uri()
    tab.watch.assert_clean("index.html and the reports it links")


# ----------------------------------------------------------------- the batch index (#11)

# Merchants of the batch and their number of profiles (the "Total accounts" the tiny test
# notebook of tests/test_batch.py records): all distinct, so a sort has one right order.
BATCH_ACCOUNTS = {"alpha": 5, "bravo": 2, "charlie": 9, "delta": 3}
# Succeeds in the first batch, then fails on bad data in the second: a failed row that
# keeps its last good numbers and reports.
BROKEN = "charlie"
BROKEN_ERROR = "negative value -4"
NEGATIVE_ORDERS = ("order_id,profile_id,placed_at,value,signed_in\n"
                   "o1,a,2026-03-01T09:15:00Z,-4,true\n")
STALE_NOTE = "numbers from the last good run"
# #fff5f5, the failed rows' background, against white: red exceeds blue by about 10.
TINT = 5


def profiles_csv(n: int) -> str:
    ids = ["a", "b"] + [f"p{i}" for i in range(n - 2)]      # a and b place the orders
    return "profile_id,created_at,account_created_at,email\n" + "".join(
        f"{i},2026-01-01T00:00:00Z,,{i}@example.com\n" for i in ids)


@pytest.fixture(scope="module")
def batch_site(tmp_path_factory):
    """Two ``hubnb batch`` runs of four quick merchants (the tiny notebook of
    tests/test_batch.py, customer_hub only): all succeed, then BROKEN's orders get a
    negative value and the forced second batch fails it. The output folder."""
    from hubnb.batch import batch
    from test_batch import merchant, notebooks

    start = time.perf_counter()
    root = tmp_path_factory.mktemp("browser-batch")
    params_dir, data = root / "params", root / "data"
    for slug, accounts in BATCH_ACCOUNTS.items():
        merchant(params_dir, data, slug)
        (data / slug / "profiles.csv").write_text(profiles_csv(accounts))
    nbs = notebooks(root / "nbs")
    out = root / "outputs"
    options = dict(workers=2, only="customer_hub", notebooks_dir=nbs, progress=False,
                   timeout=120)
    first = batch(params_dir, out, **options)
    assert {o.merchant: o.status for o in first} == dict.fromkeys(BATCH_ACCOUNTS, "ok"), \
        [(o.merchant, o.status, o.error) for o in first]
    (data / BROKEN / "orders.csv").write_text(NEGATIVE_ORDERS)
    second = batch(params_dir, out, force=True, **options)
    expected = {slug: "failed" if slug == BROKEN else "ok" for slug in BATCH_ACCOUNTS}
    assert {o.merchant: o.status for o in second} == expected, \
        [(o.merchant, o.status, o.error) for o in second]
    print(f"\nhubnb batch (twice) for the browser test: {time.perf_counter() - start:.0f} s")
    return out


def open_index(tab, batch_site):
    index = batch_site / "index.html"
    tab.goto(index.as_uri(), wait_until="load")
    return index


def column(tab, label: str) -> int:
    """The index (0-based) of the index table's column headed ``label``."""
    labels = tab.locator("table#reports thead th").evaluate_all(
        "ths => ths.map(th => th.textContent.trim())")
    assert label in labels, f"index.html has no column {label!r}: {labels}"
    return labels.index(label)


def table_rows(tab, col: int) -> list[dict]:
    """The body rows as the DOM has them now, in order: merchant, status, whether shown,
    and the ``data-sort`` of column ``col``."""
    return tab.locator("table#reports tbody tr").evaluate_all(
        """(rows, col) => rows.map(r => ({
               merchant: r.cells[0].dataset.sort, status: r.dataset.status,
               shown: !r.hidden && r.offsetParent !== null,
               sort: r.cells[col].dataset.sort}))""", col)


def test_batch_index_marks_the_failed_merchant_and_links_its_log(tab, batch_site, shots):
    open_index(tab, batch_site)
    rows = table_rows(tab, column(tab, "Total accounts"))
    assert [(r["merchant"], r["status"]) for r in rows] == [
        (slug, "failed" if slug == BROKEN else "ok") for slug in BATCH_ACCOUNTS]
    # the last good numbers are still shown (and sort) for the failed merchant
    assert [float(r["sort"]) for r in rows] == [float(n) for n in BATCH_ACCOUNTS.values()]

    failed = tab.locator("table#reports tbody tr.failed")
    assert failed.count() == 1, "index.html should mark exactly one row as failed"
    assert failed.get_attribute("data-status") == "failed"
    assert failed.locator("td").first.inner_text().strip() == BROKEN
    assert failed.locator(".status").inner_text().strip() == "failed"
    stale = failed.locator(".stale")
    assert stale.is_visible(), "the failed row does not say its numbers are stale"
    assert stale.inner_text().strip().startswith(STALE_NOTE)
    assert BROKEN_ERROR in failed.locator(".error").inner_text()
    assert failed.locator("a.report").get_attribute("href") == f"{BROKEN}/customer_hub.html"
    ok = tab.locator("table#reports tbody tr[data-status='ok']")
    assert ok.count() == len(BATCH_ACCOUNTS) - 1
    assert ok.locator(".stale, a.failure-log").count() == 0
    assert ok.evaluate_all("rs => rs.filter(r => r.classList.contains('failed')).length") == 0

    # the failed row is tinted light red (#fff5f5); an ok row is not
    failed_png, ok_png = failed.screenshot(), ok.first.screenshot()
    (shots / "batch-index-failed-row.png").write_bytes(failed_png)
    (shots / "batch-index-ok-row.png").write_bytes(ok_png)
    red, _, blue = mean_colour(failed_png)
    background = pixels(failed_png).background
    assert red - blue >= TINT and background[0] - background[2] >= TINT, \
        (f"the failed row is not tinted red: mean {red:.0f},{blue:.0f} (red, blue), "
         f"background {background}")
    ok_background = pixels(ok_png).background
    assert abs(ok_background[0] - ok_background[2]) < TINT, \
        f"an ok row is tinted: background {ok_background}"

    log = failed.locator("a.failure-log")
    assert log.count() == 1 and log.get_attribute("href") == f"{BROKEN}/failed/run.log"
    with tab.expect_navigation(wait_until="load"):
        log.click()
    assert tab.url == (batch_site / BROKEN / "failed" / "run.log").as_uri()
    text = tab.locator("body").inner_text()
    assert "hubnb: error" in text and BROKEN_ERROR in text, f"the failure log reads {text!r}"
    tab.watch.assert_clean("index.html and the failure log")


def test_batch_index_sorts_by_a_number_column(tab, batch_site, shots):
    open_index(tab, batch_site)
    before_png = tab.screenshot(full_page=True)
    before = assert_drawn(before_png, "index.html of the batch", shots / "batch-index.png",
                          PAGE_DRAWN, PAGE_DARK)
    col = column(tab, "Total accounts")
    header = tab.locator("table#reports thead th").nth(col)
    by_accounts = sorted(BATCH_ACCOUNTS, key=BATCH_ACCOUNTS.get)
    for direction, merchants in (("ascending", by_accounts),
                                 ("descending", by_accounts[::-1])):
        header.locator("button").click()
        assert header.get_attribute("aria-sort") == direction
        others = tab.locator("table#reports thead th[aria-sort]").count()
        assert others == 1, f"{others} headers claim the sort"
        rows = table_rows(tab, col)
        values = [float(r["sort"]) for r in rows]
        assert values == sorted(values, reverse=direction == "descending"), \
            f"{direction} sort by Total accounts gave {values}"
        assert [r["merchant"] for r in rows] == merchants
        assert all(r["shown"] for r in rows)
        # the failed row moves with its data, tint and all
        assert tab.locator("table#reports tbody tr").nth(merchants.index(BROKEN)) \
            .get_attribute("class") == "failed"
    after_png = tab.screenshot(full_page=True)
    after = assert_drawn(after_png, "index.html of the batch, sorted",
                         shots / "batch-index-sorted.png", PAGE_DRAWN, PAGE_DARK)
    assert after_png != before_png, "sorting changed nothing on the screen"
    print(f"\nbatch index: {before}; sorted: {after}")
    tab.watch.assert_clean("index.html of the batch")


def test_batch_index_filters_by_status(tab, batch_site):
    open_index(tab, batch_site)
    status = tab.locator("select#status-filter")
    count = tab.locator("#shown-count")
    n = len(BATCH_ACCOUNTS)
    assert status.locator("option").evaluate_all("os => os.map(o => o.value)") == \
        ["", "failed", "ok"]
    col = column(tab, "Merchant")

    def shown():
        return [r["merchant"] for r in table_rows(tab, col) if r["shown"]]

    assert shown() == list(BATCH_ACCOUNTS) and count.inner_text() == f"{n} merchants shown"
    status.select_option("failed")
    assert shown() == [BROKEN]
    assert count.inner_text() == "1 merchant shown"
    hidden = tab.locator("table#reports tbody tr[hidden]")
    assert hidden.count() == n - 1
    assert tab.locator("table#reports tbody tr.failed").is_visible()
    status.select_option("ok")
    assert shown() == [slug for slug in BATCH_ACCOUNTS if slug != BROKEN]
    assert count.inner_text() == f"{n - 1} merchants shown"
    status.select_option("")
    assert shown() == list(BATCH_ACCOUNTS) and hidden.count() == 0
    assert count.inner_text() == f"{n} merchants shown"
    tab.watch.assert_clean("index.html of the batch")


@pytest.mark.parametrize("slug", ["alpha", BROKEN])
def test_batch_index_opens_reports_even_the_last_good_one(tab, batch_site, slug):
    index = open_index(tab, batch_site)
    href = f"{slug}/customer_hub.html"
    link = tab.locator(f"table#reports a.report[href='{href}']")
    assert link.count() == 1, f"index.html has no single report link {href}"
    with tab.expect_navigation(wait_until="load"):
        link.click()
    assert tab.url == (batch_site / href).as_uri()
    assert "Batch test report" in tab.locator("h1").first.inner_text()
    tab.go_back(wait_until="load")
    assert tab.url == index.as_uri()
    tab.watch.assert_clean(f"index.html and {href}")
