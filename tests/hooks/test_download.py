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


def test_weak_etag_is_not_used_for_if_range() -> None:
    identity = FileIdentity.of({**FILE, "ETag": 'W/"abc"'})
    assert identity.resume_headers(1)["If-Range"] == FILE["Last-Modified"]


def test_without_validators_only_the_range_is_asked() -> None:
    assert FileIdentity.of({"Content-Length": "10"}).resume_headers(5) == {"Range": "bytes=5-"}


def test_compressed_body_is_downloaded_again_not_ranged() -> None:
    identity = FileIdentity.of({**FILE, "Content-Encoding": "gzip"})
    assert identity.length is None  # the announced length counts compressed bytes
    assert identity.resume_headers(400) == {}


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        (FILE, True),
        ({"Content-Length": "1000"}, True),
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
        (None, "asked to resume at byte 400"),
    ],
)
def test_range_answer_must_continue_the_file(
    content_range: str | None, problem: str | None
) -> None:
    headers = {} if content_range is None else {"Content-Range": content_range}
    found = ResumeState._range_problem(headers, 400, FileIdentity.of(FILE))
    assert found is None if problem is None else (found is not None and problem in found)
