"""Parsing a DAG that uses the provider imports no data or HTTP library.

The scheduler's DAG processor imports every DAG file again and again; pandas, numpy and
pyarrow alone cost about half a second per import. The operators, the sensor and the trigger
import them (and the HTTP stack) only when a task runs. Checked in a fresh interpreter, where
nothing was imported before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Loaded only when a task runs, never when a DAG file is parsed.
RUN_TIME_ONLY = ("pandas", "numpy", "pyarrow", "requests", "aiohttp", "fastapi", "uvicorn")

PROBE = """
import json, sys
import airflow.sdk
before = set(sys.modules)
{imports}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules and m not in before)))
"""


@pytest.mark.parametrize(
    "imports",
    [
        "import airflow_provider.operators, airflow_provider.sensors, airflow_provider.triggers",
        "from airflow_provider.operators import MrsDeploySubmitBatchOperator",
        "from airflow_provider.operators import MrsDeployCollectBatchOperator",
        "from airflow_provider.sensors import MrsDeployBatchSensor",
        "import airflow_provider.provider_info",
    ],
)
def test_importing_the_provider_imports_no_run_time_library(imports: str) -> None:
    probe = PROBE.format(imports=imports, heavy=RUN_TIME_ONLY)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(
    "dag_file", sorted(path.name for path in (REPO / "dags_examples").glob("mrsdeploy_*.py"))
)
def test_an_example_dag_file_parses_without_them(dag_file: str) -> None:
    """Each shipped example DAG file, imported as the DAG processor would."""
    probe = PROBE.format(
        imports=(
            "import importlib.util, pathlib\n"
            f"path = pathlib.Path({str(REPO / 'dags_examples' / dag_file)!r})\n"
            "spec = importlib.util.spec_from_file_location('example', path)\n"
            "spec.loader.exec_module(importlib.util.module_from_spec(spec))"
        ),
        heavy=RUN_TIME_ONLY,
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
