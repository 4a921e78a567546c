"""Provider metadata: connection type and its form, hooks, operators, sensors, triggers.

The connection form is declared here once (``CONN_FIELDS`` and ``UI_FIELD_BEHAVIOUR``):
Airflow 3.2+ reads it as ``conn-fields`` / ``ui-field-behaviour`` without importing the hook,
and Airflow 3.1 asks the hook, whose form methods build the same form from these two values
(``airflow_provider.hooks.form``).
"""

from __future__ import annotations

from typing import Any

DISTRIBUTION_NAME = "airflow-provider-mrsdeploy"
INTEGRATION = "R Server / Machine Learning Server (mrsdeploy)"


def _field(label: str, kind: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": [kind, "null"], **schema},
    }


CONN_FIELDS: dict[str, Any] = {
    "scheme": _field(
        "Scheme", "string", "http or https (https is assumed on port 443)", enum=["http", "https"]
    ),
    "bearer_token": _field(
        "Bearer token",
        "string",
        "A ready access token (e.g. from Azure AD); used instead of login/password",
        format="password",
    ),
    "verify": _field("Verify TLS", "boolean", "Verify the server's TLS certificate", default=True),
    "ca_bundle": _field(
        "CA bundle path", "string", "Path to a CA bundle to verify the server certificate with"
    ),
    "timeout": _field("Request timeout (s)", "number", "Timeout of every HTTP call", default=60),
    "max_retries": _field(
        "Max retries", "integer", "Attempts for transient errors (429, 5xx, resets)", default=5
    ),
    "retry_min_wait": _field(
        "Retry min wait (s)", "number", "Shortest backoff between attempts", default=1
    ),
    "retry_max_wait": _field(
        "Retry max wait (s)", "number", "Longest backoff between attempts", default=30
    ),
    "max_response_bytes": _field(
        "Max response bytes",
        "integer",
        "Largest JSON answer or in-memory file read from the server",
        default=256 * 1024 * 1024,
    ),
    "max_download_bytes": _field(
        "Max download bytes",
        "integer",
        "Largest file streamed to storage (0: no limit)",
        default=16 * 1024 * 1024 * 1024,
    ),
    "refresh_lead": _field(
        "Token refresh lead (s)",
        "number",
        "Refresh the access token this long before it expires",
        default=300,
    ),
    "auth": _field(
        "Authentication",
        "string",
        "password (login), bearer_token, or azure_ad; inferred from the fields when empty",
        enum=["password", "bearer_token", "azure_ad"],
    ),
    "azure_credential": _field(
        "Azure AD credential",
        "string",
        "How tokens are obtained from Azure AD (needs the [azure] extra)",
        enum=["client_secret", "managed_identity", "workload_identity"],
    ),
    "tenant_id": _field("Azure AD tenant id", "string", "Directory (tenant) id or domain"),
    "client_id": _field(
        "Azure AD client id", "string", "Application (client) id; the login may hold it instead"
    ),
    "client_secret": _field(
        "Azure AD client secret",
        "string",
        "Client secret (client_secret credential); the password may hold it instead",
        format="password",
    ),
    "resource": _field(
        "Azure AD resource",
        "string",
        "App ID URI of the server's Azure AD application, e.g. api://mlserver",
    ),
    "scope": _field(
        "Azure AD scope", "string", "Full scope instead of resource (<resource>/.default)"
    ),
    "authority_host": _field(
        "Azure AD authority host",
        "string",
        "e.g. https://login.microsoftonline.com (default: AZURE_AUTHORITY_HOST or public cloud)",
    ),
    "federated_token_file": _field(
        "Federated token file",
        "string",
        "Workload identity token file (default: AZURE_FEDERATED_TOKEN_FILE)",
    ),
    "instance_discovery": _field(
        "Azure AD instance discovery",
        "boolean",
        "Check the authority with Microsoft (turn off for Azure Stack, AD FS, private hosts)",
        default=True,
    ),
    "authority_ca_bundle": _field(
        "Azure AD CA bundle path", "string", "CA bundle to verify the authority with"
    ),
    "proxy": _field(
        "Proxy URL",
        "string",
        "http://[user:password@]proxy:port for the server and Azure AD; replaces HTTPS_PROXY",
        format="password",
    ),
    "no_proxy": _field("No proxy", "string", "Comma-separated hosts reached without the proxy"),
}

#: The standard fields of the form: ``schema`` is hidden because the form's Scheme field (the
#: ``scheme`` extra) says the same thing where people look for it; the hook still reads a
#: schema given through a URI, JSON or ``--conn-schema`` (docs/connection.md).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema"],
    "relabeling": {"login": "Username"},
    "placeholders": {
        "host": "mlserver.example.com or https://mlserver.example.com",
        "port": "12800",
        "login": "admin",
    },
}

#: Where Airflow's API server mounts the provider's pages (see ``airflow_provider.ui``).
PLUGIN_CLASS = "airflow_provider.ui.plugin.MrsDeployUiPlugin"


def provider_info() -> dict[str, Any]:
    """Return the dictionary Airflow reads through the ``apache_airflow_provider`` entry point."""
    from airflow_provider import __version__

    return {
        "package-name": DISTRIBUTION_NAME,
        "name": INTEGRATION,
        "description": "Asynchronous batch scoring against the R Server / ML Server "
        "operationalization API (the API behind mrsdeploy and azureml-model-management-sdk).",
        "versions": [__version__],
        "integrations": [
            {"integration-name": INTEGRATION, "tags": ["service"]},
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider.hooks.mrsdeploy"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider.operators.submit",
                    "airflow_provider.operators.collect",
                    "airflow_provider.operators.repair",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider.sensors.batch"],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider.triggers.batch"],
            }
        ],
        "extra-links": ["airflow_provider.links.MrsDeployBatchLink"],
        "plugins": [{"name": "mrsdeploy", "plugin-class": PLUGIN_CLASS}],
        "config": {
            "mrsdeploy": {
                "description": "Options of the mrsdeploy provider.",
                "options": {
                    "freeze_triggerer_heap": {
                        "description": "When the first batch wait starts in a triggerer, move "
                        "the objects alive then (Airflow and its imports) out of Python's "
                        "garbage-collector passes (gc.freeze), so the collector's full passes "
                        "do not stall every trigger of the process for 100 ms or more.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": "True",
                    }
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "mrsdeploy",
                "hook-class-name": "airflow_provider.hooks.mrsdeploy.MrsDeployHook",
                "hook-name": "R Server / ML Server (mrsdeploy)",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
