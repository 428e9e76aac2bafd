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
