"""Users, password hashing and rotating token pairs; optionally, Azure AD access tokens.

Only SHA-256 hashes of tokens are stored, so the database never holds a usable token.

A web node configured for Azure AD accepts, besides its own tokens, the access tokens Azure AD
issues for its application: signed JWTs whose issuer, audience, signature and lifetime it
checks, with no login. :class:`AadVerifier` does the same when the server is started with
``--aad-issuer``, ``--aad-audience`` and ``--aad-key-file`` (off by default); the caller is
the token's user principal name, or the application for an app-only token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider.server.db import Store, TokenRecord
from airflow_provider.server.errors import ApiError
from airflow_provider.server.settings import ServerSettings

ADMIN_USER = "admin"
_PBKDF2_ITERATIONS = 20_000
#: Resolved access tokens kept in memory (the cache starts over when it is full).
MAX_RESOLVED_TOKENS = 10_000
#: Signature algorithms accepted for Azure AD tokens (asymmetric only: the server holds no
#: signing secret).
AAD_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256")
#: Claims naming the caller of an Azure AD token, first found wins: a user's principal name,
#: else the application of an app-only token, else the object id.
AAD_USER_CLAIMS = ("upn", "unique_name", "preferred_username", "appid", "azp", "oid", "sub")


def hash_password(password: str, salt: str | None = None) -> str:
    """PBKDF2-SHA256 hash, stored as ``salt$hexdigest``."""
    salt = salt or secrets.token_hex(16)
    # surrogatepass: JSON may carry half of a UTF-16 pair alone ("\ud800"), which no stored
    # password holds; it must be a wrong password (401), not a failure to hash it (500).
    digest = hashlib.pbkdf2_hmac(
        "sha256", password.encode("utf-8", "surrogatepass"), salt.encode(), _PBKDF2_ITERATIONS
    )
    return f"{salt}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a stored hash."""
    salt, _, _ = stored.partition("$")
    return hmac.compare_digest(hash_password(password, salt), stored)


