"""Queue budget work on Celery: checks after usage changed (usage.signals, so usage never
imports budgets) and sending of new deliveries (budgets.signals). Also adds the member's agent
status to an ingest answer that asks for it, and drops the cached status of members whose
usage changed."""

import logging

from django.conf import settings
from django.core.cache import cache
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import Membership
from budgets import signals, tasks
from budgets.api import agent_status, status_key
from telemetry_site.queueing import enqueue
from usage.signals import ingest_answer, usage_changed

log = logging.getLogger(__name__)


@receiver(usage_changed, dispatch_uid="budgets.evaluate_after_usage")
def evaluate_after_usage(
    sender,
    team_id: int,
    member_ids=None,
    project_ids=None,
    quotas: bool = True,
    **kwargs,
) -> None:
    """Check what the ingest changed, debounced per team (BUDGET_EVALUATION_DEBOUNCE_SECONDS).

    The first change in a window is checked at once, for its own scope (the changed members'
    and projects' budgets, the team's, and quotas if readings arrived). Changes that follow
    within the window are checked together by one evaluation queued for the window's end,
    whose scope is read from the batches processed since the window opened
    (budgets.evaluate.changes_since), so none is skipped. That evaluation clears its mark
    before reading, so a change seen while it is pending is always in what it reads. If the
    cache or the broker fails, the periodic pass (evaluate_all_teams) catches up; an alert is
    then late, never lost, and never sent twice (its dedupe key).
    """
    scope = (
        {"member_ids": list(member_ids), "project_ids": list(project_ids), "quotas": quotas}
        if member_ids is not None and project_ids is not None
        else {}
    )
    window = settings.BUDGET_EVALUATION_DEBOUNCE_SECONDS
    if window <= 0:
        enqueue(tasks.evaluate_team, team_id, kwargs=scope)
        return
    opened = timezone.now().isoformat()
    try:
        first = cache.add(tasks.window_key(team_id), opened, window)
        if not first:
            opened = cache.get(tasks.window_key(team_id)) or opened
            pending = not cache.add(tasks.pending_key(team_id), opened, window * 2)
    except Exception:
        log.warning("budget debounce unavailable; checking at once", extra={"team": team_id})
        enqueue(tasks.evaluate_team, team_id, kwargs=scope)
        return
    if first:
        enqueue(tasks.evaluate_team, team_id, kwargs=scope)
    elif not pending:
        enqueue(tasks.evaluate_team, team_id, kwargs={"since": opened}, countdown=window)


@receiver(usage_changed, dispatch_uid="budgets.forget_agent_status")
def forget_agent_status(sender, team_id: int, member_ids=None, **kwargs) -> None:
    """Drop the cached agent status of the members whose usage changed (all the team's when
    not said): it holds the running block and spend from before the derived work that sent
    this, and the next GET /api/v1/agent/status/ computes it again."""
    if member_ids is None:
        member_ids = Membership.objects.filter(team_id=team_id).values_list("user_id", flat=True)
    try:
        cache.delete_many([status_key(member_id) for member_id in member_ids])
    except Exception:  # the status then ages out of the cache on its own
        log.warning("agent status cache unavailable", extra={"team": team_id})


@receiver(signals.deliveries_ready, dispatch_uid="budgets.send_deliveries")
def send_deliveries(sender, delivery_ids, **kwargs) -> None:
    for delivery_id in delivery_ids:
        enqueue(tasks.send_delivery, delivery_id)


@receiver(ingest_answer, dispatch_uid="budgets.agent_status_in_ingest_answer")
def agent_status_in_answer(sender, user, include, **kwargs) -> dict:
    """`agent_status` for `?include=agent_status`: what GET /api/v1/agent/status/ would
    answer right after this report, so a sync needs no second request for it."""
    if "agent_status" not in include:
        return {}
    return {"agent_status": agent_status(user, fresh=True)}
