"""The certificates a connection trusts: decided once, built the same way for both transports.

Left to themselves, the two HTTP libraries trust different things: requests verifies with
certifi's bundle (or the file ``REQUESTS_CA_BUNDLE`` names), aiohttp with OpenSSL's default
store (which ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` move). A worker and a triggerer would then
accept different servers, and a CA setting that cannot be read would fail with a different raw
``OSError`` on each path. Here :func:`ca_source` decides where the CAs come from, once per
connection, and :func:`verifying_context` builds an ``ssl.SSLContext`` from that one source for
either transport: both accept or refuse the same certificate, and a CA file or directory that
cannot be used fails on both with the same :class:`MrsDeployConfigurationError`, before any
request is sent.
"""

from __future__ import annotations

import functools
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from airflow_provider.api.errors import MrsDeployConfigurationError
from airflow_provider.api.identifiers import shown

#: Variables naming a CA bundle that replaces the system store, read (in this order) when the
#: connection trusts the environment (``trust_env``), as requests reads them.
ENVIRONMENT_BUNDLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

#: Which transport a context is for: urllib3 sets attributes of the context it is given
#: (``verify_mode``, sometimes ``check_hostname``), so the two transports never share one.
REQUESTS = "requests"
AIOHTTP = "aiohttp"

#: Characters of a path kept in a message (a path is no secret, and a cut one is useless).
SHOWN_PATH_CHARS = 500

#: A certificate's file name in a CA directory (OpenSSL's hashed layout: ``5ed36f99.0``).
_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")


@dataclass(frozen=True)
class CaSource:
    """Where the CA certificates that verify the server come from.

    :param path: a PEM bundle or a CA directory in OpenSSL's hashed layout (``openssl rehash``);
        None for the system store (OpenSSL's default, which ``SSL_CERT_FILE`` and
        ``SSL_CERT_DIR`` move).
    :param named_by: what named ``path``, for messages: ``connection extra 'ca_bundle'``,
        ``environment variable 'REQUESTS_CA_BUNDLE'``...
    """

    path: str | None = None
    named_by: str = "the system store"


#: The system store.
SYSTEM_STORE = CaSource()


def ca_source(
    verify: bool | str,
    extra: str,
    *,
    trust_env: bool,
    environ: Mapping[str, str] | None = None,
) -> CaSource | None:
    """Where a connection's CAs come from; None when verification is off.

    A path in the connection wins; then, when the connection trusts the environment, a bundle
    named by :data:`ENVIRONMENT_BUNDLES` (requests' rule, kept so that a deployment setting
    ``REQUESTS_CA_BUNDLE`` for its workers gets the same trust in its triggerer); otherwise the
    system store.

    :param verify: the connection's ``verify``: True, False or a CA path.
    :param extra: the extra that named the path (``verify`` or ``ca_bundle``).
    :param trust_env: whether the connection reads the environment.
    :param environ: the environment; ``os.environ`` when None.
    """
    if verify is False:
        return None
    if isinstance(verify, str):
        return CaSource(verify, f"connection extra {extra!r}")
    if trust_env:
        environment = os.environ if environ is None else environ
        for name in ENVIRONMENT_BUNDLES:
            if environment.get(name):
                return CaSource(environment[name], f"environment variable {name!r}")
    return SYSTEM_STORE


def speaks_tls(base_url: str) -> bool:
    """Whether the server at ``base_url`` is reached over TLS (an ``https`` URL)."""
    return base_url.lower().startswith("https:")


def verifying_context(source: CaSource, purpose: str) -> ssl.SSLContext:
    """An SSL context verifying certificates and host names against ``source`` alone.

    Built once per source and transport while the files stay the same (a context loads the
    whole bundle, some 20 ms for a system store), and built again when they change (their
    modification time, size or inode), so a renewed bundle is picked up by the next session.
    Blocking: the async transport calls it in a worker thread.

    :param source: from :func:`ca_source`.
    :param purpose: :data:`REQUESTS` or :data:`AIOHTTP`.
    :raises MrsDeployConfigurationError: when the path is missing, unreadable, holds no
        certificate, or is a directory without certificates in OpenSSL's hashed layout; the
        message names what named the path, and the path.
    """
    return _cached_context(source, _signature(source), purpose)


