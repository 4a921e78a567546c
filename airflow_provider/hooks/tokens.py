"""Token cache: holds the current token pair and decides when it must be renewed."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref

from airflow_provider.api.models import TokenPair
from airflow_provider.hooks.masking import Secret


class TokenCache:
    """The current access/refresh token pair of one hook, and the refresh rule.

    The token is renewed ``refresh_lead`` seconds before it expires, but never earlier than half
    of its lifetime: a server issuing short-lived tokens would otherwise see a refresh on every
    call.

    New tokens are queued for masking rather than masked here: the caller masks them with the
    blocking or the async masker, depending on where it runs (see ``take_unmasked``).

    :param refresh_lead: seconds before expiry at which the token counts as stale.
    """

    def __init__(self, refresh_lead: float):
        self.refresh_lead = refresh_lead
        self._pair: TokenPair | None = None
        self._obtained_at: float = 0.0
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

    @property
    def pair(self) -> TokenPair | None:
        """The cached pair, or None before the first login."""
        return self._pair

    def _lead(self) -> float:
        if self._pair is None:
            return self.refresh_lead
        lifetime = self._pair.expires_on - self._obtained_at
        return max(0.0, min(self.refresh_lead, lifetime / 2))

    def usable_token(self, now: float) -> str | None:
        """The access token when it is still fresh at ``now``, else None.

        :param now: current epoch seconds.
        """
        if self._pair is None or self._pair.expires_within(self._lead(), now):
            return None
        return self._pair.access_token

    def refresh_token(self) -> str | None:
        """The refresh token to renew with, or None when there is none (log in instead)."""
        return None if self._pair is None else self._pair.refresh_token

    def store(self, pair: TokenPair, now: float) -> None:
        """Remember a new pair and queue both tokens for masking.

        :param pair: the pair the server just issued.
        :param now: current epoch seconds.
        """
        self._unmasked.append((pair.access_token, "access_token"))
        if pair.refresh_token:
            self._unmasked.append((pair.refresh_token, "refresh_token"))
        self._pair = pair
        self._obtained_at = now

    def clear(self) -> None:
        """Forget the pair, so the next call logs in."""
        self._pair = None

    def take_unmasked(self) -> list[Secret]:
        """Tokens stored since the last call, to register with the log masker now.

        Called after every request: the pending list is only swapped when it holds something,
        so a steady stream of calls does not leave a fresh long-lived list behind each time.
        """
        if not self._unmasked:
            return []
        taken, self._unmasked = self._unmasked, []
        return taken


_SHARED: dict[tuple[str, str, str], TokenCache] = {}
_SHARED_LOCK = threading.Lock()


def shared_token_cache(
    base_url: str, username: str | None, password: str | None, refresh_lead: float
) -> TokenCache:
    """The one token cache of this process for a server and set of credentials.

    Every hook built on the same connection shares it: a triggerer running a thousand batch
    triggers logs in once instead of a thousand times, and registers two tokens with Airflow's
    log masker instead of two thousand (the masker recompiles its pattern on every new secret,
    on the event loop). Keyed by a digest of the password, never the password itself.
    """
    digest = hashlib.sha256((password or "").encode("utf-8")).hexdigest()
    key = (base_url, username or "", digest)
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
