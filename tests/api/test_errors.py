"""Error class selection, message extraction and Retry-After parsing."""

from __future__ import annotations

import json
import pickle
from email.utils import formatdate

import pytest
from airflow.exceptions import AirflowException

from airflow_provider.api import (
    MrsDeployApiError,
    MrsDeployAuthError,
    MrsDeployBadRequestError,
    MrsDeployConnectionError,
    MrsDeployError,
    MrsDeployNotFoundError,
    MrsDeployServerError,
    MrsDeployTransientError,
    error_from_response,
    parse_retry_after,
)

PATH = "/api/mtService/v1.0.0/batch"


def _body(message: str, **extra: object) -> bytes:
    return json.dumps({"code": 400, "message": message, **extra}).encode()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, MrsDeployBadRequestError),
        (401, MrsDeployAuthError),
        (403, MrsDeployAuthError),
        (404, MrsDeployNotFoundError),
        (408, MrsDeployTransientError),
        (409, MrsDeployBadRequestError),
        (413, MrsDeployBadRequestError),
        (422, MrsDeployBadRequestError),
        (429, MrsDeployTransientError),
        (500, MrsDeployServerError),
        (501, MrsDeployServerError),
        (502, MrsDeployTransientError),
        (503, MrsDeployTransientError),
        (504, MrsDeployTransientError),
        (599, MrsDeployServerError),
    ],
)
def test_error_class_follows_status(status: int, cls: type[MrsDeployApiError]) -> None:
    error = error_from_response(status, _body("nope"), "POST", PATH, {})
    assert type(error) is cls
    assert error.status_code == status
    assert isinstance(error, MrsDeployError)


def test_provider_errors_are_plain_exceptions_not_airflow_exceptions() -> None:
    """Any exception fails a task; the wire protocol does not depend on Airflow for its base."""
    assert MrsDeployError.__mro__[1] is Exception
    assert not issubclass(MrsDeployError, AirflowException)


def test_message_and_request_in_str() -> None:
    body = _body("Input 'hp' is missing", exceptionType="ArgumentException")
    error = error_from_response(400, body, "POST", PATH, {})
    assert error.message == "Input 'hp' is missing"
    assert error.exception_type == "ArgumentException"
    assert error.method == "POST"
    assert error.path == PATH
    assert str(error) == f"POST {PATH} -> 400: Input 'hp' is missing"


def test_capitalised_message_key() -> None:
    body = json.dumps({"Message": "An error has occurred."}).encode()
    assert error_from_response(500, body, "GET", "/services", {}).message == (
        "An error has occurred."
    )


def test_non_json_body_is_truncated_text() -> None:
    body = b"<html>" + b"x" * 2000 + b"</html>"
    error = error_from_response(502, body, "GET", "/services", {})
    assert error.message.startswith("<html>xxx")
    assert len(error.message) <= 510


def test_empty_body_still_has_a_message() -> None:
    error = error_from_response(503, b"", "GET", "/services", {})
    assert "503" in error.message


def test_retry_after_seconds_from_headers_any_case() -> None:
    error = error_from_response(429, b"", "GET", "/services", {"retry-after": "2"})
    assert error.retry_after == 2.0
    error = error_from_response(503, b"", "GET", "/services", {"Retry-After": "1.5"})
    assert error.retry_after == 1.5
    assert error_from_response(503, b"", "GET", "/services", {}).retry_after is None


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    header = formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)
    error = error_from_response(503, b"", "GET", "/x", {"Retry-After": header}, now=now)
    assert error.retry_after == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", 0.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("nan", None),
        (formatdate(1_000.0, usegmt=True), 0.0),  # a date in the past
    ],
)
def test_retry_after_edge_cases(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=1_700_000_000.0) == expected


def test_errors_survive_pickling() -> None:
    error = error_from_response(429, _body("slow down"), "GET", "/services", {"Retry-After": "3"})
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is MrsDeployTransientError
    assert (copy.status_code, copy.message, copy.retry_after, copy.path) == (
        429,
        "slow down",
        3.0,
        "/services",
    )
    conn_error = MrsDeployConnectionError("refused", method="GET", path="/x", retryable=False)
    conn_copy = pickle.loads(pickle.dumps(conn_error))
    assert str(conn_copy) == "GET /x -> refused"
    assert conn_copy.retryable is False
