"""The batch set: one value from Submit to the manifest, read back exactly, refused clearly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider.api import MrsDeployError
from airflow_provider.batch_set import (
    BatchPart,
    BatchSet,
    MrsDeployBatchSetError,
    to_batch_set,
)
from airflow_provider.operators.submission import read_recorded
from airflow_provider.waiting.events import BatchEvent, BatchEventStatus

SERVICE = ("mtService", "v1.0.0")

ids = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/\\"),
    min_size=1,
    max_size=40,
).filter(lambda text: text not in (".", ".."))


@given(
    st.lists(
        st.tuples(ids, st.integers(0, 10_000)), min_size=1, max_size=20, unique_by=lambda t: t[0]
    )
)
def test_the_json_form_reads_back_exactly(batches: list[tuple[str, int]]) -> None:
    batch_set = BatchSet.of_row_counts(SERVICE, batches, len(batches) + 1)
    text = json.dumps(batch_set.to_json())  # what XCom, the state store and events hold
    assert BatchSet.from_json(json.loads(text)) == batch_set
    assert to_batch_set(json.loads(text)) == batch_set
    assert to_batch_set(text) == batch_set  # a rendered template (JSON)
    assert to_batch_set(str(batch_set.to_json())) == batch_set  # rendered with str()


def test_rows_are_consecutive_in_input_order() -> None:
    batch_set = BatchSet.of_row_counts(SERVICE, [("a", 16), ("b", 16), ("c", 1)], 3)
    assert [(p.first_row, p.row_count) for p in batch_set.parts] == [(0, 16), (16, 16), (32, 1)]
    assert batch_set.row_count == 33 and batch_set.is_whole
    assert BatchSet.of_ids(SERVICE, ["a"]).row_count is None


def test_plain_ids_need_the_service() -> None:
    with pytest.raises(MrsDeployBatchSetError, match=r"names no service.*submit\.output"):
        to_batch_set("abc")
    assert to_batch_set("abc", *SERVICE) == BatchSet.of_ids(SERVICE, ["abc"])
    assert to_batch_set(["a", "b"], *SERVICE).batch_ids == ("a", "b")
    assert to_batch_set('["a", "b"]', *SERVICE).batch_ids == ("a", "b")


def test_an_explicit_service_must_match_the_set() -> None:
    batch_set = BatchSet.of_ids(SERVICE, ["a"]).to_json()
    assert to_batch_set(batch_set, *SERVICE).service_name == "mtService"
    with pytest.raises(MrsDeployBatchSetError, match=r"scored by mtService v1\.0\.0, not other"):
        to_batch_set(batch_set, "other", "v1.0.0")


@pytest.mark.parametrize(
    "value",
    [
        "",
        [],
        ["a", ""],
        ["a", 3],
        "{not json",
        "[" * 100_000,  # too deep for any parser: refused, not a RecursionError
        {"kind": "mrsdeploy_batch_set", "version": 2},
        {"kind": "mrsdeploy_batch_set", "version": 1, "service_name": "s", "batches": []},
        {
            "kind": "mrsdeploy_batch_set",
            "version": 1,
            "service_name": "s",
            "service_version": "v",
            "batches": [{"batch_id": ".."}],
        },
        {
            "kind": "mrsdeploy_batch_set",
            "version": 1,
            "service_name": "s",
            "service_version": "v",
            "batches": [{"batch_id": "a", "row_count": -1}],
        },
        {
            "kind": "mrsdeploy_batch_set",
            "version": 1,
            "service_name": "s",
            "service_version": "v",
            "batches": [{"batch_id": "a"}, {"batch_id": "b"}],
            "planned_batches": 1,
        },
    ],
)
def test_bad_values_are_refused_clearly(value: Any) -> None:
    with pytest.raises(MrsDeployBatchSetError) as info:
        to_batch_set(value, *SERVICE)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_a_set_of_a_newer_provider_says_to_upgrade() -> None:
    value = BatchSet.of_ids(SERVICE, ["a"]).to_json() | {"version": 2}
    with pytest.raises(MrsDeployBatchSetError, match="upgrade the provider"):
        BatchSet.from_json(value)


def test_events_name_the_service_and_batches() -> None:
    """What a trigger sends now: the service and the ids, no set (see BatchEvent.batch_set)."""
    event = BatchEvent(BatchEventStatus.COMPLETE, ("a", "b"), 5, 5, "done", None, SERVICE)
    payload = json.loads(json.dumps(event.to_payload()))
    assert "batch_set" not in payload
    assert (payload["service_name"], payload["service_version"]) == SERVICE
    parsed = BatchEvent.from_payload(payload)
    assert parsed == event and parsed.polled_set() == BatchSet.of_ids(SERVICE, ["a", "b"])
    # The task's own pushed set names the service a timeout cancels under, when it names
    # the event's batches; otherwise the event's service.
    own = BatchSet.of_row_counts(("mine", "v2"), [("a", 2), ("b", 3)], 2)
    assert parsed.polled_set(parsed.whole_set(own.to_json())) == own.for_polling()
    other = BatchSet.of_row_counts(("mine", "v2"), [("z", 2)], 1)
    assert parsed.polled_set(other) == BatchSet.of_ids(SERVICE, ["a", "b"])
    for unusable in (other.to_json(), {"kind": "nonsense"}, ["a", "b"]):
        with pytest.raises(MrsDeployError):
            parsed.whole_set(unusable)
    # Neither a set nor a usable service: nothing but the pushed set tells the service. An
    # unusable service is not refused: the event's status must still be acted on.
    unnamed = {k: v for k, v in payload.items() if not k.startswith("service_")}
    for bad in ({}, {"service_name": "s"}, {"service_name": "", "service_version": "v"}):
        event_without = BatchEvent.from_payload(unnamed | bad)
        assert event_without.service is None and event_without.polled_set() is None
        assert event_without.polled_set(own) == own.for_polling()
    with pytest.raises(MrsDeployError, match="counts that are no numbers"):
        BatchEvent.from_payload(payload | {"completed": "x"})


def test_events_of_earlier_releases_carry_the_set_and_read_it_back() -> None:
    batch_set = BatchSet.of_row_counts(SERVICE, [("a", 2), ("b", 3)], 2)
    event = BatchEvent(BatchEventStatus.COMPLETE, batch_set.batch_ids, 5, 5, "done", batch_set)
    payload = json.loads(json.dumps(event.to_payload()))
    assert BatchEvent.from_payload(payload).batch_set == batch_set
    # Events of triggers started by an earlier release have ids only.
    del payload["batch_set"]
    assert BatchEvent.from_payload(payload).batch_set is None
    # An event whose ids and set disagree is refused.
    payload["batch_set"] = BatchSet.of_ids(SERVICE, ["z"]).to_json()
    with pytest.raises(Exception, match="two different batch sets"):
        BatchEvent.from_payload(payload)


def test_the_state_store_reads_this_and_the_earlier_record() -> None:
    batch_set = BatchSet.of_row_counts(SERVICE, [("a", 2)], 3)
    assert read_recorded(batch_set.to_json()) == batch_set
    earlier = {
        "service_name": "mtService",
        "service_version": "v1.0.0",
        "batch_ids": ["a", "b"],
        "planned_batches": 2,
    }
    assert read_recorded(earlier) == BatchSet(
        "mtService", "v1.0.0", (BatchPart("a"), BatchPart("b")), 2
    )
    assert read_recorded({"kind": "mrsdeploy_batch_set", "version": 1}) is None
    assert read_recorded("junk") is None


def test_the_output_of_a_mapped_submit_is_named_as_such() -> None:
    sets = [BatchSet.of_ids(SERVICE, [name]).to_json() for name in ("a", "b")]
    with pytest.raises(MrsDeployBatchSetError, match=r"2 batch sets .*mapped Submit.*expand"):
        to_batch_set(sets)


def test_row_maps_round_trip_and_replace_rows_after_the_base_batches() -> None:
    base = BatchSet.of_row_counts(SERVICE, [("a", 3), ("b", 2)], 2)
    repair = BatchSet.of_row_maps(SERVICE, [("r1", [4, 1])], 1)
    combined = base.extended(repair.parts)
    assert BatchSet.from_json(json.loads(json.dumps(combined.to_json()))) == combined
    assert combined.base_batch_ids == ("a", "b") and combined.batch_ids == ("a", "b", "r1")
    assert combined.replacing_parts == (BatchPart("r1", None, 2, (4, 1)),)
    assert combined.row_count == 5  # rows of the input: a repair adds none
    assert combined.is_whole and combined.planned_batches == 3
    assert read_recorded(repair.to_json()) == repair  # what a repair's state store holds


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"batch_id": "r", "rows": [1, 1]}, "names one row twice"),
        ({"batch_id": "r", "rows": [1, 2], "row_count": 3}, "holds 3 rows but maps 2"),
        ({"batch_id": "r", "rows": []}, "bad row map"),
        ({"batch_id": "r", "rows": [-1]}, "bad row map"),
        ({"batch_id": "r", "rows": [True]}, "bad row map"),
        ({"batch_id": "r", "rows": "1,2"}, "bad row map"),
    ],
)
def test_bad_row_maps_are_refused(entry: dict[str, Any], message: str) -> None:
    batches = [{"batch_id": "a"}, entry]
    value = {**BatchSet.of_ids(SERVICE, ["a"]).to_json(), "batches": batches, "planned_batches": 2}
    with pytest.raises(MrsDeployBatchSetError, match=message):
        BatchSet.from_json(value)


def test_the_records_fingerprint_travels_with_the_set_and_is_checked() -> None:
    fingerprint = "ab" * 32
    batch_set = BatchSet(*SERVICE, (BatchPart("a", 0, 2),), records_sha256=fingerprint)
    assert BatchSet.from_json(batch_set.to_json()) == batch_set
    assert batch_set.extended([BatchPart("r", rows=(1,))]).records_sha256 == fingerprint
    for bad in ("AB" * 32, "ab", 7):
        with pytest.raises(MrsDeployBatchSetError, match="records_sha256"):
            BatchSet.from_json({**batch_set.to_json(), "records_sha256": bad})
