"""The reference server's Azure AD option: signed tokens checked as a web node configured for
Azure AD checks them (signature, issuer, audience, expiry), and only when it is turned on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from airflow_provider.server.auth import AadVerifier, Authenticator
from airflow_provider.server.db import Store
from airflow_provider.server.errors import ApiError
from airflow_provider.server.settings import ServerSettings

ISSUER = "https://sts.windows.net/contoso/"
AUDIENCE = "api://mlserver"


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def key_file(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path = tmp_path / "aad.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def token(key: Any, algorithm: str = "ES256", **claims: Any) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600, "upn": "ann@contoso"}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


def test_a_valid_token_names_its_user(key: Any, key_file: Path) -> None:
    verifier = AadVerifier(ISSUER, AUDIENCE, key_file)
    assert verifier.user_and_expiry(token(key))[0] == "ann@contoso"
    assert verifier.user_and_expiry(token(key, upn=None, appid="app-1"))[0] == "app-1"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 5},
        {"aud": "api://other"},
        {"iss": "https://sts.windows.net/evil/"},
        {"exp": None},
        {"upn": None},
    ],
    ids=["expired", "audience", "issuer", "no-expiry", "no-caller"],
)
def test_a_token_not_for_this_server_is_refused(
    key: Any, key_file: Path, claims: dict[str, Any]
) -> None:
    verifier = AadVerifier(ISSUER, AUDIENCE, key_file)
    with pytest.raises(ApiError) as raised:
        verifier.user_and_expiry(token(key, **claims))
    assert raised.value.status == 401


def test_forged_signatures_are_refused(key_file: Path) -> None:
    verifier = AadVerifier(ISSUER, AUDIENCE, key_file)
    other = ec.generate_private_key(ec.SECP256R1())
    for forged in (
        token(other),
        token(b"the public key as an HMAC secret" * 2, algorithm="HS256"),
        jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": 9e9, "upn": "x"}, None, "none"),
    ):
        with pytest.raises(ApiError):
            verifier.user_and_expiry(forged)


def test_the_option_is_off_by_default_and_needs_its_three_parts(
    tmp_path: Path, key: Any, key_file: Path
) -> None:
    plain = ServerSettings(data_dir=tmp_path)
    assert not plain.accepts_aad_tokens
    authenticator = Authenticator(Store(tmp_path / "db.sqlite"), plain)
    with pytest.raises(ApiError):
        authenticator.user_for_header(f"Bearer {token(key)}")
    with pytest.raises(ValueError, match="together"):
        ServerSettings(data_dir=tmp_path, aad_issuer=ISSUER)
    on = ServerSettings(
        data_dir=tmp_path, aad_issuer=ISSUER, aad_audience=AUDIENCE, aad_key_file=key_file
    )
    authenticator = Authenticator(Store(tmp_path / "db2.sqlite"), on)
    assert authenticator.user_for_header(f"Bearer {token(key)}") == "ann@contoso"
    assert authenticator.cached_user(f"Bearer {token(key)}") is None  # another token
