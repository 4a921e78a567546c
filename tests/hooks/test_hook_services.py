"""Services, swagger and synchronous consume against the reference server."""

from __future__ import annotations

import pytest

from airflow_provider.api import (
    MrsDeployBadRequestError,
    MrsDeployNotFoundError,
)
from airflow_provider.hooks import MrsDeployHook
from tests.hooks.helpers import DOC_ANSWER, MT


def test_list_and_get_service(hook: MrsDeployHook) -> None:
    names = {(s.name, s.version) for s in hook.list_services()}
    assert MT in names
    service = hook.get_service(*MT)
    assert [p.name for p in service.input_parameters] == ["hp", "wt"]
    assert [p.name for p in service.output_parameters] == ["answer"]
    assert service.operation_id == "manualTransmission"


def test_swagger(hook: MrsDeployHook) -> None:
    swagger = hook.get_swagger(*MT)
    assert swagger["swagger"] == "2.0"
    assert any(path.endswith("/batch") for path in swagger["paths"])


def test_consume_matches_the_documented_answer(hook: MrsDeployHook) -> None:
    result = hook.consume(*MT, {"hp": 120, "wt": 2.8})
    assert result.success
    assert result.output_parameters["answer"] == pytest.approx(DOC_ANSWER, abs=1e-6)


def test_consume_bad_input_fails_fast_with_the_server_message(hook: MrsDeployHook) -> None:
    with pytest.raises(MrsDeployBadRequestError) as info:
        hook.consume(*MT, {"hp": "not a number"})
    error = info.value
    assert error.status_code == 400
    assert error.path == "/api/mtService/v1.0.0"
    assert error.message and error.message in str(error)


def test_unknown_service(hook: MrsDeployHook) -> None:
    with pytest.raises(MrsDeployNotFoundError, match="check service_name/service_version") as info:
        hook.get_service("noSuchService", "v9")
    assert "noSuchService v9" in str(info.value)
    assert hook.base_url in str(info.value)
    with pytest.raises(MrsDeployNotFoundError):
        hook.consume("noSuchService", "v9", {"hp": 1})


def test_test_connection(hook: MrsDeployHook) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert hook.base_url in message
