"""Batch states: parsing, terminal and failed sets."""

from __future__ import annotations

import pytest

from airflow_provider.api import (
    FAILED_STATES,
    TERMINAL_STATES,
    MrsDeployBatchState,
    MrsDeployProtocolError,
)


@pytest.mark.parametrize(
    ("wire", "state"),
    [
        ("Pending", MrsDeployBatchState.PENDING),
        ("ready", MrsDeployBatchState.READY),
        ("INPROGRESS", MrsDeployBatchState.IN_PROGRESS),
        ("inProgress", MrsDeployBatchState.IN_PROGRESS),
        ("complete", MrsDeployBatchState.COMPLETE),
        ("Failed", MrsDeployBatchState.FAILED),
    ],
)
def test_parse_ignores_case(wire: str, state: MrsDeployBatchState) -> None:
    assert MrsDeployBatchState.parse(wire) is state


@pytest.mark.parametrize("wire", ["Canceled", "", "Running", None, 3])
def test_unknown_state_raises_naming_the_value(wire: object) -> None:
    with pytest.raises(MrsDeployProtocolError, match="unknown batch state") as info:
        MrsDeployBatchState.parse(wire)  # type: ignore[arg-type]
    assert repr(wire) in str(info.value)


def test_terminal_and_failed() -> None:
    assert {s for s in MrsDeployBatchState if s.is_terminal} == set(TERMINAL_STATES)
    assert {MrsDeployBatchState.COMPLETE, MrsDeployBatchState.FAILED} == TERMINAL_STATES
    assert {MrsDeployBatchState.FAILED} == FAILED_STATES
    assert MrsDeployBatchState.FAILED.is_failed
    assert not MrsDeployBatchState.COMPLETE.is_failed
    assert not MrsDeployBatchState.IN_PROGRESS.is_terminal


def test_values_are_wire_strings() -> None:
    assert MrsDeployBatchState.IN_PROGRESS == "InProgress"
    assert str(MrsDeployBatchState.IN_PROGRESS) == "InProgress"
    assert f"{MrsDeployBatchState.COMPLETE}" == "Complete"
