"""The proxy the environment names for a URL, decided once per URL and environment.

The blocking session (requests) reads ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY`` and
``NO_PROXY`` for every request. aiohttp, asked to trust the environment, does the same lookup
in a worker thread for every request: a thread hand-off that cost a collect about a third of
its client CPU per file. The async transport instead asks this module, which applies requests'
own rules (so both paths route alike) and remembers the answer for as long as those variables
keep their values.
"""

from __future__ import annotations

import functools
import os
from urllib.parse import urlsplit

import requests.utils

#: The variables the answer depends on (requests reads both spellings).
_VARIABLES = tuple(
    spelling
    for name in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
    for spelling in (name, name.upper())
)


def environment_proxy(url: str) -> str | None:
    """The proxy requests would use for ``url`` from the environment, or None for direct."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return _proxy_for(origin, tuple(os.environ.get(name) for name in _VARIABLES))


@functools.lru_cache(maxsize=256)
def _proxy_for(origin: str, environment: tuple[str | None, ...]) -> str | None:
    """``environment`` is the key only: the lookup reads the variables themselves."""
    proxies = requests.utils.get_environ_proxies(origin)
    return requests.utils.select_proxy(origin, proxies) or None
