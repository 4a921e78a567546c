"""The main job, end to end on one machine (``make demo``).

1. Start the reference server on a free loopback port with a throwaway data directory.
2. Point a throwaway ``AIRFLOW_HOME`` (SQLite) at ``dags_examples/`` and the server.
3. Run the ``mrsdeploy_score_mtcars`` example DAG through Airflow (``airflow dags test``): submit,
   deferrable sensor (its trigger runs in the same process), collect.
4. Print where the outputs landed and a short summary, then stop the server.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from airflow_provider.server.process import ReferenceServer

REPO = Path(__file__).resolve().parent.parent

DAG_ID = "mrsdeploy_score_mtcars"
LOGICAL_DATE = "2026-01-01"


def airflow_env(home: Path, server: ReferenceServer) -> dict[str, str]:
    """Environment for the Airflow CLI: throwaway home, SQLite, our DAGs, our connection."""
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags_examples"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW_CONN_MRSDEPLOY_DEFAULT": json.dumps(server.airflow_connection()),
        }
    )
    return env


def run(cmd: list[str], env: dict[str, str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, env=env, check=True)


def summarize(destination: Path) -> None:
    manifest = json.loads((destination / "manifest.json").read_text())
    table = pd.read_parquet(destination / manifest["table"]["path"])
    counts = manifest["counts"]
    print()
    print(f"Outputs landed in: {destination}")
    print(f"  table:    {destination / manifest['table']['path']}")
    print(f"  files:    {destination / 'files'} ({counts['files']} files, {counts['bytes']} bytes)")
    print(f"  manifest: {destination / 'manifest.json'}")
    print(
        f"Rows: {counts['rows']}, failed: {counts['failed_rows']}, batch: {manifest['batch_ids']}"
    )
    print("First answers (probability of a manual transmission):")
    print(table[["index", "success", "answer"]].head(5).to_string(index=False))


def main() -> int:
    work = REPO / ".demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    password = secrets.token_urlsafe(16)
    output_root = work / "outputs"
    with ReferenceServer(work / "server-data", admin_password=password) as server:
        print(f"Reference server listening on {server.url}", flush=True)
        env = airflow_env(work / "airflow-home", server)
        env["MRSDEPLOY_OUTPUT_ROOT"] = str(output_root)
        airflow = [str(Path(sys.executable).with_name("airflow"))]
        run([*airflow, "db", "migrate"], env)
        run(
            [
                *airflow,
                "dags",
                "test",
                DAG_ID,
                LOGICAL_DATE,
                "--conf",
                json.dumps({"destination": str(output_root)}),
            ],
            env,
        )
    summarize(output_root / "mtcars" / LOGICAL_DATE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
