from __future__ import annotations

from types import MappingProxyType

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from requests.structures import CaseInsensitiveDict

from airflow_provider.api.headers import header_value


@pytest.mark.parametrize(
    "headers",
    [
        {"content-length": "12", "ETag": '"v1"'},
        MappingProxyType({"CONTENT-LENGTH": "12", "etag": '"v1"'}),
        CIMultiDictProxy(CIMultiDict({"Content-Length": "12", "Etag": '"v1"'})),
        CIMultiDict({"content-LENGTH": "12", "ETAG": '"v1"'}),
        CaseInsensitiveDict({"Content-length": "12", "eTag": '"v1"'}),
    ],
    ids=["dict", "mapping", "aiohttp", "multidict", "requests"],
)
def test_any_spelling_is_found_in_any_mapping(headers) -> None:
    assert header_value(headers, "Content-Length") == "12"
    assert header_value(headers, "etag") == '"v1"'
    assert header_value(headers, "Last-Modified") is None


def test_an_exact_spelling_wins_over_a_scan() -> None:
    assert header_value({"Retry-After": "5"}, "Retry-After") == "5"
    assert header_value({}, "Retry-After") is None
