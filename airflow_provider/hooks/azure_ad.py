"""Access tokens from Azure AD (Microsoft Entra ID), through ``azure-identity``.

``azure-identity`` is an optional extra, imported here only when a connection that uses Azure AD
asks for its first token. The call flow (:mod:`airflow_provider.api.auth_flow`) decides when a
token is needed: before the cached one expires (``refresh_lead``) and once after a 401;
the issuer here only asks the credential for it.

One blocking credential per connection identity serves a whole process, worker threads and the
triggerer's event loop alike: on the loop it runs in a worker thread. A token is asked for once
per token lifetime (an hour on Azure AD), so that hop costs nothing that matters, while an async
credential would bind an aiohttp session to each loop that must be closed on it; and both paths
then send the token requests through the same HTTP stack, with the same proxy and TLS rules.

The credential's own retries are off: a failed token request fails the attempt of the call it
serves, and the connection's retry policy (``max_retries``, backoff, deadlines) decides, as for
any other request. Nothing here logs or quotes a token or the client secret.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from typing import Any

from airflow_provider.api.errors import (
    MrsDeployAuthError,
    MrsDeployConfigurationError,
    MrsDeployConnectionError,
)
from airflow_provider.api.tokens import IssuedToken, TokenWanted
from airflow_provider.hooks import proxies
from airflow_provider.hooks.azure_ad_settings import (
    CLIENT_SECRET,
    INSTALL_HINT,
    MANAGED_IDENTITY,
    AzureAdSettings,
)
from airflow_provider.hooks.settings import (
    MrsDeployConnectionSettings,
    TransportConfig,
    shown_proxy,
)
from airflow_provider.safe_text import printable
from airflow_provider.waiting.deadlines import request_timeout

#: Where azure-identity sends token requests when nothing else is configured.
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
#: Where a managed identity asks when no App Service / Cloud Shell variable names an endpoint.
IMDS_ENDPOINT = "http://169.254.169.254"
#: Characters of the token endpoint's message quoted in an error at most.
MESSAGE_CHARS = 600
#: Statuses of the token endpoint that may go away by waiting.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_HTTP_ERROR = re.compile(r"\bHTTP Error: (\d{3})\b")


class AzureAdIssuer:
    """Issues the access tokens of one Azure AD credential.

    :param config: the connection's Azure AD settings.
    :param transport: the connection's transport settings (proxy, timeout).
    """

    def __init__(self, config: AzureAdSettings, transport: TransportConfig) -> None:
        self.config = config
        self.transport = transport
        self._lock = threading.Lock()
        self._credential: Any = None
        self._last: str | None = None

    # -- the credential ----------------------------------------------------------------------

    def endpoint(self) -> str:
        """Where the credential's token requests go (for the proxy decision)."""
        if self.config.credential == MANAGED_IDENTITY:
            return (
                os.environ.get("IDENTITY_ENDPOINT")
                or os.environ.get("MSI_ENDPOINT")
                or IMDS_ENDPOINT
            )
        return (
            self.config.authority_host or os.environ.get("AZURE_AUTHORITY_HOST") or PUBLIC_AUTHORITY
        )

    def _transport_options(self) -> dict[str, Any]:
        """azure-core's transport options: timeouts, no retries of its own, proxy, TLS."""
        transport = self.transport
        options: dict[str, Any] = {
            "connection_timeout": transport.timeout,
            "read_timeout": transport.timeout,
            "retry_total": 0,
        }
        if transport.proxy is not None or not transport.trust_env:
            # The environment's proxy variables are not the connection's choice here.
            options["use_env_settings"] = False
            chosen = proxies.route(transport, self.endpoint())
            if chosen is not None:
                options["proxies"] = {"http": chosen, "https": chosen}
        if self.config.authority_ca_bundle:
            options["connection_verify"] = self.config.authority_ca_bundle
        return options

    def _build(self) -> Any:
        try:
            import azure.identity as identity
        except ImportError:
            raise MrsDeployConfigurationError(
                f"the connection uses Azure AD, which needs the 'azure-identity' package: "
                f"{INSTALL_HINT}"
            ) from None
        config = self.config
        options = self._transport_options()
        try:
            if config.credential == MANAGED_IDENTITY:
                return identity.ManagedIdentityCredential(client_id=config.client_id, **options)
            authority: dict[str, Any] = {
                "disable_instance_discovery": not config.instance_discovery,
            }
            if config.authority_host is not None:
                authority["authority"] = config.authority_host
            if config.credential == CLIENT_SECRET:
                return identity.ClientSecretCredential(
                    config.tenant_id or "",
                    config.client_id or "",
                    config.client_secret or "",
                    **authority,
                    **options,
                )
            return identity.WorkloadIdentityCredential(
                tenant_id=config.tenant_id,
                client_id=config.client_id,
                token_file_path=config.federated_token_file,
                **authority,
                **options,
            )
        except ValueError as err:
            raise MrsDeployConfigurationError(f"{config.describe}: {self._scrubbed(err)}") from None

    def _credential_now(self, fresh: bool) -> Any:
        with self._lock:
            if fresh or self._credential is None:
                old, self._credential = self._credential, self._build()
                if old is not None:
                    old.close()
            return self._credential

    # -- tokens ------------------------------------------------------------------------------

    def issue(self, wanted: TokenWanted) -> IssuedToken:
        """A token for the connection's scope, blocking.

        After a 401 (``wanted.renew``), or when the credential hands back the very token asked
        to replace (served from its own cache), a new credential asks Azure AD again: the call
        flow asks only when it wants a different token.

        :param wanted: what the call flow asked for.
        :raises MrsDeployConfigurationError: when azure-identity is missing, or refuses the
            settings.
        :raises MrsDeployAuthError: when Azure AD refused the request or no credential is
            available here.
        :raises MrsDeployConnectionError: when the token endpoint could not be reached or
            answered a transient error (retried by the connection's policy).
        """
        try:
            token = self._get(self._credential_now(fresh=wanted.renew))
            if token.access_token == self._last:
                token = self._get(self._credential_now(fresh=True))
        except MrsDeployConnectionError:
            # MSAL replays a failed answer for a while without asking again (its throttling
            # cache, per credential): the retry the connection's policy makes must ask anew.
            self._drop_credential()
            raise
        self._last = token.access_token
        return token

    def _drop_credential(self) -> None:
        with self._lock:
            old, self._credential = self._credential, None
        if old is not None:
            old.close()

    async def aissue(self, wanted: TokenWanted) -> IssuedToken:
        """:meth:`issue` in a worker thread, waited for at most the request timeout (twice:
        the authority's metadata and the token)."""
        seconds = request_timeout(self.transport.timeout)
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.issue, wanted), 2 * seconds)
        except TimeoutError:
            raise MrsDeployConnectionError(
                f"no token from {self.config.describe} within {2 * seconds:g} s",
                retryable=True,
                may_have_been_sent=False,
            ) from None

    def _get(self, credential: Any) -> IssuedToken:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            token = credential.get_token(self.config.scope)
        except (ServiceRequestError, ServiceResponseError) as err:
            raise self._unreachable(err) from None
        except ClientAuthenticationError as err:
            # azure-identity wraps what went wrong underneath: look at the whole chain.
            chain = _causes(err)
            failed = next(
                (e for e in chain if isinstance(e, (ServiceRequestError, ServiceResponseError))),
                None,
            )
            if failed is not None:
                raise self._unreachable(failed) from None
            raise self._refused(err, _status(chain)) from None
        except ValueError as err:
            raise MrsDeployConfigurationError(
                f"{self.config.describe}: {self._scrubbed(err)}"
            ) from None
        return IssuedToken(token.token, float(token.expires_on))

    # -- errors ------------------------------------------------------------------------------

    def _scrubbed(self, err: BaseException) -> str:
        """The library's message without the client secret, control characters or excess."""
        text = str(err) or type(err).__name__
        secret = self.config.client_secret
        if secret:
            from urllib.parse import quote, quote_plus

            for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
                text = text.replace(form, "***")
        return printable(text, MESSAGE_CHARS)

    def _unreachable(self, err: BaseException) -> MrsDeployConnectionError:
        chosen = proxies.route(self.transport, self.endpoint())
        through = "" if chosen is None else f" through the proxy {shown_proxy(chosen)}"
        return MrsDeployConnectionError(
            f"could not get a token from {self.config.describe} at {self.endpoint()}{through}: "
            f"{self._scrubbed(err)}",
            retryable=True,
            may_have_been_sent=False,
        )

    def _refused(
        self, err: Any, status: int | None
    ) -> MrsDeployConnectionError | MrsDeployAuthError:
        from azure.identity import CredentialUnavailableError

        if status in TRANSIENT_STATUSES:
            return MrsDeployConnectionError(
                f"{self.config.describe} answered {status}: {self._scrubbed(err)}",
                retryable=True,
                may_have_been_sent=False,
            )
        if isinstance(err, CredentialUnavailableError):
            what = "no credential is available here"
            fix = "check the environment the credential reads (see the connection's docs)"
        else:
            what = "Azure AD refused the token request"
            fix = (
                "check the connection's tenant_id, client_id, client secret or identity, and "
                "resource or scope"
            )
        return MrsDeployAuthError(
            f"{what} of {self.config.describe}: {self._scrubbed(err)}; {fix}",
            status_code=status,
        )


