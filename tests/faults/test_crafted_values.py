"""Crafted values from a server: every one is a provider error a user can act on, on the
blocking path, the async path and in the trigger, never a raw ``UnicodeEncodeError``,
``ValueError`` or ``binascii.Error``, and never a header or path the server steered.

A stand-in server (:mod:`tests.faults.crafted`) answers the login with tokens that cannot go
into an ``Authorization`` header, a batch start with the id ``..`` (which a URL resolves to the
service itself), and a batch status whose inline files are not base64.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.api import (
    MrsDeployConfigurationError,
    MrsDeployError,
    MrsDeployProtocolError,
)
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.triggers import MrsDeployBatchTrigger
from tests.faults.crafted import MT, CraftedServer, status_answer, token_answer
from tests.faults.helpers import batch_trigger, collect, run_trigger

#: Tokens as written in the JSON answer: escapes stay escapes on the wire.
BAD_TOKENS = {
    "crlf": ("HEADPART\\r\\nX-Injected: 1", "line break"),
    "lone-surrogate": ("HEADPART\\ud800TAILPART", "lone surrogate (U+D800)"),
    "space": ("HEADPART TAILPART", "whitespace"),
    "non-ascii": ("HEADPART\u00e9TAILPART", "non-ASCII character U+00E9"),
    "nul": ("HEADPART\\u0000TAILPART", "control character U+0000"),
}


def printable(text: str) -> bool:
    return all(char.isprintable() for char in text)


Blocking = Callable[[MrsDeployHook], Any]
Async = Callable[[MrsDeployHook], Coroutine[Any, Any, Any]]


def on_path(path: str, sync: Blocking, asynchronous: Async | None = None) -> Any:
    """Run the call with a fresh hook on the blocking or the async path; return its result."""
    hook = MrsDeployHook()
    if path == "sync":
        try:
            return sync(hook)
        finally:
            hook.close()
    assert asynchronous is not None

    async def run() -> Any:
        try:
            return await asynchronous(hook)
        finally:
            await hook.aclose()

    return asyncio.run(run())


def fails(path: str, sync: Blocking, asynchronous: Async | None = None) -> MrsDeployError:
    """The provider error the call raises; its message must print as it is."""
    with pytest.raises(MrsDeployError) as info:
        on_path(path, sync, asynchronous)
    message = str(info.value)
    assert printable(message), message
    return info.value


# -- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
@pytest.mark.parametrize("case", list(BAD_TOKENS), ids=list(BAD_TOKENS))
def test_a_token_that_cannot_be_sent_is_a_protocol_error(
    crafted: CraftedServer, case: str, which: str, path: str
) -> None:
    token, words = BAD_TOKENS[case]
    crafted.answers.login = token_answer(**{which: token})
    error = fails(
        path,
        lambda hook: hook.get_batch_status(*MT, "b1"),
        lambda hook: hook.aget_batch_status(*MT, "b1"),
    )
    assert isinstance(error, MrsDeployProtocolError)
    message = str(error)
    assert which in message and words in message
    assert "connection points at the server's web node" in message
    assert "HEADPART" not in message and "TAILPART" not in message
    # Logged in, and stopped there: the token was never sent back.
    assert crafted.answers.requests == [("POST", "/login")]


@pytest.mark.parametrize("case", ["crlf", "lone-surrogate"])
def test_the_trigger_reports_a_bad_token_as_an_error_event(
    crafted: CraftedServer, case: str
) -> None:
    crafted.answers.login = token_answer(access_token=BAD_TOKENS[case][0])
    payload = run_trigger(batch_trigger(["b1"]), timeout=60)
    assert payload["status"] == "error" and payload["batch_ids"] == ["b1"]
    assert "access_token" in payload["message"] and printable(payload["message"])
    assert "HEADPART" not in payload["message"]
    assert crafted.answers.requests == [("POST", "/login")]


# -- batch ids ------------------------------------------------------------------------------


def test_a_batch_start_answered_with_dot_dot_is_a_protocol_error(crafted: CraftedServer) -> None:
    crafted.answers.start = b'{"batchExecutionId": ".."}'
    error = fails("sync", lambda hook: hook.start_batch(*MT, b'[{"hp": 1}]'))
    assert isinstance(error, MrsDeployProtocolError)
    message = str(error)
    assert "batchExecutionId '..'" in message and "parent folder" in message
    assert "may have started" in message
    assert [method for method, _ in crafted.answers.requests] == ["POST", "POST"]


@pytest.mark.parametrize("listed", ['["b1", ".."]', '["b1", "a/b"]', '["b1", "x\\u0085y"]'])
def test_a_batch_list_with_an_unusable_id_is_a_protocol_error(
    crafted: CraftedServer, listed: str
) -> None:
    crafted.answers.batches = listed.encode()
    error = fails("sync", lambda hook: hook.list_batches(*MT))
    assert isinstance(error, MrsDeployProtocolError) and "item 1" in str(error)


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("batch_id", ["..", ".", "a/b", "id\r\nX: 1", "  "])
def test_an_unusable_batch_id_is_refused_before_anything_is_sent(
    crafted: CraftedServer, batch_id: str, path: str
) -> None:
    """``..`` would reach ``GET /api/mtService/v1.0.0/``, which this server answers as a
    complete batch: a silent wrong answer without the check."""
    crafted.answers.status = status_answer({})
    error = fails(
        path,
        lambda hook: hook.get_batch_status(*MT, batch_id),
        lambda hook: hook.aget_batch_status(*MT, batch_id),
    )
    assert isinstance(error, MrsDeployConfigurationError)
    assert "batch id" in str(error) and "submit.output" in str(error)
    assert crafted.answers.requests == []


def test_the_trigger_reports_an_unusable_batch_id_as_an_error_event(
    crafted: CraftedServer,
) -> None:
    """Without the check the trigger would poll the service's own path, which this server
    answers as a complete batch, and report the wait as complete.

    The triggerer re-creates the trigger from its stored kwargs (here the form earlier releases
    stored) and fails it cleanly only when that raises ``TypeError``: anything else raised while
    it is created stops the triggerer's runner, with every other wait it runs. So the unusable
    id must come back as an error event, not as an exception of the constructor."""
    crafted.answers.status = status_answer({})
    trigger = MrsDeployBatchTrigger(
        batch_ids=[".."], service_name=MT[0], service_version=MT[1], poll_interval=0.2
    )
    payload = run_trigger(trigger, timeout=60)
    assert payload["status"] == "error"
    assert "batch id '..'" in payload["message"] and printable(payload["message"])
    assert [path for _, path in crafted.answers.requests if not path.startswith("/login")] == []


# -- inline files ---------------------------------------------------------------------------

BAD_BASE64 = {
    "not-the-alphabet": "aGVsbG8h!!!",
    "url-safe-alphabet": "aGV-bG8_",
    "cut-short": "aGVsbG8",
    "control-characters": "aGVs\u0000\u001bbG8=",
    "padding-inside": "aG==VsbG8=",
}


@pytest.mark.parametrize("documented", [True, False], ids=["fast-parser", "generic-parser"])
@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("case", list(BAD_BASE64), ids=list(BAD_BASE64))
def test_a_result_file_that_is_not_base64_is_a_protocol_error(
    crafted: CraftedServer, case: str, path: str, documented: bool
) -> None:
    crafted.answers.status = status_answer(
        {"ok.txt": base64.b64encode(b"fine").decode(), "plot\npng": BAD_BASE64[case]},
        documented=documented,
    )
    error = fails(
        path,
        lambda hook: hook.get_batch_status(*MT, "b1"),
        lambda hook: hook.aget_batch_status(*MT, "b1"),
    )
    assert isinstance(error, MrsDeployProtocolError)
    message = str(error)
    assert "row 0" in message and "output file 'plot\\npng' is not base64" in message
    assert "check the service" in message


def test_a_row_with_a_bad_file_fails_get_execution(crafted: CraftedServer) -> None:
    crafted.answers.status = status_answer({"plot.png": "%%%"})
    error = fails("sync", lambda hook: hook.get_execution(*MT, "b1", 0))
    assert isinstance(error, MrsDeployProtocolError) and "row 0" in str(error)


def test_valid_base64_with_line_breaks_is_accepted(crafted: CraftedServer) -> None:
    content = bytes(range(256)) * 4
    crafted.answers.status = status_answer({"plot.png": base64.encodebytes(content).decode()})
    for path in ("sync", "async"):
        status = on_path(
            path,
            lambda hook: hook.get_batch_status(*MT, "b1"),
            lambda hook: hook.aget_batch_status(*MT, "b1"),
        )
        assert status.results[0].output_files["plot.png"].replace("\n", "") == (
            base64.b64encode(content).decode()
        )


def test_the_trigger_only_reads_progress_so_a_bad_file_does_not_fail_the_wait(
    crafted: CraftedServer,
) -> None:
    crafted.answers.status = status_answer({"plot.png": "%%%"})
    assert run_trigger(batch_trigger(["b1"]), timeout=60)["status"] == "complete"


def test_collect_refuses_a_bad_file_before_writing_anything(
    crafted: CraftedServer, task_context: Any, tmp_path: Path
) -> None:
    crafted.answers.status = status_answer({"plot.png": "not base64!"})
    destination = tmp_path / "out"
    with pytest.raises(MrsDeployProtocolError, match=r"output file 'plot\.png' is not base64"):
        collect(task_context, "b1", destination)
    assert not destination.exists() or list(destination.iterdir()) == []


# -- keys that differ only in case ----------------------------------------------------------

#: A complete status naming its state twice, the documented spelling first or last, with the
#: other spelling saying the batch failed.
CASE_VARIANTS = {
    "documented-first": b'{"state": "Complete", "STATE": "Failed", ',
    "documented-last": b'{"STATE": "Failed", "state": "Complete", ',
}
_COUNTS_AND_ROW = (
    b'"completedItemCount": 1, "totalItemCount": 1, "batchExecutionResults": '
    b'[{"success": true, "outputParameters": {"answer": 0.5}}]}'
)


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("order", list(CASE_VARIANTS))
def test_a_status_naming_a_key_in_two_casings_is_refused_not_guessed(
    crafted: CraftedServer, path: str, order: str
) -> None:
    """The typed decode read the documented ``state`` and the generic one, which ignores case,
    the last of the two: the same answer was Complete or Failed depending on its layout."""
    crafted.answers.status = CASE_VARIANTS[order] + _COUNTS_AND_ROW
    error = fails(
        path,
        lambda hook: hook.get_batch_status(*MT, "b1"),
        lambda hook: hook.aget_batch_status(*MT, "b1"),
    )
    assert isinstance(error, MrsDeployProtocolError)
    assert "keys that differ only in case" in str(error)
    assert "'state'" in str(error) and "'STATE'" in str(error)


@pytest.mark.parametrize("order", list(CASE_VARIANTS))
def test_collect_refuses_a_status_naming_a_key_in_two_casings_before_writing(
    crafted: CraftedServer, task_context: Any, tmp_path: Path, order: str
) -> None:
    crafted.answers.status = CASE_VARIANTS[order] + _COUNTS_AND_ROW
    destination = tmp_path / "out"
    with pytest.raises(MrsDeployProtocolError, match="differ only in case"):
        collect(task_context, "b1", destination)
    assert not destination.exists() or list(destination.iterdir()) == []


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_row_naming_a_key_in_two_casings_is_refused(crafted: CraftedServer, path: str) -> None:
    crafted.answers.status = (
        b'{"state": "Complete", "completedItemCount": 1, "totalItemCount": 1, '
        b'"batchExecutionResults": [{"success": true, "Success": false}]}'
    )
    error = fails(
        path,
        lambda hook: hook.get_batch_status(*MT, "b1"),
        lambda hook: hook.aget_batch_status(*MT, "b1"),
    )
    assert isinstance(error, MrsDeployProtocolError)
    assert "'success' and 'Success'" in str(error)
