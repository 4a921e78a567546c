"""The FastAPI application: routes of the operationalization API over the server's parts."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider.server.auth import ADMIN_USER, Authenticator
from airflow_provider.server.catalog import build_registry
from airflow_provider.server.db import BatchRecord, Store
from airflow_provider.server.dependencies import User, parse_json_body
from airflow_provider.server.errors import ApiError, error_body
from airflow_provider.server.executor import Executor
from airflow_provider.server.fault_points import NO_FAULTS
from airflow_provider.server.fault_routes import install_fault_hooks
from airflow_provider.server.faults import Faults
from airflow_provider.server.invocation import invoke, is_plain_file_name
from airflow_provider.server.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
)
from airflow_provider.server.responses import JSONResponse
from airflow_provider.server.row_files import RowFilesFastPath, file_names, media_type
from airflow_provider.server.services import ServiceDefinition
from airflow_provider.server.settings import ServerSettings
from airflow_provider.server.state import ServerState
from airflow_provider.server.swagger import build_swagger
from airflow_provider.server.validation import batch_row_texts, validate_batch, validate_record

log = logging.getLogger(__name__)

#: Row files up to this size are sent from memory; larger ones are streamed from disk.
SMALL_FILE_BYTES = 256 * 1024

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")


def _query(request: Request, *names: str) -> str | None:
    """A query parameter looked up case-insensitively under any of ``names``."""
    wanted = {n.lower() for n in names}
    for key, value in request.query_params.multi_items():
        if key.lower() in wanted:
            return value
    return None


def _flag(request: Request, *names: str) -> bool:
    raw = _query(request, *names)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, f"Query parameter '{names[0]}' must be true or false, got {raw!r}.")


def _json_text(text: str, status: int = 200) -> Response:
    return Response(content=text, status_code=status, media_type="application/json")


def _install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "No such resource."
        return JSONResponse(
            error_body(exc.status_code, message),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(
            error_body(400, "; ".join(parts) or "Invalid request."), status_code=400
        )

    async def internal_error(_: Request, exc: Exception) -> Response:
        log.error("unhandled error: %s: %s", type(exc).__name__, exc)
        return JSONResponse(
            error_body(500, f"Internal server error: {type(exc).__name__}"), status_code=500
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)


def _build_state(settings: ServerSettings) -> ServerState:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_path)
    auth = Authenticator(store, settings)
    generated = None
    admin_password = settings.admin_password
    if admin_password is None and not auth.has_user(ADMIN_USER):
        admin_password = generated = secrets.token_urlsafe(12)
    users = dict(settings.users)
    users.pop(ADMIN_USER, None)
    if admin_password is not None:
        users[ADMIN_USER] = admin_password
    auth.ensure_users(users)
    registry = build_registry(settings.services_config, settings.include_demo_services)
    faults = Faults() if settings.enable_fault_hooks else None
    executor = Executor(store, registry, settings, faults or NO_FAULTS)
    return ServerState(settings, store, auth, registry, executor, faults, generated)


def create_app(settings: ServerSettings) -> FastAPI:
    """Build the application; unfinished batches are resumed when it starts.

    :param settings: The server settings.
    """
    state = _build_state(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        orphaned = state.executor.remove_orphaned_files()
        if orphaned:
            log.info("removed the files of %d batch(es) deleted earlier", len(orphaned))
        resumed = state.executor.resume_unfinished()
        if resumed:
            log.info("resumed %d unfinished batch(es)", len(resumed))
        try:
            yield
        finally:
            await run_in_threadpool(state.executor.shutdown)
            state.store.close()

    app = FastAPI(
        title="mrsdeploy reference server",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.server = state
    _install_error_handlers(app)
    if state.faults is not None:
        install_fault_hooks(app, state.faults)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLogMiddleware)
    # Outermost: answers the bulk of a collect's requests before any other layer runs.
    app.add_middleware(RowFilesFastPath, state=state)
    _add_login_routes(app, state)
    _add_service_routes(app, state)
    _add_batch_routes(app, state)
    return app


def _add_login_routes(app: FastAPI, state: ServerState) -> None:

    @app.post("/login")
    async def login(request: Request) -> Response:
        body = parse_json_body(await request.body())
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("username", "password")
        ):
            raise ApiError(400, 'The body must be {"username": ..., "password": ...}.')
        pair = await run_in_threadpool(state.auth.login, body["username"], body["password"])
        return JSONResponse(pair.body())

    @app.post("/login/refreshToken")
    async def refresh(request: Request) -> Response:
        body = parse_json_body(await request.body())
        if not isinstance(body, dict) or not isinstance(body.get("refreshToken"), str):
            raise ApiError(400, 'The body must be {"refreshToken": ...}.')
        pair = await run_in_threadpool(state.auth.refresh, body["refreshToken"])
        return JSONResponse(pair.body())

    @app.delete("/login/refreshToken")
    def revoke(request: Request, user: User) -> Response:
        token = _query(request, "refreshToken")
        if not token:
            raise ApiError(400, "Query parameter 'refreshToken' is required.")
        if not state.auth.revoke(token, user):
            raise ApiError(404, "No such refresh token for this user.")
        return JSONResponse({})


def _service_or_404(state: ServerState, name: str, version: str) -> ServiceDefinition:
    service = state.registry.get(name, version)
    if service is None:
        raise ApiError(404, f"Service '{name}' version '{version}' was not found.")
    return service


def _add_service_routes(app: FastAPI, state: ServerState) -> None:

    @app.get("/services")
    def list_services(user: User) -> Response:
        return JSONResponse([s.to_wire(user) for s in state.registry.all()])

    @app.get("/services/{name}")
    def service_versions(name: str, user: User) -> Response:
        versions = state.registry.versions(name)
        if not versions:
            raise ApiError(404, f"Service '{name}' was not found.")
        return JSONResponse([s.to_wire(user) for s in versions])

    @app.get("/services/{name}/{version}")
    def service_version(name: str, version: str, user: User) -> Response:
        return JSONResponse([_service_or_404(state, name, version).to_wire(user)])

    @app.get("/api/{name}/{version}/swagger.json")
    def swagger(name: str, version: str, request: Request, user: User) -> Response:
        service = _service_or_404(state, name, version)
        document = build_swagger(service, request.headers.get("host"), request.url.scheme)
        return JSONResponse(document)

    @app.post("/api/{name}/{version}")
    async def consume(name: str, version: str, request: Request, user: User) -> Response:
        service = _service_or_404(state, name, version)
        record = validate_record(parse_json_body(await request.body()), service.inputs, "Request")
        result = await run_in_threadpool(_consume, state, service, record)
        return JSONResponse(result)


def _consume(state: ServerState, service: ServiceDefinition, record: dict[str, Any]) -> Any:
    """Run a synchronous call in a scratch folder; files come back inline as base64."""
    workdir = state.settings.scratch_dir / uuid.uuid4().hex
    try:
        result = invoke(service, record, workdir)
        for name in result["changedFiles"]:
            path = workdir / name
            if path.is_file():
                result["outputFiles"][name] = base64.b64encode(path.read_bytes()).decode()
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _parallel_count(request: Request, settings: ServerSettings) -> int:
    raw = _query(request, "parallelCount")
    if raw is None or not raw.strip():
        count = settings.default_parallel_count
    else:
        try:
            count = int(raw)
        except ValueError as exc:
            if not _WHOLE_NUMBER.fullmatch(raw):
                raise ApiError(
                    400, f"Query parameter 'parallelCount' must be an integer, got {raw!r}."
                ) from exc
            # Digits beyond what int() reads (4,300): clamped as any other number is.
            count = 0 if raw.strip().startswith("-") else settings.max_parallel_count
    return max(1, min(count, settings.max_parallel_count))


_WHOLE_NUMBER = re.compile(r"\s*[+-]?[0-9]+\s*")


def _create_batch(
    state: ServerState, service: ServiceDefinition, owner: str, raw: bytes, parallel: int
) -> str:
    texts = batch_row_texts(raw, service.inputs)
    if texts is None:
        records = validate_batch(parse_json_body(raw), service.inputs)
        encode = json.JSONEncoder(separators=(",", ":")).encode
        texts = [encode(r) for r in records]
    batch_id = str(uuid.uuid4())
    injected = state.fault_points.take_batch_failure(service.name)
    record = BatchRecord(
        id=batch_id,
        service_name=service.name,
        service_version=service.version,
        owner=owner,
        state="Pending",
        parallel_count=parallel,
        total=len(texts),
        completed=0,
        created_at=time.time(),
        error_message=None,
        injected_failure=injected,
    )
    state.store.create_batch(record, texts)
    state.executor.start(batch_id)
    return batch_id


def _owned_batch(
    state: ServerState, name: str, version: str, batch_id: str, user: str
) -> BatchRecord:
    """The batch, if it belongs to ``user`` and this service; otherwise 404 (never 403, so
    other users' ids are not even confirmed to exist)."""
    batch = state.store.get_batch(batch_id)
    if (
        batch is None
        or batch.owner != user
        or batch.service_name != name
        or batch.service_version != version
    ):
        raise ApiError(404, f"Batch execution '{batch_id}' was not found.")
    return batch


def _row_index(state: ServerState, batch: BatchRecord, index: int) -> int:
    idx = index - state.settings.file_index_base
    if idx < 0 or idx >= batch.total:
        raise ApiError(404, f"Batch execution '{batch.id}' has no row {index}.")
    return idx


def _add_batch_routes(app: FastAPI, state: ServerState) -> None:
    base = "/api/{name}/{version}/batch"

    @app.post(base)
    async def start_batch(name: str, version: str, request: Request, user: User) -> Response:
        service = _service_or_404(state, name, version)
        parallel = _parallel_count(request, state.settings)
        raw = await request.body()
        batch_id = await run_in_threadpool(_create_batch, state, service, user, raw, parallel)
        return JSONResponse(
            {"BatchExecutionId": batch_id},
            status_code=202,
            headers={"X-Effective-Parallel-Count": str(parallel)},
        )

    @app.get(base)
    def list_batches(name: str, version: str, user: User) -> Response:
        _service_or_404(state, name, version)
        return JSONResponse(state.store.list_batch_ids(user, name, version))

    @app.get(base + "/{batch_id}")
    def batch_status(
        name: str, version: str, batch_id: str, request: Request, user: User
    ) -> Response:
        show_partial = _flag(request, "showPartialResults", "showPartialResult")
        batch = _owned_batch(state, name, version, batch_id, user)
        results: list[str] = []
        completed = batch.completed
        if batch.state == "Complete" or (show_partial and batch.completed):
            results = state.store.finished_results(batch_id)
            if batch.state != "Complete":
                # Read after the count, while rows go on finishing: the rows listed are the
                # ones finished, and the count says so.
                completed = len(results)
        head: dict[str, Any] = {
            "state": batch.state,
            "completedItemCount": completed,
            "totalItemCount": batch.total,
        }
        if batch.state == "Failed":
            head["errorMessage"] = batch.error_message or ""
        prefix = json.dumps(head)[:-1]
        return _json_text(f'{prefix}, "batchExecutionResults": [{",".join(results)}]}}')

    @app.delete(base + "/{batch_id}")
    def cancel_batch(name: str, version: str, batch_id: str, user: User) -> Response:
        _owned_batch(state, name, version, batch_id, user)
        state.executor.cancel(batch_id)
        return JSONResponse([batch_id])

    @app.get(base + "/{batch_id}/{index}/files")
    def list_files(name: str, version: str, batch_id: str, index: int, user: User) -> Response:
        batch = _owned_batch(state, name, version, batch_id, user)
        idx = _row_index(state, batch, index)
        if not state.store.row_done(batch_id, idx):
            return JSONResponse([])
        names = file_names(state.executor.row_dir(batch_id, idx))
        names += state.fault_points.extra_file_names(name)
        return JSONResponse(names)

    @app.get(base + "/{batch_id}/{index}/files/{file_name:path}")
    def get_file(
        name: str, version: str, batch_id: str, index: int, file_name: str, user: User
    ) -> Response:
        if "\0" in file_name:
            raise ApiError(400, "File names cannot contain NUL.")
        batch = _owned_batch(state, name, version, batch_id, user)
        idx = _row_index(state, batch, index)
        missing = ApiError(
            404, f"Row {index} of batch execution '{batch_id}' has no file {file_name!r}."
        )
        if not is_plain_file_name(file_name) or not state.store.row_done(batch_id, idx):
            raise missing
        row_dir = state.executor.row_dir(batch_id, idx)
        path = row_dir / file_name
        if path.parent != row_dir:
            raise missing
        return _file_response(path, media_type(file_name), missing)


def _file_response(path: Path, content_type: str, missing: ApiError) -> Response:
    """A row file: small ones read in one go, larger ones streamed from disk in chunks.

    Most row files are small (a plot, a CSV of one row's results); reading them here, in the
    route's worker thread, saves the several thread hops of a streamed response.
    """
    try:
        if not path.is_file():
            raise missing
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size <= SMALL_FILE_BYTES:
                return Response(content=handle.read(), media_type=content_type)
    except OSError:  # removed meanwhile (the batch was cancelled)
        raise missing from None
    return FileResponse(path, media_type=content_type)
