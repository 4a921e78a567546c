"""TLS trust: the blocking and the async path accept and refuse the same certificates.

Each case runs against a real HTTPS reference server on 127.0.0.1 whose certificate (its own
CA) is made for the test, once per path: the system store (moved with ``SSL_CERT_FILE``), the
``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` variables, a ``ca_bundle`` file, a CA directory,
and ``verify: false``. A CA setting that cannot be used fails alike on both paths, with
:class:`MrsDeployConfigurationError` naming the extra (or variable) and the path, before
anything is sent, and is not taken for a transient failure by a wait.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.api import (
    MrsDeployConfigurationError,
    MrsDeployConnectionError,
    MrsDeployNotFoundError,
)
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.waiting.progress import is_transient_poll_error
from tests.faults.tls import TlsServer
from tests.hooks.both_paths import (
    BATCH,
    PATHS,
    SERVICE,
    VERSION,
    HookMaker,
    assert_nothing_connected,
    connection_maker,
    poll,
    silent_listener,
)
from tests.support.certificates import self_signed

PASSWORD = "tls-trust-password"
ACCEPTED, REFUSED = "accepted", "refused"
BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    with TlsServer(tmp_path_factory.mktemp("tls-trust"), PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA certificate that did not sign the server's."""
    cert, _ = self_signed(tmp_path_factory.mktemp("stranger"), common_name="another CA")
    return cert


@pytest.fixture(autouse=True)
def system_store(monkeypatch: pytest.MonkeyPatch, stranger: Path, tmp_path: Path) -> None:
    """A system store that trusts only ``stranger``, and no requests variables: whatever a
    case trusts, it sets itself (the machine's own store and variables vary)."""
    for name in BUNDLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty-system-dir"
    empty.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(stranger))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))


@pytest.fixture
def make(monkeypatch: pytest.MonkeyPatch, https_server: TlsServer) -> HookMaker:
    """Hooks on the HTTPS server (``make(extra={...})``)."""
    maker = connection_maker(monkeypatch)

    def make_hook(**kwargs: Any) -> MrsDeployHook:
        return maker(host=f"https://127.0.0.1:{https_server.port}", password=PASSWORD, **kwargs)

    return make_hook


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with silent_listener() as sock:
        yield sock


def outcome(make: HookMaker, path: str, **extra: object) -> str:
    """Whether a hook with these extras gets through the TLS handshake on ``path``."""
    try:
        poll(make(extra=extra), path)
    except MrsDeployNotFoundError:  # the handshake and the login passed; the batch is unknown
        return ACCEPTED
    except MrsDeployConnectionError as err:
        if "CERTIFICATE_VERIFY_FAILED" in str(err) and not err.retryable:
            return REFUSED
        raise
    raise AssertionError("the server found a batch that does not exist")


