"""CSV files of profiles, written fast and in pieces, with the text pandas would write.

``clv_profiles.csv`` has one row per customer and some 37 columns: at 10,000,000 customers
pandas' ``to_csv`` takes about five minutes (it formats every number in Python) and its
text copy of the frame costs gigabytes. :func:`write_csv` formats each column with Arrow's
compute kernels (C++), a block of rows at a time, and writes the block's bytes as they are.

The text is pandas' ``to_csv(index=False)``, byte for byte (``tests/test_csvout.py``
checks it against pandas on random frames): numbers as the shortest text that reads back
as the same number (whole floats with ``.0``, exponents as Python writes them), missing
values empty, text quoted only when it holds a comma, a quote or a newline (quotes
doubled), ``True``/``False``, ``\\n`` line ends. A frame with a column of any other kind
(timestamps, categories, mixed objects) is written by pandas, a block at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .cores import cpu_budget

#: Rows formatted at a time: the text of a block of clv_profiles.csv is about 100 MB.
BLOCK_ROWS = 250_000
#: Blocks formatted at once: the run's cores (:func:`hubnb.cores.cpu_budget`), at most 4.
THREADS = min(4, cpu_budget())
# Python's repr writes a float in exponent form below 1e-4 and from 1e16 on; Arrow
# switches elsewhere, so those cells, and any Arrow writes with an exponent, are written by
# Python itself (rare in money and counts).
_REPR_SMALL, _REPR_LARGE = 1e-4, 1e16


def write_csv(frame: pd.DataFrame, path) -> Path:
    """Write ``frame`` (without its index) to ``path`` as ``frame.to_csv(index=False)``
    would, a block of :data:`BLOCK_ROWS` rows at a time."""
    path = Path(path)
    # (pandas writes a lone empty cell as "", so a one-column frame is left to pandas)
    fast = len(frame.columns) > 1 and all(_kind(frame[c]) is not None for c in frame.columns)

    def text(start: int) -> bytes | memoryview:
        block = frame.iloc[start:start + BLOCK_ROWS]
        if fast:
            return _block_bytes(block)
        return block.to_csv(index=False, header=False).encode()

    starts = list(range(0, len(frame), BLOCK_ROWS))
    with open(path, "wb") as out:
        out.write((",".join(_quote_text(str(c)) for c in frame.columns) + "\n").encode())
        if fast and len(starts) > 1 and THREADS > 1:
            # Arrow's kernels release the GIL: blocks are formatted side by side, a few
            # ahead of the one being written, and written in order
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(THREADS) as pool:
                for group in range(0, len(starts), 2 * THREADS):
                    for chunk in pool.map(text, starts[group:group + 2 * THREADS]):
                        out.write(chunk)
        else:
            for start in starts:
                out.write(text(start))
    return path


def _kind(column: pd.Series) -> str | None:
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) and not isinstance(dtype, pd.BooleanDtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype) and isinstance(dtype, np.dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype) and isinstance(dtype, np.dtype):
        return "float"
    if isinstance(dtype, pd.StringDtype):
        return "text"
    if dtype == object and column.map(lambda v: v is None or isinstance(v, str)).all():
        return "text"
    return None


def _block_bytes(block: pd.DataFrame) -> memoryview:
    cells = [_cells(block[c]) for c in block.columns]
    lines = pc.binary_join_element_wise(*cells, ",", null_handling="replace",
                                        null_replacement="")
    text = pc.binary_join_element_wise(lines, pa.scalar("\n"), "")
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:
                                                               text.offset + len(text) + 1]
    return memoryview(text.buffers()[2])[offsets[0]:offsets[-1]]    # the block's text, uncopied


def _cells(column: pd.Series) -> pa.Array:
    kind = _kind(column)
    if kind == "text":
        values = pa.array(column.to_numpy(dtype=object, na_value=None), type=pa.string(),
                          from_pandas=True)
        special = pc.match_substring_regex(values, r'[,"\n]')
        if not pc.any(special).as_py():
            return values
        quoted = pc.binary_join_element_wise(
            '"', pc.replace_substring(values, '"', '""'), '"', "")
        return pc.if_else(special, quoted, values)
    if kind == "bool":
        return pa.array(np.where(column.to_numpy(), "True", "False"), type=pa.string())
    if kind == "int":
        return pc.cast(pa.array(column.to_numpy()), pa.string())
    numbers = column.to_numpy(dtype=float)
    text = pc.cast(pa.array(numbers, from_pandas=True), pa.string())  # NaN: empty
    size = np.abs(numbers)
    # whole numbers: Python writes 2.0 where Arrow writes 2
    with np.errstate(invalid="ignore"):
        whole = (numbers == np.floor(numbers)) & (size < _REPR_LARGE)
    if whole.any():
        text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    with np.errstate(invalid="ignore"):
        python = np.isfinite(numbers) & (numbers != 0) & ((size < _REPR_SMALL)
                                                         | (size >= _REPR_LARGE))
    # Arrow's own exponent form (it writes 7.859902285369734e+11 for 785990228536.9734)
    python |= pc.fill_null(pc.match_substring(text, "e"), False).to_numpy(zero_copy_only=False)
    python |= np.isinf(numbers)
    if python.any():
        text = pc.replace_with_mask(text, pa.array(python),
                                    pa.array([repr(float(v)) for v in numbers[python]],
                                             type=pa.string()))
    return text


def _quote_text(text: str) -> str:
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
