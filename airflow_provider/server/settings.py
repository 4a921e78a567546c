"""Settings of the reference server (one immutable object, built by the CLI or by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 12800
DEFAULT_MAX_BODY_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """Everything the app needs to run; defaults follow the real server where it documents one.

    :param data_dir: Directory holding the SQLite database and the batch output files.
    :param admin_password: Password of the ``admin`` user; ``None`` keeps the stored one.
    :param users: Extra users, name -> password.
    :param host: Interface to bind (used for messages and the swagger ``host``).
    :param port: Port to bind (``0`` picks a free one).
    :param access_token_ttl: Lifetime of an access token, seconds.
    :param refresh_token_ttl: Inactivity lifetime of a refresh token, seconds.
    :param refresh_token_max_lifetime: How long a chain of refreshes may last, seconds.
    :param default_parallel_count: ``parallelCount`` when the request does not give one.
    :param max_parallel_count: Upper bound of ``parallelCount`` (larger values are clamped).
    :param max_concurrent_batches: How many batches run at the same time; others wait in ``Ready``.
    :param max_body_bytes: Largest accepted request body; larger ones get 413.
    :param file_index_base: Base of the row index in the file endpoints (0 or 1).
    :param services_config: Optional JSON file registering extra services.
    :param include_demo_services: Register the built-in demo services.
    :param enable_fault_hooks: Expose the admin-only ``/_faults`` endpoints.
    :param aad_issuer: Accept Azure AD access tokens from this issuer (``iss``), as a web node
        configured for Azure AD does; off (``None``) by default. Needs the two below.
    :param aad_audience: The audience (``aud``) those tokens must be for: the App ID URI or
        client id of the server's Azure AD application.
    :param aad_key_file: PEM public key (RSA or EC) the tokens' signatures are checked with.
    """

    data_dir: Path
    admin_password: str | None = None
    users: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    access_token_ttl: float = 3600.0
    refresh_token_ttl: float = 14 * 24 * 3600.0
    refresh_token_max_lifetime: float = 90 * 24 * 3600.0
    default_parallel_count: int = 10
    max_parallel_count: int = 100
    max_concurrent_batches: int = 4
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    file_index_base: int = 0
    services_config: Path | None = None
    include_demo_services: bool = True
    enable_fault_hooks: bool = False
    aad_issuer: str | None = None
    aad_audience: str | None = None
    aad_key_file: Path | None = None

    def __post_init__(self) -> None:
        if self.file_index_base not in (0, 1):
            raise ValueError("file_index_base must be 0 or 1")
        if self.max_parallel_count < 1 or self.default_parallel_count < 1:
            raise ValueError("parallel counts must be at least 1")
        if self.max_concurrent_batches < 1:
            raise ValueError("max_concurrent_batches must be at least 1")
        if self.access_token_ttl <= 0 or self.refresh_token_ttl <= 0:
            raise ValueError("token lifetimes must be positive")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        aad = (self.aad_issuer, self.aad_audience, self.aad_key_file)
        if any(value is not None for value in aad) and None in aad:
            raise ValueError("Azure AD needs the issuer, the audience and the key file together")

    @property
    def accepts_aad_tokens(self) -> bool:
        """Whether Azure AD access tokens are accepted besides the server's own."""
        return self.aad_issuer is not None

    @property
    def db_path(self) -> Path:
        """The SQLite database file."""
        return self.data_dir / "server.db"

    @property
    def files_dir(self) -> Path:
        """Root of the batch output files: ``files/<batch id>/<row index>/<name>``."""
        return self.data_dir / "files"

    @property
    def scratch_dir(self) -> Path:
        """Working directories of synchronous calls, removed after each call."""
        return self.data_dir / "scratch"
