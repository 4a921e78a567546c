"""Per-service Swagger 2.0 document, generated from the service definition.

It follows the shape of the documents the real server exports: login and token calls, the
synchronous consume call named by the service's ``operationId``, and the batch calls.
"""

from __future__ import annotations

from typing import Any

from airflow_provider.server.services import ServiceDefinition

_SCHEMAS: dict[str, dict[str, Any]] = {
    "logical": {"type": "boolean"},
    "numeric": {"type": "number", "format": "double"},
    "integer": {"type": "integer", "format": "int32"},
    "character": {"type": "string"},
    "vector": {"type": "array", "items": {}},
    "matrix": {"type": "array", "items": {"type": "array", "items": {}}},
    "data.frame": {"type": "object", "additionalProperties": {"type": "array", "items": {}}},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/definitions/{name}"}


def _error_responses() -> dict[str, Any]:
    return {"default": {"description": "Error", "schema": _ref("Error")}}


def _params_schema(parameters: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: dict(_SCHEMAS[kind]) for name, kind in parameters},
    }


def _path_param(name: str, kind: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "type": kind, "description": description}


def build_swagger(service: ServiceDefinition, host: str | None, scheme: str) -> dict[str, Any]:
    """The swagger.json of ``service``.

    :param service: The service.
    :param host: ``host[:port]`` the client used, or ``None`` to omit it.
    :param scheme: ``http`` or ``https``.
    """
    api = f"/api/{service.name}/{service.version}"
    secured: list[dict[str, list[str]]] = [{"Bearer": []}]
    execution_id = _path_param("executionId", "string", "Batch execution id.")
    index = _path_param("index", "integer", "Row index in the submitted batch.")
    file_name = _path_param("fileName", "string", "Name of the file.")
    paths: dict[str, Any] = {
        "/login": {
            "post": {
                "tags": ["User"],
                "operationId": "Login",
                "description": "Logs the user in.",
                "parameters": [
                    {
                        "name": "loginRequest",
                        "in": "body",
                        "required": True,
                        "schema": _ref("LoginRequest"),
                    }
                ],
                "responses": {
                    "200": {"description": "OK", "schema": _ref("AccessTokenResponse")},
                    **_error_responses(),
                },
            }
        },
        "/login/refreshToken": {
            "post": {
                "tags": ["User"],
                "operationId": "RenewToken",
                "description": "Exchanges a refresh token for a new token pair.",
                "parameters": [
                    {
                        "name": "renewTokenRequest",
                        "in": "body",
                        "required": True,
                        "schema": _ref("RenewTokenRequest"),
                    }
                ],
                "responses": {
                    "200": {"description": "OK", "schema": _ref("AccessTokenResponse")},
                    **_error_responses(),
                },
            },
            "delete": {
                "tags": ["User"],
                "operationId": "RevokeRefreshToken",
                "description": "Revokes a refresh token.",
                "security": secured,
                "parameters": [
                    {"name": "refreshToken", "in": "query", "required": True, "type": "string"}
                ],
                "responses": {"200": {"description": "OK"}, **_error_responses()},
            },
        },
        api: {
            "post": {
                "tags": ["Consume"],
                "operationId": service.operation_id,
                "description": f"Consume the {service.name} web service.",
                "security": secured,
                "parameters": [
                    {
                        "name": "WebServiceParameters",
                        "in": "body",
                        "required": True,
                        "schema": _ref("InputParameters"),
                    }
                ],
                "responses": {
                    "200": {"description": "OK", "schema": _ref("WebServiceResult")},
                    **_error_responses(),
                },
            }
        },
        f"{api}/batch": {
            "post": {
                "tags": ["Batch"],
                "operationId": "StartBatchExecution",
                "description": f"Consume the {service.name} web service asynchronously.",
                "security": secured,
                "parameters": [
                    {
                        "name": "batchWebServiceParameters",
                        "in": "body",
                        "required": True,
                        "schema": {"type": "array", "items": _ref("InputParameters")},
                    },
                    {
                        "name": "parallelCount",
                        "in": "query",
                        "required": False,
                        "type": "integer",
                        "format": "int32",
                        "description": "Number of threads used to process the records.",
                    },
                ],
                "responses": {
                    "202": {
                        "description": "Accepted",
                        "schema": _ref("StartBatchExecutionResponse"),
                    },
                    **_error_responses(),
                },
            },
            "get": {
                "tags": ["Batch"],
                "operationId": "GetBatchExecutions",
                "description": "Lists the caller's batch executions of this service.",
                "security": secured,
                "responses": {
                    "200": {
                        "description": "OK",
                        "schema": {"type": "array", "items": {"type": "string"}},
                    },
                    **_error_responses(),
                },
            },
        },
        f"{api}/batch/{{executionId}}": {
            "get": {
                "tags": ["Batch"],
                "operationId": "GetBatchExecutionStatus",
                "description": "Gets the state and results of a batch execution.",
                "security": secured,
                "parameters": [
                    execution_id,
                    {
                        "name": "showPartialResults",
                        "in": "query",
                        "required": False,
                        "type": "boolean",
                        "description": "Return the rows finished so far.",
                    },
                ],
                "responses": {
                    "200": {"description": "OK", "schema": _ref("BatchWebServiceResult")},
                    **_error_responses(),
                },
            },
            "delete": {
                "tags": ["Batch"],
                "operationId": "CancelAndDeleteBatchExecution",
                "description": "Cancels and deletes a batch execution.",
                "security": secured,
                "parameters": [execution_id],
                "responses": {
                    "200": {
                        "description": "OK",
                        "schema": {"type": "array", "items": {"type": "string"}},
                    },
                    **_error_responses(),
                },
            },
        },
        f"{api}/batch/{{executionId}}/{{index}}/files": {
            "get": {
                "tags": ["Batch"],
                "operationId": "GetBatchExecutionFiles",
                "description": "Lists the files a row produced.",
                "security": secured,
                "parameters": [execution_id, index],
                "responses": {
                    "200": {
                        "description": "OK",
                        "schema": {"type": "array", "items": {"type": "string"}},
                    },
                    **_error_responses(),
                },
            }
        },
        f"{api}/batch/{{executionId}}/{{index}}/files/{{fileName}}": {
            "get": {
                "tags": ["Batch"],
                "operationId": "GetBatchExecutionFile",
                "description": "Downloads one file a row produced (raw bytes).",
                "security": secured,
                "produces": ["application/octet-stream"],
                "parameters": [execution_id, index, file_name],
                "responses": {
                    "200": {"description": "OK", "schema": {"type": "file"}},
                    **_error_responses(),
                },
            }
        },
    }
    definitions: dict[str, Any] = {
        "LoginRequest": {
            "type": "object",
            "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
        },
        "RenewTokenRequest": {
            "type": "object",
            "properties": {"refreshToken": {"type": "string"}},
        },
        "AccessTokenResponse": {
            "type": "object",
            "properties": {
                "token_type": {"type": "string"},
                "access_token": {"type": "string"},
                "expires_in": {"type": "string"},
                "expires_on": {"type": "string"},
                "refresh_token": {"type": "string"},
            },
        },
        "InputParameters": _params_schema(service.inputs),
        "OutputParameters": _params_schema(service.outputs),
        "WebServiceResult": {
            "type": "object",
            "properties": {
                "success": {"type": "boolean"},
                "errorMessage": {"type": "string"},
                "consoleOutput": {"type": "string"},
                "changedFiles": {"type": "array", "items": {"type": "string"}},
                "outputParameters": _ref("OutputParameters"),
                "outputFiles": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "format": "byte"},
                },
            },
        },
        "StartBatchExecutionResponse": {
            "type": "object",
            "properties": {"batchExecutionId": {"type": "string"}},
        },
        "BatchWebServiceResult": {
            "type": "object",
            "properties": {
                "state": {
                    "type": "string",
                    "enum": ["Pending", "Ready", "InProgress", "Complete", "Failed"],
                },
                "totalItemCount": {"type": "integer", "format": "int32"},
                "completedItemCount": {"type": "integer", "format": "int32"},
                "batchExecutionResults": {"type": "array", "items": _ref("WebServiceResult")},
            },
        },
        "Error": {
            "type": "object",
            "properties": {
                "code": {"type": "integer", "format": "int32"},
                "message": {"type": "string"},
                "exceptionType": {"type": "string"},
            },
        },
    }
    document: dict[str, Any] = {
        "swagger": "2.0",
        "info": {
            "title": service.name,
            "description": service.description,
            "version": service.version,
        },
        "schemes": [scheme],
        "basePath": "/",
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "Bearer": {
                "type": "apiKey",
                "name": "Authorization",
                "in": "header",
                "description": "Bearer <access_token> from /login.",
            }
        },
        "paths": paths,
        "definitions": definitions,
    }
    if host:
        document["host"] = host
    return document
