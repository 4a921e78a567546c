"""Secrets kept off the batch status page when a server sends them back.

What the page shows of a server's answers (an error message, each row's ``errorMessage``) is
text the server chose. A careless or hostile server can quote the login request it got, the
password included. Before any such text reaches the page, each secret of the connection is
replaced by ``***`` in the forms an echo naturally takes:

- as sent, as the provider's log-safe escaping writes it
  (:func:`~airflow_provider.safe_text.printable`), and as it reads inside a JSON string (the
  login body is JSON: an echo of it has quotes, backslashes and other letters escaped);
- cut short: server messages are cut at 500 characters, and a cut falling inside a secret
  leaves its start, followed by the cut mark (:data:`~airflow_provider.api.errors.CUT_MARK`).
  The start of a secret just before a cut mark is replaced too, however short (a mark that
  ends ordinary text after a letter a secret starts with costs that letter). The page's own
  cuts (a row's error) are made after the secrets are replaced, so they cannot split one.

This keeps echoes off the page; it is no barrier against a server that means to disclose a
secret, which can always send it in a form no list of forms covers (reversed, encoded, one
letter per row). Give credentials only to servers you trust with them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from airflow_provider.api.errors import CUT_MARK
from airflow_provider.provider_info import CONN_FIELDS
from airflow_provider.safe_text import printable

#: What replaces a secret (or the start of one).
MASK = "***"


def secrets_of(conn: Any) -> list[str]:
    """The connection's values that must never be shown: its password and every extra the
    form declares as a password (``format: password`` in ``CONN_FIELDS``).

    :param conn: an Airflow connection.
    """
    found = [conn.password] if conn.password else []
    extras = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
    for name, definition in CONN_FIELDS.items():
        if definition.get("schema", {}).get("format") == "password" and extras.get(name):
            found.append(str(extras[name]))
    return found


def secret_forms(secret: str) -> set[str]:
    """The spellings of ``secret`` an echo of it can take: as it is, escaped for a log line,
    escaped inside a JSON string (ASCII-only or not) and as a Python string's repr.

    :param secret: a value that must not be shown.
    """
    forms = {
        secret,
        printable(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        # As Python writes it inside a structure (a message that is a JSON object is shown
        # with str()): a secret holding both quote marks has one of them escaped.
        repr(secret)[1:-1],
    }
    return {form for form in forms if form}


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by ``***``, and every start of one
    that ends at a cut mark too.

    The parts to hide are all found in the text as it came, then each stretch of them is
    replaced at once: replacing one secret first could break up another that overlaps it (a
    secret holding another, or one cut short), leaving a piece of it in plain sight.

    :param text: a message for the page.
    :param secrets: values that must not be shown.
    """
    forms = {form for secret in secrets if secret for form in secret_forms(secret)}
    if not forms:
        return text
    spans = sorted([*_whole_forms(text, forms), *_cut_starts(text, forms)])
    shown: list[str] = []
    done = 0
    for start, end in _merged(spans):
        shown += [text[done:start], MASK]
        done = end
    shown.append(text[done:])
    return "".join(shown)


def _whole_forms(text: str, forms: Iterable[str]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every occurrence of a form in ``text``, overlapping ones included."""
    for form in forms:
        at = text.find(form)
        while at != -1:
            yield at, at + len(form)
            at = text.find(form, at + 1)


def _cut_starts(text: str, forms: Iterable[str]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the longest start of a form that ends at each cut mark."""
    forms = list(forms)
    at = text.find(CUT_MARK)
    while at != -1:
        size = max((_start_before(text, at, form) for form in forms), default=0)
        if size:
            yield at - size, at
        at = text.find(CUT_MARK, at + 1)


def _start_before(text: str, end: int, form: str) -> int:
    """The length of the longest start of ``form`` that ends at ``end`` in ``text`` (0: none)."""
    for size in range(min(len(form), end), 0, -1):
        if form.startswith(text[end - size : end]):
            return size
    return 0


def _merged(spans: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Sorted ``spans`` with those that overlap or touch joined into one."""
    current: tuple[int, int] | None = None
    for start, end in spans:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current
