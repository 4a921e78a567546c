"""Server file names made safe and unique within a row."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider.outputs import (
    MAX_FILE_NAME_BYTES,
    RowFileNames,
    UnsafeFileNameError,
    plan_row_files,
    safe_file_name,
)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("answer.csv", "answer.csv"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/x.png", "x.png"),
        ("a\x00b", "a_b"),
        ("a\x7fb", "a_b"),
        ("..\\..\\win.txt", "win.txt"),
        ("bad\udcffname", "bad_name"),  # UTF-8's replacement "?" is reserved too
        ("a\x85b.csv", "a_b.csv"),  # C1 controls, a terminal's escape among them
        ("a\x9b[31mred.csv", "a_[31mred.csv"),
        ("a\u2028b\u2029c", "a_b_c"),
    ],
)
def test_safe_file_name(raw: str, safe: str) -> None:
    assert safe_file_name(raw) == safe


@pytest.mark.parametrize("raw", ["..", "/", "", "a/..", " . "])
def test_unusable_names_are_refused(raw: str) -> None:
    with pytest.raises(UnsafeFileNameError):
        safe_file_name(raw)


def test_long_names_are_shortened_uniquely() -> None:
    a, b = safe_file_name("x" * 300 + "a"), safe_file_name("x" * 300 + "b")
    assert a != b and len(a.encode()) <= MAX_FILE_NAME_BYTES


def test_names_that_sanitise_alike_stay_apart_within_a_row() -> None:
    files = plan_row_files(0, ["answer.csv", "../answer.csv"])
    assert files[0].safe == "answer.csv"
    assert files[1].safe != "answer.csv" and files[1].safe.endswith(".csv")
    assert plan_row_files(1, ["../answer.csv"])[0].safe == "answer.csv"  # another row


def test_a_crafted_name_equal_to_another_names_hashed_form_stays_apart() -> None:
    """``x.txt``, ``x-<hash of ../x.txt>.txt`` and ``../x.txt``: three files, three names."""
    digest = hashlib.sha256(b"../x.txt").hexdigest()[:8]
    names = ["x.txt", f"x-{digest}.txt", "../x.txt"]
    planned = plan_row_files(7, names)
    assert len({f.path for f in planned}) == 3
    assert [f.name for f in planned] == names
    assert planned[0].path == "files/7/x.txt"


def test_names_differing_only_in_case_or_unicode_form_stay_apart() -> None:
    """A case-insensitive or normalising file system would store these as one file."""
    nfc, nfd = unicodedata.normalize("NFC", "é.txt"), unicodedata.normalize("NFD", "é.txt")
    planned = plan_row_files(0, ["Report.TXT", "report.txt", nfc, nfd])
    keys = {unicodedata.normalize("NFC", f.safe).casefold() for f in planned}
    assert len(keys) == 4


def test_claims_are_the_same_on_every_run() -> None:
    names = ["a.csv", "../a.csv", "A.csv", "x" * 400]
    assert plan_row_files(3, names) == plan_row_files(3, names)


@given(st.lists(st.text(min_size=1, max_size=40), max_size=12))
def test_any_names_claim_distinct_safe_names(names: list[str]) -> None:
    claims = RowFileNames()
    landed = []
    for name in names:
        try:
            landed.append(claims.claim(name))
        except UnsafeFileNameError:
            continue
    keys = [unicodedata.normalize("NFC", n).casefold() for n in landed]
    assert len(set(keys)) == len(keys)
    for name in landed:
        assert "/" not in name and "\\" not in name and "\x00" not in name
        assert name not in ("", ".", "..")
        name.encode("utf-8")  # storable


PLAIN_LOOKING = [
    "report.txt",
    "UPPER.CSV",
    "a.b.c",
    "-dash_start",
    "...",
    "..hidden",
    ".profile",
    "a" * 200,
    "a" * 201,
    "x",
]


@pytest.mark.parametrize("name", [*PLAIN_LOOKING, ".", ".."])
def test_names_taken_as_they_are_get_what_the_full_rules_give(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain ASCII names skip the full rules (most names are ``answer.csv``): they must come
    out exactly as the full rules make them, and ``.`` and ``..`` still fail."""
    from airflow_provider.outputs import names

    def outcome() -> str:
        try:
            return safe_file_name(name)
        except UnsafeFileNameError as err:
            return f"error: {err}"

    quick = outcome()
    monkeypatch.setattr(names, "_PLAIN_NAME", re.compile(r"(?!)"))  # never matches
    assert quick == outcome()
    assert (quick == name) == (name not in (".", "..") and len(name) <= 200)


@pytest.mark.parametrize("name", [*PLAIN_LOOKING, "a/b.csv", "über.csv"])
def test_a_row_with_one_file_is_planned_as_the_full_rules_plan_it(name: str) -> None:
    assert plan_row_files(3, [name]) == plan_row_files(3, iter([name]))
    assert plan_row_files(3, (name,)) == plan_row_files(3, iter([name]))


@given(st.text(alphabet="ab.-_Z9 /\\:é", max_size=12))
def test_any_name_gets_the_same_with_and_without_the_plain_name_shortcut(name: str) -> None:
    from airflow_provider.outputs import names

    def outcome() -> str:
        try:
            return safe_file_name(name)
        except UnsafeFileNameError:
            return "refused"

    quick = outcome()
    plain, names._PLAIN_NAME = names._PLAIN_NAME, re.compile(r"(?!)")
    try:
        assert quick == outcome()
    finally:
        names._PLAIN_NAME = plain


@given(
    st.lists(
        st.text(alphabet="aAé.\u0301x", min_size=150, max_size=220)
        | st.builds(lambda n: "a." + "b" * n, st.integers(100, 210)),
        min_size=2,
        max_size=6,
    )
)
def test_names_renamed_apart_stay_within_the_longest_name(names: list[str]) -> None:
    """A name that collides gets a hash: the stem gives up room for it (a 200-byte name
    became 209 bytes), and a long suffix is not kept whole at the cost of the limit."""
    claims = RowFileNames()
    for name in names:
        try:
            landed = claims.claim(name)
        except UnsafeFileNameError:
            continue
        assert len(landed.encode("utf-8")) <= MAX_FILE_NAME_BYTES
