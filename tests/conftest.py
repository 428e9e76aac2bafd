import sys
from pathlib import Path

# Test modules share small fixtures (e.g. test_data.write): make them importable.
sys.path.insert(0, str(Path(__file__).parent))

# The CLV engine's compiled-model cache (hubnb.clv.native) goes to a fresh directory per
# test session, so no test depends on what an earlier run left in ~/.cache/hubnb.
import os  # noqa: E402
import tempfile  # noqa: E402

os.environ["HUBNB_CACHE_DIR"] = tempfile.mkdtemp(prefix="hubnb-test-cache-")
_TEST_CACHE = os.environ["HUBNB_CACHE_DIR"]


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(_TEST_CACHE, ignore_errors=True)


# --------------------------------------------------------------------------- a real browser
# One Chromium for the whole session (tests/test_browser.py, tests/test_i18n.py): Playwright's
# sync API cannot start a second instance while one is running.
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def chromium():
    """Path of the Chromium to drive: ``$HUBNB_CHROMIUM``, else the system's ``chromium``,
    installed with apt-get when missing; skips only when it cannot be installed."""
    from browser import chromium_path, install_chromium

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
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    from browser import CHROMIUM_ARGS

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()
