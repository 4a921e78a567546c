"""Tokens are masked from the moment they arrive, and server text cannot forge log lines.

A hostile server echoes the access token it just issued in an error body, and puts newlines and
terminal escapes in its messages. The token must not appear in the retry warning logged by the
very call that obtained it, nor in a trigger event (which the resumed task raises in another
process whose masker never saw the token); the text must reach logs and exceptions escaped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.api import MrsDeployBadRequestError
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators.collect import MrsDeployFailedRowsError
from airflow_provider.outputs import OutputFormat
from airflow_provider.safe_text import redacted
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import batch_trigger, collect, poll_once, run_trigger
from tests.faults.hostile import HostileServer, Misbehaviour

FORGED = "bad row\n2026-11-30T00:00:00Z [info     ] Batch complete\x1b[2K\r\u202eok"


class MaskingLog:
    """A logger that writes each line through Airflow's masker at the moment it is logged, as
    the supervisor does with a task's log lines: what it keeps is what a log would show."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _line(self, message: str, *args: Any, **_: Any) -> None:
        self.lines.append(redacted(message % args if args else message))

    debug = info = warning = error = exception = _line


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


def assert_escaped(text: str) -> None:
    for raw in ("\n", "\r", "\x1b", "\u202e"):
        assert raw not in text, f"{raw!r} reached the text"
    assert "bad row\\n2026" in text and "\\x1b[2K\\r\\u202eok" in text


@pytest.mark.parametrize("path", ["sync", "async"])
def test_the_retry_warning_of_the_call_that_logged_in_masks_the_new_token(
    hostile: HostileServer, set_default_conn: ConnSetter, path: str
) -> None:
    # A token of its own: the masker of this process may know the others already.
    token = hostile.script.access_token = f"fresh-token-{uuid.uuid4().hex}"
    hostile.script.routes["status"] = Misbehaviour(
        status=503, body={"Message": f"overloaded; your token {token} is fine"}, times=1
    )
    set_default_conn(hostile.port, "the-password")
    hook = MrsDeployHook()
    hook._log = log = MaskingLog()  # type: ignore[assignment]
    status = poll_once(path, hook)
    assert not isinstance(status, Exception), status
    warnings = [line for line in log.lines if "retrying in" in line]
    assert len(warnings) == 1 and "your token *** is fine" in warnings[0], log.lines
    assert not any(token in line for line in log.lines)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_server_text_in_an_error_is_escaped(
    hostile: HostileServer, set_default_conn: ConnSetter, all_logs: Callable[[], str], path: str
) -> None:
    hostile.script.routes["status"] = Misbehaviour(status=400, body={"Message": FORGED})
    set_default_conn(hostile.port, "the-password")
    error = poll_once(path, MrsDeployHook())
    assert isinstance(error, MrsDeployBadRequestError), error
    assert_escaped(str(error))


def test_a_trigger_event_carries_neither_the_token_nor_raw_control_characters(
    hostile: HostileServer, set_default_conn: ConnSetter
) -> None:
    token = hostile.script.access_token = f"fresh-token-{uuid.uuid4().hex}"
    hostile.script.routes["status"] = Misbehaviour(
        status=400, body={"Message": f"{FORGED} (token {token})"}
    )
    set_default_conn(hostile.port, "the-password")
    payload = run_trigger(batch_trigger(["b1"]), timeout=60)
    assert payload["status"] == "error", payload
    message = payload["message"]
    assert token not in message and "(token ***)" in message
    assert_escaped(message)


def test_a_failed_rows_error_message_is_escaped_and_kept_exact_in_the_table(
    hostile: HostileServer, set_default_conn: ConnSetter, task_context: Any, tmp_path: Path
) -> None:
    """Collect quotes the first row errors in its log and exception: escaped there, while the
    table keeps the server's text as it was."""
    hostile.script.routes["status"] = Misbehaviour(
        body={
            "state": "Complete",
            "completedItemCount": 1,
            "totalItemCount": 1,
            "batchExecutionResults": [{"success": False, "errorMessage": FORGED}],
        }
    )
    hostile.script.routes["files"] = Misbehaviour(body=[])
    set_default_conn(hostile.port, "the-password")
    destination = tmp_path / "out"
    with pytest.raises(MrsDeployFailedRowsError) as info:
        collect(task_context, "b1", destination, output_format="jsonl", max_failed_rows=0)
    assert_escaped(str(info.value))
    table = destination / OutputFormat.JSONL.table_name
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    assert rows[0]["error_message"] == FORGED
