"""The rules for values the provider puts into a request's path or headers: names, batch ids,
file names and bearer tokens.

Every path segment taken from a value is percent-quoted (:mod:`airflow_provider.api.calls`), so
a ``/`` or ``?`` in a name cannot change the path's shape. Quoting leaves ``.`` and ``..`` as
they are, though, and HTTP clients, proxies and servers resolve those as "this folder" and "the
parent folder": ``DELETE .../batch/..`` would reach ``.../{version}`` instead of a batch. A lone
surrogate (half of a UTF-16 pair) cannot be encoded at all. Those make no segment.

A batch id is held to a stricter rule: it is handed from the server to tasks through XCom,
logs and the UI, and a server must not be able to steer later requests with it. So no path
separator, no control character, not blank.

A bearer token is sent as ``Authorization: Bearer <token>``: a CR or LF there would end the
header and start another one (header injection), and a space or a non-ASCII character cannot
be sent as it is. RFC 6750's ``b64token`` is the ideal; any visible ASCII is accepted, since
servers issue other printable characters too.

Each rule is a pure function that says why a value is refused, or None. The caller picks the
error: a bad argument or setting is a ``MrsDeployConfigurationError``, a bad value from the
server a ``MrsDeployProtocolError``. Messages quote values with :func:`shown` (escaped,
truncated) and never quote a token.
"""

from __future__ import annotations

import re

#: Characters of a value quoted in a message at most.
SHOWN_CHARS = 80

#: C0 controls, DEL and C1 controls.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: Half of a UTF-16 pair on its own: a string JSON can escape and UTF-8 cannot encode.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_TOKEN = re.compile("[\x21-\x7e]+")


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``value`` as it may appear in a message: its ``repr`` (control characters, lone
    surrogates and other unprintable characters escaped), cut after ``limit`` characters.

    :param value: any value, usually a string from a user or a server.
    :param limit: characters of the value kept.
    """
    if isinstance(value, str):
        text = repr(value[:limit])
        return f"{text}..." if len(value) > limit else text
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in repr(value))
    return f"{text[:limit]}..." if len(text) > limit else text


def _code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def segment_problem(value: object) -> str | None:
    """Why ``value`` cannot be sent as one URL path segment, or None when it can.

    :param value: a service name, version, file name or batch id.
    """
    if not isinstance(value, str):
        return f"it is of type {type(value).__name__}, not a string"
    if not value:
        return "it is empty"
    if value == ".":
        return "'.' means the current folder in a URL path, so no request can name it"
    if value == "..":
        return (
            "'..' means the parent folder in a URL path, so the request would reach "
            "another resource"
        )
    surrogate = LONE_SURROGATE.search(value)
    if surrogate is not None:
        return (
            f"it holds a lone surrogate ({_code_point(surrogate.group())}), which has no "
            "UTF-8 encoding"
        )
    return None


def batch_id_problem(value: object) -> str | None:
    """Why ``value`` is not a usable batch id, or None when it is.

    Refused: anything :func:`segment_problem` refuses, a ``/`` or ``\\``, a control character
    (C0, DEL, C1), and an id of only whitespace.

    :param value: a batch id from a user, XCom or the server.
    """
    problem = segment_problem(value)
    if problem is not None:
        return problem
    assert isinstance(value, str)
    if "/" in value or "\\" in value:
        return "it holds a path separator ('/' or '\\')"
    control = _CONTROL.search(value)
    if control is not None:
        return f"it holds the control character {_code_point(control.group())}"
    if value.isspace():
        return "it is only whitespace"
    return None


def token_problem(value: object) -> str | None:
    """Why ``value`` cannot be sent as a bearer token, or None when it can.

    The answer never quotes the token: it names the kind of the first bad character and its
    position (1-based).

    :param value: an access, refresh or bearer token.
    """
    if not isinstance(value, str):
        return f"it is of type {type(value).__name__}, not a string"
    if not value:
        return "it is empty"
    if _TOKEN.fullmatch(value):
        return None
    position, char = next((i, c) for i, c in enumerate(value, start=1) if not "\x21" <= c <= "\x7e")
    if char in "\r\n":
        kind = "a line break"
    elif _CONTROL.fullmatch(char):
        kind = f"the control character {_code_point(char)}"
    elif char.isspace():
        kind = "whitespace"
    elif LONE_SURROGATE.fullmatch(char):
        kind = f"a lone surrogate ({_code_point(char)})"
    else:
        kind = f"the non-ASCII character {_code_point(char)}"
    return f"it holds {kind} at character {position}"
