"""Airflow's own API server app, in the test process, with the provider's plugin mounted.

``airflow.api_fastapi.app.create_app`` builds the app ``airflow api-server`` serves: Airflow's
routes, its authentication, and the plugins it finds (the provider's through its
``airflow.plugins`` entry point). The simple auth manager has an ``admin`` and a ``viewer``
(who may not read connections); tests sign in with a JWT the auth manager issues, as a browser
holds it after signing in (cookie ``_token``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)


@dataclass
class ApiServer:
    """The app's test client and the signed-in users' tokens."""

    client: Any
    tokens: dict[str, str]

    def get(self, path: str, user: str | None = "admin", **kwargs: Any) -> Any:
        """``GET path`` as ``user`` (None: nobody signed in), with the session cookie."""
        self.client.cookies.clear()
        if user is not None:
            self.client.cookies.set("_token", self.tokens[user])
        return self.client.get(path, **kwargs)


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The API server app on this worker's metadata database (migrated here)."""
    settings = {
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
            tmp_path_factory.mktemp("auth") / "passwords.json"
        ),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in settings.items():
            patch.setenv(key, value)
        subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
            check=True,
            capture_output=True,
            env=os.environ.copy(),
        )
        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from fastapi.testclient import TestClient

        app = create_app()
        manager = get_auth_manager()
        tokens = {
            role: manager.generate_jwt(SimpleAuthManagerUser(username=role, role=role))
            for role in ("admin", "viewer")
        }
        client = TestClient(app)  # no lifespan: nothing is started beside the app
        try:
            yield ApiServer(client, tokens)
        finally:
            client.close()
