"""The outputs table: one row per input index, built a batch at a time, typed before writing.

Column rules (documented in docs/outputs.md):

- The table's own columns come first: ``index``, ``success``, ``error_message``.
- Output parameters follow, in the service's declaration order, then any extra output a row
  returned, in the order they first appear (earlier rows get null), so nothing the server sent
  is lost.
- An output whose name is one of the table's own columns, or starts with ``input_`` or
  ``output_``, is written as ``output_<name>``: it can never overwrite ``index``, ``success``,
  ``error_message`` or an input column, and no two outputs can end under one name.
- Scalars stay values; vectors, matrices and data frames become JSON text, and so does every
  value of an output the service declares as one of those types, or of which any row returned
  one (a text ``'{"a":1}'`` is then ``"{\\"a\\":1}"``, the object ``{"a":1}``: one column
  type, and each value read back as it was sent).
- The records put beside the outputs (``input_<name>``) stay as given, except that a column
  holding a vector, matrix or data frame in any row has every value written as JSON text:
  Parquet would otherwise store nested lists, CSV Python's ``repr``, and a repair re-sends
  these cells, so they must read back as the same JSON value in every format
  (:func:`decode_input_columns` reads them back).
- A column holds one type. Integers stay exact (64-bit), integers and decimals together become
  decimals only while every integer converts exactly; anything else (text in a numeric output,
  an integer beyond 64 bits) is refused with the row and the column, before the destination is
  touched.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider.api import ExecutionResult, MrsDeployError
from airflow_provider.api.identifiers import LONE_SURROGATE, shown
from airflow_provider.exceptions import MrsDeployOutputsError, MrsDeployRecordsError

if TYPE_CHECKING:
    import pandas as pd

#: The table's own columns, in order.
OWN_COLUMNS = ("index", "success", "error_message")
OUTPUT_PREFIX = "output_"
INPUT_PREFIX = "input_"
#: Declared output types whose values are always written as JSON text.
JSON_TEXT_TYPES = frozenset({"vector", "matrix", "data.frame"})
_INT64 = (-(2**63), 2**63 - 1)
#: The largest integer magnitude a 64-bit float holds exactly.
_EXACT_IN_FLOAT = 2**53
#: How many characters of a refused value an error message quotes.
_QUOTED_CHARS = 60


def column_name(output: str) -> str:
    """The column an output parameter is written to (see the module docstring)."""
    if output in OWN_COLUMNS or output.startswith((INPUT_PREFIX, OUTPUT_PREFIX)):
        return OUTPUT_PREFIX + output
    return output


def _refuse_unwritable_name(output: str, source: str) -> None:
    """Refuse an output name no table format can hold as a column name: one with a lone
    surrogate (a server's undecodable bytes, escaped in its JSON), which UTF-8 (Parquet's
    schema, CSV's header, the manifest) cannot encode. Refused before the destination is
    touched, naming where it came from, instead of a bare ``UnicodeEncodeError``."""
    surrogate = LONE_SURROGATE.search(output)
    if surrogate is not None:
        raise MrsDeployOutputsError(
            f"{source} an output named {shown(output)}, which holds a lone surrogate "
            f"(U+{ord(surrogate.group()):04X}): no table format can store that name as UTF-8; "
            "nothing was written. Have the service name its outputs with text UTF-8 can encode"
        )


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _composite_types() -> tuple[type, ...]:
    """The Python types a vector, matrix or data frame input arrives as (numpy: imported at
    run time only, with pandas)."""
    import numpy as np

    return (list, tuple, Mapping, np.ndarray)


def _missing(value: Any) -> bool:
    """Whether ``value`` is one of the markers pandas uses for a missing cell."""
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def stored_input_column(values: pd.Series) -> pd.Series:
    """An input column as the table stores it: as given, or every value as JSON text when any
    row holds a vector, matrix or data frame.

    The whole column, not only the composite cells: a column holds one type (Parquet refuses
    lists beside numbers), and a reader then knows every text of it is JSON (the text ``abc``
    is stored as ``"abc"``, quotes included). Missing cells stay missing.
    """
    import pandas as pd

    if values.dtype.kind != "O":
        return values  # numbers, booleans, dates: never composite
    items = values.tolist()
    composite = _composite_types()
    if not any(issubclass(kind, composite) for kind in set(map(type, items))):
        return values
    texts = [None if _missing(value) else _input_json_text(value) for value in items]
    return pd.Series(texts, index=values.index, dtype=object, name=values.name)


def _input_json_text(value: Any) -> str:
    """An input cell as JSON text: numpy arrays and scalars as the lists and numbers the
    records encoder sends; a value JSON has no form for as its text, as the JSON Lines writer
    writes it (such a value cannot have been sent to a service)."""
    return json.dumps(_plain_json(value), separators=(",", ":"), ensure_ascii=False, default=str)


def decode_input_columns(inputs: pd.DataFrame, input_types: Mapping[str, str]) -> pd.DataFrame:
    """The values to re-send from a table's input columns (``inputs``, without their prefix),
    read back by each service input's declared type.

    A ``vector``, ``matrix`` or ``data.frame`` input is JSON text in tables of this release;
    tables of earlier ones hold a native JSON value (JSON Lines) or nested arrays (Parquet),
    which are turned into plain lists and dicts. Other inputs are kept as read: numbers,
    booleans and text need no decoding (a CSV reader must keep ``character`` inputs as text).

    :param inputs: the table's input columns, named after the inputs.
    :param input_types: each service input's declared type.
    :raises MrsDeployRecordsError: a composite input's cell is text that is not JSON (an
        earlier release wrote them to CSV as Python text), naming the row and the column.
    """
    import pandas as pd

    decoded = inputs.copy()
    decoded.attrs.update(inputs.attrs)
    for position, label in enumerate(inputs.columns):
        kind = input_types.get(str(label), "").lower()
        if kind in JSON_TEXT_TYPES:
            values = _decoded_composites(str(label), kind, inputs.iloc[:, position].tolist())
            decoded.isetitem(position, pd.Series(values, index=inputs.index, dtype=object))
    return decoded


def _decoded_composites(name: str, kind: str, values: list[Any]) -> list[Any]:
    """A composite input's cells as the values sent: JSON text parsed, arrays made lists."""
    decoded = []
    for row, value in enumerate(values):
        if isinstance(value, str):
            try:
                decoded.append(json.loads(value))
            except ValueError:
                raise MrsDeployRecordsError(
                    f"row {row} of the table's column {INPUT_PREFIX + name!r} holds "
                    f"{shown(value)}, which is not JSON text: the {kind} input {name!r} cannot "
                    "be read back from it (a CSV table written by an earlier release holds "
                    "such inputs as Python text). Pass records= (the source that was "
                    "submitted, in the same order), or collect into this destination again "
                    "with records="
                ) from None
        elif _missing(value):
            decoded.append(value)
        else:
            decoded.append(_plain_json(value))
    return decoded


