"""Token cache, request bodies and the retry policy (pure parts of the hook)."""

from __future__ import annotations

import logging

import pytest

from airflow_provider.api import (
    MrsDeployConnectionError,
    MrsDeployError,
    TokenPair,
    error_from_response,
)
from airflow_provider.hooks.body import RequestBody, request_body
from airflow_provider.hooks.retry import MAX_RETRY_AFTER, RetryPolicy
from airflow_provider.hooks.tokens import TokenCache

POLICY = RetryPolicy(max_retries=3, min_wait=1.0, max_wait=8.0, log=logging.getLogger("t"))


def test_token_cache_refresh_window() -> None:
    cache = TokenCache(refresh_lead=300)
    assert cache.usable_token(now=0) is None
    cache.store(TokenPair("access-token", "refresh-token", expires_on=3600), now=0)
    assert cache.usable_token(now=3000) == "access-token"
    assert cache.usable_token(now=3301) is None
    assert cache.refresh_token() == "refresh-token"
    cache.clear()
    assert cache.usable_token(now=0) is None and cache.refresh_token() is None


def test_token_cache_short_lived_tokens_last_half_their_life() -> None:
    cache = TokenCache(refresh_lead=300)
    cache.store(TokenPair("access-token", None, expires_on=110), now=100)
    assert cache.usable_token(now=104) == "access-token"
    assert cache.usable_token(now=106) is None


def _joined(body: RequestBody) -> bytes:
    produced = body.open()
    return produced if isinstance(produced, bytes) else b"".join(produced)


def test_bytes_body_is_replayable() -> None:
    body = request_body(b"[]")
    assert body.replayable
    assert body.open() == b"[]" and body.open() == b"[]"


def test_callable_body_gives_fresh_chunks() -> None:
    body = request_body(lambda: iter([b"[", b"{}", b"]"]))
    assert body.replayable
    assert _joined(body) == b"[{}]"
    assert _joined(body) == b"[{}]"


def test_one_shot_iterable_body() -> None:
    body = request_body(chunk for chunk in [b"[", b"]"])
    assert not body.replayable
    assert _joined(body) == b"[]"
    with pytest.raises(MrsDeployError, match="one-shot"):
        body.open()


def test_body_rejects_text() -> None:
    with pytest.raises(MrsDeployError, match="bytes"):
        request_body("[]")  # type: ignore[arg-type]
    with pytest.raises(MrsDeployError, match="bytes"):
        _joined(request_body(lambda: ["[]"]))  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (413, False),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_which_statuses_are_retried(status: int, retried: bool) -> None:
    error = error_from_response(status, b"", "GET", "/services", {})
    assert POLICY.should_retry(error) is retried


def test_batch_start_is_only_retried_when_the_server_did_not_act() -> None:
    def error(status: int) -> Exception:
        return error_from_response(status, b"", "POST", "/api/s/v/batch", {})

    assert POLICY.should_retry(error(429), idempotent=False)
    assert POLICY.should_retry(error(503), idempotent=False)
    assert not POLICY.should_retry(error(500), idempotent=False)
    assert not POLICY.should_retry(error(504), idempotent=False)
    refused = MrsDeployConnectionError("refused", may_have_been_sent=False)
    reset = MrsDeployConnectionError("reset", may_have_been_sent=True)
    assert POLICY.should_retry(refused, idempotent=False)
    assert not POLICY.should_retry(reset, idempotent=False)
    assert POLICY.should_retry(reset, idempotent=True)


def test_tls_failures_and_other_errors_are_not_retried() -> None:
    assert not POLICY.should_retry(MrsDeployConnectionError("bad cert", retryable=False))
    assert not POLICY.should_retry(ValueError("bug"))


def test_wait_honours_retry_after_with_a_cap() -> None:
    def error(value: str) -> Exception:
        return error_from_response(503, b"", "GET", "/x", {"Retry-After": value})

    assert POLICY.wait_seconds(error("2"), attempt=1) == 2.0
    assert POLICY.wait_seconds(error("0"), attempt=1) == 0.0
    assert POLICY.wait_seconds(error("100000"), attempt=1) == MAX_RETRY_AFTER


def test_backoff_is_jittered_and_bounded() -> None:
    error = error_from_response(502, b"", "GET", "/x", {})
    waits = [POLICY.wait_seconds(error, attempt) for attempt in range(1, 8) for _ in range(20)]
    assert all(1.0 <= wait <= 8.0 for wait in waits)
    assert len(set(waits)) > 10
