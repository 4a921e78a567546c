"""Response parsers."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from airflow_provider.api import (
    MrsDeployNotFoundError,
    MrsDeployProtocolError,
    MrsDeployTransientError,
    decode_json,
    parse_batch_id,
    parse_batch_ids,
    parse_batch_status,
    parse_execution_result,
    parse_file_list,
    parse_service,
    parse_services,
    parse_swagger,
    parse_token_pair,
)
from airflow_provider.api.errors import error_from_response
from airflow_provider.api.parsers import parse_batch_progress, parse_batch_status_body


def _service(version: str) -> dict[str, Any]:
    return {"name": "mtService", "version": version}


def test_parse_service_one_element_array() -> None:
    assert parse_service([_service("v1.0.0")]).version == "v1.0.0"


def test_parse_service_bare_object() -> None:
    assert parse_service(_service("v2")).version == "v2"


def test_parse_service_prefers_requested_version() -> None:
    obj = [_service("v1"), _service("v2")]
    assert parse_service(obj, "mtService", "v1").version == "v1"
    assert parse_service(obj).version == "v2"


def test_parse_service_empty_array_is_not_found() -> None:
    with pytest.raises(MrsDeployNotFoundError, match="mtService v9"):
        parse_service([], "mtService", "v9")


def test_parse_services() -> None:
    assert [s.version for s in parse_services([_service("a"), _service("b")])] == ["a", "b"]
    assert parse_services(None) == []
    with pytest.raises(MrsDeployProtocolError):
        parse_services({"name": "x"})


@pytest.mark.parametrize("key", ["BatchExecutionId", "batchExecutionId", "BATCHEXECUTIONID"])
def test_parse_batch_id_any_case(key: str) -> None:
    assert parse_batch_id({key: "3f2a"}) == "3f2a"


@pytest.mark.parametrize("obj", [{}, {"batchExecutionId": ""}, {"id": "x"}, ["x"], None])
def test_parse_batch_id_missing(obj: Any) -> None:
    with pytest.raises(MrsDeployProtocolError):
        parse_batch_id(obj)


def test_parse_batch_ids() -> None:
    assert parse_batch_ids(["a", "b"]) == ["a", "b"]
    assert parse_batch_ids(None) == []
    with pytest.raises(MrsDeployProtocolError):
        parse_batch_ids([1])


def test_parse_file_list_null_is_empty() -> None:
    assert parse_file_list(None) == []
    assert parse_file_list(["a.png", "b.csv"]) == ["a.png", "b.csv"]
    with pytest.raises(MrsDeployProtocolError):
        parse_file_list("a.png")


def test_parse_batch_status_and_result() -> None:
    status = parse_batch_status({"state": "Pending", "completedItemCount": 0, "totalItemCount": 3})
    assert status.to_summary()["state"] == "Pending"
    result = parse_execution_result({"success": True, "outputParameters": {"answer": 1}})
    assert result.output_parameters == {"answer": 1}


def test_parse_token_pair() -> None:
    pair = parse_token_pair({"access_token": "a", "expires_on": "100"}, now=0.0)
    assert pair.expires_on == 100.0


def test_parse_swagger() -> None:
    assert parse_swagger({"swagger": "2.0"}) == {"swagger": "2.0"}
    with pytest.raises(MrsDeployProtocolError):
        parse_swagger([])


def test_decode_json() -> None:
    assert decode_json(b"") is None
    assert decode_json(b" null ") is None
    assert decode_json(b'{"a": 1}') == {"a": 1}
    with pytest.raises(MrsDeployProtocolError, match="not valid JSON"):
        decode_json(b"<html>", "GET /services")


def _status_body(**fields: Any) -> bytes:
    import json

    body = {
        "state": "Complete",
        "completedItemCount": 2,
        "totalItemCount": 2,
        "batchExecutionResults": [
            {"success": True, "outputParameters": {"answer": 0.5}},
            {"success": False, "errorMessage": "boom"},
        ],
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


@pytest.mark.parametrize(
    "body",
    [
        _status_body(),
        _status_body(state="inprogress", completedItemCount=1, batchExecutionResults=[]),
        # Spellings only the full parser takes: other key case, counts as text, no counts.
        b'{"State": "Complete", "CompletedItemCount": 2, "TotalItemCount": 2}',
        _status_body(completedItemCount="2", totalItemCount="2"),
        b'{"state": "Pending"}',
    ],
    ids=["complete", "running", "key-case", "text-counts", "no-counts"],
)
def test_batch_progress_reads_what_the_full_parser_reads_without_the_results(body: bytes) -> None:
    from airflow_provider.api import decode_json, parse_batch_progress

    full = parse_batch_status(decode_json(body))
    progress = parse_batch_progress(body)
    assert (progress.state, progress.completed_item_count, progress.total_item_count) == (
        full.state,
        full.completed_item_count,
        full.total_item_count,
    )
    assert progress.results == ()


def test_batch_progress_skips_results_it_does_not_read() -> None:
    from airflow_provider.api import parse_batch_progress

    body = _status_body(batchExecutionResults=[{"success": "maybe"}])
    with pytest.raises(MrsDeployProtocolError):
        parse_batch_status(decode_json(body))
    assert parse_batch_progress(body).completed_item_count == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_status_body(state="Sleeping"), "Sleeping"),
        (_status_body(state=None), "missing 'state'"),
        (_status_body(totalItemCount=-1), "totalItemCount"),
        (_status_body(completedItemCount=True), "completedItemCount"),
        (b"<html>busy</html>", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
    ],
)
def test_batch_progress_refuses_what_the_full_parser_refuses(body: bytes, message: str) -> None:
    from airflow_provider.api import parse_batch_progress

    with pytest.raises(MrsDeployProtocolError, match=message):
        parse_batch_status(decode_json(body))
    with pytest.raises(MrsDeployProtocolError, match=message):
        parse_batch_progress(body, "batch status")


@pytest.mark.parametrize(
    "body",
    [
        _status_body(),
        _status_body(batchExecutionResults=None),
        _status_body(state="InProgress", completedItemCount=1, batchExecutionResults=[]),
        _status_body(
            batchExecutionResults=[
                {
                    "success": True,
                    "errorMessage": None,
                    "consoleOutput": "hello",
                    "changedFiles": ["a.png", "b.csv"],
                    "outputParameters": {"v": [1, 2], "big": 12345678901234567890123, "x": 0.1},
                    "outputFiles": {"a.png": "iVBORw0K"},
                },
                {"success": False, "errorMessage": "", "changedFiles": None, "outputFiles": None},
            ]
        ),
        # Answers only the generic decoder reads: other key case, an extra key, a number where
        # text is expected, a count as text.
        _status_body(batchExecutionResults=[{"Success": True, "ErrorMessage": "x"}]),
        _status_body(batchExecutionResults=[{"success": True, "elapsed": 3}]),
        _status_body(batchExecutionResults=[{"success": False, "errorMessage": 42}]),
        _status_body(totalItemCount="2"),
    ],
)
def test_status_body_reads_what_the_generic_parse_reads(body: bytes) -> None:
    from airflow_provider.api import parse_batch_status_body

    direct = parse_batch_status_body(body)
    generic = parse_batch_status(decode_json(body))
    assert repr(direct) == repr(generic)


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_status_body_and_generic_parse_both_refuse_what_json_cannot_hold(value: bytes) -> None:
    """Python's decoder takes these (``1e400`` as infinity); JSON has none of them."""
    from airflow_provider.api import parse_batch_status_body

    body = (
        b'{"state": "Complete", "completedItemCount": 1, "totalItemCount": 1, '
        b'"batchExecutionResults": [{"success": true, "outputParameters": {"v": ' + value + b"}}]}"
    )
    with pytest.raises(MrsDeployProtocolError, match="not valid JSON"):
        parse_batch_status_body(body)
    with pytest.raises(MrsDeployProtocolError, match="not valid JSON"):
        decode_json(body)


