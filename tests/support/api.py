"""A tiny HTTP client for tests of the reference server (plain ``requests``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from tests.support.server import ReferenceServer

TERMINAL = ("Complete", "Failed")


class Api:
    """A logged-in session against a :class:`ReferenceServer`.

    :param server: The server.
    :param username: Who logs in.
    :param password: Their password (the admin's is known to the server helper).
    """

    def __init__(
        self, server: ReferenceServer, username: str = "admin", password: str | None = None
    ) -> None:
        self.url = server.url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {server.login(username, password)}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=60, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=60, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(self.url + path, timeout=60, **kwargs)

    def start_batch(
        self,
        records: Any,
        service: str = "mtService",
        version: str = "v1.0.0",
        parallel: int | None = None,
    ) -> str:
        """Submit a batch and return its id (asserting 202)."""
        query = "" if parallel is None else f"?parallelCount={parallel}"
        response = self.post(f"/api/{service}/{version}/batch{query}", json=records)
        assert response.status_code == 202, response.text
        return str(response.json()["BatchExecutionId"])

    def status(
        self,
        batch_id: str,
        service: str = "mtService",
        version: str = "v1.0.0",
        partial: bool = False,
    ) -> dict[str, Any]:
        """``GET .../batch/{id}`` (asserting 200)."""
        query = "?showPartialResults=true" if partial else ""
        response = self.get(f"/api/{service}/{version}/batch/{batch_id}{query}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(
        self,
        batch_id: str,
        service: str = "mtService",
        version: str = "v1.0.0",
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 60.0,
        partial: bool = False,
    ) -> dict[str, Any]:
        """Poll until ``until(status)`` (default: a terminal state); bounded by ``timeout``."""
        check = until or (lambda s: s["state"] in TERMINAL)
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(batch_id, service, version, partial=partial)
            if check(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"batch {batch_id} did not get there: {status}")
            time.sleep(0.05)
