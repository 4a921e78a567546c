"""How a resumed download decides what to ask for and whether an answer continues the file.

The downloads themselves run over real HTTP in ``tests/faults/test_download_resume.py`` and
``tests/faults/test_download_variants.py``; these are the pure decisions behind them.
"""

from __future__ import annotations

import pytest

from airflow_provider.hooks.download import FileIdentity, ResumeState

FILE = {"Content-Length": "1000", "ETag": '"abc"', "Last-Modified": "Wed, 21 Oct 2026 07:28:00 GMT"}


def test_resume_asks_for_the_rest_if_unchanged() -> None:
    identity = FileIdentity.of(FILE)
    assert identity.length == 1000
    assert identity.resume_headers(400) == {"Range": "bytes=400-", "If-Range": '"abc"'}


def test_without_a_length_the_last_byte_delivered_is_asked_again() -> None:
    """It is checked, and a file complete when the connection broke is answered with a range
    naming its total rather than a 416."""
    identity = FileIdentity.of({"ETag": '"abc"'})
    assert identity.resume_headers(400) == {"Range": "bytes=399-", "If-Range": '"abc"'}
    assert identity.resume_headers(0) == {"Range": "bytes=0-", "If-Range": '"abc"'}


def test_weak_etag_is_not_used_for_if_range() -> None:
    identity = FileIdentity.of({**FILE, "ETag": 'W/"abc"'})
    assert identity.resume_headers(1)["If-Range"] == FILE["Last-Modified"]


@pytest.mark.parametrize("etag", [None, 'W/"abc"'])
def test_without_a_strong_validator_no_range_is_asked(etag: str | None) -> None:
    """A range could come from another version: the whole file is asked for again."""
    headers = {"Content-Length": "10"} if etag is None else {"Content-Length": "10", "ETag": etag}
    assert FileIdentity.of(headers).resume_headers(5) == {}


def test_compressed_body_is_downloaded_again_not_ranged() -> None:
    identity = FileIdentity.of({**FILE, "Content-Encoding": "gzip"})
    assert identity.length is None  # the announced length counts compressed bytes
    assert identity.resume_headers(400) == {}


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        (FILE, True),
        ({**FILE, "Last-Modified": ""}, False),
        ({"ETag": FILE["ETag"], "Content-Length": "1000"}, True),
        ({"Content-Length": "1000", "Last-Modified": FILE["Last-Modified"]}, False),
        ({**FILE, "ETag": '"other"'}, False),
        ({**FILE, "Last-Modified": "Thu, 22 Oct 2026 07:28:00 GMT"}, False),
        ({**FILE, "Content-Length": "999"}, False),
    ],
)
def test_same_file(headers: dict[str, str], same: bool) -> None:
    assert FileIdentity.of(FILE).same_file(headers) is same


@pytest.mark.parametrize(
    ("content_range", "problem"),
    [
        ("bytes 400-999/1000", None),
        ("bytes 400-999/*", None),
        ("bytes 0-999/1000", "asked to resume at byte 400"),
        ("bytes 400-1199/1200", "size changed from 1000 to 1200"),
        ("bytes 400-399/1000", "impossible range"),
        ("bytes 400-1000/1000", "impossible range"),
        (None, "asked to resume at byte 400"),
    ],
)
def test_range_answer_must_continue_the_file(
    content_range: str | None, problem: str | None
) -> None:
    headers = {"ETag": FILE["ETag"]}
    if content_range is not None:
        headers["Content-Range"] = content_range
    found = ResumeState._range_problem(headers, 400, FileIdentity.of(FILE))
    assert found is None if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("validators", "problem"),
    [
        ({}, "has no ETag"),
        ({"ETag": FILE["ETag"]}, None),
        ({"ETag": FILE["ETag"], "Last-Modified": FILE["Last-Modified"]}, None),
        ({"ETag": '"other"'}, "changed on the server"),
        ({"ETag": 'W/"abc"'}, "changed on the server"),
        ({"ETag": FILE["ETag"], "Last-Modified": "Thu, 22 Oct 2026 07:28:00 GMT"}, "changed"),
        ({"Last-Modified": FILE["Last-Modified"]}, "has no ETag"),
    ],
)
def test_range_answer_must_be_the_same_version(
    validators: dict[str, str], problem: str | None
) -> None:
    """A server that ignores ``If-Range`` answers a range of its current version."""
    headers = {"Content-Range": "bytes 400-999/1000", **validators}
    found = ResumeState._range_problem(headers, 400, FileIdentity.of(FILE))
    assert found is None if problem is None else (found is not None and problem in found)
