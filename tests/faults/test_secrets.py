"""Secrets never reach a log line: the password, and the access and refresh tokens the hooks
actually used, are searched for in everything captured at DEBUG (stdlib records, Airflow's
structured log output, stdout and stderr) after a full submit / wait / collect run that also
went through retries and a deferred wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.hooks import MrsDeployHook
from airflow_provider.hooks.tokens import forget_shared_tokens
from airflow_provider.operators import MrsDeployCollectBatchOperator, MrsDeploySubmitBatchOperator
from airflow_provider.triggers import MrsDeployBatchTrigger
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import CARS, MT, batch_trigger, first_event, sensor
from tests.support.server import ReferenceServer

#: A password long enough for the masker, with characters that could be escaped differently.
PASSWORD = "S3cret-Pa55word/with+chars"


def tokens_of(hook: MrsDeployHook) -> list[str]:
    pair = hook._tokens.pair  # the tokens this hook really used
    assert pair is not None and pair.access_token and pair.refresh_token
    return [pair.access_token, pair.refresh_token]


def test_no_secret_in_any_log_line(
    server_factory: Callable[..., ReferenceServer],
    set_default_conn: ConnSetter,
    task_context: Any,
    tmp_path: Path,
    all_logs: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = server_factory(
        "--access-token-ttl", "2", "--enable-fault-hooks", admin_password=PASSWORD
    )
    set_default_conn(server.port, PASSWORD)
    retry = {"status": 503, "count": 1, "retryAfter": 0, "method": "GET"}
    server.set_faults(httpErrors=[retry], rowDelaySeconds=0.6)
    secrets = [PASSWORD]

    submit = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name=MT[0],
        service_version=MT[1],
        records=CARS,
        parallel_count=1,  # four rows of 0.6 s: the waits below outlive the 2 s tokens
        deferrable=False,
    )
    batch_set = submit.execute(task_context)  # submit.output: the batch set
    secrets += tokens_of(submit.hook)
    forget_shared_tokens()  # each task runs in its own worker process, with its own login

    waiting = sensor(batch_set, poke_interval=0.3)
    waiting.execute(task_context)
    secrets += tokens_of(waiting.hook)
    forget_shared_tokens()

    trigger_hook = MrsDeployHook()
    trigger = batch_trigger(batch_set)
    monkeypatch.setattr(MrsDeployBatchTrigger, "_hook", lambda self: trigger_hook)
    payload = asyncio.run(first_event(trigger)).payload
    assert payload["status"] == "complete"
    secrets += tokens_of(trigger_hook)
    forget_shared_tokens()

    collect = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=batch_set,
        destination=str(tmp_path / "out"),
    )
    assert collect.execute(task_context)["rows"] == len(CARS)
    secrets += tokens_of(collect.hook)
    for hook in (submit.hook, waiting.hook, collect.hook):
        hook.close()

    logs = all_logs()
    assert "retrying in" in logs and "Started batch" in logs  # the capture did see the run
    assert len(set(secrets)) >= 6  # several distinct tokens were issued and used
    leaked = [secret for secret in set(secrets) if secret in logs]
    assert leaked == []
    server_output = "\n".join(server.output)
    assert [secret for secret in set(secrets) if secret in server_output] == []
