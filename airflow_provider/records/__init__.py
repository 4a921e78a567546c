"""Records: read (:mod:`.read`), checked against a service's inputs (:mod:`.check`), encoded as
the batch body (:mod:`.encode`); or read from a database (:mod:`.sql`).

The names below are importable from here, but each is loaded on first use: importing the
package (as Submit does when a DAG file is parsed, for :mod:`.sql`'s defaults) must not import
pandas, numpy or pyarrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider.exceptions import MrsDeployRecordsError
    from airflow_provider.records.check import (
        MAX_REPORTED_PROBLEMS,
        PreparedRecords,
        check_has_rows,
        prepare_records,
    )
    from airflow_provider.records.encode import (
        ENCODE_CHUNK_ROWS,
        column_values,
        encode_records,
        encode_rows,
        iter_encoded_records,
    )
    from airflow_provider.records.read import (
        FORMAT_BY_SUFFIX,
        ROW_NUMBERING,
        ROWS_ATTR,
        SOURCE_ATTR,
        SUPPORTED_FORMATS,
        RecordsSource,
        infer_format,
        load_records,
        read_records_file,
    )
    from airflow_provider.records.sql import DEFAULT_SQL_CHUNK_ROWS, read_sql_records

#: Each public name and the module that defines it.
_HOMES = {
    **dict.fromkeys(
        ("MAX_REPORTED_PROBLEMS", "PreparedRecords", "check_has_rows", "prepare_records"),
        "airflow_provider.records.check",
    ),
    **dict.fromkeys(
        (
            "ENCODE_CHUNK_ROWS",
            "column_values",
            "encode_records",
            "encode_rows",
            "iter_encoded_records",
        ),
        "airflow_provider.records.encode",
    ),
    **dict.fromkeys(
        (
            "FORMAT_BY_SUFFIX",
            "ROW_NUMBERING",
            "ROWS_ATTR",
            "SOURCE_ATTR",
            "SUPPORTED_FORMATS",
            "RecordsSource",
            "infer_format",
            "load_records",
            "read_records_file",
        ),
        "airflow_provider.records.read",
    ),
    **dict.fromkeys(("DEFAULT_SQL_CHUNK_ROWS", "read_sql_records"), "airflow_provider.records.sql"),
    # Where it was importable from before the records became a package.
    "MrsDeployRecordsError": "airflow_provider.exceptions",
}

__all__ = [
    "DEFAULT_SQL_CHUNK_ROWS",
    "ENCODE_CHUNK_ROWS",
    "FORMAT_BY_SUFFIX",
    "MAX_REPORTED_PROBLEMS",
    "ROWS_ATTR",
    "ROW_NUMBERING",
    "SOURCE_ATTR",
    "SUPPORTED_FORMATS",
    "MrsDeployRecordsError",
    "PreparedRecords",
    "RecordsSource",
    "check_has_rows",
    "column_values",
    "encode_records",
    "encode_rows",
    "infer_format",
    "iter_encoded_records",
    "load_records",
    "prepare_records",
    "read_records_file",
    "read_sql_records",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
