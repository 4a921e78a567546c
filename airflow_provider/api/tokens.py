"""The current token pair of a client and the rule that says when it must be renewed.

Pure bookkeeping: no locks, no log masking. Whoever shares the tokens between threads or event
loops, or must hide them from logs, adds that on top; the rule stays here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider.api.models import TokenPair


@dataclass(frozen=True)
class TokenWanted:
    """What a flow yields when its access token comes from an issuer other than the server
    (Azure AD): the driver answers with an :class:`IssuedToken`.

    :param renew: the server refused the last token: a new one is wanted, not a cached one.
    """

    renew: bool = False


@dataclass(frozen=True)
class IssuedToken:
    """An access token from an outside issuer, and when it expires (epoch seconds).

    :param access_token: the token (left out of ``repr``).
    :param expires_on: when it stops being accepted.
    """

    access_token: str = field(repr=False)
    expires_on: float


class TokenState:
    """The current access/refresh token pair, and the refresh rule.

    The token is renewed ``refresh_lead`` seconds before it expires, but never earlier than half
    of its lifetime: a server issuing short-lived tokens would otherwise see a refresh on every
    call.

    :param refresh_lead: seconds before expiry at which the token counts as stale.
    """

    def __init__(self, refresh_lead: float):
        self.refresh_lead = refresh_lead
        self._pair: TokenPair | None = None
        self._obtained_at: float = 0.0

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
        """Remember a new pair.

        :param pair: the pair the server just issued.
        :param now: current epoch seconds.
        """
        self._pair = pair
        self._obtained_at = now

    def clear(self) -> None:
        """Forget the pair, so the next call logs in."""
        self._pair = None
