"""The async transport hands aiohttp an already encoded URL only when that changes nothing: the
URL on the wire is the one yarl would have made of the string, for every kind of base URL and
every request path the API builds."""

from __future__ import annotations

import pytest
from yarl import URL

from airflow_provider.api import calls
from airflow_provider.api.calls import join_url
from airflow_provider.hooks.transport_async import _wire_url

BASES = [
    "http://127.0.0.1:12800",
    "http://127.0.0.1:12800/",
    "https://gateway.example/mlserver/",
    "https://gateway.example/ml%20server",
    "https://gateway.example/ml server",  # a space in the prefix: left to yarl
    "https://exämple.com",  # a non-ASCII host: left to yarl (IDNA)
    "http://[::1]:12800",
    "HTTP://Host:80/prefix",  # scheme and host case, default port: left to yarl
]

REQUESTS = [
    calls.get_batch_file("svc", "v1", "b1", 0, "report.txt"),
    calls.get_batch_file("my service", "1.0", "b-2", 7, "plot (1).png"),
    calls.get_batch_file("sérvice", "v1", "b1", 3, "naïve%20name.csv"),
    calls.get_batch_file("svc", "v1", "b1", 0, "a?b#c.txt"),
]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r.path)
def test_the_url_on_the_wire_is_unchanged(base: str, request_: calls.ApiRequest) -> None:
    url = join_url(base, request_)
    wire = _wire_url(url, base, request_.path)
    assert str(URL(wire) if isinstance(wire, str) else wire) == str(URL(url))
    assert (URL(wire) if isinstance(wire, str) else wire).raw_path == URL(url).raw_path


def test_only_plain_paths_on_canonical_bases_skip_the_parse() -> None:
    assert isinstance(_wire_url("http://127.0.0.1:1/api/x", "http://127.0.0.1:1", "/api/x"), URL)
    assert isinstance(
        _wire_url("http://127.0.0.1:1/api/%28", "http://127.0.0.1:1", "/api/%28"), str
    )
    assert isinstance(_wire_url("https://h/ml server/api/x", "https://h/ml server", "/api/x"), str)
    assert isinstance(_wire_url("https://exämple.com/api/x", "https://exämple.com", "/api/x"), str)
