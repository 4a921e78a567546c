"""The hook: an ``mrsdeploy`` connection turned into typed calls of the operationalization API."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import Any, NamedTuple, TypeVar

import aiohttp
import requests
from airflow.sdk import BaseHook

from airflow_provider.api import calls
from airflow_provider.api.auth_flow import Authenticator, TokenRenewal
from airflow_provider.api.body import BodyInput, RequestBody, request_body
from airflow_provider.api.calls import ApiRequest
from airflow_provider.api.errors import (
    MrsDeployError,
    MrsDeployIndexError,
    MrsDeployNotFoundError,
)
from airflow_provider.api.exchange import Outgoing, RawResponse
from airflow_provider.api.limits import ByteBudget
from airflow_provider.api.models import BatchStatus, ExecutionResult, ServiceInfo
from airflow_provider.api.parsers import (
    decode_json,
    parse_batch_id,
    parse_execution_result,
    parse_service,
)
from airflow_provider.api.results_stream import BatchAnswerReader
from airflow_provider.api.resume import ResumeState
from airflow_provider.hooks import async_sessions, endpoints, transport_async, transport_sync
from airflow_provider.hooks.azure_ad import issuer_for
from airflow_provider.hooks.download import AsyncOpener, AsyncResumableDownload, ResumableDownload
from airflow_provider.hooks.endpoints import Endpoint
from airflow_provider.hooks.flow import TokenIssuer, adrive, drive
from airflow_provider.hooks.masking import Secret, amask, mask
from airflow_provider.hooks.mock_transport import MockTransport
from airflow_provider.hooks.retry import RetryPolicy
from airflow_provider.hooks.settings import (
    DEFAULT_TOKEN_REFRESH_LEAD,
    ConnectionLike,
    MrsDeployConnectionSettings,
    settings_from_connection,
)
from airflow_provider.hooks.tokens import TokenCache, shared_token_cache

_T = TypeVar("_T")

#: Bodies larger than this are decoded in a worker thread on the async path, so parsing the
#: results of a big batch does not block the triggerer's event loop.
ASYNC_DECODE_IN_THREAD_BYTES = 1 << 20


class _CallParts(NamedTuple):
    """What every call with ``settings`` and the token cache ``tokens`` is made with."""

    settings: MrsDeployConnectionSettings
    tokens: TokenCache
    auth: Authenticator
    policy: RetryPolicy
    issuer: TokenIssuer | None


class MrsDeployHook(BaseHook):
    """Talk to an R Server / Machine Learning Server web node.

    Nothing is looked up or sent on construction. The connection is read on first use (with
    ``get_connection`` on the sync path, ``aget_connection`` on the async path). One
    ``requests.Session`` serves the sync methods and one ``aiohttp.ClientSession``, created inside
    the running loop, serves the ``a*`` methods; call :meth:`close` / :meth:`aclose` when done.
    Both paths share the token cache, the call flow and the retry policy.

    :param mrsdeploy_conn_id: id of an ``mrsdeploy`` connection.
    :param timeout: seconds per HTTP request; overrides the connection's ``timeout`` extra.
    :param max_retries: retries of retryable failures; overrides the ``max_retries`` extra.
    :param transport: answers the requests instead of the network, on both paths (unit tests:
        :class:`~airflow_provider.hooks.mock_transport.MockTransport`).
    """

    conn_name_attr = "mrsdeploy_conn_id"
    default_conn_name = "mrsdeploy_default"
    conn_type = "mrsdeploy"
    hook_name = "R Server / ML Server (mrsdeploy)"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extra fields, for Airflow 3.1 (3.2+ reads ``conn-fields``
        from the provider's metadata and does not call this): see ``hooks.form``."""
        from airflow_provider.hooks.form import connection_form_widgets

        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder standard fields, for Airflow 3.1 (3.2+ reads
        ``ui-field-behaviour``): see ``hooks.form``."""
        from airflow_provider.hooks.form import ui_field_behaviour

        return ui_field_behaviour()

    def __init__(
        self,
        mrsdeploy_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        transport: MockTransport | None = None,
    ):
        super().__init__()
        self.transport = transport
        self.mrsdeploy_conn_id = mrsdeploy_conn_id
        self.timeout = timeout
        self.max_retries = max_retries
        self._settings: MrsDeployConnectionSettings | None = None
        self._tokens = TokenCache(DEFAULT_TOKEN_REFRESH_LEAD)
        self._session: requests.Session | None = None
        self._async_session: aiohttp.ClientSession | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        #: What calls with the last settings and token cache are made with: see _call_parts.
        self._parts: _CallParts | None = None

    # -- connection and sessions -------------------------------------------------------------

    def _adopt(self, conn: ConnectionLike) -> MrsDeployConnectionSettings:
        settings = settings_from_connection(
            conn, timeout=self.timeout, max_retries=self.max_retries
        )
        self._tokens = shared_token_cache(
            settings.base_url, settings.identity, settings.token_refresh_lead
        )
        self._settings = settings
        return settings

    @staticmethod
    def _secrets_of(settings: MrsDeployConnectionSettings) -> list[Secret]:
        # Password, bearer token, client secret, proxy password: whichever are set.
        return list(settings.secrets)

    @property
    def settings(self) -> MrsDeployConnectionSettings:
        """The connection's settings (read with the blocking lookup on first use)."""
        if self._settings is None:
            settings = self._adopt(self.get_connection(self.mrsdeploy_conn_id))
            for secret, name in self._secrets_of(settings):
                mask(secret, name)
            return settings
        return self._settings

    async def asettings(self) -> MrsDeployConnectionSettings:
        """The connection's settings (read with the async lookup on first use)."""
        if self._settings is None:
            settings = self._adopt(await BaseHook.aget_connection(self.mrsdeploy_conn_id))
            for secret, name in self._secrets_of(settings):
                await amask(secret, name)
            return settings
        return self._settings

    def independent_copy(self) -> MrsDeployHook:
        """A hook on the same connection and tokens, with HTTP sessions of its own.

        For ``on_kill``: Airflow calls it from a signal handler that may interrupt a call of
        this hook halfway, whose session must not be reused meanwhile. Nothing is looked up:
        the connection already read is reused (a lookup from a signal handler could interleave
        with one the task was making).
        """
        copy = MrsDeployHook(
            self.mrsdeploy_conn_id,
            timeout=self.timeout,
            max_retries=self.max_retries,
            transport=self.transport,
        )
        copy._settings = self._settings
        copy._tokens = self._tokens
        return copy

    @property
    def base_url(self) -> str:
        """Base URL of the server."""
        return self.settings.base_url

    def get_conn(self) -> requests.Session:
        """The hook's ``requests.Session`` (created once)."""
        if self._session is None:
            self._session = transport_sync.new_session(self.settings)
        return self._session

    def close(self) -> None:
        """Close the sync session."""
        if self._session is not None:
            self._session.close()
            self._session = None

    async def _aget_session(self) -> aiohttp.ClientSession:
        # The running loop's session for this connection, shared with every other hook of the
        # connection in this loop (a triggerer's waits then share one connection pool).
        loop = asyncio.get_running_loop()
        session = self._async_session
        if session is not None and self._async_loop is loop and not session.closed:
            return session
        if session is not None:
            # Closed, or bound to another loop: a new loop needs a session of its own.
            stale_loop, self._async_session, self._async_loop = self._async_loop, None, None
            with contextlib.suppress(Exception):  # best effort: its loop may have ended
                await async_sessions.release(session, stale_loop)
        settings = await self.asettings()
        session = await async_sessions.acquire(settings)
        if self._async_session is not None and self._async_loop is loop:
            # A concurrent call of this hook took one meanwhile: hold one use, not two.
            await async_sessions.release(session, loop)
            return self._async_session
        self._async_session, self._async_loop = session, loop
        return session

    async def aclose(self) -> None:
        """Give the async session back (call from the loop that used it).

        The session is shared with the other hooks of this connection in the loop; the last
        hook to give it back closes it.
        """
        session, loop = self._async_session, self._async_loop
        self._async_session, self._async_loop = None, None
        if session is not None:
            await async_sessions.release(session, loop)

    # -- the two drivers ---------------------------------------------------------------------

    def _renewal_due(self, request: ApiRequest, settings: MrsDeployConnectionSettings) -> bool:
        """Whether this call will have to log in or refresh first.

        Such calls go one at a time per token cache (single flight): a thousand triggers or
        download threads starting together then log in once, and the rest reuse the token.
        """
        return (
            request.authenticated
            and not settings.uses_bearer_token
            and self._tokens.usable_token(time.time()) is None
        )

    def _call_parts(self, settings: MrsDeployConnectionSettings) -> _CallParts:
        """The authentication flow, retry policy and Azure AD token issuer of calls with
        ``settings``.

        They depend only on the settings, the token cache and the logger, so they are built
        (and the issuer looked up) once per settings and token cache rather than for every
        call: a collect makes one call per file.
        """
        parts = self._parts
        if parts is None or parts.settings is not settings or parts.tokens is not self._tokens:
            log = self.log
            parts = self._parts = _CallParts(
                settings,
                self._tokens,
                Authenticator(settings, self._tokens, log, issuer=settings.token_issuer),
                RetryPolicy.from_settings(settings, log),
                issuer_for(settings),
            )
        return parts

    def _call(
        self,
        request: ApiRequest,
        body: RequestBody | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        retries: bool = True,
    ) -> RawResponse:
        """One call, with the connection's retries (none with ``retries=False``: for a caller
        whose own loop retries, so that both do not multiply).

        Tokens are renewed one call at a time, under the token cache's lock: a call that finds
        the token stale before it starts takes the lock at once; one that finds it stale later,
        or whose token the server refused, is run again under the lock
        (:class:`~airflow_provider.api.auth_flow.TokenRenewal`).
        """
        settings = self.settings
        try:
            if self._renewal_due(request, settings):
                with self._tokens.renewal_lock:
                    # Checked again once in, as on the async path: whoever held the lock has
                    # usually just renewed the token, and this call need not hold others up.
                    if self._renewal_due(request, settings):
                        return self._call_once(
                            request, settings, body, headers, retries, locked=True
                        )
            return self._call_once(request, settings, body, headers, retries)
        except TokenRenewal as wanted:
            with self._tokens.renewal_lock:
                return self._call_once(
                    request, settings, body, headers, retries, wanted.refused, locked=True
                )

    def _call_once(
        self,
        request: ApiRequest,
        settings: MrsDeployConnectionSettings,
        body: RequestBody | None,
        headers: Mapping[str, str] | None,
        retries: bool = True,
        refused: str | None = None,
        *,
        locked: bool = False,
    ) -> RawResponse:
        parts = self._call_parts(settings)
        auth, policy, issuer = parts.auth, parts.policy, parts.issuer
        if not retries:
            policy = dataclasses.replace(policy, max_retries=0)
        if self.transport is not None:
            send = functools.partial(self.transport.send, settings)
        else:
            send = functools.partial(transport_sync.send, self.get_conn(), settings)

        def attempt() -> RawResponse:
            try:
                return drive(auth.call(request, body, headers, refused, locked), send, issuer)
            finally:
                # Before anything is logged: the retry warning, the error the task prints.
                for secret, name in self._tokens.take_unmasked():
                    mask(secret, name)

        return policy.run(
            attempt, idempotent=request.idempotent, replayable=body is None or body.replayable
        )

    async def _acall(
        self, request: ApiRequest, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        if self._settings is None:
            # The first lookup of a connection blocks the loop briefly (Airflow's lookup):
            # a crowd of hooks starting together takes turns instead of doing it all at once.
            async with async_sessions.lookup_turn():
                settings = await self.asettings()
        else:
            settings = self._settings
        try:
            if self._renewal_due(request, settings):
                async with self._tokens.arenewal_lock():
                    # Checked again once in: whoever held the lock has usually just renewed the
                    # token, and then this call need not keep the others waiting while it runs.
                    if self._renewal_due(request, settings):
                        return await self._acall_once(request, settings, headers, locked=True)
            return await self._acall_once(request, settings, headers)
        except TokenRenewal as wanted:  # renewed one call at a time, as in _call
            async with self._tokens.arenewal_lock():
                return await self._acall_once(
                    request, settings, headers, wanted.refused, locked=True
                )

    async def _acall_once(
        self,
        request: ApiRequest,
        settings: MrsDeployConnectionSettings,
        headers: Mapping[str, str] | None = None,
        refused: str | None = None,
        *,
        locked: bool = False,
    ) -> RawResponse:
        parts = self._call_parts(settings)
        auth, policy, issuer = parts.auth, parts.policy, parts.issuer
        if self.transport is not None:
            mocked = functools.partial(self.transport.asend, settings)
            attempt = functools.partial(
                attempt_once, auth, self._tokens, request, mocked, headers, issuer, refused, locked
            )
            return await policy.arun(attempt, idempotent=request.idempotent)
        session = await self._aget_session()
        # Partials of plain values, not closures (``attempt_once`` has no free variables): a
        # call waiting for its turn holds as few objects as possible. Requests of the shared
        # session take turns (``async_sessions``); a retry waits without holding a turn.
        send = functools.partial(transport_async.send, session, settings)
        attempt = functools.partial(
            attempt_once, auth, self._tokens, request, send, headers, issuer, refused, locked
        )
        return await policy.arun(
            attempt,
            idempotent=request.idempotent,
            gate=async_sessions.request_turn(session, settings, request),
        )

    def _json(self, request: ApiRequest) -> Any:
        return decode_json(self._call(request).body, request.describe)

    def _run(self, endpoint: Endpoint[_T], *args: Any) -> _T:
        """One call of the table, blocking (:meth:`_arun` is the same call on the loop)."""
        request = endpoint.request(*args)
        try:
            response = self._call(request)
        except MrsDeployNotFoundError as error:
            return endpoint.on_missing(error)
        return endpoint.read(response.body, request.describe)

    async def _arun(self, endpoint: Endpoint[_T], *args: Any) -> _T:
        """:meth:`_run` on the event loop; a large answer is read in a worker thread."""
        request = endpoint.request(*args)
        try:
            response = await self._acall(request)
        except MrsDeployNotFoundError as error:
            return endpoint.on_missing(error)
        return await _aparse(endpoint.read, response.body, request.describe)

    def _log_cancel(self, cancelled: bool, name: str, version: str, batch_id: str) -> None:
        if cancelled:
            self.log.info("Cancelled batch %s of %s %s", batch_id, name, version)
        else:
            self.log.info(
                "Batch %s of %s %s is already gone; nothing to cancel", batch_id, name, version
            )

    # -- services ----------------------------------------------------------------------------

    def list_services(self) -> list[ServiceInfo]:
        """Every service published on the server."""
        return self._run(endpoints.LIST_SERVICES)

    def get_service(self, name: str, version: str) -> ServiceInfo:
        """One service version.

        :param name: service name.
        :param version: service version.
        :raises MrsDeployNotFoundError: when the server does not have it.
        """
        request = calls.get_service(name, version)
        try:
            return parse_service(self._json(request), name, version)
        except MrsDeployNotFoundError as err:
            raise MrsDeployNotFoundError(
                f"service {name} {version} not found on {self.base_url}; "
                "check service_name/service_version",
                status_code=err.status_code,
                method=request.method,
                path=request.path,
                exception_type=err.exception_type,
            ) from None

    def get_swagger(self, name: str, version: str) -> dict[str, Any]:
        """The service's Swagger 2.0 document.

        :param name: service name.
        :param version: service version.
        """
        return self._run(endpoints.GET_SWAGGER, name, version)

    def consume(self, name: str, version: str, inputs: Mapping[str, Any]) -> ExecutionResult:
        """Score one set of inputs synchronously.

        :param name: service name.
        :param version: service version.
        :param inputs: input parameter values.
        """
        return parse_execution_result(self._json(calls.consume(name, version, inputs)))

    # -- batches -----------------------------------------------------------------------------

    def start_batch(
        self, name: str, version: str, body: BodyInput, *, parallel_count: int = 10
    ) -> str:
        """Create and start a batch execution; return its id.

        :param name: service name.
        :param version: service version.
        :param body: the pre-encoded JSON array of input records, sent as
            ``application/json``. ``bytes`` are sent as is. A zero-argument callable returning an
            iterable of ``bytes`` chunks is called for each attempt and streamed chunked, so a
            large body is never joined in memory and can still be retried. Any other iterable of
            ``bytes`` is streamed once: with it, a failed attempt cannot be retried.
        :param parallel_count: rows the server may run at once (the server may clamp it).
        """
        request = calls.start_batch(name, version, parallel_count)
        response = self._call(request, request_body(body))
        batch_id = parse_batch_id(decode_json(response.body, request.describe))
        self.log.info(
            "Started batch %s of %s %s (parallelCount=%d)", batch_id, name, version, parallel_count
        )
        return batch_id

    def list_batches(self, name: str, version: str) -> list[str]:
        """Ids of the caller's batch executions of a service.

        :param name: service name.
        :param version: service version.
        """
        return self._run(endpoints.LIST_BATCHES, name, version)

    def get_batch_status(
        self, name: str, version: str, batch_id: str, *, show_partial_results: bool = False
    ) -> BatchStatus:
        """State, counts and results of a batch.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        :param show_partial_results: include rows finished so far while the batch runs.
        """
        return self._run(endpoints.BATCH_STATUS, name, version, batch_id, show_partial_results)

    def read_batch_results(
        self,
        name: str,
        version: str,
        batch_id: str,
        take: Callable[[list[ExecutionResult]], None],
    ) -> BatchStatus:
        """Read a batch's answer as it arrives: ``take`` gets its rows' results in order, a
        chunk at a time; returns the state and counts (without rows).

        The memory held is one chunk of the answer, whatever the number of rows, where
        :meth:`get_batch_status` holds the whole answer (up to ``max_response_bytes``). When
        the connection breaks part-way, the answer is asked for again and the rows already
        given to ``take`` are skipped. One budget, the connection's retries, counts both the
        failed requests and the broken answers.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        :param take: receives each list of rows just read (never an empty one).
        """
        request = calls.get_batch_results(name, version, batch_id)
        settings = self.settings
        read_body = self.transport.iter_stream if self.transport else transport_sync.iter_stream
        delivered = 0

        def attempt() -> BatchStatus:
            nonlocal delivered
            raw = self._call(request, retries=False)  # retried by the loop below
            reader = BatchAnswerReader(request.describe, limit=settings.max_response_bytes)

            def hand_over(rows: list[ExecutionResult]) -> None:
                nonlocal delivered
                fresh = rows[max(0, delivered - (reader.rows - len(rows))) :]
                if fresh:
                    delivered += len(fresh)
                    take(fresh)

            chunks = read_body(
                raw, 1 << 16, request.method, request.path, stall_timeout=settings.timeout
            )
            for chunk in chunks:
                hand_over(reader.feed(chunk))
            status, rows = reader.finish()
            hand_over(rows)
            return status

        return RetryPolicy.from_settings(settings, self.log).run(attempt)

    def get_batch_progress(self, name: str, version: str, batch_id: str) -> BatchStatus:
        """State and counts of a batch, without its row results: all that waiting reads.

        The answer of a finished batch carries every row's result after its state and
        counts (the API has no lighter call): it is read only until those are known, and the
        connection is then closed rather than reading the rows (see
        :func:`~airflow_provider.api.parsers.scan_batch_progress`). An answer laid out
        otherwise is read whole and its rows are skipped while decoding
        (:func:`~airflow_provider.api.parsers.parse_batch_progress`).

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        """
        return self._run(endpoints.BATCH_PROGRESS, name, version, batch_id)

    def cancel_batch(self, name: str, version: str, batch_id: str) -> None:
        """Cancel and delete a batch; a batch that is already gone is not an error.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        """
        cancelled = self._run(endpoints.CANCEL_BATCH, name, version, batch_id)
        self._log_cancel(cancelled, name, version, batch_id)

    def list_batch_files(self, name: str, version: str, batch_id: str, index: int) -> list[str]:
        """Names of the files one row produced (none when the server answers 404).

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        :param index: 0-based row index.
        """
        return self._run(endpoints.LIST_BATCH_FILES, name, version, batch_id, index)

    def iter_batch_file(
        self,
        name: str,
        version: str,
        batch_id: str,
        index: int,
        file_name: str,
        *,
        chunk_size: int = 1 << 16,
    ) -> Generator[bytes, None, None]:
        """Stream one file of a row in chunks; the response is closed when the iterator ends
        or is closed.

        The request is sent when iteration starts (so errors surface on the first ``next``).
        When the connection breaks mid-file, the download resumes from the first byte not yet
        delivered (``Range``), so the iterator yields the file exactly once, in order, and a
        consumer hashing the chunks as they come gets the right digest. A file larger than the
        connection's ``max_download_bytes`` fails with ``MrsDeployResponseTooLargeError``.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        :param index: 0-based row index.
        :param file_name: a name from :meth:`list_batch_files`.
        :param chunk_size: bytes per chunk (at most).
        """
        request = calls.get_batch_file(name, version, batch_id, index, file_name)
        yield from ResumableDownload(
            lambda headers: self._call(request, headers=headers),
            self._resume_state(request, self.settings),
            chunk_size=chunk_size,
            read_body=self.transport.iter_stream if self.transport else transport_sync.iter_stream,
        )

    def _resume_state(
        self, request: ApiRequest, settings: MrsDeployConnectionSettings
    ) -> ResumeState:
        """The bookkeeping of one file download (limits and retries from the connection)."""
        return ResumeState(
            what=request.describe,
            method=request.method,
            path=request.path,
            policy=self._call_parts(settings).policy,
            log=self.log,
            limit=settings.max_download_bytes,
            stall_timeout=settings.timeout,
        )

    def get_batch_file(
        self, name: str, version: str, batch_id: str, index: int, file_name: str
    ) -> bytes:
        """One file of a row, in memory (prefer :meth:`iter_batch_file` for large files).

        Limited to the connection's ``max_response_bytes``, like every answer read into memory.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        :param index: 0-based row index.
        :param file_name: a name from :meth:`list_batch_files`.
        :raises MrsDeployResponseTooLargeError: when the file is larger than the limit.
        """
        request = calls.get_batch_file(name, version, batch_id, index, file_name)
        budget = ByteBudget(
            self.settings.max_response_bytes, request.describe, "max_response_bytes"
        )
        content = bytearray()
        chunks = self.iter_batch_file(name, version, batch_id, index, file_name)
        try:
            for chunk in chunks:
                budget.take(len(chunk))
                content += chunk
        finally:
            chunks.close()
        return bytes(content)

    def get_execution(self, name: str, version: str, batch_id: str, index: int) -> ExecutionResult:
        """The result of one row of a finished batch.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        :param index: 0-based row index (position in the submitted array).
        :raises MrsDeployError: when the batch has no full results yet.
        :raises MrsDeployIndexError: when ``index`` is outside the batch.
        """
        status = self.get_batch_status(name, version, batch_id, show_partial_results=False)
        if not status.is_terminal and not status.results:
            raise MrsDeployError(
                f"batch {batch_id} is {status.state.value} ({status.completed_item_count}/"
                f"{status.total_item_count} rows); row results are available once it is complete"
            )
        if isinstance(index, bool) or not 0 <= index < len(status.results):
            raise MrsDeployIndexError(
                f"row index {index} is out of range: batch {batch_id} has "
                f"{len(status.results)} results (indexes are 0-based)"
            )
        return status.results[index]

    def test_connection(self) -> tuple[bool, str]:
        """Log in (unless a bearer token is configured) and list the services.

        A connection whose extras would send its credentials somewhere the stored connection
        would not (a proxy, another Azure AD host) or use the identity of the machine running
        the test is refused before any request (see :mod:`.connection_test`).
        """
        from airflow_provider.hooks.connection_test import refused_by_test_button

        try:
            problem = refused_by_test_button(self.settings)
            if problem is not None:
                return False, problem
            services = self.list_services()
        except Exception as err:
            # The tester may see the form with its secrets masked only: a server quoting the
            # login it was sent must not show them the stored password.
            return False, self._without_secrets(str(err))
        return True, f"Connected to {self.base_url}: {len(services)} service(s) visible"

    def _without_secrets(self, message: str) -> str:
        """``message`` with every secret of the connection in it replaced by ``***``."""
        from airflow_provider.ui.redaction import redact, secrets_of

        if self._settings is not None:
            return redact(message, [secret for secret, _ in self._settings.secrets])
        secrets: list[str] = []  # the settings could not be read: the connection's own
        with contextlib.suppress(Exception):  # no connection: no stored secret to hide
            secrets = secrets_of(self.get_connection(self.mrsdeploy_conn_id))
        return redact(message, secrets)

    # -- async (for triggers) ----------------------------------------------------------------

    async def aget_batch_status(
        self, name: str, version: str, batch_id: str, *, show_partial_results: bool = False
    ) -> BatchStatus:
        """Async :meth:`get_batch_status`.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        :param show_partial_results: include rows finished so far while the batch runs.
        """
        return await self._arun(
            endpoints.BATCH_STATUS, name, version, batch_id, show_partial_results
        )

    async def aget_batch_progress(self, name: str, version: str, batch_id: str) -> BatchStatus:
        """Async :meth:`get_batch_progress`: what a trigger polls.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        """
        return await self._arun(endpoints.BATCH_PROGRESS, name, version, batch_id)

    async def acancel_batch(self, name: str, version: str, batch_id: str) -> None:
        """Async :meth:`cancel_batch`.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        """
        cancelled = await self._arun(endpoints.CANCEL_BATCH, name, version, batch_id)
        self._log_cancel(cancelled, name, version, batch_id)

    async def alist_batch_files(
        self, name: str, version: str, batch_id: str, index: int
    ) -> list[str]:
        """Async :meth:`list_batch_files`.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        :param index: 0-based row index.
        """
        return await self._arun(endpoints.LIST_BATCH_FILES, name, version, batch_id, index)

    def aiter_batch_file(
        self,
        name: str,
        version: str,
        batch_id: str,
        index: int,
        file_name: str,
        *,
        chunk_size: int = 1 << 16,
    ) -> AsyncIterator[bytes]:
        """Async :meth:`iter_batch_file`: stream one file of a row, resuming after breaks.

        Nothing is checked or sent until the first chunk is asked for; ``aclose()`` the
        iterator when stopping early.

        :param name: service name.
        :param version: service version.
        :param batch_id: batch execution id.
        :param index: 0-based row index.
        :param file_name: a name from :meth:`alist_batch_files`.
        :param chunk_size: bytes per chunk (at most).
        """

        async def prepare() -> tuple[AsyncOpener, ResumeState]:
            request = calls.get_batch_file(name, version, batch_id, index, file_name)
            state = self._resume_state(request, self._settings or await self.asettings())
            return functools.partial(self._acall, request), state

        transport = self.transport
        return AsyncResumableDownload(
            prepare,
            chunk_size=chunk_size,
            read_body=transport.aiter_stream if transport else transport_async.aiter_stream,
        )


async def _aparse(parse: Callable[[bytes, str], _T], body: bytes, what: str) -> _T:
    """``parse(body, what)`` on the loop, or in a worker thread when the body is large (the
    results of a big batch), so the loop is not held while it is parsed."""
    if len(body) > ASYNC_DECODE_IN_THREAD_BYTES:
        return await asyncio.to_thread(parse, body, what)
    return parse(body, what)


async def attempt_once(
    auth: Authenticator,
    tokens: TokenCache,
    request: ApiRequest,
    send: Callable[[Outgoing], Awaitable[RawResponse]],
    headers: Mapping[str, str] | None,
    issuer: TokenIssuer | None = None,
    refused: str | None = None,
    locked: bool = False,
) -> RawResponse:
    """One attempt of an async call: the authentication flow driven over ``send`` (and
    ``issuer``, for the tokens of an Azure AD connection); ``refused`` and ``locked``: see
    :class:`~airflow_provider.api.auth_flow.TokenRenewal`.

    Tokens that arrived during the attempt (in ``tokens``, the cache ``auth`` stores them in)
    are registered with the log masker before anything can log them (the retry warning, the
    error the trigger reports).
    """
    try:
        return await adrive(auth.call(request, None, headers, refused, locked), send, issuer)
    finally:
        for secret, name in tokens.take_unmasked():
            await amask(secret, name)
