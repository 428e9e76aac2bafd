"""One error family for hubnb: one exception per kind of user mistake.

Every message names what is wrong (table, column and row; or the params key) and,
where it helps, what to do about it. The CLI prints ``str(error)`` on one line.
"""

from __future__ import annotations


class HubnbError(Exception):
    """Base class of every error hubnb raises on purpose."""


class DataError(HubnbError):
    """The merchant's dataset breaks the data contract.

    Parameters
    ----------
    table, column : str or None
        Where the problem is.
    row : int or None
        The first bad row, counted from 0 as the data rows of the file.
    problem : str
        What is wrong, in words.
    """

    def __init__(self, problem: str, table: str | None = None,
                 column: str | None = None, row: int | None = None):
        self.problem, self.table, self.column, self.row = problem, table, column, row
        where = []
        if table is not None:
            where.append(f"table {table!r}")
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}")
        prefix = ", ".join(where)
        super().__init__(f"bad data: {prefix}: {problem}" if prefix else f"bad data: {problem}")


class ParamsError(HubnbError):
    """The params file is wrong; the message names the key."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"bad params: {key}: {problem}")


class NotEligibleError(HubnbError):
    """The merchant's data is below the CLV eligibility bar (and ``clv.force`` is off)."""

    def __init__(self, reasons: list[str]):
        self.reasons = list(reasons)
        super().__init__("not eligible for predictive CLV: " + "; ".join(self.reasons))
