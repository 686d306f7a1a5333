"""Tables handed to spreadsheets: a cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab or
carriage return first) is prefixed with a single quote. The CLI's files and the dashboard's downloads share it."""

from __future__ import annotations

__all__ = ["FORMULA_STARTS", "csv_cell", "neutralise_formulas"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A cell as a spreadsheet should read it: text that would start a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_formulas(frame):
    """A copy of a pandas DataFrame whose text cells and column names cannot start a formula."""
    from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if not (is_numeric_dtype(values) or is_bool_dtype(values) or is_datetime64_any_dtype(values)):
            out[column] = values.astype(object).map(csv_cell)
    out.columns = [csv_cell(c) for c in out.columns]
    return out