def token_hash(token: str) -> str:
    """The form in which a token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class TokenPair:
    """A freshly issued pair, rendered exactly as the login response."""

    access_token: str
    refresh_token: str
    expires_in: int
    expires_on: int

    def body(self) -> dict[str, Any]:
        """The ``/login`` response body."""
        return {
            "token_type": "Bearer",
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "expires_on": self.expires_on,
            "refresh_token": self.refresh_token,
        }


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class AadVerifier:
    """Checks Azure AD access tokens: signature, issuer, audience, expiry.

    :param issuer: the ``iss`` the tokens must carry.
    :param audience: the ``aud`` the tokens must carry.
    :param key_file: PEM public key the signatures are checked with.
    """

    def __init__(self, issuer: str, audience: str, key_file: Path) -> None:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        self.issuer = issuer
        self.audience = audience
        self._key = load_pem_public_key(key_file.read_bytes())

    def user_and_expiry(self, token: str) -> tuple[str, float]:
        """The caller of a valid token and when the token expires, else raise 401."""
        import jwt

        try:
            claims = jwt.decode(
                token,
                self._key,  # type: ignore[arg-type]
                algorithms=list(AAD_ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise ApiError(
                401, "The Azure AD access token has expired.", "AuthenticationException"
            ) from None
        except jwt.PyJWTError as err:
            raise ApiError(
                401,
                f"The Azure AD access token is not valid here: {err}.",
                "AuthenticationException",
            ) from None
        for claim in AAD_USER_CLAIMS:
            value = claims.get(claim)
            if isinstance(value, str) and value:
                return value, float(claims["exp"])
        raise ApiError(401, "The Azure AD access token names no caller.", "AuthenticationException")


class Authenticator:
    """Logs users in, rotates and revokes refresh tokens, and resolves bearer tokens.

    :param store: The database.
    :param settings: Token lifetimes.
    """

    def __init__(self, store: Store, settings: ServerSettings) -> None:
        self._store = store
        self._settings = settings
        self._aad: AadVerifier | None = None
        if settings.aad_issuer and settings.aad_audience and settings.aad_key_file:
            self._aad = AadVerifier(
                settings.aad_issuer, settings.aad_audience, settings.aad_key_file
            )
        # access-token hash -> (user, access expiry): every request but login carries a token,
        # and resolving it must not cost a database read each time. Entries are dropped when
        # their pair is rotated, revoked or purged, and checked against the expiry on each use.
        self._resolved: dict[str, tuple[str, float]] = {}

    def ensure_users(self, users: dict[str, str]) -> None:
        """Create or update the configured users (password hashes only)."""
        for name, password in users.items():
            self._store.upsert_user(name, hash_password(password))

    def has_user(self, username: str) -> bool:
        """Whether ``username`` exists."""
        return self._store.password_hash(username) is not None

    def login(self, username: str, password: str) -> TokenPair:
        """Issue a pair for valid credentials, else raise 401."""
        try:
            stored = self._store.password_hash(username)
        except UnicodeEncodeError:  # half a UTF-16 pair ("\ud800" in JSON) names no user
            stored = None
        if stored is None or not verify_password(password, stored):
            raise ApiError(401, "Invalid username or password.", "AuthenticationException")
        return self._issue(username, chain_started=time.time())

    def refresh(self, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair; the old pair stops working."""
        now = time.time()
        record = self._store.take_refresh(token_hash(refresh_token))
        if record is not None:
            self._resolved.pop(record.access_hash, None)
        if record is None or record.refresh_expires <= now:
            raise ApiError(
                401, "The refresh token is invalid or expired.", "AuthenticationException"
            )
        if record.chain_started + self._settings.refresh_token_max_lifetime <= now:
            raise ApiError(
                401,
                "The refresh token reached its maximum lifetime; log in again.",
                "AuthenticationException",
            )
        return self._issue(record.username, chain_started=record.chain_started)

    def revoke(self, refresh_token: str, username: str) -> bool:
        """Revoke one of ``username``'s refresh tokens (and its access token)."""
        revoked = self._store.revoke_refresh(token_hash(refresh_token), username)
        if revoked:
            self._resolved.clear()  # rare: forget every resolved token rather than look it up
        return revoked

    def cached_user(self, authorization: str | None) -> str | None:
        """The user behind a bearer header already resolved and still valid, else ``None``.

        Never touches the database, so it can run on the event loop; ``None`` means "ask
        :meth:`user_for_header`", which gives the user or the exact 401.
        """
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        entry = self._resolved.get(token_hash(token.strip()))
        if entry is None or entry[1] <= time.time():
            return None
        return entry[0]

    def user_for_header(self, authorization: str | None) -> str:
        """The user behind an ``Authorization: Bearer`` header, else raise 401."""
        if not authorization:
            raise ApiError(401, "Missing Authorization header.", "AuthenticationException")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401,
                "The Authorization header must be 'Bearer <token>'.",
                "AuthenticationException",
            )
        access_hash = token_hash(token.strip())
        if self._aad is not None and _looks_like_jwt(token.strip()):
            found: tuple[str, float] | None = self._aad.user_and_expiry(token.strip())
        else:
            found = self._store.access_owner(access_hash, time.time())
        if found is None:
            raise ApiError(
                401, "The access token is invalid or expired.", "AuthenticationException"
            )
        if len(self._resolved) >= MAX_RESOLVED_TOKENS:
            self._resolved.clear()
        self._resolved[access_hash] = found
        return found[0]

    def _issue(self, username: str, chain_started: float) -> TokenPair:
        now = time.time()
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32)
        access_expires = now + self._settings.access_token_ttl
        if self._store.purge_tokens(now):
            self._resolved.clear()
        self._store.insert_tokens(
            TokenRecord(
                access_hash=token_hash(access),
                refresh_hash=token_hash(refresh),
                username=username,
                access_expires=access_expires,
                refresh_expires=now + self._settings.refresh_token_ttl,
                chain_started=chain_started,
            )
        )
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=max(1, round(self._settings.access_token_ttl)),
            expires_on=int(access_expires),
        )
