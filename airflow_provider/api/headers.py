"""Reading one HTTP response header by name, whatever mapping the transport hands over.

aiohttp and requests give case-insensitive mappings, where a lookup is a single ``get``; a
plain ``dict`` (a copied or hand-built response) keeps the server's spelling, so its keys are
compared case-insensitively one by one. A download reads several headers per file, so the
fast path matters when files are many and small.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Mapping types whose ``get`` ignores case; each transport registers its library's types, so
#: this module imports no HTTP library.
_CASE_INSENSITIVE: tuple[type, ...] = ()
#: The same types, for the exact-type check made first: ``isinstance`` against the tuple goes
#: through ``abc`` for requests' mapping (an abstract base class's subclass), whichever
#: transport's mapping it is given, and a download reads five headers a file.
_EXACTLY_CASE_INSENSITIVE: frozenset[type] = frozenset()


def register_case_insensitive(*types: type) -> None:
    """Declare mapping types whose lookups ignore case (a transport's header mappings).

    :param types: the types.
    """
    global _CASE_INSENSITIVE, _EXACTLY_CASE_INSENSITIVE
    _CASE_INSENSITIVE = tuple(dict.fromkeys((*_CASE_INSENSITIVE, *types)))
    _EXACTLY_CASE_INSENSITIVE = frozenset(_CASE_INSENSITIVE)


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (any case), or None when it is absent.

    :param headers: response headers.
    :param name: header name.
    """
    if type(headers) in _EXACTLY_CASE_INSENSITIVE or isinstance(headers, _CASE_INSENSITIVE):
        value: str | None = headers.get(name)
        return value
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, found in headers.items():
        if key.lower() == wanted:
            return found
    return None
