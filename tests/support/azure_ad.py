"""A stand-in for Azure AD on loopback: issues short-lived signed access tokens and counts the
requests, so tests can watch tokens being renewed.

It speaks the three protocols azure-identity uses, each as the real service does:

* an authority over HTTPS (certificate made here): ``/{tenant}/v2.0/.well-known/
  openid-configuration`` and the token endpoint ``/{tenant}/oauth2/v2.0/token`` (client
  credentials, with a client secret or a federated client assertion);
* the App Service managed identity endpoint over plain HTTP (``IDENTITY_ENDPOINT`` with the
  ``X-IDENTITY-HEADER`` secret), as on an App Service host.

The tokens are JWTs signed with an EC key made here; :attr:`AzureAdStandIn.public_key_file` is
what the reference server checks them with (``--aad-key-file``). ``mode`` makes it misbehave:
``"ok"``, ``"garbage"`` (200 with no JSON), ``"refuse"`` (400 ``invalid_client``, quoting the
secret it was sent), ``"busy"`` (503), ``"slow"`` (answers after ``slow_seconds``).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.certificates import self_signed
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "0f1e2d3c-aaaa-bbbb-cccc-111122223333"
CLIENT_SECRET = "s3cret-Client~Value"
IDENTITY_HEADER = "identity-header-secret"
RESOURCE = "api://mlserver"
ISSUER = "https://sts.example.test/contoso/"


def certificate(directory: Path, names: tuple[str, ...] = ("localhost",)) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for 127.0.0.1 and ``names``; (cert, key) paths."""
    return self_signed(directory, names=names, common_name="azure ad stand-in", prefix="aad-")


class _Server(LoopbackHTTPServer):
    stand_in: AzureAdStandIn


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        stand_in = self.server.stand_in
        path = urlsplit(self.path).path
        if path.endswith("/.well-known/openid-configuration"):
            tenant = path.strip("/").split("/")[0]
            base = stand_in.url
            self._json(
                200,
                {
                    "issuer": f"{base}/{tenant}/v2.0",
                    "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
                },
            )
            return
        if path == "/msi/token":
            stand_in.record("managed_identity", dict(parse_qs(urlsplit(self.path).query)))
            if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                self._json(401, {"error": "invalid identity header"})
                return
            query = parse_qs(urlsplit(self.path).query)
            self._token_answer(query.get("resource", [""])[0], query.get("client_id", [""])[0])
            return
        self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        stand_in = self.server.stand_in
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if not urlsplit(self.path).path.endswith("/oauth2/v2.0/token"):
            self._json(404, {"error": "not_found"})
            return
        kind = "workload_identity" if "client_assertion" in form else "client_secret"
        stand_in.record(kind, form)
        if stand_in.mode == "refuse":
            self._json(
                400,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided: "
                    f"{form.get('client_secret', '')}",
                },
            )
            return
        if kind == "client_secret" and form.get("client_secret") != CLIENT_SECRET:
            self._json(401, {"error": "invalid_client", "error_description": "AADSTS7000215"})
            return
        if kind == "workload_identity" and form.get("client_assertion") != stand_in.assertion:
            self._json(400, {"error": "invalid_client", "error_description": "AADSTS700211"})
            return
        scope = form.get("scope", "")
        self._token_answer(scope.removesuffix("/.default"), form.get("client_id", ""))

    def _token_answer(self, audience: str, client_id: str) -> None:
        stand_in = self.server.stand_in
        if stand_in.mode == "slow":
            stand_in.release.wait(stand_in.slow_seconds)
        if stand_in.mode == "busy":
            self._json(503, {"error": "temporarily_unavailable"})
            return
        if stand_in.mode == "garbage":
            raw = b"<html>not a token</html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return
        token, expires_on = stand_in.sign(audience, client_id)
        self._json(
            200,
            {
                "token_type": "Bearer",
                "access_token": token,
                "expires_in": int(stand_in.lifetime),
                "expires_on": str(expires_on),
                "resource": audience,
            },
        )

    def _json(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class AzureAdStandIn:
    """The stand-in, serving from a thread while in a ``with`` block.

    :param directory: where the certificate and the signing key's public half are written.
    :param tls: HTTPS (an authority) or plain HTTP (a managed identity endpoint).
    :param lifetime: seconds each token is valid.
    :param signing_key: the key tokens are signed with (a new one by default).
    """

    def __init__(
        self,
        directory: Path,
        *,
        tls: bool = True,
        lifetime: float = 3.0,
        signing_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> None:
        self.lifetime = lifetime
        #: Tokens still to sign as already expired (a server then refuses them: clock skew).
        self.skewed = 0
        self.mode = "ok"
        self.slow_seconds = 30.0
        self.release = threading.Event()
        self.assertion = "federated-token-from-the-cluster"
        self.requests: list[tuple[str, dict[str, Any], float]] = []
        self.issued: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._signing_key = signing_key or ec.generate_private_key(ec.SECP256R1())
        self.public_key_file = directory / "aad-signing-key.pem"
        self.public_key_file.write_bytes(
            self._signing_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        server = _Server(_Handler)
        server.stand_in = self
        self.ca_file: Path | None = None
        if tls:
            self.ca_file, key_file = certificate(directory)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.ca_file, key_file)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._scheme = "https" if tls else "http"
        self._loopback = LoopbackServer(server)

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>`` (the authority host), or ``http://...``."""
        return f"{self._scheme}://127.0.0.1:{self._loopback.port}"

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._loopback.port

    def record(self, kind: str, what: dict[str, Any]) -> None:
        """Note one token request."""
        with self._lock:
            self.requests.append((kind, what, time.time()))

    def sign(self, audience: str, client_id: str) -> tuple[str, int]:
        """A signed access token for ``audience`` and when it expires."""
        now = time.time()
        expires_on = int(now + self.lifetime)
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "appid": client_id or "system-assigned",
            "iat": int(now),
            "nbf": int(now) - 1,
            "exp": expires_on,
            "n": len(self.issued),
        }
        with self._lock:
            if self.skewed > 0:
                self.skewed -= 1
                claims["exp"] = int(now) - 60
        token = jwt.encode(claims, self._signing_key, algorithm="ES256")
        with self._lock:
            self.issued.append((token, now))
        return token, expires_on

    def token_requests(self, kind: str | None = None) -> int:
        """How many token requests came (of one kind: client_secret, workload_identity,
        managed_identity)."""
        with self._lock:
            return sum(1 for item in self.requests if kind is None or item[0] == kind)

    def __enter__(self) -> AzureAdStandIn:
        self._loopback.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release.set()
        self._loopback.__exit__(None, None, None)
