"""Records from a database, through the common SQL hook of whatever connection is given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider.api import MrsDeployError
from airflow_provider.exceptions import MrsDeployRecordsError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SQL_CHUNK_ROWS = 100_000


def read_sql_records(
    sql_conn_id: str, sql: str, chunk_rows: int = DEFAULT_SQL_CHUNK_ROWS
) -> pd.DataFrame:
    """Run ``sql`` on any ``DbApiHook`` connection and return the rows as one DataFrame.

    The query is fetched in chunks of ``chunk_rows`` so the driver never materialises a second
    full copy of a large result next to the DataFrame.
    """
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook

    hook = BaseHook.get_connection(sql_conn_id).get_hook()
    if not isinstance(hook, DbApiHook):
        raise MrsDeployError(
            f"connection {sql_conn_id!r} has no SQL hook ({type(hook).__name__}); records_sql "
            "needs a database connection whose provider implements DbApiHook"
        )
    try:
        # coerce_float=False: pandas would turn DECIMAL/NUMERIC values into floats, rounding
        # whole numbers beyond 2**53 (ids, amounts in cents) without a word. The Decimal values
        # are made exact ints or floats by the records check, for the inputs that take numbers.
        chunks = list(
            hook.get_df_by_chunks(sql, chunksize=chunk_rows, df_type="pandas", coerce_float=False)
        )
    except TypeError as err:
        # pandas reads the result's columns from the cursor, which has none for a statement
        # that returns no rows (UPDATE, CREATE ...): its own message says only "NoneType".
        raise MrsDeployRecordsError(
            f"records_sql gave no result set ({type(err).__name__}: {err}): it must be a query "
            f"that returns rows, such as SELECT: {sql!r}"
        ) from err
    if not chunks:
        raise MrsDeployRecordsError(f"records_sql returned no result set: {sql!r}")
    import pandas as pd  # at run time only: parsing a DAG must not import pandas

    return pd.concat(chunks, ignore_index=True)
