"""Running one service call: the context handed to the callable and the WebServiceResult.

Console output is captured through ``ctx.print`` rather than by redirecting ``sys.stdout``,
because rows of a batch run concurrently in threads that share the process's stdout.
"""

from __future__ import annotations

import io
import math
import traceback
from pathlib import Path
from typing import Any

from airflow_provider.server.services import ServiceDefinition


def is_plain_file_name(name: str) -> bool:
    """A file name that stays inside its folder: no separators, no ``..``, no NUL."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


class ServiceContext:
    """What a service callable gets besides its inputs.

    :param output_dir: Folder for the call's files; created only when a file is written.
    :param row_index: Position of the row in its batch (``None`` for a synchronous call).
    :param batch_id: The batch execution id (``None`` for a synchronous call).
    """

    def __init__(
        self, output_dir: Path, row_index: int | None = None, batch_id: str | None = None
    ) -> None:
        self._output_dir = output_dir
        self._console = io.StringIO()
        self._changed: list[str] = []
        self.row_index = row_index
        self.batch_id = batch_id

    def print(self, *values: object, sep: str = " ", end: str = "\n") -> None:
        """Write to this call's ``consoleOutput`` (same signature as the builtin)."""
        self._console.write(sep.join(str(v) for v in values) + end)

    def file_path(self, name: str) -> Path:
        """Path where the service may write output file ``name`` (a plain file name)."""
        if not is_plain_file_name(name):
            raise ValueError(f"invalid output file name {name!r}")
        self._output_dir.mkdir(parents=True, exist_ok=True)
        if name not in self._changed:
            self._changed.append(name)
        return self._output_dir / name

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write an output file."""
        self.file_path(name).write_bytes(data)

    def write_text(self, name: str, text: str) -> None:
        """Write an output text file (UTF-8)."""
        self.file_path(name).write_text(text, encoding="utf-8")

    @property
    def console_output(self) -> str:
        """Everything printed so far."""
        return self._console.getvalue()

    @property
    def changed_files(self) -> list[str]:
        """Names of the files written, in first-write order."""
        return list(self._changed)


def to_jsonable(value: Any) -> Any:
    """Convert numpy values, tuples and non-finite floats into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"value of type {type(value).__name__} is not JSON-serializable")


def failure_result(
    message: str, console: str = "", changed: list[str] | None = None
) -> dict[str, Any]:
    """A WebServiceResult for a call that failed."""
    return {
        "success": False,
        "errorMessage": message,
        "consoleOutput": console,
        "changedFiles": changed or [],
        "outputParameters": {},
        "outputFiles": {},
    }


def invoke(
    service: ServiceDefinition,
    inputs: dict[str, Any],
    output_dir: Path,
    row_index: int | None = None,
    batch_id: str | None = None,
) -> dict[str, Any]:
    """Run the service on one record; exceptions become ``success: false``, never propagate."""
    ctx = ServiceContext(output_dir, row_index=row_index, batch_id=batch_id)
    try:
        fn = service.load()
        raw = fn(ctx, dict(inputs))
        if not isinstance(raw, dict):
            raise TypeError(f"the service returned {type(raw).__name__}, expected a dict")
        outputs: dict[str, Any] = {}
        for name, _kind in service.outputs:
            if name not in raw:
                raise KeyError(f"output '{name}' was not returned")
            outputs[name] = to_jsonable(raw[name])
    except Exception as exc:
        ctx.print(traceback.format_exc(limit=-3).rstrip())
        return failure_result(f"{type(exc).__name__}: {exc}", ctx.console_output, ctx.changed_files)
    return {
        "success": True,
        "errorMessage": "",
        "consoleOutput": ctx.console_output,
        "changedFiles": ctx.changed_files,
        "outputParameters": outputs,
        "outputFiles": {},
    }
