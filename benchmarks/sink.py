"""A loopback sink for the submit benchmark: it reads every request body and throws it away.

It answers just enough of the API for each client to submit a batch: ``POST /login``,
``GET /services/{name}/{version}`` (the wide service of :mod:`benchmarks.services`) and
``POST /api/{name}/{version}/batch``, which drains the body and answers 202 with a batch id.
Nothing is parsed or stored, so the time a client takes is the client's own.

Run: ``python -m benchmarks.sink --port 0``; prints ``listening on http://127.0.0.1:<port>``.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
import uuid
from typing import Any

import uvicorn

from benchmarks.services import SERVICES

Scope = dict[str, Any]


def _service(name: str, version: str) -> dict[str, Any] | None:
    for entry in SERVICES:
        if entry["name"] == name and entry["version"] == version:
            wire = {k: v for k, v in entry.items() if k != "callable"}
            wire.update(
                operationId="consume",
                description="",
                runtimeType="Python",
                versionPublishedBy="admin",
                creationTime="2026-01-01T00:00:00",
                snapshotId=None,
                initCode="",
                code="",
                myPermissionOnService="Read",
                outputFileNames=entry.get("outputFileNames", []),
            )
            return wire
    return None


async def app(scope: Scope, receive: Any, send: Any) -> None:
    """The sink (raw ASGI: no framework work per request)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    received = 0
    more = True
    while more:
        message = await receive()
        received += len(message.get("body", b""))
        more = message.get("more_body", False)
    path, method = scope["path"], scope["method"]
    parts = path.strip("/").split("/")
    status = 404
    body: Any = {"code": 404, "message": "No such resource."}
    if method == "POST" and path == "/login":
        status = 200
        body = {
            "token_type": "Bearer",
            "access_token": "sink-token",
            "expires_in": 3600,
            "expires_on": int(time.time()) + 3600,
            "refresh_token": "sink-refresh",
        }
    elif method == "GET" and len(parts) == 3 and parts[0] == "services":
        service = _service(parts[1], parts[2])
        if service is not None:
            status, body = 200, [service]
    elif method == "POST" and len(parts) == 4 and parts[0] == "api" and parts[3] == "batch":
        status, body = 202, {"BatchExecutionId": str(uuid.uuid4()), "receivedBytes": received}
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
