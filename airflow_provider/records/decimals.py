"""Decimal values (SQL DECIMAL/NUMERIC, Parquet and Arrow ``decimal128``) as the plain numbers
JSON carries: whole ones as ``int`` exactly, others as ``float``.

A ``Decimal`` would otherwise be refused as "not a number" from a Parquet file, be written as a
JSON string from an Arrow-backed column, or be rounded through a float on its way to an
``integer`` input (a 20-digit id). pandas is imported by the callers, never here: this module
is imported when a DAG's records are read, not when it is parsed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def plain_number(value: object) -> object:
    """``value`` as an ``int`` (whole) or ``float`` when it is a finite ``Decimal``; any other
    value as it is (NaN and infinities are refused by the records check, with their row)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return value
    return int(value) if value == value.to_integral_value() else float(value)


def holds_decimals(column: pd.Series) -> bool:
    """Whether ``column`` is an Arrow decimal column, or Python objects among which is a
    ``Decimal``."""
    import pandas as pd
    import pyarrow as pa

    dtype = column.dtype
    if isinstance(dtype, pd.ArrowDtype):
        return bool(pa.types.is_decimal(dtype.pyarrow_dtype))
    return dtype == "object" and any(isinstance(value, Decimal) for value in column)


def decimals_as_numbers(column: pd.Series) -> pd.Series:
    """``column`` with each ``Decimal`` made a plain number (see :func:`plain_number`), as
    Python objects: built directly, since ``Series.map`` would infer float64 from the values
    and round the very integers this is here to keep."""
    import pandas as pd

    plain = [None if value is pd.NA else plain_number(value) for value in column.tolist()]
    return pd.Series(plain, index=column.index, dtype=object, name=column.name)
