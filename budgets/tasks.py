"""Celery entry points for budgets and alerts: thin wrappers, each safe to run twice."""

import logging

from celery import shared_task

from budgets import evaluate, notify
from telemetry_site.queueing import enqueue

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def evaluate_team(team_id: int) -> int:
    """Budgets, quotas and stale agents of one team (queued after each ingest)."""
    return len(evaluate.evaluate_team(team_id))


@shared_task
def evaluate_all_teams() -> int:
    """The periodic pass: a new period or a silent machine needs no ingest to be noticed."""
    return evaluate.evaluate_all_teams()


@shared_task(acks_late=True)
def send_delivery(delivery_id: int) -> str | None:
    """One attempt at one delivery; a failed attempt schedules the next one itself."""
    outcome = notify.deliver(delivery_id)
    if outcome is None:
        return None
    if outcome.retry_in is not None:
        # A countdown, not self.retry(): the attempt count lives in the database row, and
        # the countdown is capped below the broker's visibility timeout (notify.backoff).
        # Not sent (broker down): the sweep finds the pending row.
        enqueue(send_delivery, delivery_id, countdown=outcome.retry_in)
    return outcome.status


@shared_task(acks_late=True)
def send_test_delivery(delivery_id: int) -> str | None:
    """The channels page's "Send test", off the request: one attempt, no retries."""
    outcome = notify.deliver(delivery_id, single_attempt=True)
    return outcome.status if outcome is not None else None


@shared_task
def sweep_deliveries() -> dict:
    """Resend what a lost message or a killed worker left behind."""
    return notify.sweep()
