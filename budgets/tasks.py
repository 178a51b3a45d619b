"""Celery entry points for budgets and alerts: thin wrappers, each safe to run twice."""

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from budgets import evaluate, notify
from telemetry_site.queueing import enqueue

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def evaluate_team(
    team_id: int,
    member_ids: list[int] | None = None,
    project_ids: list[int] | None = None,
    quotas: bool = True,
    since: str | None = None,
) -> int:
    """Alert checks of one team after ingest (budgets.receivers debounces them).

    With `member_ids` and `project_ids`: the budgets and quotas those changes can move. With
    `since` (ISO time): the same for every batch processed since then, after clearing the
    team's pending mark. With neither: every check of the team.
    """
    scope = None
    started = timezone.now()
    if since is not None:
        start = datetime.fromisoformat(since)
        # Cleared before reading: a change seen while this was pending is in what it reads,
        # and one seen after this point queues an evaluation of its own.
        cache.delete(pending_key(team_id))
        checked = cache.get(checked_key(team_id))
        if checked is not None and datetime.fromisoformat(checked) > start:
            # An earlier evaluation of this window read everything announced before it
            # started: read only what came after (a burst is not re-checked at every sync).
            start = datetime.fromisoformat(checked)
        scope = evaluate.changes_since(team_id, start)
    elif member_ids is not None and project_ids is not None:
        scope = evaluate.Scope(frozenset(member_ids), frozenset(project_ids), quotas)
    fired = len(evaluate.evaluate_team(team_id, scope=scope))
    if since is not None:
        _remember_checked(team_id, started)
    return fired


def _remember_checked(team_id: int, started: datetime) -> None:
    """Note that every change announced before `started` is checked (for the debounce window
    and one more: later windows pass a later `since` anyway)."""
    window = max(1, settings.BUDGET_EVALUATION_DEBOUNCE_SECONDS)
    try:
        cache.set(checked_key(team_id), started.isoformat(), window * 2)
    except Exception:  # a later evaluation reads from its window's start instead
        log.warning("could not note a budget check", extra={"team": team_id})


def window_key(team_id: int) -> str:
    """Cache key: set while a team's debounce window is open (its value: when it opened)."""
    return f"budgets:evaluation-window:{team_id}"


def pending_key(team_id: int) -> str:
    """Cache key: set while an evaluation at the end of a team's window is queued."""
    return f"budgets:evaluation-pending:{team_id}"


def checked_key(team_id: int) -> str:
    """Cache key: when the team's last evaluation at a window's end started (ISO time); what
    was announced before then is checked."""
    return f"budgets:evaluation-checked:{team_id}"


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


# Registers the reports' beat task with the worker (Celery autodiscovers only `tasks` modules).
from budgets.reports.tasks import send_due_reports  # noqa: E402, F401