@pytest.mark.parametrize(
    "body",
    [
        _status_body(state="Sleeping"),
        _status_body(completedItemCount=-1),
        _status_body(batchExecutionResults=[{"errorMessage": "no success flag"}]),
        _status_body(batchExecutionResults=[{"success": True, "outputFiles": {"a": 1}}]),
        _status_body(batchExecutionResults=[{"success": True, "changedFiles": "a.png"}]),
        b"",
        b"<html>busy</html>",
    ],
)
def test_status_body_refuses_what_the_generic_parse_refuses(body: bytes) -> None:
    from airflow_provider.api import parse_batch_status_body

    with pytest.raises(MrsDeployProtocolError) as generic:
        parse_batch_status(decode_json(body, "batch status"))
    with pytest.raises(MrsDeployProtocolError) as direct:
        parse_batch_status_body(body, "batch status")
    assert str(direct.value) == str(generic.value)


_DOCUMENTED = (
    b'{"state": "Complete", "completedItemCount": 12, "totalItemCount": 12, '
    b'"batchExecutionResults": [{"success": true, "outputParameters": {"state": "x"}}]}'
)


def test_head_scan_decides_as_soon_as_the_counts_are_in() -> None:
    from airflow_provider.api import HeadScan, scan_batch_progress

    decided_at = next(
        end
        for end in range(len(_DOCUMENTED) + 1)
        if not isinstance(scan_batch_progress(_DOCUMENTED[:end]), HeadScan)
    )
    # Every shorter start asks for more; the decision comes at the results, not after them.
    assert all(scan_batch_progress(_DOCUMENTED[:end]) is HeadScan.MORE for end in range(decided_at))
    assert decided_at == _DOCUMENTED.index(b"[") + 1  # the first byte of the results
    full = parse_batch_status(decode_json(_DOCUMENTED))
    assert scan_batch_progress(_DOCUMENTED[:decided_at]) == dataclasses.replace(full, results=())


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'{"totalItemCount": 3, "state": "InProgress", "completedItemCount": 1}', (1, 3)),
        (b'  {"state":"Pending","completedItemCount":"0","totalItemCount":"4","x":{}}', (0, 4)),
        (
            b'{"state": "Failed", "completedItemCount": 0, "totalItemCount": 2, '
            b'"errorMessage": "disk \\"full\\"", "batchExecutionResults": []}',
            (0, 2),
        ),
    ],
)
def test_head_scan_reads_documented_members_in_any_order(head: bytes, expected: Any) -> None:
    from airflow_provider.api import BatchStatus, scan_batch_progress

    status = scan_batch_progress(head)
    assert isinstance(status, BatchStatus)
    assert (status.completed_item_count, status.total_item_count) == expected


