"""The reports of a real ``hubnb run`` in a real browser (issue #10, item 7).

Headless Chromium (Debian's ``chromium``, installed by the session fixture when missing)
opens both reports and the index of a run on a small demo merchant, follows the table of
contents and the index's report links, and checks from screenshots that the figures are
drawn. Every page must load with no network and log no console error.

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

from browser import CHROMIUM_ARGS, Watch, chromium_path, install_chromium, pixels

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


@pytest.fixture(scope="session")
def chromium():
    """Path of the Chromium to drive: ``$HUBNB_CHROMIUM``, else the system's ``chromium``,
    installed with apt-get when missing; skips only when it cannot be installed."""
    chosen = os.environ.get("HUBNB_CHROMIUM")
    if chosen:
        if not Path(chosen).is_file():
            pytest.fail(f"HUBNB_CHROMIUM={chosen} is not a file")
        return chosen
    path = chromium_path()
    if path is None:
        path, why = install_chromium()
        if path is None:
            pytest.skip(why)
    return path


@pytest.fixture(scope="session")
def browser(chromium):
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


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
