"""Request builders: method, path, query, body and how to read the answer."""

from __future__ import annotations

import pytest

from airflow_provider.api import (
    ApiRequest,
    MrsDeployConfigurationError,
    calls,
    join_url,
)

SVC = "/api/mtService/v1.0.0"


def test_login_is_unauthenticated_and_hides_password() -> None:
    request = calls.login("admin", "Pa55w.rd-secret")
    assert (request.method, request.path, request.authenticated) == ("POST", "/login", False)
    assert request.json == {"username": "admin", "password": "Pa55w.rd-secret"}
    assert "Pa55w.rd-secret" not in repr(request)
    assert request.describe == "POST /login"


def test_refresh_and_revoke() -> None:
    request = calls.refresh("ref-token-value")
    assert (request.method, request.path, request.authenticated) == (
        "POST",
        "/login/refreshToken",
        False,
    )
    assert request.json == {"refreshToken": "ref-token-value"}
    request = calls.revoke("ref-token-value")
    assert (request.method, request.path, request.expect) == (
        "DELETE",
        "/login/refreshToken",
        "none",
    )
    assert request.params == {"refreshToken": "ref-token-value"}
    assert "ref-token-value" not in repr(request)
    assert "ref-token-value" not in request.describe


def test_service_calls() -> None:
    assert calls.list_services() == ApiRequest("GET", "/services")
    assert calls.get_service("mtService", "v1.0.0").path == "/services/mtService/v1.0.0"
    assert calls.get_swagger("mtService", "v1.0.0").path == f"{SVC}/swagger.json"
    request = calls.consume("mtService", "v1.0.0", {"hp": 120, "wt": 2.8})
    assert (request.method, request.path, request.json) == ("POST", SVC, {"hp": 120, "wt": 2.8})
    assert request.authenticated and request.expect == "json"


def test_start_batch_has_no_json_body_but_a_content_type() -> None:
    request = calls.start_batch("mtService", "v1.0.0", 10)
    assert (request.method, request.path) == ("POST", f"{SVC}/batch")
    assert request.params == {"parallelCount": "10"}
    assert request.json is None
    assert request.content_type == "application/json"
    assert request.idempotent is False


@pytest.mark.parametrize("count", [0, -1, True, 2.5])
def test_start_batch_rejects_bad_parallel_count(count: object) -> None:
    with pytest.raises(MrsDeployConfigurationError):
        calls.start_batch("mtService", "v1.0.0", count)  # type: ignore[arg-type]


def test_batch_calls() -> None:
    assert calls.list_batches("mtService", "v1.0.0") == ApiRequest("GET", f"{SVC}/batch")
    request = calls.get_batch("mtService", "v1.0.0", "b-1", show_partial_results=True)
    assert request.path == f"{SVC}/batch/b-1"
    assert request.params == {"showPartialResults": "true"}
    assert calls.get_batch("mtService", "v1.0.0", "b-1", False).params == {
        "showPartialResults": "false"
    }
    request = calls.cancel_batch("mtService", "v1.0.0", "b-1")
    assert (request.method, request.path, request.expect) == ("DELETE", f"{SVC}/batch/b-1", "none")
    request = calls.list_batch_files("mtService", "v1.0.0", "b-1", 0)
    assert request.path == f"{SVC}/batch/b-1/0/files"
    request = calls.get_batch_file("mtService", "v1.0.0", "b-1", 3, "plot.png")
    assert request.path == f"{SVC}/batch/b-1/3/files/plot.png"
    assert request.stream and request.expect == "bytes"


def test_segments_are_quoted() -> None:
    request = calls.get_batch_file("my service", "v1/2", "id?x", 0, "../etc/passwd")
    assert request.path == ("/api/my%20service/v1%2F2/batch/id%3Fx/0/files/..%2Fetc%2Fpasswd")


@pytest.mark.parametrize("index", [-1, True, "0"])
def test_bad_index(index: object) -> None:
    with pytest.raises(MrsDeployConfigurationError):
        calls.list_batch_files("s", "v", "b", index)  # type: ignore[arg-type]


def test_empty_segment_rejected() -> None:
    with pytest.raises(MrsDeployConfigurationError, match="service name"):
        calls.get_service("", "v1")


def test_join_url_keeps_prefix() -> None:
    request = calls.list_services()
    assert join_url("http://127.0.0.1:12800", request) == "http://127.0.0.1:12800/services"
    assert join_url("https://gw/mlserver/", request) == "https://gw/mlserver/services"


@pytest.mark.parametrize(
    "names",
    [
        (["svc"], "v1", "b1"),  # unhashable: the path cache must not turn it into a TypeError
        ("svc", 1, "b1"),
        ("svc", "v1", ".."),
        ("svc", "v1", ""),
    ],
)
def test_refused_batch_path_values_are_refused_every_time(names: tuple[object, ...]) -> None:
    for _ in range(2):  # the second time too: a refusal is never remembered as a path
        with pytest.raises(MrsDeployConfigurationError):
            calls.get_batch_file(*names, 0, "a.txt")  # type: ignore[arg-type]


def test_a_remembered_batch_path_is_the_same_path() -> None:
    first = calls.get_batch_file("svc name", "v1", "b-1", 3, "a b.txt").path
    assert calls.get_batch_file("svc name", "v1", "b-1", 3, "a b.txt").path == first
    assert calls.get_batch_file("svc name", "v1", "b-2", 3, "a b.txt").path != first
