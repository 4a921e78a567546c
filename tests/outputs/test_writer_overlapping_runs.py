"""Two tries of one Collect overlapping at one destination (a stuck try still writing while
its retry starts): whichever finishes last, the destination ends with one run's outputs and
every path either run wrote stays recorded or is removed, so no later run is refused a path
("not written by an earlier collect here") that only Collect ever wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider.outputs import (
    JOURNAL_NAME,
    MrsDeployDestinationError,
    OutputWriter,
    PlannedFile,
    RenderedTable,
    WrittenFile,
    plan_row_files,
)
from airflow_provider.outputs.ownership import journal_ownership
from tests.outputs.helpers import manifest_of_run
from tests.outputs.test_writer import expected_tree, rendered, run, snapshot


class Try:
    """One try of the task: a writer, the files it plans, and what it landed."""

    def __init__(self, destination: Path, rows: dict[int, list[str]]) -> None:
        self.writer = OutputWriter(ObjectStoragePath(f"file://{destination}"))
        self.plans = [f for index, names in rows.items() for f in plan_row_files(index, names)]
        self.table: RenderedTable = rendered(max(rows) + 1)
        self.landed: list[WrittenFile] = []

    def begin(self) -> None:
        self.writer.begin([self.table.name, *(f.path for f in self.plans)])

    def land(self, planned: PlannedFile) -> None:
        self.landed.append(self.writer.write_file(planned, [f"{planned.path}".encode()]))

    def finish(self) -> None:
        self.writer.write_table(self.table)
        self.writer.remove_leftovers([self.table.name, *(f.path for f in self.landed)])
        self.writer.finish(manifest_of_run(self.table, self.landed))


def recorded_by_manifest(destination: Path) -> set[str]:
    manifest = json.loads((destination / "manifest.json").read_text())
    return {"manifest.json", manifest["table"]["path"], *(f["path"] for f in manifest["files"])}


def landed_files(destination: Path) -> set[str]:
    return {name for name, content in snapshot(destination).items() if content != "<folder>"}


def test_the_retry_finishing_last_ends_with_exactly_its_outputs(tmp_path: Path) -> None:
    destination = tmp_path / "out"
    run(destination, {0: ["a.csv"]})  # an earlier finished run
    stuck, retry = Try(destination, {1: ["a.csv"], 2: ["a.csv"]}), Try(destination, {0: ["b.csv"]})
    stuck.begin()
    stuck.land(stuck.plans[0])
    retry.begin()  # the retry lists the folder here
    stuck.land(stuck.plans[1])  # files/2/a.csv lands after that listing
    stuck.finish()
    retry.land(retry.plans[0])
    retry.finish()

    assert set(snapshot(destination)) == expected_tree({0: ["b.csv"]})
    # Any later run may write what the stuck try wrote.
    run(destination, {2: ["a.csv"]})
    assert set(snapshot(destination)) == expected_tree({2: ["a.csv"]})


def test_the_stuck_try_finishing_last_leaves_nothing_unrecorded(tmp_path: Path) -> None:
    destination = tmp_path / "out"
    run(destination, {0: ["a.csv"]})
    stuck, retry = Try(destination, {1: ["a.csv"], 2: ["a.csv"]}), Try(destination, {0: ["b.csv"]})
    stuck.begin()
    stuck.land(stuck.plans[0])
    retry.begin()
    retry.land(retry.plans[0])
    retry.finish()
    stuck.land(stuck.plans[1])
    stuck.finish()  # its manifest is the last one written

    assert JOURNAL_NAME not in snapshot(destination)
    assert landed_files(destination) <= recorded_by_manifest(destination)
    assert "files/0/b.csv" not in landed_files(destination)
    run(destination, {0: ["b.csv"], 1: ["a.csv"]})
    assert set(snapshot(destination)) == expected_tree({0: ["b.csv"], 1: ["a.csv"]})


def test_a_run_finishing_before_a_later_one_keeps_the_journal_for_it(tmp_path: Path) -> None:
    """The later run may still die: the journal it needs, with every path recorded so far,
    stays; the next run then finishes exactly."""
    destination = tmp_path / "out"
    stuck, retry = Try(destination, {1: ["a.csv"]}), Try(destination, {0: ["b.csv"]})
    stuck.begin()
    retry.begin()
    stuck.land(stuck.plans[0])
    stuck.finish()

    journal = journal_ownership((destination / JOURNAL_NAME).read_bytes())
    assert journal is not None
    assert journal.pending == {retry.writer._token}
    assert {"files/1/a.csv", "files/0/b.csv", "outputs.parquet"} <= journal.owned

    retry.land(retry.plans[0])
    retry.writer.close()  # the retry dies before its table
    run(destination, {3: ["c.csv"]})
    assert set(snapshot(destination)) == expected_tree({3: ["c.csv"]})


def test_a_stuck_try_that_dies_after_landing_more_leaves_the_retry_exact(tmp_path: Path) -> None:
    """The retry took over a run that had not finished: it looks again as it finishes, so a
    file the stuck try landed after the retry's listing goes, though the stuck try never
    finishes to say so."""
    destination = tmp_path / "out"
    stuck, retry = Try(destination, {1: ["a.csv"], 2: ["a.csv"]}), Try(destination, {0: ["b.csv"]})
    stuck.begin()
    stuck.land(stuck.plans[0])
    retry.begin()
    retry.land(retry.plans[0])
    stuck.land(stuck.plans[1])  # after the retry listed the folder
    stuck.writer.close()  # the stuck try dies
    retry.finish()
    assert set(snapshot(destination)) == expected_tree({0: ["b.csv"]})


def test_a_file_landed_after_the_last_run_finished_is_refused_saying_how_to_recover(
    tmp_path: Path,
) -> None:
    """The limit: a stuck try that goes on landing files after its retry finished, then dies,
    leaves files no record names. A later run refuses to write over them (they might be
    someone's) and says where they may come from."""
    destination = tmp_path / "out"
    stuck, retry = Try(destination, {1: ["a.csv"], 2: ["a.csv"]}), Try(destination, {0: ["b.csv"]})
    stuck.begin()
    retry.begin()
    retry.land(retry.plans[0])
    retry.finish()
    stuck.land(stuck.plans[1])  # files/2/a.csv, after the retry finished
    stuck.writer.close()
    with pytest.raises(MrsDeployDestinationError) as refused:
        run(destination, {2: ["a.csv"]})
    message = str(refused.value)
    assert "files/2/a.csv (not written by an earlier collect here)" in message
    assert "earlier try of this task" in message
    (destination / "files" / "2" / "a.csv").unlink()  # the recovery the message names
    run(destination, {2: ["a.csv"]})
    assert set(snapshot(destination)) == expected_tree({2: ["a.csv"]})
