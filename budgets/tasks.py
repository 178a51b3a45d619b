"""Celery entry points for budgets and alerts: thin wrappers, each safe to run twice."""

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def evaluate_team(team_id: int) -> int:
    """Budgets, quotas and stale agents of one team (queued after each ingest)."""
    from budgets.evaluate import evaluate_team as run

    return len(run(team_id))


@shared_task
def evaluate_all_teams() -> int:
    """The periodic pass: a new period or a silent machine needs no ingest to be noticed."""
    from budgets.evaluate import evaluate_all_teams as run

    return run()


@shared_task(acks_late=True)
def send_delivery(delivery_id: int) -> str | None:
    """One attempt at one delivery; a failed attempt schedules the next one itself."""
    from budgets import notify

    outcome = notify.deliver(delivery_id)
    if outcome is None:
        return None
    if outcome.retry_in is not None:
        try:
            # A countdown, not self.retry(): the attempt count lives in the database row, and
            # the countdown is capped below the broker's visibility timeout (notify.backoff).
            send_delivery.apply_async((delivery_id,), countdown=outcome.retry_in)
        except Exception:
            log.warning(
                "could not schedule a retry; the sweep will",
                extra={"delivery": delivery_id},
                exc_info=True,
            )
    return outcome.status


@shared_task
def sweep_deliveries() -> dict:
    """Resend what a lost message or a killed worker left behind."""
    from budgets import notify

    return notify.sweep()
