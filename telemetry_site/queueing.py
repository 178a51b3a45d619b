"""Handing work to Celery without ever failing the request that asked for it.

A broker that is down (or an eager task that raises) is logged and swallowed. The queued jobs
that keep data have a beat sweep that finds the rows left waiting and does the work later
(derived work: usage.tasks.sweep_derived_work; deliveries: budgets.tasks.sweep_deliveries;
blocks: usage.tasks.refresh_blocks; budget checks: budgets.tasks.evaluate_all_teams; big
reports: usage.tasks.sweep_ingest_backlog; login emails, written to an outbox first:
accounts.tasks.sweep_login_mail).
"""

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def enqueue(
    task,
    *args,
    countdown: int | None = None,
    kwargs: dict | None = None,
    secret_args: bool = False,
    then: str = "its periodic sweep will catch up",
) -> bool:
    """Send `task(*args, **kwargs)` to the broker now (to run after `countdown` seconds, if
    given); False (and a warning) when it could not be sent.

    `secret_args=True` keeps the arguments out of that warning (login emails carry a secret);
    `then` says in the warning what happens to the work instead.
    """
    try:
        if countdown is None and not kwargs:
            task.delay(*args)
        else:
            task.apply_async(args, kwargs or {}, countdown=countdown)
    except Exception as exc:  # broker down, or an eager task failing: the sweep catches up
        log.warning(
            "could not queue %s; %s",
            task.name,
            then,
            extra={
                "task": task.name,
                "task_args": "[secret]" if secret_args else list(args),
                "error": f"{type(exc).__name__}: {exc}",
            },
        )
        return False
    return True


def enqueue_on_commit(task, *args) -> None:
    """Send `task(*args)` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: enqueue(task, *args))
