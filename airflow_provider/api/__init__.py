"""The wire contract of the operationalization API, without I/O.

Request builders produce :class:`ApiRequest` values, parsers turn decoded JSON into frozen
models, and :func:`error_from_response` maps an HTTP error to the exception hierarchy. The
decisions of a client live here too, as code that only takes values and returns decisions: the
authentication flow (:mod:`~airflow_provider.api.auth_flow`), when to retry and how long to wait
(:mod:`~airflow_provider.api.retry`), how much of an answer to read
(:mod:`~airflow_provider.api.limits`) and how to resume a broken download
(:mod:`~airflow_provider.api.resume`). The hook's sync and async transports only drive them, so
the protocol lives in one place. Nothing here imports anything but the standard library and
msgspec.
"""

from __future__ import annotations

from airflow_provider.api import calls
from airflow_provider.api.calls import (
    JSON_CONTENT_TYPE,
    ApiRequest,
    cancel_batch,
    consume,
    get_batch,
    get_batch_file,
    get_service,
    get_swagger,
    join_url,
    list_batch_files,
    list_batches,
    list_services,
    login,
    refresh,
    revoke,
    start_batch,
)
from airflow_provider.api.errors import (
    MrsDeployApiError,
    MrsDeployAuthError,
    MrsDeployBadRequestError,
    MrsDeployConfigurationError,
    MrsDeployConnectionError,
    MrsDeployError,
    MrsDeployIndexError,
    MrsDeployNotFoundError,
    MrsDeployProtocolError,
    MrsDeployRedirectError,
    MrsDeployResponseTooLargeError,
    MrsDeployServerError,
    MrsDeployTransientError,
    error_class_for_status,
    error_from_response,
    parse_retry_after,
)
from airflow_provider.api.models import (
    BatchStatus,
    ExecutionResult,
    ParameterDefinition,
    ServiceInfo,
    TokenPair,
)
from airflow_provider.api.parsers import (
    HeadScan,
    decode_json,
    parse_batch_id,
    parse_batch_ids,
    parse_batch_progress,
    parse_batch_status,
    parse_batch_status_body,
    parse_execution_result,
    parse_file_list,
    parse_service,
    parse_services,
    parse_swagger,
    parse_token_pair,
    scan_batch_progress,
)
from airflow_provider.api.state import FAILED_STATES, TERMINAL_STATES, MrsDeployBatchState

__all__ = [
    "FAILED_STATES",
    "JSON_CONTENT_TYPE",
    "TERMINAL_STATES",
    "ApiRequest",
    "BatchStatus",
    "ExecutionResult",
    "HeadScan",
    "MrsDeployApiError",
    "MrsDeployAuthError",
    "MrsDeployBadRequestError",
    "MrsDeployBatchState",
    "MrsDeployConfigurationError",
    "MrsDeployConnectionError",
    "MrsDeployError",
    "MrsDeployIndexError",
    "MrsDeployNotFoundError",
    "MrsDeployProtocolError",
    "MrsDeployRedirectError",
    "MrsDeployResponseTooLargeError",
    "MrsDeployServerError",
    "MrsDeployTransientError",
    "ParameterDefinition",
    "ServiceInfo",
    "TokenPair",
    "calls",
    "cancel_batch",
    "consume",
    "decode_json",
    "error_class_for_status",
    "error_from_response",
    "get_batch",
    "get_batch_file",
    "get_service",
    "get_swagger",
    "join_url",
    "list_batch_files",
    "list_batches",
    "list_services",
    "login",
    "parse_batch_id",
    "parse_batch_ids",
    "parse_batch_progress",
    "parse_batch_status",
    "parse_batch_status_body",
    "parse_execution_result",
    "parse_file_list",
    "parse_retry_after",
    "parse_service",
    "parse_services",
    "parse_swagger",
    "parse_token_pair",
    "refresh",
    "revoke",
    "scan_batch_progress",
    "start_batch",
]