@pytest.mark.parametrize(
    "head",
    [
        b'{"State": "Complete", "completedItemCount": 1, "totalItemCount": 1, "r": []}',
        b'{"batchExecutionResults": [], "state": "Complete", "completedItemCount": 1, '
        b'"totalItemCount": 1}',
        b'{"state": "Complete", "state": "Failed", "completedItemCount": 1, "totalItemCount": 1}',
        b'{"state": "Complete", "completedItemCount": NaN, "totalItemCount": 1}',
        b'{"state": "Complete", "completedItemCount": 1}',
        b"[1, 2]",
        b"<html>",
    ],
    ids=["key-case", "results-first", "duplicate", "not-json", "missing", "array", "html"],
)
def test_head_scan_leaves_anything_else_to_the_whole_body(head: bytes) -> None:
    from airflow_provider.api import HeadScan, scan_batch_progress

    assert scan_batch_progress(head) is HeadScan.WHOLE


@pytest.mark.parametrize(
    "head",
    [b"", b"  ", b'{"state": "Compl', b'{"state": "Complete", "completedItemCount": 1', b"{"],
)
def test_head_scan_waits_for_a_value_cut_off(head: bytes) -> None:
    from airflow_provider.api import HeadScan, scan_batch_progress

    assert scan_batch_progress(head) is HeadScan.MORE


def test_head_scan_checks_values_as_the_full_parser_does() -> None:
    from airflow_provider.api import scan_batch_progress

    with pytest.raises(MrsDeployProtocolError, match="Sleeping"):
        scan_batch_progress(b'{"state": "Sleeping", "completedItemCount": 1, "totalItemCount": 1}')
    with pytest.raises(MrsDeployProtocolError, match="totalItemCount"):
        scan_batch_progress(b'{"state": "Complete", "completedItemCount": 1, "totalItemCount": -2}')


#: A batch answer with bytes UTF-8 refuses: msgspec raises UnicodeDecodeError, not DecodeError.
INVALID_UTF8 = (
    b'{"state": "Complete\xff", "completedItemCount": 1, "totalItemCount": 1, '
    b'"batchExecutionResults": [{"success": true, "errorMessage": "bad \xfe byte"}]}'
)
#: Deeper than the standard decoder recurses.
DEEP = b'{"state": "Complete", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize("parse", [parse_batch_status_body, parse_batch_progress])
@pytest.mark.parametrize("body", [INVALID_UTF8, DEEP], ids=["invalid-utf8", "deep"])
def test_answers_the_decoders_refuse_are_protocol_errors_naming_the_call(
    parse: Any, body: bytes
) -> None:
    """Both were a bare UnicodeDecodeError or RecursionError: not an error of this API, so a
    trigger reported them as unexpected and a retry policy could not tell them apart."""
    with pytest.raises(MrsDeployProtocolError, match=r"^GET /x is not valid JSON"):
        parse(body, "GET /x")


def test_an_error_answer_nested_too_deeply_is_still_an_http_error() -> None:
    """The message of a 503 is read from its body if it is JSON: one nested too deeply is no
    message, and the 503 stays a 503 (retried), not a bare RecursionError."""
    error = error_from_response(503, DEEP, "GET", "/x", {})
    assert isinstance(error, MrsDeployTransientError) and error.status_code == 503
