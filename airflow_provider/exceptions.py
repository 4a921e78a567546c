"""Every error the provider raises, in one place.

All derive from :class:`MrsDeployError`, a plain ``Exception`` (not an ``AirflowException``:
any exception fails a task). The errors of the wire protocol (an HTTP status, a broken or
oversized answer, no answer) are defined with it in :mod:`airflow_provider.api.errors`, which
depends on nothing outside the standard library, and are re-exported here; the errors of the
tasks, the records and the outputs are defined here. Catch a class, never match a message.
"""

from __future__ import annotations

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
)


class MrsDeployBatchSetError(MrsDeployError, ValueError):
    """A value given as a batch set (or batch ids) cannot be read as one."""


class MrsDeploySubmissionKilledError(MrsDeployError):
    """The task was killed while it was starting batches."""


class MrsDeployBatchFailedError(MrsDeployError):
    """The server reports that a batch execution failed as a whole."""


class MrsDeployBatchTimeoutError(MrsDeployError):
    """The wait for a batch passed its deadline."""


class MrsDeployRecordsError(MrsDeployError):
    """Records that cannot be sent to the service as they are."""


class MrsDeployOutputsError(MrsDeployError):
    """The server's outputs cannot be written as a table without losing or mixing values."""


class UnsafeFileNameError(MrsDeployError):
    """A server-supplied file name that cannot be made safe to write."""


class MrsDeployDestinationError(MrsDeployError):
    """The destination cannot be written safely; nothing was written."""


class MrsDeployFailedRowsError(MrsDeployError):
    """More rows failed than the task's failure policy allows."""


__all__ = [
    "MrsDeployApiError",
    "MrsDeployAuthError",
    "MrsDeployBadRequestError",
    "MrsDeployBatchFailedError",
    "MrsDeployBatchSetError",
    "MrsDeployBatchTimeoutError",
    "MrsDeployConfigurationError",
    "MrsDeployConnectionError",
    "MrsDeployDestinationError",
    "MrsDeployError",
    "MrsDeployFailedRowsError",
    "MrsDeployIndexError",
    "MrsDeployNotFoundError",
    "MrsDeployOutputsError",
    "MrsDeployProtocolError",
    "MrsDeployRecordsError",
    "MrsDeployRedirectError",
    "MrsDeployResponseTooLargeError",
    "MrsDeployServerError",
    "MrsDeploySubmissionKilledError",
    "MrsDeployTransientError",
    "UnsafeFileNameError",
]
