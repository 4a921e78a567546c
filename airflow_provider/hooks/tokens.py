"""Token cache: the token pair of a connection, shared safely between threads and loops.

What the pair is and when it must be renewed is the protocol's
(:class:`~airflow_provider.api.tokens.TokenState`); this adds what a process needs to share
it: one renewal at a time, and new tokens queued for Airflow's log masker.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

from airflow_provider.api.models import TokenPair
from airflow_provider.api.tokens import TokenState
from airflow_provider.hooks.masking import Secret


class TokenCache(TokenState):
    """The current access/refresh token pair of one hook, and the locks that renew it.

    The refresh rule is :class:`~airflow_provider.api.tokens.TokenState`'s.

    New tokens are queued for masking rather than masked here: the caller masks them with the
    blocking or the async masker, depending on where it runs (see ``take_unmasked``).

    :param refresh_lead: seconds before expiry at which the token counts as stale.
    """

    def __init__(self, refresh_lead: float):
        super().__init__(refresh_lead)
        self._unmasked: list[Secret] = []
        self.renewal_lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def arenewal_lock(self) -> asyncio.Lock:
        """The running loop's lock for renewing this cache's token (one login at a time)."""
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.get(loop)
        if lock is None:
            lock = self._loop_locks[loop] = asyncio.Lock()
        return lock

    def store(self, pair: TokenPair, now: float) -> None:
        """Remember a new pair and queue both tokens for masking.

        :param pair: the pair the server just issued.
        :param now: current epoch seconds.
        """
        self._unmasked.append((pair.access_token, "access_token"))
        if pair.refresh_token:
            self._unmasked.append((pair.refresh_token, "refresh_token"))
        super().store(pair, now)

    def take_unmasked(self) -> list[Secret]:
        """Tokens stored since the last call, to register with the log masker now.

        Called after every request: the pending list is only swapped when it holds something,
        so a steady stream of calls does not leave a fresh long-lived list behind each time.
        """
        if not self._unmasked:
            return []
        taken, self._unmasked = self._unmasked, []
        return taken


_SHARED: dict[tuple[str, str], TokenCache] = {}
_SHARED_LOCK = threading.Lock()


def shared_token_cache(base_url: str, identity: str, refresh_lead: float) -> TokenCache:
    """The one token cache of this process for a server and set of credentials.

    Every hook built on the same connection shares it: a triggerer running a thousand batch
    triggers logs in (or asks Azure AD) once instead of a thousand times, and registers two
    tokens with Airflow's log masker instead of two thousand (the masker recompiles its pattern
    on every new secret, on the event loop).

    :param base_url: the server.
    :param identity: a digest of the credentials (``MrsDeployConnectionSettings.identity``),
        never a secret itself.
    :param refresh_lead: the connection's ``refresh_lead``.
    """
    key = (base_url, identity)
    with _SHARED_LOCK:
        cache = _SHARED.get(key)
        if cache is None:
            cache = _SHARED[key] = TokenCache(refresh_lead)
        cache.refresh_lead = refresh_lead
        return cache


def forget_shared_tokens() -> None:
    """Drop every shared cache (the next call of any hook logs in again)."""
    with _SHARED_LOCK:
        _SHARED.clear()