def _plain_json(value: Any) -> Any:
    """Nested numpy arrays (records read from Parquet, or a Parquet list column read back),
    numpy scalars, mappings and tuples as the plain lists, dicts and numbers JSON writes."""
    to_list = getattr(value, "tolist", None)
    if callable(to_list):
        value = to_list()
    if isinstance(value, Mapping):
        return {str(key): _plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(item) for item in value]
    return value


_KIND_OF_TYPE: dict[type, str] = {bool: "logical", int: "integer", float: "number", str: "text"}
#: The types of the values a column keeps as they are (JSON's scalars, and no value).
_SCALAR_TYPES = {type(None), *_KIND_OF_TYPE}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "logical"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "text"


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTED_CHARS else text[: _QUOTED_CHARS - 3] + "..."


class OutputsTable:
    """The outputs table, built from results added a batch at a time.

    Only plain columns are kept between batches (a value per row and output), not the parsed
    results: collecting several large batches holds one batch's results at a time.

    :param output_names: the service's declared output parameters.
    :param index_offset: the index of the first row.
    :param output_types: declared type of each output (``numeric``, ``vector``...), when known.
    """

    def __init__(
        self,
        output_names: Sequence[str],
        *,
        index_offset: int = 0,
        output_types: Mapping[str, str] | None = None,
    ):
        self._offset = index_offset
        self._rows = 0
        self._success: list[bool] = []
        self._errors: list[str | None] = []
        for name in output_names:
            _refuse_unwritable_name(name, "the service declares")
        self._outputs: dict[str, list[Any]] = {name: [] for name in output_names}
        self._json_outputs = {
            name for name, kind in (output_types or {}).items() if kind in JSON_TEXT_TYPES
        }

    def __len__(self) -> int:
        return self._rows

    @property
    def renamed_outputs(self) -> dict[str, str]:
        """Outputs written under another column name: output name to column name."""
        return {name: column_name(name) for name in self._outputs if column_name(name) != name}

    def add(self, results: Sequence[ExecutionResult]) -> None:
        """Append ``results`` (in input order) after the rows added so far."""
        for position, result in enumerate(results):
            for key in result.output_parameters:
                if key not in self._outputs:
                    row = self._offset + self._rows + position
                    _refuse_unwritable_name(key, f"row {row} returned")
                    self._outputs[key] = [None] * self._rows
        self._success.extend([r.success for r in results])
        self._errors.extend([r.error_message or None for r in results])
        for name, column in self._outputs.items():
            values = [r.output_parameters.get(name) for r in results]
            if name not in self._json_outputs and not set(map(type, values)) <= _SCALAR_TYPES:
                # A composite among scalars (R writes a vector of one as a scalar): as JSON
                # text the composite would equal a text holding the same characters, and the
                # column's type check could not tell them apart. Every value becomes JSON text,
                # the rows before included, as for a declared vector.
                column[:] = [None if v is None else _json_text(v) for v in column]
                self._json_outputs.add(name)
            if name in self._json_outputs:
                column.extend([None if v is None else _json_text(v) for v in values])
            else:
                column.extend(values)  # scalars only, kept as they are
        self._rows += len(results)

    def build(self, inputs: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per input index: index, success, error, every output parameter (and inputs).

        :param inputs: the records, put beside the outputs as ``input_<name>``.
        :raises MrsDeployOutputsError: an output column mixes types or holds an integer that
            does not fit 64 bits (naming the row and the column).
        """
        import pandas as pd

        columns: dict[str, Any] = {
            "index": pd.RangeIndex(self._offset, self._offset + self._rows),
            "success": pd.array(self._success, dtype=bool),
            "error_message": pd.array(self._errors, dtype=object),
        }
        for name, values in self._outputs.items():
            columns[column_name(name)] = self._typed(name, values)
        try:
            table = pd.DataFrame(columns)
        except UnicodeEncodeError:
            # A lone surrogate (a server's text of undecodable bytes, escaped in its JSON):
            # pandas' string type refuses it, so text stays as Python objects. JSON Lines
            # writes it escaped; Parquet and CSV refuse it before anything is written.
            table = pd.DataFrame(
                {
                    name: pd.Series(values, dtype=object)
                    if getattr(values, "dtype", None) == "object"
                    else values
                    for name, values in columns.items()
                }
            )
        if inputs is not None:
            if len(inputs) != self._rows:
                raise MrsDeployError(
                    f"cannot put {len(inputs)} input rows beside {self._rows} results"
                )
            table = pd.concat([table, _stored_inputs(inputs)], axis=1)
        return table

    def _typed(self, name: str, values: list[Any]) -> Any:
        """The column's values as one pandas type, or an error naming the first misfit."""
        import pandas as pd

        # One pass over the types (in C), not a call per value.
        types = set(map(type, values))
        types.discard(type(None))
        if types <= _KIND_OF_TYPE.keys():
            kinds = {_KIND_OF_TYPE[t] for t in types}
        else:  # subclasses: decided value by value
            kinds = {_kind(v) for v in values if v is not None}
        if not kinds:
            return pd.array(values, dtype=object)
        if kinds == {"logical"}:
            return pd.array(values, dtype="boolean")
        if kinds == {"text"}:
            return pd.array(values, dtype=object)
        if kinds == {"integer"}:
            self._check_integers(name, values, _INT64, "does not fit a 64-bit integer")
            return pd.array(values, dtype="Int64")
        if kinds == {"number"}:
            return pd.array(values, dtype="float64")
        if kinds == {"integer", "number"}:
            bounds = (-_EXACT_IN_FLOAT, _EXACT_IN_FLOAT)
            self._check_integers(
                name, values, bounds, "cannot be stored exactly beside the column's decimals"
            )
            return pd.array([None if v is None else float(v) for v in values], dtype="float64")
        self._refuse_mixed(name, values)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_integers(
        self, name: str, values: list[Any], bounds: tuple[int, int], problem: str
    ) -> None:
        low, high = bounds
        integers = [v for v in values if type(v) is int]
        if not integers or (low <= min(integers) and max(integers) <= high):
            return
        for row, value in enumerate(values):
            if type(value) is int and not low <= value <= high:
                raise MrsDeployOutputsError(
                    f"output {name!r} of row {self._offset + row} is {_quote(value)}, which "
                    f"{problem}; nothing was written. Have the service return it as text (or "
                    "as a smaller number) so every row's value fits one column type."
                )

    def _refuse_mixed(self, name: str, values: list[Any]) -> None:
        """Raise for the first row whose value's type differs from the first value's."""
        numeric = {"integer", "number"}
        first_row, first = next((i, v) for i, v in enumerate(values) if v is not None)
        first_kind = _kind(first)
        for row, value in enumerate(values):
            if value is None:
                continue
            kind = _kind(value)
            if kind == first_kind or (kind in numeric and first_kind in numeric):
                continue
            raise MrsDeployOutputsError(
                f"output {name!r} mixes types: row {self._offset + row} holds {kind} "
                f"{_quote(value)} where row {self._offset + first_row} holds {first_kind} "
                f"{_quote(first)}; nothing was written. A table column holds one type: fix the "
                "service so every row returns the same type for this output (or declare it as "
                "a vector, which is written as JSON text)."
            )


def _stored_inputs(inputs: pd.DataFrame) -> pd.DataFrame:
    """The records as the table's ``input_<name>`` columns (see :func:`stored_input_column`);
    by position, as records may repeat a column name the service does not take."""
    stored = inputs.reset_index(drop=True)  # a new frame: the records are left as they are
    for position in range(stored.shape[1]):
        column = stored.iloc[:, position]
        converted = stored_input_column(column)
        if converted is not column:
            stored.isetitem(position, converted)
    return stored.add_prefix(INPUT_PREFIX)
