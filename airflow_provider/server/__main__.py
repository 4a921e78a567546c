"""Command line: ``python -m airflow_provider.server`` / ``mrsdeploy-server``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from airflow_provider.server.app import create_app
from airflow_provider.server.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT, ServerSettings

PASSWORD_ENV = "MRSDEPLOY_ADMIN_PASSWORD"
#: Idle keep-alive connections are kept this long (the real web node's Kestrel keeps them 130 s;
#: uvicorn's default of 5 s would make every poller at a 10 s interval reconnect each time).
KEEP_ALIVE_SECONDS = 130


def _user(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not sep or not name or not password:
        raise argparse.ArgumentTypeError("expected NAME:PASSWORD")
    return name, password


def build_parser() -> argparse.ArgumentParser:
    """The CLI definition."""
    parser = argparse.ArgumentParser(
        prog="mrsdeploy-server",
        description="Reference server of the R Server / ML Server operationalization API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to bind, 0 for a free one ({DEFAULT_PORT})",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("mrsdeploy-data"),
        help="database and output files (./mrsdeploy-data)",
    )
    parser.add_argument(
        "--admin-password", help=f"password of user 'admin' (else ${PASSWORD_ENV}, else generated)"
    )
    parser.add_argument(
        "--user",
        action="append",
        type=_user,
        default=[],
        metavar="NAME:PASSWORD",
        help="extra user (repeatable)",
    )
    parser.add_argument(
        "--users-file", type=Path, help='JSON file of extra users: {"name": "password", ...}'
    )
    parser.add_argument("--services-config", type=Path, help="JSON file registering more services")
    parser.add_argument(
        "--no-demo-services", action="store_true", help="do not register the built-in demo services"
    )
    parser.add_argument(
        "--access-token-ttl",
        type=float,
        default=3600.0,
        help="access token lifetime in seconds (3600)",
    )
    parser.add_argument(
        "--refresh-token-ttl",
        type=float,
        default=14 * 24 * 3600.0,
        help="refresh token inactivity lifetime in seconds (14 days)",
    )
    parser.add_argument(
        "--refresh-token-max-lifetime",
        type=float,
        default=90 * 24 * 3600.0,
        help="longest chain of refreshes in seconds (90 days)",
    )
    parser.add_argument(
        "--default-parallel-count",
        type=int,
        default=10,
        help="parallelCount when a request gives none (10)",
    )
    parser.add_argument(
        "--max-parallel-count",
        type=int,
        default=100,
        help="parallelCount above this is clamped (100)",
    )
    parser.add_argument(
        "--max-concurrent-batches",
        type=int,
        default=4,
        help="batches running at the same time; others wait in Ready (4)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body; larger gets 413 (512 MiB)",
    )
    parser.add_argument(
        "--file-index-base",
        type=int,
        choices=(0, 1),
        default=0,
        help="base of the row index in the file endpoints (0)",
    )
    parser.add_argument(
        "--enable-fault-hooks",
        action="store_true",
        help="expose admin-only /_faults endpoints (tests only)",
    )
    parser.add_argument(
        "--aad-issuer",
        metavar="URL",
        help="also accept Azure AD access tokens (signed JWTs) from this issuer ('iss', e.g. "
        "https://sts.windows.net/<tenant>/), as a server configured for Azure AD does; needs "
        "--aad-audience and --aad-key-file (off by default)",
    )
    parser.add_argument(
        "--aad-audience",
        metavar="AUDIENCE",
        help="the audience ('aud') Azure AD tokens must be for: the App ID URI or client id of "
        "the server's Azure AD application",
    )
    parser.add_argument(
        "--aad-key-file",
        type=Path,
        metavar="PEM",
        help="public key (RSA or EC, PEM) that verifies the Azure AD tokens' signatures",
    )
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error"), help="(info)"
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """Turn parsed arguments (and the environment) into settings."""
    users: dict[str, str] = {}
    if args.users_file is not None:
        loaded = json.loads(args.users_file.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
        ):
            raise SystemExit(f'{args.users_file}: expected {{"name": "password", ...}}')
        users.update(loaded)
    users.update(dict(args.user))
    try:
        return _settings(args, users)
    except ValueError as err:
        raise SystemExit(f"mrsdeploy-server: {err}") from None


def _settings(args: argparse.Namespace, users: dict[str, str]) -> ServerSettings:
    return ServerSettings(
        data_dir=args.data_dir,
        admin_password=args.admin_password or os.environ.get(PASSWORD_ENV) or None,
        users=users,
        host=args.host,
        port=args.port,
        access_token_ttl=args.access_token_ttl,
        refresh_token_ttl=args.refresh_token_ttl,
        refresh_token_max_lifetime=args.refresh_token_max_lifetime,
        default_parallel_count=args.default_parallel_count,
        max_parallel_count=args.max_parallel_count,
        max_concurrent_batches=args.max_concurrent_batches,
        max_body_bytes=args.max_body_bytes,
        file_index_base=args.file_index_base,
        services_config=args.services_config,
        include_demo_services=not args.no_demo_services,
        enable_fault_hooks=args.enable_fault_hooks,
        aad_issuer=args.aad_issuer,
        aad_audience=args.aad_audience,
        aad_key_file=args.aad_key_file,
    )


def _bind(host: str, port: int) -> socket.socket:
    """Bind before starting uvicorn so ``--port 0`` can report the port actually chosen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _AnnouncingServer(uvicorn.Server):
    """Prints the ``listening on`` line once the server accepts connections."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self._url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(f"listening on {self._url}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = settings_from_args(args)
    if settings.enable_fault_hooks:
        print(
            "WARNING: FAULT HOOKS ENABLED. The admin can make this server fail on purpose "
            "(/_faults). Never use this for real work.",
            flush=True,
        )
    app = create_app(settings)
    generated = app.state.server.generated_admin_password
    if generated:
        print(f"generated password for user 'admin': {generated}", flush=True)
    sock = _bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    _AnnouncingServer(config, f"http://{shown}:{port}").run(sockets=[sock])


if __name__ == "__main__":
    main()
