"""The rules for batch ids, path segments and tokens, checked as properties.

An accepted batch id must reach the server as exactly one path segment, as the two HTTP
libraries the hook uses build the URL; a refused one fails before anything is sent (a bad
argument) or when the server hands it out (a broken contract), with a message a log can show.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest
import requests
import yarl
from hypothesis import example, given
from hypothesis import strategies as st

from airflow_provider.api import (
    MrsDeployConfigurationError,
    MrsDeployProtocolError,
    TokenPair,
    calls,
    join_url,
    parse_batch_id,
    parse_batch_ids,
    parse_file_list,
)
from airflow_provider.api.identifiers import (
    batch_id_problem,
    segment_problem,
    shown,
    token_problem,
)

BASE = "https://gateway.example.com:8443/mlserver"
SVC = ("mtService", "v1.0.0")

#: Characters no batch id may hold: separators, C0, DEL, C1 and lone surrogates.
FORBIDDEN = st.one_of(
    st.sampled_from(["/", "\\", "\x7f"]),
    st.characters(min_codepoint=0x00, max_codepoint=0x1F),
    st.characters(min_codepoint=0x80, max_codepoint=0x9F),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]),
)
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=40)
ACCEPTED_IDS = ANY_TEXT.filter(lambda text: batch_id_problem(text) is None)


def no_raw_control(text: str) -> bool:
    """Every character of ``text`` prints as itself (control characters arrive escaped)."""
    return all(char.isprintable() for char in text)


@st.composite
def with_forbidden(draw: st.DrawFn) -> str:
    """Any text with at least one forbidden character somewhere in it."""
    text = draw(ANY_TEXT)
    position = draw(st.integers(0, len(text)))
    return text[:position] + draw(FORBIDDEN) + text[position:]


@given(ACCEPTED_IDS)
@example("3f2a-uuid")
@example("...")
@example(".%2e")
@example("%2e%2e")
@example(" . ")
@example("id?x#y")
def test_an_accepted_id_is_exactly_one_segment_on_both_transports(batch_id: str) -> None:
    for request in (
        calls.get_batch(*SVC, batch_id, False),
        calls.cancel_batch(*SVC, batch_id),
        calls.list_batch_files(*SVC, batch_id, 0),
    ):
        head, _, tail = request.path.partition("/batch/")
        segment = tail.split("/")[0]
        assert head == "/api/mtService/v1.0.0"
        assert unquote(segment) == batch_id
        assert segment not in (".", "..")
        url = join_url(BASE, request)
        expected = f"/mlserver{request.path}".split("/")
        position = expected.index("batch") + 1
        sent_by_requests = requests.Request("GET", url).prepare().path_url
        sent_by_aiohttp = yarl.URL(url).raw_path
        for sent in (sent_by_requests, sent_by_aiohttp):
            segments = sent.split("/")
            assert len(segments) == len(expected), sent
            assert segments[: position - 1] == expected[: position - 1], sent
            assert unquote(segments[position]) == batch_id, sent


@given(with_forbidden())
@example("..")
@example(".")
@example("")
@example("   ")
@example("\t\u3000")
def test_a_bad_id_is_refused_before_sending_and_when_the_server_sends_it(batch_id: str) -> None:
    assert batch_id_problem(batch_id) is not None
    with pytest.raises(MrsDeployConfigurationError) as refused:
        calls.cancel_batch(*SVC, batch_id)
    assert isinstance(refused.value, ValueError)
    with pytest.raises(MrsDeployProtocolError) as answered:
        parse_batch_id({"batchExecutionId": batch_id})
    with pytest.raises(MrsDeployProtocolError) as listed:
        parse_batch_ids(["good-id", batch_id])
    for error in (refused.value, answered.value, listed.value):
        message = str(error)
        assert no_raw_control(message), message
        assert shown(batch_id) in message  # the value, escaped and cut, is quoted


@given(ANY_TEXT)
def test_parsers_accept_what_requests_accept(batch_id: str) -> None:
    accepted = batch_id_problem(batch_id) is None
    try:
        calls.get_batch(*SVC, batch_id, True)
    except MrsDeployConfigurationError:
        assert not accepted
    else:
        assert accepted
        assert parse_batch_id({"BatchExecutionId": batch_id}) == batch_id
        assert parse_batch_ids([batch_id]) == [batch_id]


def test_a_long_id_is_quoted_cut_short() -> None:
    batch_id = "x" * 5000 + "/"
    with pytest.raises(MrsDeployConfigurationError) as info:
        calls.get_batch(*SVC, batch_id, False)
    assert len(str(info.value)) < 500 and "..." in str(info.value)


@pytest.mark.parametrize("name", ["a/b", "a\\b", "a\x00b", " ", "../../evil.txt"])
def test_names_and_file_names_only_need_to_be_one_segment(name: str) -> None:
    """Quoting keeps these in one segment; a server may well list such file names."""
    assert segment_problem(name) is None
    request = calls.get_batch_file(*SVC, "b1", 0, name)
    assert unquote(request.path.rsplit("/", 1)[1]) == name
    assert parse_file_list([name]) == [name]


@pytest.mark.parametrize("name", ["", ".", "..", "a\udc80"])
@pytest.mark.parametrize("what", ["service name", "service version", "file name"])
def test_names_that_make_no_segment_are_refused(name: str, what: str) -> None:
    service, version, file_name = (
        name if what == "service name" else "s",
        name if what == "service version" else "v",
        name if what == "file name" else "f",
    )
    with pytest.raises(MrsDeployConfigurationError, match=what) as info:
        calls.get_batch_file(service, version, "b1", 0, file_name)
    assert no_raw_control(str(info.value))


@pytest.mark.parametrize("name", [".", "..", "", 7])
def test_a_listed_file_that_cannot_be_fetched_breaks_the_contract(name: Any) -> None:
    with pytest.raises(MrsDeployProtocolError, match="file list: item 1"):
        parse_file_list(["ok.csv", name])


# -- tokens ---------------------------------------------------------------------------------

VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
BAD_TOKEN_CHARS = st.one_of(
    st.sampled_from([" ", "\r", "\n", "\t", "\x7f", "\x00", "\u00a0", "\u2028"]),
    st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF, categories=None),
)


@given(st.text(VISIBLE, min_size=1))
def test_visible_ascii_tokens_are_accepted(token: str) -> None:
    assert token_problem(token) is None
    pair = TokenPair.from_json({"access_token": token, "refresh_token": token, "expires_in": 60}, 0)
    assert pair.access_token == token


@st.composite
def token_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """Two tokens with the same bad character at the same place and any visible ASCII
    elsewhere."""
    before = draw(st.text(VISIBLE, max_size=30))
    after = draw(st.text(VISIBLE, max_size=30))
    bad = draw(BAD_TOKEN_CHARS)
    other_before = draw(st.text(VISIBLE, min_size=len(before), max_size=len(before)))
    other_after = draw(st.text(VISIBLE, max_size=30))
    return before + bad + after, other_before + bad + other_after


@given(token_pairs())
def test_a_bad_token_is_refused_without_being_quoted(tokens: tuple[str, str]) -> None:
    """Two tokens that differ only in their visible characters get the same message, so the
    message cannot quote any part of either."""
    token, other = tokens
    problem = token_problem(token)
    assert problem is not None and problem == token_problem(other)
    assert no_raw_control(problem)
    for key in ("access_token", "refresh_token"):
        answer = {"access_token": "good-token", "expires_in": 60, key: token}
        with pytest.raises(MrsDeployProtocolError) as info:
            TokenPair.from_json(answer, 0)
        message = str(info.value)
        assert key in message and problem in message and no_raw_control(message)


def test_a_lone_surrogate_sent_as_a_json_escape_is_refused() -> None:
    body = b'{"access_token": "QQQ\\ud800ZZZ", "expires_in": 60}'
    with pytest.raises(MrsDeployProtocolError, match="lone surrogate") as info:
        TokenPair.from_json(json.loads(body), 0)
    assert "QQQ" not in str(info.value) and "ZZZ" not in str(info.value)
