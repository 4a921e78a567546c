"""The state of the task a trigger waits for, asked from inside the triggerer.

Airflow calls a trigger's ``on_kill`` when a user acts on the deferred task (marks it failed or
successful, clears it), and also, on Airflow 3.3, when the trigger is taken away from a
triggerer whose heartbeat went stale while it kept running: another triggerer already waits
for the same task, and cancelling would delete the batches it polls (a cancel deletes a batch
on this API). The task's state tells the two apart: a task a user acted on is no longer
deferred.
"""

from __future__ import annotations

import asyncio
from typing import Any

#: How long the question may take: ``on_kill`` has Airflow's ``[triggerer] on_kill_timeout``
#: (30 s by default) for the question and the cancels together.
ASK_SECONDS = 5.0

#: What :func:`task_state` answers when the triggerer could not be asked.
UNKNOWN = "unknown"


async def task_state(task_instance: Any) -> str | None:
    """The state the metadata database holds for ``task_instance`` (a trigger's
    ``task_instance``): ``"deferred"``, ``"success"``, ``"failed"``..., None for a cleared task,
    or :data:`UNKNOWN` when it cannot be asked (a trigger run outside a triggerer, an Airflow
    whose triggerer does not answer this question, no answer in :data:`ASK_SECONDS`)."""
    if task_instance is None:
        return UNKNOWN
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import GetTaskStates

        comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
        ask = getattr(comms, "asend", None)
        if ask is None:
            return UNKNOWN
        map_index = int(task_instance.map_index)
        question = GetTaskStates(
            dag_id=task_instance.dag_id,
            task_ids=[task_instance.task_id],
            run_ids=[task_instance.run_id],
            map_index=map_index,
        )
        answer = await asyncio.wait_for(ask(question), timeout=ASK_SECONDS)
        by_task = answer.task_states[task_instance.run_id]
        key = task_instance.task_id if map_index < 0 else f"{task_instance.task_id}_{map_index}"
        state = by_task[key]
    except Exception:  # any failure to ask leaves the decision to the caller
        return UNKNOWN
    return None if state is None else str(getattr(state, "value", state))