def hashed_directory(directory: Path, cert: Path) -> Path:
    """A CA directory in OpenSSL's hashed layout holding ``cert``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to name a certificate by its hash")
    digest = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(cert)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    directory.mkdir()
    shutil.copy(cert, directory / f"{digest}.0")
    return directory


# -- what is trusted -----------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("trusted", [True, False])
def test_system_store_moved_by_ssl_cert_file(
    make: HookMaker,
    path: str,
    trusted: bool,
    https_server: TlsServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if trusted:
        monkeypatch.setenv("SSL_CERT_FILE", str(https_server.cert))
    assert outcome(make, path) == (ACCEPTED if trusted else REFUSED)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("variable", BUNDLE_VARIABLES)
@pytest.mark.parametrize("trust_env", [True, False])
def test_requests_variables_are_read_with_trust_env_only(
    make: HookMaker,
    path: str,
    variable: str,
    trust_env: bool,
    https_server: TlsServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, str(https_server.cert))
    expected = ACCEPTED if trust_env else REFUSED
    assert outcome(make, path, trust_env=trust_env) == expected


@pytest.mark.parametrize("path", PATHS)
def test_requests_variable_replaces_the_system_store(
    make: HookMaker,
    path: str,
    https_server: TlsServer,
    stranger: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(https_server.cert))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stranger))
    assert outcome(make, path) == REFUSED


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("extra", ["ca_bundle", "verify"])
@pytest.mark.parametrize("trusted", [True, False])
def test_ca_bundle_file_replaces_every_other_source(
    make: HookMaker,
    path: str,
    extra: str,
    trusted: bool,
    https_server: TlsServer,
    stranger: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The system store and the requests variable would both accept the server.
    monkeypatch.setenv("SSL_CERT_FILE", str(https_server.cert))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(https_server.cert))
    bundle = https_server.cert if trusted else stranger
    assert outcome(make, path, **{extra: str(bundle)}) == (ACCEPTED if trusted else REFUSED)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("trusted", [True, False])
def test_ca_directory(
    make: HookMaker,
    path: str,
    trusted: bool,
    https_server: TlsServer,
    stranger: Path,
    tmp_path: Path,
) -> None:
    directory = hashed_directory(tmp_path / "cas", https_server.cert if trusted else stranger)
    assert outcome(make, path, ca_bundle=str(directory)) == (ACCEPTED if trusted else REFUSED)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_accepts_any_certificate(make: HookMaker, path: str) -> None:
    assert outcome(make, path, verify=False) == ACCEPTED


@pytest.mark.parametrize("path", PATHS)
def test_a_renewed_bundle_is_read_again(
    make: HookMaker, path: str, https_server: TlsServer, stranger: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    shutil.copy(stranger, bundle)
    assert outcome(make, path, ca_bundle=str(bundle)) == REFUSED
    renewed = tmp_path / "renewed.pem"
    shutil.copy(https_server.cert, renewed)
    os.replace(renewed, bundle)  # as a deployment tool swaps a file in
    assert outcome(make, path, ca_bundle=str(bundle)) == ACCEPTED


# -- CA settings that cannot be used ---------------------------------------------------------


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "no-such-ca.pem"


def _not_pem(tmp_path: Path) -> Path:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("this is no certificate\n")
    return bundle


def _empty(tmp_path: Path) -> Path:
    bundle = tmp_path / "empty.pem"
    bundle.write_bytes(b"")
    return bundle


def _plain_directory(tmp_path: Path) -> Path:
    directory = tmp_path / "cas"
    directory.mkdir()
    self_signed(directory)  # cert.pem and key.pem: no hashed names
    return directory


UNUSABLE = {
    "missing file": (_missing, "does not exist"),
    "not PEM": (_not_pem, "holds no PEM certificate"),
    "empty file": (_empty, "holds no PEM certificate"),
    "directory without hashed names": (_plain_directory, "openssl rehash"),
}


def _refused(make: HookMaker, path: str, **extra: object) -> MrsDeployConfigurationError:
    with pytest.raises(MrsDeployConfigurationError) as info:
        poll(make(extra=extra), path)
    assert type(info.value) is MrsDeployConfigurationError
    assert not is_transient_poll_error(info.value)  # a wait ends at once, it does not poll on
    return info.value


@pytest.fixture
def make_silent(monkeypatch: pytest.MonkeyPatch, listener: socket.socket) -> HookMaker:
    """Hooks on a listener that never answers: a refused setting must not even connect."""
    maker = connection_maker(monkeypatch)
    port = listener.getsockname()[1]

    def make_hook(**kwargs: Any) -> MrsDeployHook:
        return maker(host=f"https://127.0.0.1:{port}", **kwargs)

    return make_hook


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("extra", ["ca_bundle", "verify"])
@pytest.mark.parametrize("case", list(UNUSABLE))
def test_unusable_ca_path_is_a_configuration_error(
    make_silent: HookMaker,
    listener: socket.socket,
    path: str,
    extra: str,
    case: str,
    tmp_path: Path,
) -> None:
    build, reason = UNUSABLE[case]
    bundle = build(tmp_path)
    error = _refused(make_silent, path, **{extra: str(bundle)})
    assert str(error).startswith(f"connection extra {extra!r}: the CA bundle {str(bundle)!r} ")
    assert reason in str(error)
    assert_nothing_connected(listener)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("variable", BUNDLE_VARIABLES)
def test_unusable_requests_variable_is_a_configuration_error(
    make_silent: HookMaker,
    listener: socket.socket,
    path: str,
    variable: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = _missing(tmp_path)
    monkeypatch.setenv(variable, str(bundle))
    error = _refused(make_silent, path)
    assert f"environment variable {variable!r}" in str(error)
    assert f"{str(bundle)!r} does not exist" in str(error)
    assert_nothing_connected(listener)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_ca_bundle_is_a_configuration_error(
    make_silent: HookMaker, listener: socket.socket, path: str, tmp_path: Path
) -> None:
    bundle = _not_pem(tmp_path)
    bundle.chmod(0)
    error = _refused(make_silent, path, ca_bundle=str(bundle))
    assert f"'ca_bundle': the CA bundle {str(bundle)!r} cannot be read" in str(error)
    assert_nothing_connected(listener)


@pytest.mark.parametrize("path", PATHS)
def test_a_plain_http_connection_loads_no_ca_store(
    path: str, reference_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No handshake, so no CA store is read: a CA setting the connection never needs (here a
    file that does not exist) does not stop a plain ``http`` server from being reached."""
    connection = reference_server.airflow_connection(ca_bundle=str(tmp_path / "missing.pem"))
    monkeypatch.setenv("AIRFLOW_CONN_PLAIN_HTTP", json.dumps(connection))
    hook = MrsDeployHook("plain_http")
    if path == "sync":
        try:
            assert hook.list_services()
        finally:
            hook.close()
        return

    async def poll_once() -> Any:
        try:
            return await hook.aget_batch_progress(SERVICE, VERSION, BATCH)
        finally:
            await hook.aclose()

    with pytest.raises(MrsDeployNotFoundError):  # reached the server: it knows no such batch
        asyncio.run(poll_once())
