"""Retries against injected 429/503 answers with ``Retry-After``, and connection failures."""

from __future__ import annotations

import socket

import pytest

from airflow_provider.api import (
    MrsDeployConnectionError,
    MrsDeployTransientError,
)
from airflow_provider.hooks import MrsDeployHook
from tests.hooks.helpers import MT, HookFactory, encode, http_faults_left, wait_terminal
from tests.support.server import ReferenceServer


def test_429_and_503_are_retried_after_retry_after(
    hook: MrsDeployHook, reference_server: ReferenceServer
) -> None:
    hook.list_services()  # log in first, so the faults hit the call itself
    faults = [
        {"status": 429, "count": 1, "retryAfter": 1, "pathRegex": "^/services/mtService"},
        {"status": 503, "count": 1, "retryAfter": 1, "pathRegex": "^/services/mtService"},
    ]
    with reference_server.faults(httpErrors=faults):
        assert http_faults_left(reference_server) == [1, 1]
        assert hook.get_service(*MT).name == "mtService"
        assert http_faults_left(reference_server) == [0, 0]  # both were served, then retried


def test_retries_are_bounded(reference_server: ReferenceServer, make_hook: HookFactory) -> None:
    hook = make_hook(reference_server, max_retries=1)
    hook.list_services()
    fault = {"status": 503, "count": 5, "retryAfter": 0, "pathRegex": "^/services/mtService"}
    with reference_server.faults(httpErrors=[fault]):
        with pytest.raises(MrsDeployTransientError) as info:
            hook.get_service(*MT)
        assert http_faults_left(reference_server) == [3]  # the first try and one retry
        assert info.value.status_code == 503
        assert info.value.retry_after == 0
        assert info.value.path == "/services/mtService/v1.0.0"


def test_no_retry_when_disabled(reference_server: ReferenceServer, make_hook: HookFactory) -> None:
    hook = make_hook(reference_server, extra={"max_retries": 0})
    hook.list_services()
    fault = {"status": 429, "count": 1, "retryAfter": 1, "pathRegex": "^/services/mtService"}
    with reference_server.faults(httpErrors=[fault]):
        with pytest.raises(MrsDeployTransientError):
            hook.get_service(*MT)
        assert http_faults_left(reference_server) == [0]


def test_throttled_batch_start_is_resent_and_starts_one_batch(
    hook: MrsDeployHook, reference_server: ReferenceServer
) -> None:
    before = set(hook.list_batches(*MT))
    fault = {"status": 429, "count": 1, "retryAfter": 1, "method": "POST", "pathRegex": "/batch$"}
    with reference_server.faults(httpErrors=[fault]):
        batch_id = hook.start_batch(*MT, encode([{"hp": 120, "wt": 2.8}]))
        assert http_faults_left(reference_server) == [0]
    assert set(hook.list_batches(*MT)) - before == {batch_id}
    wait_terminal(hook, MT, batch_id)
    hook.cancel_batch(*MT, batch_id)


def test_connection_refused(reference_server: ReferenceServer, make_hook: HookFactory) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hook = make_hook(reference_server, port=port, max_retries=1)
    with pytest.raises(MrsDeployConnectionError, match="connection to") as info:
        hook.list_services()
    assert info.value.may_have_been_sent is False
    assert info.value.path == "/login"
    ok, message = hook.test_connection()
    assert not ok and str(port) in message


def test_reading_a_batchs_results_shares_one_retry_budget(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    """The read retries an answer that breaks part-way; the call inside it retried too, so a
    server answering 503 was asked (retries + 1) squared times."""
    hook = make_hook(reference_server, max_retries=2)
    batch_id = hook.start_batch(*MT, encode([{"hp": 110, "wt": 2.62}]))
    wait_terminal(hook, MT, batch_id)
    fault = {"status": 503, "count": 20, "retryAfter": 0, "pathRegex": f"/batch/{batch_id}$"}
    with reference_server.faults(httpErrors=[fault]):
        with pytest.raises(MrsDeployTransientError):
            hook.read_batch_results(*MT, batch_id, lambda rows: None)
        assert http_faults_left(reference_server) == [17]  # the first try and two retries
    taken: list[object] = []
    hook.read_batch_results(*MT, batch_id, taken.extend)
    assert len(taken) == 1
