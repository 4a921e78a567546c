"""Airflow discovers the provider through its entry point and reads the connection form."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from airflow_provider import get_provider_info


def test_provider_info_names_importable_classes() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-mrsdeploy"
    (conn,) = info["connection-types"]
    module, _, name = conn["hook-class-name"].rpartition(".")
    hook = getattr(importlib.import_module(module), name)
    assert hook.conn_type == conn["connection-type"] == "mrsdeploy"
    assert hook.default_conn_name == "mrsdeploy_default"
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module_name in entry["python-modules"]:
                importlib.import_module(module_name)
    assert {"bearer_token", "verify", "ca_bundle", "timeout", "max_retries"} <= set(
        conn["conn-fields"]
    )


def test_airflow_lists_the_provider_and_its_connection_type() -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    providers = subprocess.run(
        [airflow, "providers", "list", "--output", "plain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "airflow-provider-mrsdeploy" in providers
    hooks = subprocess.run(
        [airflow, "providers", "hooks", "--output", "plain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "mrsdeploy" in hooks and "MrsDeployHook" in hooks
