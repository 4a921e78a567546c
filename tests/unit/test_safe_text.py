"""Server text made printable: no control or invisible formatting character survives, and
ordinary text (any language's letters, punctuation) is left exactly as it was."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from airflow_provider.api.errors import error_from_response, parse_retry_after
from airflow_provider.safe_text import printable


@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=200))
def test_nothing_unsafe_survives(text: str) -> None:
    """Lone surrogates included: the result can always be encoded and logged."""
    escaped = printable(text)
    assert not set(escaped) & _ESCAPED_SET
    assert [c for c in escaped if unicodedata.category(c) in {"Cc", "Zl", "Zp", "Cs"}] == []
    escaped.encode("utf-8")


#: Every character :func:`printable` promises to escape.
_ESCAPED_SET = {
    *map(chr, range(0x00, 0x20)),
    *map(chr, range(0x7F, 0xA0)),
    "\u061c",
    *map(chr, range(0x200B, 0x2010)),
    *map(chr, range(0x2028, 0x202F)),
    *map(chr, range(0x2060, 0x206A)),
    "\ufeff",
    *map(chr, range(0xD800, 0xE000)),
}


@given(
    st.text(
        alphabet=st.characters(
            exclude_categories=("Cc", "Cf", "Zl", "Zp", "Cs"), exclude_characters="\\"
        ),
        max_size=200,
    )
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert printable(text) == text


@given(st.text(max_size=50), st.text(max_size=50))
def test_escapes_keep_the_text_apart(before: str, after: str) -> None:
    """An escaped newline can be told from the characters around it."""
    assert printable(before + "\n" + after).count("\\n") >= 1


def test_long_text_is_cut_before_escaping() -> None:
    assert printable("a\n" * 10, limit=4) == "a\\na\\n..."


@given(st.binary(max_size=300))
def test_an_error_body_never_reaches_a_message_raw(body: bytes) -> None:
    error = error_from_response(500, body, "GET", "/x", {})
    assert not set(str(error)) & _ESCAPED_SET


@given(st.text(max_size=60))
def test_retry_after_is_never_negative_and_never_raises(value: str) -> None:
    seconds = parse_retry_after(value, now=1_000_000_000.0)
    assert seconds is None or seconds >= 0
