"""The points of the API where a test may inject a fault, and the server without any.

The wire routes, the executor and the fast path call these points unconditionally; a server
started without ``--enable-fault-hooks`` answers them with :data:`NO_FAULTS`, so the code that
implements the API never branches on whether fault injection exists. The injection itself
(configuration, admin routes, the HTTP-error middleware) lives in :mod:`.faults` and
:mod:`.fault_routes`.
"""

from __future__ import annotations

from typing import Any, Protocol


class FaultPoints(Protocol):
    """What the API asks before each step it may be made to fail."""

    def row_delay(self, service: str) -> float:
        """Seconds to wait before running a row of ``service``."""
        ...

    def row_fails(self, service: str, index: int, record: str = "") -> bool:
        """Whether row ``index`` (input ``record``) of a ``service`` batch must fail."""
        ...

    def row_outputs(self, service: str, index: int) -> dict[str, Any]:
        """Output parameters that replace or add to row ``index``'s own."""
        ...

    def take_batch_failure(self, service: str) -> str | None:
        """The failure message of a new ``service`` batch that must fail, or None."""
        ...

    def extra_file_names(self, service: str) -> list[str]:
        """Names every row of ``service`` lists besides its real files."""
        ...

    def http_errors_configured(self) -> bool:
        """Whether injected HTTP errors may answer requests (the fast path steps aside)."""
        ...


class NoFaults:
    """The server as it runs for real work: no fault at any point."""

    def row_delay(self, service: str) -> float:
        return 0.0

    def row_fails(self, service: str, index: int, record: str = "") -> bool:
        return False

    def row_outputs(self, service: str, index: int) -> dict[str, Any]:
        return {}

    def take_batch_failure(self, service: str) -> str | None:
        return None

    def extra_file_names(self, service: str) -> list[str]:
        return []

    def http_errors_configured(self) -> bool:
        return False


NO_FAULTS: FaultPoints = NoFaults()
