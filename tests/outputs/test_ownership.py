"""The pure ownership rules: what a run owns, what conflicts, what it removes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from airflow_provider.outputs.ownership import (
    JOURNAL_FORMAT,
    JOURNAL_NAME,
    Listing,
    Ownership,
    ancestors,
    encode_journal,
    find_conflicts,
    is_layout_path,
    journal_ownership,
    journal_previous_manifest,
    leftovers,
    manifest_ownership,
    parse_manifest,
    stale_temporaries,
    temporary_name,
)


def manifest(table: object, *paths: object) -> bytes:
    files = [{"path": p} for p in paths]
    return json.dumps({"batch_ids": ["b"], "table": {"path": table}, "files": files}).encode()


def test_a_manifest_owns_its_table_files_and_itself() -> None:
    record = manifest_ownership(manifest("outputs.csv", "files/0/a.csv", "files/12/b c.png"))
    assert record is not None
    assert record.owned == {"outputs.csv", "files/0/a.csv", "files/12/b c.png", "manifest.json"}


def test_recorded_paths_outside_the_layout_are_ignored() -> None:
    """An edited or hostile manifest cannot make Collect delete anything else."""
    hostile = [
        "../x",
        "/etc/passwd",
        "files/0/../../x",
        "files/01/a",
        "files/x/a",
        "files/0/a/b",
        "files/0/..",
        "chunk=0000/outputs.parquet",
        "notes.txt",
        ".git/config",
        "files/٣/a",
        42,
        None,
    ]
    record = manifest_ownership(manifest("../outputs.parquet", *hostile))
    assert record is not None
    assert record.owned == {"manifest.json"}
    assert len(record.ignored) == len(hostile) + 1


def test_foreign_json_is_not_a_manifest_or_journal() -> None:
    for data in (b"", b"{", b"[]", b'{"files": []}', b'{"table": {}, "files": {}}', b"\xff"):
        assert manifest_ownership(data) is None
        assert journal_ownership(data) is None
    assert journal_ownership(b'{"format": "other", "owned": []}') is None


def test_journal_round_trips_and_drops_bad_tokens() -> None:
    record = Ownership(frozenset({"outputs.parquet", "files/1/a"}), frozenset({"0123456789ab"}))
    assert journal_ownership(encode_journal(record)) == record
    data = json.loads(encode_journal(record))
    data["pending"].append("../../etc")
    data["owned"].append("../x")
    parsed = journal_ownership(json.dumps(data).encode())
    assert parsed is not None and parsed.pending == {"0123456789ab"}
    assert parsed.owned == record.owned and parsed.ignored == ("'../x'",)


def test_conflicts_name_foreign_files_foreign_folders_and_links() -> None:
    listing = Listing(
        files=frozenset({"outputs.parquet", "files/0/a.csv", "files/1", "files/2/b.csv"}),
        links=frozenset({"files/3", "files/4/c.csv"}),
        folders=frozenset({"files", "files/0", "files/2", "files/5/d.csv"}),
    )
    planned = [
        "outputs.parquet",
        "files/0/a.csv",
        "files/1/x",
        "files/2/b.csv",
        "files/3/y",
        "files/4/c.csv",
        "files/5/d.csv",
        "files/6/new.csv",
    ]
    problems = find_conflicts(planned, listing, frozenset({"files/2/b.csv"}))
    assert problems == [
        "files/0/a.csv (not written by an earlier collect here)",
        "files/1 (a file where Collect needs a folder)",
        "files/3 (a symbolic link or special file where Collect needs a folder)",
        "files/4/c.csv (not written by an earlier collect here)",
        "files/5/d.csv (a folder)",
        "outputs.parquet (not written by an earlier collect here)",
    ]
    owned = frozenset({"files/2/b.csv"})
    assert find_conflicts(["files/2/b.csv", "files/6/new.csv"], listing, owned) == []


def test_leftovers_are_owned_unwritten_and_present() -> None:
    listing = Listing(files=frozenset({"outputs.csv", "files/1/a", "notes.txt"}))
    owned = frozenset({"outputs.csv", "files/1/a", "files/2/gone", "manifest.json"})
    assert leftovers(owned, ["outputs.parquet", "manifest.json"], listing) == [
        "files/1/a",
        "outputs.csv",
    ]


def test_stale_temporaries_are_those_of_recorded_unfinished_runs() -> None:
    old, other, current = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"
    names = {
        f"files/0/{temporary_name('a.csv', old, 10, 3)}": True,
        temporary_name("outputs.parquet", old, 10, 4): True,
        temporary_name(JOURNAL_NAME, other, 11, 0): True,  # the journal's own, any token
        f"files/0/{temporary_name('a.csv', other, 10, 3)}": False,  # not recorded
        temporary_name("outputs.parquet", current, 12, 0): False,  # this run's
        ".a.csv.aaaaaaaaaaaa.tmp": False,  # not our pattern
        "files/0/a.csv": False,
    }
    listing = Listing(files=frozenset(names))
    ownership = Ownership(pending=frozenset({old}))
    expected = sorted(path for path, stale in names.items() if stale)
    assert stale_temporaries(listing, ownership, current) == expected


@given(st.text(max_size=30))
def test_layout_paths_never_climb_or_nest(path: str) -> None:
    if is_layout_path(path):
        parts = path.split("/")
        assert ".." not in parts and "" not in parts and not path.startswith("/")
        assert len(parts) in (1, 3)


def test_the_journal_carries_the_withdrawn_manifest_and_nothing_foreign() -> None:
    previous = json.loads(manifest("outputs.parquet", "files/0/a.png"))
    journal = encode_journal(Ownership(frozenset({"outputs.parquet"})), previous)
    assert journal_previous_manifest(journal) == previous
    assert journal_ownership(journal) == Ownership(frozenset({"outputs.parquet"}))
    assert journal_previous_manifest(encode_journal(Ownership())) is None
    not_a_manifest = json.loads(encode_journal(Ownership()))
    not_a_manifest["previous_manifest"] = {"table": "x"}
    assert journal_previous_manifest(json.dumps(not_a_manifest).encode()) is None
    assert journal_previous_manifest(manifest("outputs.csv")) is None  # a manifest, not a journal


def _conflicts_path_by_path(
    planned: list[str], listing: Listing, owned: frozenset[str]
) -> list[str]:
    """The rule stated plainly: every folder above every path, checked each time."""
    problems = set()
    for path in planned:
        for folder in ancestors(path):
            if folder in listing.links:
                problems.add(
                    f"{folder} (a symbolic link or special file where Collect needs a folder)"
                )
            elif folder in listing.files:
                problems.add(f"{folder} (a file where Collect needs a folder)")
        if path in listing.folders:
            problems.add(f"{path} (a folder)")
        elif (path in listing.files or path in listing.links) and path not in owned:
            problems.add(f"{path} (not written by an earlier collect here)")
    return sorted(problems)


_SOME_PATHS = st.lists(
    st.lists(st.sampled_from(["files", "0", "1", "a", "b.csv"]), min_size=1, max_size=4).map(
        "/".join
    ),
    max_size=8,
)


@given(_SOME_PATHS, _SOME_PATHS, _SOME_PATHS, _SOME_PATHS, _SOME_PATHS)
def test_each_folder_checked_once_finds_what_checking_every_path_finds(
    planned: list[str], files: list[str], links: list[str], folders: list[str], owned: list[str]
) -> None:
    listing = Listing(frozenset(files), frozenset(links), frozenset(folders))
    expected = _conflicts_path_by_path(planned, listing, frozenset(owned))
    assert find_conflicts(planned, listing, frozenset(owned)) == expected


def test_hand_edits_of_odd_shape_are_read_without_raising() -> None:
    """A row index of thousands of digits (``int()`` refuses it), lists turned into other
    values, nesting deeper than the decoder recurses: each is no record, or owns nothing."""
    huge = "files/" + "9" * 5000 + "/a.csv"
    assert not is_layout_path(huge) and not is_layout_path("files/00/a")
    assert is_layout_path("files/0/a") and is_layout_path("files/" + "9" * 19 + "/a")
    record = manifest_ownership(manifest("outputs.csv", huge))
    assert record is not None and record.owned == {"outputs.csv", "manifest.json"}
    for owned, pending in ((5, True), ("files/0/a", {"k": 1}), (None, None)):
        edited = {"format": JOURNAL_FORMAT, "owned": owned, "pending": pending}
        assert journal_ownership(json.dumps(edited).encode()) == Ownership()
    deep = b'{"batch_ids": [], "format": "%s", "x": ' % JOURNAL_FORMAT.encode()
    deep += b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert manifest_ownership(deep) is None and journal_ownership(deep) is None
    assert parse_manifest(deep) is None and journal_previous_manifest(deep) is None
