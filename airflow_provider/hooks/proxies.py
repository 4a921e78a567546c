"""The proxy the environment names for a URL, decided once per URL and environment.

The blocking session (requests) reads ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY`` and
``NO_PROXY`` for every request. aiohttp, asked to trust the environment, does the same lookup
in a worker thread for every request: a thread hand-off that cost a collect about a third of
its client CPU per file. The async transport instead asks this module, which applies requests'
own rules (so both paths route alike) and remembers the answer for as long as those variables
keep their values.

A connection may instead name its own proxy (the ``proxy`` and ``no_proxy`` extras, in
:class:`~airflow_provider.hooks.settings.TransportConfig`): :func:`route` is then the one
decision, for both transports and for the requests of Azure AD's token endpoint alike, and the
environment's proxy variables are not read.
"""

from __future__ import annotations

import functools
import os
from urllib.parse import urlsplit

import requests.utils

from airflow_provider.api.errors import MrsDeployConnectionError
from airflow_provider.hooks.settings import TransportConfig, shown_proxy

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


def route(config: TransportConfig, url: str) -> str | None:
    """The proxy a request to ``url`` goes through, or None for straight to it.

    :param config: the connection's transport configuration.
    :param url: where the request goes (only its scheme, host and port matter).
    """
    if config.proxy is not None:
        parts = urlsplit(url)
        return _own_proxy(f"{parts.scheme}://{parts.netloc}", config.proxy, config.no_proxy)
    return environment_proxy(url) if config.trust_env else None


def requests_proxies(config: TransportConfig, url: str) -> dict[str, str | None] | None:
    """``proxies=`` for a requests call to ``url``; None leaves the choice to requests (the
    environment's variables, as the session's ``trust_env`` says).

    With a proxy of the connection's own, both schemes are always named, None for "direct":
    requests would otherwise fill a missing one from the environment.
    """
    if config.proxy is None:
        return None
    chosen = route(config, url)
    return {"http": chosen, "https": chosen}


@functools.lru_cache(maxsize=256)
def _own_proxy(origin: str, proxy: str, no_proxy: tuple[str, ...]) -> str | None:
    if no_proxy and requests.utils.should_bypass_proxies(origin, no_proxy=",".join(no_proxy)):
        return None
    return proxy


def proxy_failed(
    config: TransportConfig,
    url: str,
    method: str,
    path: str,
    detail: str,
    *,
    retryable: bool = True,
) -> MrsDeployConnectionError | None:
    """The error for a request the connection's proxy refused or could not carry, naming the
    proxy (without its credentials); None when the request went straight to the server.

    :param config: the connection's transport configuration.
    :param url: the request's URL.
    :param method: request method.
    :param path: request path.
    :param detail: what the HTTP library said (already scrubbed).
    :param retryable: False when the proxy answered a refusal (403, 407): waiting will not
        change its mind.
    """
    proxy = route(config, url)
    if proxy is None:
        return None
    parts = urlsplit(url)
    return MrsDeployConnectionError(
        f"the proxy {shown_proxy(proxy)} did not carry the request to "
        f"{parts.scheme}://{parts.netloc}: {detail}; check the connection's 'proxy' extra "
        "(or HTTPS_PROXY / HTTP_PROXY) and the proxy's credentials",
        method=method,
        path=path,
        retryable=retryable,
        may_have_been_sent=False,
    )


#: The status only a proxy answers: it wants credentials the request did not carry.
PROXY_AUTHENTICATION_REQUIRED = 407
