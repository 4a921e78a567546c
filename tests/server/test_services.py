"""Service metadata, swagger, synchronous consume and services configuration."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests

from tests.conftest import ServerFactory
from tests.support.api import Api
from tests.support.server import ReferenceServer, ReferenceServerError

SERVICE_KEYS = {
    "name",
    "version",
    "versionPublishedBy",
    "creationTime",
    "snapshotId",
    "runtimeType",
    "initCode",
    "code",
    "description",
    "operationId",
    "inputParameterDefinitions",
    "outputParameterDefinitions",
    "outputFileNames",
    "myPermissionOnService",
}


@pytest.fixture(scope="module")
def api(reference_server: ReferenceServer) -> Api:
    return Api(reference_server)


def test_list_services(api: Api) -> None:
    services = api.get("/services").json()
    names = {(s["name"], s["version"]) for s in services}
    assert {("mtService", "v1.0.0"), ("echoService", "v1.0.0"), ("typesService", "v1.0.0")} <= names
    for service in services:
        assert set(service) == SERVICE_KEYS


def test_mt_service_metadata(api: Api) -> None:
    response = api.get("/services/mtService/v1.0.0")
    assert response.status_code == 200
    [service] = response.json()
    assert service["operationId"] == "manualTransmission"
    assert service["runtimeType"] == "Python"
    assert service["inputParameterDefinitions"] == [
        {"name": "hp", "type": "numeric"},
        {"name": "wt", "type": "numeric"},
    ]
    assert service["outputParameterDefinitions"] == [{"name": "answer", "type": "numeric"}]
    assert "answer.csv" in service["outputFileNames"]
    versions = api.get("/services/mtService").json()
    assert [v["version"] for v in versions] == ["v1.0.0"]


@pytest.mark.parametrize(
    "path",
    [
        "/services/nope",
        "/services/nope/v1",
        "/services/mtService/v9",
        "/api/nope/v1/swagger.json",
        "/api/mtService/v9/batch",
    ],
)
def test_unknown_service_is_404(api: Api, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_unknown_route_and_method_have_error_bodies(api: Api) -> None:
    response = api.get("/no/such/route")
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message", "exceptionType"}
    response = api.session.put(f"{api.url}/services", timeout=30)
    assert response.status_code == 405
    assert response.json()["code"] == 405


def test_swagger_document(api: Api) -> None:
    response = api.get("/api/mtService/v1.0.0/swagger.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["swagger"] == "2.0"
    api_path = "/api/mtService/v1.0.0"
    for path in (
        "/login",
        "/login/refreshToken",
        api_path,
        f"{api_path}/batch",
        f"{api_path}/batch/{{executionId}}",
        f"{api_path}/batch/{{executionId}}/{{index}}/files",
        f"{api_path}/batch/{{executionId}}/{{index}}/files/{{fileName}}",
    ):
        assert path in doc["paths"], path
    assert doc["paths"][api_path]["post"]["operationId"] == "manualTransmission"
    assert set(doc["paths"][f"{api_path}/batch"]) == {"get", "post"}
    assert set(doc["paths"][f"{api_path}/batch/{{executionId}}"]) == {"get", "delete"}
    for name in (
        "InputParameters",
        "OutputParameters",
        "WebServiceResult",
        "StartBatchExecutionResponse",
        "BatchWebServiceResult",
        "Error",
    ):
        assert name in doc["definitions"], name
    assert doc["definitions"]["InputParameters"]["properties"]["hp"]["type"] == "number"
    assert doc["securityDefinitions"]["Bearer"] == {
        **doc["securityDefinitions"]["Bearer"],
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
    }
    unauthenticated = requests.get(f"{api.url}/api/mtService/v1.0.0/swagger.json", timeout=30)
    assert unauthenticated.status_code == 401


def test_consume_mt_service(api: Api) -> None:
    response = api.post("/api/mtService/v1.0.0", json={"hp": 120, "wt": 2.8})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "success",
        "errorMessage",
        "consoleOutput",
        "changedFiles",
        "outputParameters",
        "outputFiles",
    }
    assert body["success"] is True
    assert body["outputParameters"]["answer"] == pytest.approx(0.6418125, abs=1e-6)
    assert "answer=0.6418125" in body["consoleOutput"]
    csv_bytes = base64.b64decode(body["outputFiles"]["answer.csv"])
    assert csv_bytes.startswith(b"hp,wt,answer\n120.0,2.8,0.6418")
    assert base64.b64decode(body["outputFiles"]["answer.png"]).startswith(b"\x89PNG")
    assert sorted(body["changedFiles"]) == ["answer.csv", "answer.png"]


def test_consume_every_type_round_trips(api: Api) -> None:
    record = {
        "flag": True,
        "x": 1.5,
        "k": 3,
        "s": "text",
        "v": [1, "a", None],
        "m": [[1, 2], [3, 4]],
        "df": {"a": [1, 2], "b": ["x", "y"]},
    }
    body = api.post("/api/typesService/v1.0.0", json=record).json()
    assert body["success"] is True
    assert body["outputParameters"] == record


def test_consume_echo_outputs_and_failure(api: Api) -> None:
    body = api.post("/api/echoService/v1.0.0", json={"text": "hi", "n": 2}).json()
    assert body["outputParameters"] == {
        "echo": "hi hi",
        "length": 5,
        "ratio": 1.0,
        "empty": False,
        "words": ["hi", "hi"],
        "grid": [[0, 0], [1, 1]],
        "table": {"i": [0, 1], "text": ["hi", "hi"]},
    }
    assert body["consoleOutput"] == "echo: hi hi\n"
    failed = api.post("/api/echoService/v1.0.0", json={"text": "fail", "n": 1})
    assert failed.status_code == 200
    failure = failed.json()
    assert failure["success"] is False
    assert "asked to fail" in failure["errorMessage"]
    assert "about to fail" in failure["consoleOutput"]
    assert failure["outputParameters"] == {}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"hp": 120}, "missing input 'wt'"),
        ({"hp": 120, "wt": 2.8, "x": 1}, "unknown input 'x'"),
        ({"hp": "120", "wt": 2.8}, "input 'hp' must be numeric"),
        ({"hp": True, "wt": 2.8}, "input 'hp' must be numeric"),
        ([{"hp": 1, "wt": 2}], "must be a JSON object"),
    ],
)
def test_consume_rejects_bad_input(api: Api, body: object, fragment: str) -> None:
    response = api.post("/api/mtService/v1.0.0", json=body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_consume_unknown_service_is_404(api: Api) -> None:
    assert api.post("/api/nope/v1", json={}).status_code == 404


def test_services_config_registers_a_custom_service(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    config = tmp_path / "services.json"
    config.write_text(
        json.dumps(
            {
                "services": [
                    {
                        "name": "shout",
                        "version": "v2",
                        "callable": "airflow_provider.server.demo_services:echo",
                        "operationId": "shout",
                        "description": "custom",
                        "inputParameterDefinitions": [
                            {"name": "text", "type": "character"},
                            {"name": "n", "type": "integer"},
                        ],
                        "outputParameterDefinitions": [{"name": "echo", "type": "character"}],
                        "outputFileNames": ["echo.txt"],
                    }
                ]
            }
        )
    )
    server = server_factory("--services-config", str(config), "--no-demo-services")
    api = Api(server)
    assert [s["name"] for s in api.get("/services").json()] == ["shout"]
    body = api.post("/api/shout/v2", json={"text": "a", "n": 3}).json()
    assert body["outputParameters"] == {"echo": "a a a"}


def test_broken_service_callable_fails_consume_and_batch(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    config = tmp_path / "services.json"
    config.write_text(
        json.dumps(
            [
                {
                    "name": "broken",
                    "version": "v1",
                    "callable": "no_such_module_xyz:fn",
                    "inputParameterDefinitions": [{"name": "x", "type": "numeric"}],
                    "outputParameterDefinitions": [{"name": "y", "type": "numeric"}],
                }
            ]
        )
    )
    server = server_factory("--services-config", str(config))
    api = Api(server)
    body = api.post("/api/broken/v1", json={"x": 1}).json()
    assert body["success"] is False
    assert "no_such_module_xyz" in body["errorMessage"]
    batch_id = api.start_batch([{"x": 1}], service="broken", version="v1")
    status = api.wait(batch_id, service="broken", version="v1")
    assert status["state"] == "Failed"
    assert "could not be loaded" in status["errorMessage"]


def test_invalid_services_config_stops_start_up(tmp_path: Path) -> None:
    config = tmp_path / "services.json"
    config.write_text(
        json.dumps(
            [
                {
                    "name": "x",
                    "version": "v1",
                    "callable": "m:f",
                    "inputParameterDefinitions": [{"name": "a", "type": "float"}],
                }
            ]
        )
    )
    with pytest.raises(ReferenceServerError, match="expected one of"):
        ReferenceServer(tmp_path / "data", extra_args=("--services-config", str(config)))
