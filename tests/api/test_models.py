"""Models built from JSON: services, tokens, execution results, batch status."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider.api import (
    BatchStatus,
    ExecutionResult,
    MrsDeployBatchState,
    MrsDeployProtocolError,
    ParameterDefinition,
    ServiceInfo,
    TokenPair,
)

SERVICE: dict[str, Any] = {
    "name": "mtService",
    "version": "v1.0.0",
    "versionPublishedBy": "admin",
    "creationTime": "2017-05-01T10:00:00Z",
    "snapshotId": None,
    "runtimeType": "R",
    "initCode": "",
    "code": "manualTransmission(hp, wt)",
    "description": "logistic regression am ~ hp + wt",
    "operationId": "manualTransmission",
    "inputParameterDefinitions": [
        {"name": "hp", "type": "numeric"},
        {"name": "wt", "type": "numeric"},
    ],
    "outputParameterDefinitions": [{"name": "answer", "type": "numeric"}],
    "outputFileNames": [],
    "myPermissionOnService": "Write",
}


def test_service_from_json() -> None:
    service = ServiceInfo.from_json(SERVICE)
    assert service.name == "mtService"
    assert service.version == "v1.0.0"
    assert service.runtime_type == "R"
    assert service.operation_id == "manualTransmission"
    assert service.input_parameters == (
        ParameterDefinition("hp", "numeric"),
        ParameterDefinition("wt", "numeric"),
    )
    assert service.output_parameters == (ParameterDefinition("answer", "numeric"),)
    assert service.output_file_names == ()
    assert service.published_by == "admin"
    assert service.snapshot_id is None
    assert service.permission == "Write"


def test_service_optional_fields_missing() -> None:
    service = ServiceInfo.from_json({"name": "s", "version": "1", "outputFileNames": None})
    assert service.runtime_type is None
    assert service.input_parameters == ()
    assert service.output_file_names == ()


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"version": "1"},
        {"name": "s", "version": 1.5j},
        {"name": "s", "version": "1", "inputParameterDefinitions": {"hp": "numeric"}},
        {"name": "s", "version": "1", "inputParameterDefinitions": [{"name": "hp"}]},
        {"name": "s", "version": "1", "outputFileNames": [1]},
    ],
)
def test_service_bad_shapes(obj: Any) -> None:
    with pytest.raises(MrsDeployProtocolError):
        ServiceInfo.from_json(obj)


def test_token_pair_int_expires_on() -> None:
    pair = TokenPair.from_json(
        {
            "token_type": "Bearer",
            "access_token": "a" * 20,
            "expires_in": 3600,
            "expires_on": 1_700_003_600,
            "refresh_token": "r" * 20,
        },
        now=1_700_000_000.0,
    )
    assert pair.expires_on == 1_700_003_600
    assert pair.refresh_token == "r" * 20
    assert pair.token_type == "Bearer"


def test_token_pair_numeric_string_expires_on() -> None:
    pair = TokenPair.from_json(
        {"access_token": "tok", "expires_on": "1700003600", "refresh_token": "r"}, now=0.0
    )
    assert pair.expires_on == 1_700_003_600.0


def test_token_pair_expires_in_only() -> None:
    pair = TokenPair.from_json({"access_token": "tok", "expires_in": "60"}, now=1000.0)
    assert pair.expires_on == 1060.0
    assert pair.refresh_token is None


def test_token_pair_expiry_window() -> None:
    pair = TokenPair("tok", "ref", expires_on=1000.0)
    assert not pair.expires_within(300, now=600.0)
    assert pair.expires_within(300, now=701.0)
    assert pair.expires_within(0, now=1001.0)


def test_token_pair_repr_hides_tokens() -> None:
    pair = TokenPair("secret-access-value", "secret-refresh-value", expires_on=1.0)
    assert "secret" not in repr(pair)


@pytest.mark.parametrize(
    "obj",
    [
        {"expires_on": 1},
        {"access_token": "t"},
        {"access_token": "t", "expires_on": "tomorrow"},
        {"access_token": "t", "expires_on": True},
        {"access_token": "t", "expires_in": float("nan")},  # never "expiring": never renewed
        {"access_token": "t", "expires_in": "Infinity"},
        {"access_token": "t", "expires_on": "-inf"},
        {"access_token": "t", "expires_on": 10**400},  # no float holds it
        "token",
    ],
)
def test_token_pair_bad_shapes(obj: Any) -> None:
    with pytest.raises(MrsDeployProtocolError):
        TokenPair.from_json(obj, now=0.0)


def test_execution_result_full() -> None:
    result = ExecutionResult.from_json(
        {
            "success": True,
            "errorMessage": "",
            "consoleOutput": "ok\n",
            "changedFiles": ["plot.png"],
            "outputParameters": {"answer": 0.64},
            "outputFiles": {"plot.png": "aGVsbG8="},
        }
    )
    assert result.success is True
    assert result.error_message is None
    assert result.console_output == "ok\n"
    assert result.changed_files == ("plot.png",)
    assert result.output_parameters == {"answer": 0.64}
    assert result.output_files == {"plot.png": "aGVsbG8="}


def test_execution_result_nulls() -> None:
    result = ExecutionResult.from_json(
        {
            "success": False,
            "errorMessage": "object 'hp' not found",
            "consoleOutput": None,
            "changedFiles": None,
            "outputParameters": None,
            "outputFiles": None,
        }
    )
    assert not result.success
    assert result.error_message == "object 'hp' not found"
    assert result.changed_files == ()
    assert result.output_parameters == {}
    assert result.output_files == {}


@pytest.mark.parametrize(
    "obj",
    [{}, {"success": "yes"}, {"success": True, "outputFiles": {"a": 1}}, [1]],
)
def test_execution_result_bad_shapes(obj: Any) -> None:
    with pytest.raises(MrsDeployProtocolError):
        ExecutionResult.from_json(obj)


def _row(answer: float) -> dict[str, Any]:
    return {"success": True, "outputParameters": {"answer": answer}}


def test_batch_status_complete() -> None:
    status = BatchStatus.from_json(
        {
            "state": "Complete",
            "completedItemCount": 2,
            "totalItemCount": 2,
            "batchExecutionResults": [_row(0.1), _row(0.2)],
        }
    )
    assert status.state is MrsDeployBatchState.COMPLETE
    assert status.is_terminal and not status.is_failed
    assert status.progress == 1.0
    assert [r.output_parameters["answer"] for r in status.results] == [0.1, 0.2]
    assert status.to_summary() == {
        "state": "Complete",
        "completed_item_count": 2,
        "total_item_count": 2,
    }


def test_batch_status_in_progress_lowercase_and_null_results() -> None:
    status = BatchStatus.from_json(
        {
            "state": "inprogress",
            "completedItemCount": 8,
            "totalItemCount": 32,
            "batchExecutionResults": None,
        }
    )
    assert status.state is MrsDeployBatchState.IN_PROGRESS
    assert not status.is_terminal
    assert status.progress == pytest.approx(0.25)
    assert status.results == ()


def test_batch_status_progress_of_empty_batch() -> None:
    assert BatchStatus(MrsDeployBatchState.PENDING, 0, 0).progress == 0.0
    assert BatchStatus(MrsDeployBatchState.FAILED, 0, 0).progress == 1.0
    assert BatchStatus(MrsDeployBatchState.FAILED, 0, 0).is_failed


@pytest.mark.parametrize(
    "obj",
    [
        {"completedItemCount": 0, "totalItemCount": 1},
        {"state": "Cancelled", "completedItemCount": 0, "totalItemCount": 1},
        {"state": "Complete", "completedItemCount": "many", "totalItemCount": 1},
        {"state": "Complete", "completedItemCount": -1, "totalItemCount": 1},
        {"state": "Complete", "batchExecutionResults": {"0": {}}},
    ],
)
def test_batch_status_bad_shapes(obj: Any) -> None:
    with pytest.raises(MrsDeployProtocolError):
        BatchStatus.from_json(obj)
