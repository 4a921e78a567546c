"""Request bodies that can be sent again: needed to retry an upload safely.

Whether a body can be produced a second time decides what the protocol may do after a failure
(resend after a 401, retry after a broken connection), so it is part of the protocol; the
transports only open the body and send its bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from airflow_provider.api.errors import MrsDeployConfigurationError, MrsDeployError

BodyInput = bytes | bytearray | memoryview | Iterable[bytes] | Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class RequestBody:
    """A raw request body and whether it can be produced again for a retry.

    :param factory: returns the body (bytes, or an iterable of chunks sent chunked).
    :param replayable: False for a one-shot iterator, which disables retries and re-login.
    """

    factory: Callable[[], bytes | Iterable[bytes]]
    replayable: bool

    def open(self) -> bytes | Iterable[bytes]:
        """Return the body to send now."""
        return self.factory()


class _OneShot:
    def __init__(self, chunks: Iterable[bytes]):
        self._chunks: Iterable[bytes] | None = chunks

    def __call__(self) -> Iterable[bytes]:
        if self._chunks is None:
            raise MrsDeployError(
                "the request body was a one-shot iterator and has already been sent; pass bytes "
                "or a zero-argument callable returning a fresh iterator to allow retries"
            )
        chunks, self._chunks = self._chunks, None
        return chunks


def _checked(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise MrsDeployConfigurationError(
                f"body chunks must be bytes (got {type(chunk).__name__}); encode them first"
            )
        yield bytes(chunk)


def request_body(body: BodyInput) -> RequestBody:
    """Wrap what a caller passed as a body.

    * ``bytes``: sent as is, retried freely.
    * a zero-argument callable returning an iterable of ``bytes``: called for every attempt and
      streamed chunked, so large bodies are never joined in memory; retried freely.
    * any other iterable of ``bytes`` (e.g. a generator): streamed once; no retry is possible.

    :param body: the body.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
        return RequestBody(lambda: data, replayable=True)
    if isinstance(body, str):
        raise MrsDeployConfigurationError("the body must be bytes, not str: encode it as UTF-8")
    if callable(body):
        factory = body

        def fresh() -> Iterable[bytes]:
            produced = factory()
            if isinstance(produced, (bytes, bytearray, memoryview)):
                return [bytes(produced)]
            return _checked(produced)

        return RequestBody(fresh, replayable=True)
    if isinstance(body, Iterable):
        return RequestBody(_OneShot(_checked(body)), replayable=False)
    raise MrsDeployConfigurationError(
        f"unsupported body type {type(body).__name__}: pass bytes, an iterable of bytes or a "
        "callable returning one"
    )