def _signature(source: CaSource) -> tuple[object, ...]:
    """What tells whether the files behind ``source`` changed since a context was built.

    :raises MrsDeployConfigurationError: when a path the connection names cannot be looked at
        (the system store's files may be missing: OpenSSL then trusts nothing from them).
    """
    if source.path is None:
        return tuple(_stamp(path) for path in _system_store_paths())
    try:
        return _stamp(source.path, missing_ok=False)
    except (OSError, ValueError) as err:
        raise _unusable(source, _reason(err)) from None


def _system_store_paths() -> tuple[str, str]:
    """OpenSSL's default CA file and directory, as ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` move
    them (read as OpenSSL reads them, whether they exist or not)."""
    defaults = ssl.get_default_verify_paths()
    return (
        os.environ.get(defaults.openssl_cafile_env, defaults.openssl_cafile),
        os.environ.get(defaults.openssl_capath_env, defaults.openssl_capath),
    )


def _stamp(path: str, *, missing_ok: bool = True) -> tuple[object, ...]:
    """The path, its inode, modification time and size (only the path when it is missing and
    ``missing_ok``): a file replaced or rewritten gets another stamp."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        if missing_ok:
            return (path,)
        raise
    return (path, status.st_ino, status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=32)
def _cached_context(
    source: CaSource, signature: tuple[object, ...], purpose: str
) -> ssl.SSLContext:
    """The context of ``source`` as its files were at ``signature`` (see :func:`_signature`);
    ``purpose`` is part of the cache key only, so each transport has a context of its own."""
    del signature, purpose
    if source.path is None:
        return ssl.create_default_context()
    if os.path.isdir(source.path):
        _check_directory(source, source.path)
        return ssl.create_default_context(capath=source.path)
    try:
        return ssl.create_default_context(cafile=source.path)
    except ssl.SSLError:  # before OSError: it is one
        raise _unusable(source, "holds no PEM certificate") from None
    except (OSError, ValueError) as err:
        raise _unusable(source, _reason(err)) from None


def _check_directory(source: CaSource, path: str) -> None:
    """Refuse a directory OpenSSL would find no certificate in.

    OpenSSL reads a CA directory only during a handshake, looking for files named after each
    issuer's hash, and silently finds nothing in an unreadable directory or one of plainly
    named files: every server would then be refused with a verification error that says
    nothing of the directory. Said here instead, before anything is sent.
    """
    try:
        names = os.listdir(path)
    except OSError as err:
        raise _unusable(source, _reason(err)) from None
    if not any(_HASHED_NAME.fullmatch(name) for name in names):
        raise _unusable(
            source,
            "is a directory without certificates in OpenSSL's hashed layout (files named "
            "like '5ed36f99.0'); run 'openssl rehash' on it, or give a PEM bundle file instead",
        )


def _reason(err: BaseException) -> str:
    """Why a path could not be used, in words (without the path, which the message shows)."""
    if isinstance(err, FileNotFoundError):
        return "does not exist on this machine (the workers and the triggerer both need it)"
    if isinstance(err, PermissionError):
        return "cannot be read by this process (permission denied)"
    if isinstance(err, ValueError):
        return "is not a usable path (it holds a NUL character)"
    detail = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
    return f"cannot be read: {detail}"


def _unusable(source: CaSource, reason: str) -> MrsDeployConfigurationError:
    return MrsDeployConfigurationError(
        f"{source.named_by}: the CA bundle {shown(source.path, SHOWN_PATH_CHARS)} {reason}"
    )