def _causes(err: BaseException) -> list[BaseException]:
    """``err`` and what it was raised from, outermost first (a few levels at most)."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _status(chain: list[BaseException]) -> int | None:
    """The HTTP status the token endpoint answered, when an error of the chain carries it."""
    for err in chain:
        response = getattr(err, "response", None)
        status = getattr(err, "status_code", None) or getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
    for err in chain:  # MSAL says "HTTP Error: 503" and keeps no response
        found = _HTTP_ERROR.search(str(err))
        if found is not None:
            return int(found.group(1))
    return None


_ISSUERS: dict[tuple[str, AzureAdSettings, TransportConfig], AzureAdIssuer] = {}
_ISSUERS_LOCK = threading.Lock()


def issuer_for(settings: MrsDeployConnectionSettings) -> AzureAdIssuer | None:
    """The process's issuer for a connection's Azure AD credential; None without Azure AD.

    Shared like the token cache: every hook of the same server, credential and transport
    settings asks through one credential.
    """
    config = settings.azure_ad
    if config is None:
        return None
    key = (settings.base_url, config, settings.transport)
    with _ISSUERS_LOCK:
        issuer = _ISSUERS.get(key)
        if issuer is None:
            issuer = _ISSUERS[key] = AzureAdIssuer(config, settings.transport)
        return issuer


def forget_issuers() -> None:
    """Drop every issuer (tests do so between cases; the next token builds a credential)."""
    with _ISSUERS_LOCK:
        issuers = list(_ISSUERS.values())
        _ISSUERS.clear()
    for issuer in issuers:
        issuer._drop_credential()
