"""What the connection form's Test button will not do: send credentials where the stored
connection would not.

The Test button runs in Airflow's API server (or, queued, on a worker), for any user who may
create connections, and Airflow reuses the *stored* password or secret extras of a connection
when the tested one keeps its host and port (3.3.2 compares them; earlier releases reuse them
whatever the host). Airflow compares only the host and port, though, and some extras of this
connection change where credentials go, or whose credentials they are:

- ``proxy``: the login (password included) would go through a proxy the tester names;
- ``authority_host``: the Azure AD client secret would go to the host the tester names;
- ``azure_credential`` ``managed_identity`` or ``workload_identity``: the tokens would be the
  identity *of the machine running the test* (the API server's), not the connection's, and the
  tester chooses where they are sent.

Such a connection is refused by the Test button, before any request, with the way to test it
instead: a task, which runs with the credentials of the deployment that owns it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from airflow_provider.hooks.azure_ad_settings import CLIENT_SECRET
from airflow_provider.hooks.settings import MrsDeployConnectionSettings

#: Azure AD's own sign-in hosts (public cloud, US Government, China): a client secret sent to
#: one of them reaches Microsoft, whatever the tester wrote.
AZURE_AUTHORITY_HOSTS = frozenset(
    {"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"}
)

#: How to test such a connection instead.
TEST_FROM_A_TASK = (
    "test it from a task instead (for example `airflow tasks test` of a DAG using it), which "
    "runs with the deployment's own credentials"
)


def refused_by_test_button(settings: MrsDeployConnectionSettings) -> str | None:
    """Why the Test button will not test a connection with ``settings`` (None: it may).

    :param settings: the connection's settings, as the hook read them.
    """
    if settings.proxy is not None:
        return (
            "The Test button does not send a connection's credentials through the proxy its "
            f"extras name (a tester could name any proxy); {TEST_FROM_A_TASK}."
        )
    azure = settings.azure_ad
    if azure is None:
        return None
    if azure.credential != CLIENT_SECRET:
        return (
            f"The Test button does not use {azure.credential.replace('_', ' ')} credentials: "
            "they are the identity of the machine running the test (Airflow's API server), not "
            f"the connection's; {TEST_FROM_A_TASK}."
        )
    host = urlsplit(azure.authority_host).hostname if azure.authority_host else None
    if host is not None and host.lower() not in AZURE_AUTHORITY_HOSTS:
        return (
            f"The Test button sends a client secret only to Azure AD's own hosts "
            f"({', '.join(sorted(AZURE_AUTHORITY_HOSTS))}), not to authority_host {host!r}; "
            f"{TEST_FROM_A_TASK}."
        )
    return None
