"""An HTTPS reference server for the TLS tests: a self-signed certificate made on the spot, and
the reference app served by uvicorn with it in a thread (the server's CLI has no TLS flags)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_provider.server.app import create_app
from airflow_provider.server.settings import ServerSettings

START_TIMEOUT = 30.0


def self_signed(directory: Path) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` for 127.0.0.1 / localhost; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mrsdeploy test server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsServer:
    """The reference app over HTTPS on 127.0.0.1 (free port), in a thread of the test process.

    :param directory: data directory and where the certificate is written.
    :param admin_password: password of ``admin``.
    """

    def __init__(self, directory: Path, admin_password: str) -> None:
        self.cert, key = self_signed(directory)
        self.admin_password = admin_password
        app = create_app(ServerSettings(data_dir=directory / "data", admin_password=admin_password))
        config = uvicorn.Config(
            app, ssl_certfile=str(self.cert), ssl_keyfile=str(key), log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> TlsServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTPS test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(15)
        self._socket.close()
