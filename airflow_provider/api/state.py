"""Batch execution states as data: the enum, and which states are terminal or failed."""

from __future__ import annotations

from enum import Enum

from airflow_provider.api.errors import MrsDeployProtocolError


class MrsDeployBatchState(str, Enum):
    """State of a batch execution, with the PascalCase values the server sends.

    There is no cancelled state: cancelling deletes the execution.
    """

    PENDING = "Pending"
    READY = "Ready"
    IN_PROGRESS = "InProgress"
    COMPLETE = "Complete"
    FAILED = "Failed"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: str) -> MrsDeployBatchState:
        """Return the state for a wire value, ignoring case (the published swagger is lowercase).

        :param value: the ``state`` string from the server.
        :raises MrsDeployProtocolError: for anything that is not a known state, so an unexpected
            value is reported instead of being waited on forever.
        """
        if isinstance(value, str):
            folded = value.strip().lower()
            for state in cls:
                if state.value.lower() == folded:
                    return state
        known = ", ".join(state.value for state in cls)
        raise MrsDeployProtocolError(f"unknown batch state {value!r} (expected one of {known})")

    @property
    def is_terminal(self) -> bool:
        """True when the batch will not change any more."""
        return self in TERMINAL_STATES

    @property
    def is_failed(self) -> bool:
        """True when the batch as a whole could not run (individual rows may fail in Complete)."""
        return self in FAILED_STATES


TERMINAL_STATES: frozenset[MrsDeployBatchState] = frozenset(
    {MrsDeployBatchState.COMPLETE, MrsDeployBatchState.FAILED}
)
FAILED_STATES: frozenset[MrsDeployBatchState] = frozenset({MrsDeployBatchState.FAILED})
