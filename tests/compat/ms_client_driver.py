"""Drive Microsoft's ``azureml-model-management-sdk`` client against a running server.

This script runs inside ``.venv-compat`` (the client's own virtualenv), never inside the
project's environment: it imports nothing from the project. It exercises every call the
client offers for batch consumption, records what it observed, and prints one JSON report
on stdout. The pytest side (``test_ms_client_compat.py``) decides what is right or wrong;
this script only observes, so one failing step does not hide the others.

The one concession to the client's age: ``azureml.common.utils.function_beget`` rebuilds a
code object with the pre-3.8 ``CodeType`` signature and raises on Python 3.11. It only
builds the per-service convenience method (``svc.consume(hp, wt)``), so it is replaced by a
plain function that gathers the positional inputs by name and calls the client's own
``Service._consume``. Every HTTP request is still made by the client's own code.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

import azureml.common.utils as azureml_utils
import azureml.deploy.server.service as azureml_service
from azureml.__version__ import __version__ as client_version
from azureml.common.http_client import HttpException
from azureml.deploy import DeployClient
from azureml.deploy.server import MLServer

Report = dict[str, Any]


def function_beget(
    fn: Callable[..., Any], fn_name: str, fn_args: list[str], doc: str = ""
) -> Callable[..., Any]:
    """Build the service's consume method without rebuilding a code object.

    :param fn: the client's template function (unused: its body is reproduced here).
    :param fn_name: the method name (the service's ``operationId`` or ``consume``).
    :param fn_args: ``["self", <input names in schema order>]``.
    :param doc: the docstring the client generated.
    """
    names = list(fn_args[1:])

    def consume(self: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(names):
            raise TypeError(f"{fn_name}() takes {len(names)} inputs, got {len(args)}")
        values = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names or key in values:
                raise TypeError(f"{fn_name}() got an unexpected or repeated input {key!r}")
            values[key] = value
        missing = [name for name in names if name not in values]
        if missing:
            raise TypeError(f"{fn_name}() missing inputs: {', '.join(missing)}")
        return self._consume({name: values[name] for name in names})

    consume.__name__ = fn_name
    consume.__qualname__ = fn_name
    consume.__doc__ = doc
    return consume


def install_function_beget() -> None:
    """Replace the helper in both places the client looks it up."""
    azureml_utils.function_beget = function_beget
    azureml_service.function_beget = function_beget


def describe_error(exc: BaseException) -> Report:
    """Turn an exception into report fields (HTTP status and body when the client raised)."""
    info: Report = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if isinstance(exc, HttpException):
        info["status"] = exc.status
        info["body"] = exc.body
    else:
        info["traceback"] = traceback.format_exc(limit=6)
    return info


def step(report: Report, name: str, action: Callable[[], Report]) -> Report:
    """Run one observation; record its result or its error under ``name``."""
    try:
        result = action()
        result.setdefault("ok", True)
    except Exception as exc:
        result = describe_error(exc)
    report["steps"][name] = result
    return result


def read_records(path: str) -> list[dict[str, float]]:
    """Read the ``hp`` and ``wt`` columns of mtcars, in file order."""
    with open(path, newline="") as handle:
        return [{"hp": float(row["hp"]), "wt": float(row["wt"])} for row in csv.DictReader(handle)]


def records_frame(records: list[dict[str, float]]) -> Any:
    """The records as a pandas DataFrame, the input type the client documents for batches."""
    import pandas as pd

    return pd.DataFrame(records, columns=["hp", "wt"])


def summarize_results(response: Any, output: str) -> Report:
    """Read a ``BatchResponse`` the way a client user would, row by row."""
    rows = len(response._execution_results or [])
    answers: list[Any] = []
    errors: list[str] = []
    for index in range(rows):
        row = response.execution(index)
        answers.append(row.outputs.get(output))
        errors.append(row.error or "")
    return {
        "state": response.state,
        "completed": response.completed_item_count,
        "total": response.total_item_count,
        "rows": rows,
        "answers": answers,
        "errors": errors,
    }


def wait_for_terminal(batch: Any, output: str, deadline: float) -> Report:
    """Poll with partial results until the state is terminal or the deadline passes."""
    states: list[str] = []
    polls = 0
    partial_rows_seen: list[int] = []
    while True:
        response = batch.results(show_partial_results=True)
        polls += 1
        state = str(response.state)
        if not states or states[-1] != state:
            states.append(state)
        partial_rows_seen.append(len(response._execution_results or []))
        if state.lower() in ("complete", "failed") or time.monotonic() > deadline:
            summary = summarize_results(response, output)
            summary.update(
                states_seen=states,
                polls=polls,
                max_partial_rows=max(partial_rows_seen),
                timed_out=state.lower() not in ("complete", "failed"),
            )
            return summary
        time.sleep(0.2)


def record_wire(client: Any) -> list[str]:
    """Log every later request the client sends as ``METHOD path?query Accept -> status``."""
    wire: list[str] = []

    def hook(response: Any, *args: Any, **kwargs: Any) -> None:
        request = response.request
        path = request.url.split("://", 1)[-1]
        path = path[path.find("/") :]
        accept = request.headers.get("Accept", "")
        wire.append(f"{request.method} {path} [Accept: {accept}] -> {response.status_code}")

    client._http_client._session.hooks["response"].append(hook)
    return wire


def out_of_range(batch: Any, index: int) -> Report:
    """What ``list_artifacts`` does for a row that does not exist (observed, not judged)."""
    try:
        return {"names": batch.list_artifacts(index)}
    except HttpException as exc:
        return {"status": int(exc.status)}


def http_status(action: Callable[[], Any]) -> int | None:
    """Run a client call expected to fail and return the HTTP status it raised."""
    try:
        action()
    except HttpException as exc:
        return int(exc.status)
    return None


def run(args: argparse.Namespace) -> Report:
    """Exercise the client; return the report."""
    report: Report = {"client_version": client_version, "steps": {}}
    install_function_beget()
    deadline = time.monotonic() + args.timeout
    records = read_records(args.mtcars)
    frame = records_frame(records)
    state: dict[str, Any] = {}

    def bad_login() -> Report:
        status = http_status(
            lambda: DeployClient(
                args.url, use=MLServer, auth=(args.username, args.password + "-wrong")
            )
        )
        return {"status": status}

    step(report, "bad_login", bad_login)

    def login() -> Report:
        client = DeployClient(args.url, use=MLServer, auth=(args.username, args.password))
        state["client"] = client
        authorization = client._http_client.headers.get("Authorization", "")
        return {"scheme": authorization.split(" ", 1)[0], "has_token": len(authorization) > 7}

    if not step(report, "login", login)["ok"]:
        return report
    client = state["client"]
    report["wire"] = record_wire(client)

    def list_services() -> Report:
        services = client.list_services()
        versions = client.list_services(args.service)
        return {
            "names": sorted({s.get("name") for s in services}),
            "versions": [s.get("version") for s in versions],
        }

    step(report, "list_services", list_services)

    def get_service() -> Report:
        svc = client.get_service(args.service, version=args.version)
        state["svc"] = svc
        caps = svc.capabilities()
        return {
            "name": caps["name"],
            "version": caps["version"],
            "api": caps["api"],
            "operation_id": caps["operation_id"],
            "inputs": caps["inputs"],
            "outputs": caps["outputs"],
            "artifacts": caps["artifacts"],
            "runtime": caps["runtime"],
        }

    if not step(report, "get_service", get_service)["ok"]:
        return report
    svc = state["svc"]
    consume = getattr(svc, report["steps"]["get_service"]["operation_id"])

    def get_latest_service() -> Report:
        latest = client.get_service(args.service)
        return {"version": latest.capabilities()["version"]}

    step(report, "get_latest_service", get_latest_service)

    def consume_step() -> Report:
        positional = consume(120, 2.8)
        keywords = consume(wt=2.8, hp=120)
        first_rows = [consume(r["hp"], r["wt"]).output(args.output) for r in records[:3]]
        return {
            "answer": positional.output(args.output),
            "answer_keywords": keywords.output(args.output),
            "error": positional.error,
            "raw_outputs": positional.raw_outputs,
            "first_rows": first_rows,
        }

    step(report, "consume", consume_step)

    def batch_step() -> Report:
        batch = svc.batch(frame, parallel_count=args.parallel_count)
        before = batch.execution_id
        batch.start()
        state["batch"] = batch
        result = wait_for_terminal(batch, args.output, deadline)
        result.update(
            execution_id=batch.execution_id,
            execution_id_before_start=before,
            submitted=len(batch.records),
            first_record=dict(batch.records[0]) if batch.records else None,
        )
        return result

    if step(report, "batch", batch_step)["ok"]:
        batch = state["batch"]
        execution_id = batch.execution_id

        def results_without_partial() -> Report:
            return summarize_results(batch.results(show_partial_results=False), args.output)

        step(report, "results_without_partial", results_without_partial)

        def list_batch_executions() -> Report:
            ids = svc.list_batch_executions()
            return {"ids": ids, "contains_batch": execution_id in ids}

        step(report, "list_batch_executions", list_batch_executions)

        def get_batch() -> Report:
            again = svc.get_batch(execution_id)
            result = summarize_results(again.results(), args.output)
            result["execution_id"] = again.execution_id
            return result

        step(report, "get_batch", get_batch)

        def artifacts() -> Report:
            listed: dict[str, list[str]] = {}
            raised: dict[str, int] = {}
            for index in range(len(records)):
                try:
                    names = batch.list_artifacts(index)
                except HttpException as exc:
                    raised[str(index)] = int(exc.status)
                    continue
                if names:
                    listed[str(index)] = list(names)
            if not listed:
                return {"listed": listed, "raised": raised}
            # A row other than 0 (when it has files) also shows which row base the server uses.
            index_key = str(args.artifact_index)
            if index_key not in listed:
                index_key = next(iter(listed))
            names = listed[index_key]
            index = int(index_key)
            contents = {name: batch.artifact(index, name) for name in names}
            destination = tempfile.mkdtemp(prefix="compat-download-", dir=args.workdir)
            downloaded: dict[str, Report] = {}
            for name in names:
                # Positional on purpose: the client's ``execution`` decorator drops keywords.
                paths = batch.download(index, name, destination)
                with open(paths[0], "rb") as handle:
                    data = handle.read()
                downloaded[name] = {
                    "path": os.path.relpath(paths[0], destination),
                    "size": len(data),
                    "same_as_artifact": data == contents[name],
                }
            return {
                "listed": listed,
                "raised": raised,
                "index": index,
                "sizes": {name: len(data) for name, data in contents.items()},
                "heads": {name: data[:16].hex() for name, data in contents.items()},
                "texts": {
                    name: data[:400].decode("utf-8", "replace")
                    for name, data in contents.items()
                    if name.endswith((".csv", ".txt"))
                },
                "downloaded": downloaded,
                "out_of_range": out_of_range(batch, len(records) + 1000),
            }

        step(report, "artifacts", artifacts)

    def swagger() -> Report:
        text = svc.swagger()
        document = json.loads(text)
        return {
            "swagger": document.get("swagger"),
            "paths": sorted(document.get("paths", {})),
            "definitions": sorted(document.get("definitions", {})),
            "security_definitions": document.get("securityDefinitions", {}),
        }

    step(report, "swagger", swagger)

    def cancel() -> Report:
        victim = svc.batch(frame, parallel_count=1).start()
        execution_id = victim.execution_id
        listed_before = execution_id in svc.list_batch_executions()
        victim.cancel()
        listed_after = execution_id in svc.list_batch_executions()
        status_after = http_status(lambda: svc.get_batch(execution_id).results())
        return {
            "execution_id": execution_id,
            "listed_before": listed_before,
            "listed_after": listed_after,
            "get_after_status": status_after,
        }

    step(report, "cancel", cancel)
    return report


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True, help="server base URL")
    parser.add_argument("--username", default="admin")
    parser.add_argument(
        "--password-env",
        default="MRSDEPLOY_COMPAT_PASSWORD",
        help="environment variable holding the password (kept off the command line)",
    )
    parser.add_argument("--service", default="mtService")
    parser.add_argument("--version", default="v1.0.0")
    parser.add_argument("--output", default="answer", help="output parameter to read")
    parser.add_argument("--mtcars", required=True, help="path to mtcars.csv")
    parser.add_argument("--workdir", default=None, help="where downloads go")
    parser.add_argument("--parallel-count", type=int, default=4)
    parser.add_argument("--artifact-index", type=int, default=5, help="row whose files to fetch")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on batch waits")
    args = parser.parse_args(argv)
    args.password = os.environ.get(args.password_env, "")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = run(args)
    json.dump(report, sys.stdout, indent=2, sort_keys=True, default=repr)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
