"""clv_profiles.csv and the segment files are written by hubnb.csvout, which must write
exactly the text pandas' ``to_csv(index=False)`` writes: the second implementation here is
pandas itself, over random frames (Hypothesis) and the cells that tell writers apart."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubnb import csvout

TEXT = st.one_of(st.none(), st.text(alphabet=st.sampled_from('ab,"\n\r é1.-'), max_size=6))


def same_as_pandas(frame: pd.DataFrame, tmp_path, name="x.csv") -> None:
    ours = csvout.write_csv(frame, tmp_path / name).read_bytes()
    assert ours == frame.to_csv(index=False).encode()


@settings(max_examples=60, deadline=None)
@given(floats=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1,
                       max_size=40),
       data=st.data())
def test_random_frames_are_written_as_pandas_writes_them(tmp_path_factory, floats, data):
    n = len(floats)
    frame = pd.DataFrame({
        "profile_id": data.draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=n,
                                         max_size=n)),
        "value": np.array(floats, dtype=float),
        "email": pd.array(data.draw(st.lists(TEXT, min_size=n, max_size=n)), dtype="str"),
        "note": np.array(data.draw(st.lists(TEXT, min_size=n, max_size=n)), dtype=object),
        "flag": data.draw(st.lists(st.booleans(), min_size=n, max_size=n)),
    })
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(csvout, "BLOCK_ROWS", 7)          # several blocks, formatted side by side
        same_as_pandas(frame, tmp_path_factory.mktemp("csv"))


def test_the_cells_where_arrow_and_python_differ(tmp_path):
    """Whole numbers (Arrow: 2, Python: 2.0), exponents (each switches at other powers),
    infinities, signed zeros, missing values, quoting."""
    values = [2.0, -2.0, 0.0, -0.0, 1e-4, 9.99e-5, 1e-5, 1e15, 1e16, 1.5e16, 1e22,
              785990228536.9734, 123456789012345.67, np.inf, -np.inf, np.nan, 0.1 + 0.2,
              5e-324, 1.7976931348623157e308]
    frame = pd.DataFrame({"v": values, "t": ['a,b', 'say "hi"', "l1\nl2", "cr\r", None, "",
                                             *["x"] * (len(values) - 6)]})
    same_as_pandas(frame, tmp_path)


def test_a_large_frame_in_many_blocks_and_a_frame_pandas_must_write(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    n = 10_000
    frame = pd.DataFrame({"id": np.arange(n), "clv": rng.gamma(2.0, 50.0, n),
                          "cents": rng.integers(0, 10**6, n) / 100})
    monkeypatch.setattr(csvout, "BLOCK_ROWS", 999)
    same_as_pandas(frame, tmp_path, "big.csv")
    # a timestamp column: pandas writes the frame, still a block at a time
    frame["at"] = pd.Timestamp("2026-03-01T09:15Z") + pd.to_timedelta(np.arange(n), "min")
    same_as_pandas(frame, tmp_path, "dates.csv")
    # no rows: the header only
    same_as_pandas(frame.iloc[:0], tmp_path, "empty.csv")
