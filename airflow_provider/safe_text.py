"""Server text made safe to print in one line of a log, and free of secrets.

Error messages, row errors and console output come from the server, which may be hostile or
just careless: a newline in an ``errorMessage`` would start a forged log line, an ANSI escape
could recolour or erase what a terminal shows, and a bidirectional override could reorder it.
Every such character is written as a visible escape instead; ordinary text, including any
language's letters, is left as it is.
"""

from __future__ import annotations

import re

#: C0 and C1 controls, DEL, line and paragraph separators, bidirectional controls, zero-width
#: and byte-order marks, and lone surrogates (which cannot be encoded at all).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with every control or invisible formatting character escaped.

    :param text: text from the server.
    :param limit: keep at most this many characters of ``text`` (then ``...`` marks the cut).
    """
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    return _UNSAFE.sub(_escape, text)


def redacted(text: str) -> str:
    """``text`` with every secret this process knows replaced by ``***``.

    For text that crosses processes (a trigger's event message, raised again by the resumed
    task): each process masks what it knows when the text is logged, but the text must not
    carry a secret only the sending process knew.

    :param text: the text.
    """
    try:
        from airflow.sdk.log import redact
    except ImportError:  # pragma: no cover - every supported Airflow has it
        return text
    result = redact(text)
    return result if isinstance(result, str) else text
