"""Checks a team's budgets, quotas and agents and fires each alert exactly once.

Safe to run any number of times, from any number of workers at once: an alert is an `Alert` row
whose unique constraint is the dedupe key, created together with its deliveries in one
transaction; a second evaluation finds the key taken and sends nothing.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Team
from budgets import notify
from budgets.models import (
    DEFAULT_QUOTA_THRESHOLD,
    DEFAULT_STALE_AGENT_HOURS,
    Alert,
    AlertKind,
    Budget,
    Channel,
    Delivery,
    ScopeKind,
    StaleAgentSetting,
)
from budgets.status import BudgetStatus, status_of, statuses
from usage.analytics.ratelimits import latest_quotas
from usage.models import (
    BatchStatus,
    DailyUsage,
    IngestBatch,
    Machine,
    Project,
    Subscription,
)

log = logging.getLogger(__name__)

# How far back (by receipt) changes_since looks for batches processed since a moment.
INGEST_SCOPE_LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True)
class Scope:
    """What some ingests changed, so an evaluation after them checks only what they can have
    moved: the team's budgets, the budgets of these members (user ids) and projects (project
    ids; a group's budget counts its grouped projects), and quotas if readings arrived. Stale
    agents are never made by an ingest: the periodic pass checks them."""

    member_ids: frozenset[int] = frozenset()
    project_ids: frozenset[int] = frozenset()
    quotas: bool = False

    def __or__(self, other: "Scope") -> "Scope":
        return Scope(
            self.member_ids | other.member_ids,
            self.project_ids | other.project_ids,
            self.quotas or other.quotas,
        )


def changes_since(team_id: int, since: datetime) -> Scope:
    """The scope of the team's batches derived (or processed) at or after `since` (UTC), or
    still waiting for their derived work.

    A batch announces its changes (usage_changed) before its derived_at is set, so one heard
    after `since` is always among these. Reads the batch index (status, received_at) over the
    last INGEST_SCOPE_LOOKBACK of receipts; a batch received earlier and derived only now is
    left to the periodic pass. The team's machines are picked out of those batches after, by
    primary key: joined in the same query, a plan made without fresh statistics walks the
    batch index once per machine of the team.
    """
    batches = list(
        IngestBatch.objects.filter(
            Q(derived_at__isnull=True) | Q(derived_at__gte=since) | Q(processed_at__gte=since),
            status=BatchStatus.PROCESSED,
            received_at__gte=since - INGEST_SCOPE_LOOKBACK,
            machine__isnull=False,
        ).values_list("pk", "machine_id", "counts")
    )
    owners = dict(
        Machine.objects.filter(
            pk__in={machine_id for _, machine_id, _ in batches}, team_id=team_id
        ).values_list("pk", "owner_id")
    )
    scope = Scope()
    ids = []
    for batch_id, machine_id, counts in batches:
        if machine_id not in owners:
            continue  # another team's batch
        owner_id = owners[machine_id]
        ids.append(batch_id)
        statusline = (counts or {}).get("statusline") or {}
        scope |= Scope(
            member_ids=frozenset({owner_id}),
            quotas=bool(statusline.get("created") or statusline.get("updated")),
        )
    if ids:
        projects = DailyUsage.objects.filter(batch_id__in=ids).values_list("project_id", flat=True)
        scope |= Scope(project_ids=frozenset(projects.distinct()))
    return scope


def evaluate_team(
    team_id: int, now: datetime | None = None, *, scope: Scope | None = None
) -> list[Alert]:
    """The checks of one team; returns the alerts this run fired (usually none).

    Without `scope`, every check (the periodic pass, and whoever asks by hand); with it, only
    the budgets and quotas the scope can have moved (usage.signals.usage_changed after ingest).
    """
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        log.info("team to evaluate no longer exists", extra={"team": team_id})
        return []
    now = now or timezone.now()
    fired: list[Alert] = []
    budgets = (
        Budget.objects.filter(team=team, active=True)
        .select_related("team", "project", "member")
        .prefetch_related("channels")
    )
    if scope is not None:
        budgets = budgets.filter(_budgets_in(scope))
    # (name, check, what it checks): a budget's status, a budget whose figures could not be
    # read together with the others', or the team for the per-subscription checks.
    checks: list[tuple[str, Callable[[Any, datetime], list[Alert]], Any]] = [
        (f"budget {status.budget.pk}", evaluate_status, status)
        for status in _statuses(list(budgets), now)
    ]
    if scope is None or scope.quotas:
        checks.append(("quotas", evaluate_quotas, team))
    if scope is None:
        checks.append(("stale agents", evaluate_stale_agents, team))
    for name, check, subject in checks:
        try:
            fired += check(subject, now)
        except Exception:
            # One broken check must not silence the others; the next run tries it again.
            log.exception("alert check failed", extra={"team": team.pk, "check": name})
    if fired:
        log.info("alerts fired", extra={"team": team.pk, "count": len(fired)})
    return fired


def _budgets_in(scope: Scope) -> Q:
    """Budgets whose figures facts of the scope's members and projects feed."""
    projects = set(scope.project_ids)
    # A budget on a group counts the projects grouped under it (budgets.status).
    projects |= set(
        Project.objects.filter(pk__in=scope.project_ids, alias_of__isnull=False).values_list(
            "alias_of_id", flat=True
        )
    )
    return (
        Q(scope=ScopeKind.TEAM)
        | Q(scope=ScopeKind.MEMBER, member_id__in=scope.member_ids)
        | Q(scope=ScopeKind.PROJECT, project_id__in=projects)
    )


def _fire(
    team: Team,
    kind: str,
    key: dict,
    data: dict,
    *,
    channels: Iterable[Channel] = (),
    recipients: Iterable = (),
) -> Alert | None:
    """Create the alert and its deliveries unless its key exists; queue sending after commit."""
    with transaction.atomic():
        # get_or_create retries the read after an IntegrityError, so a concurrent evaluation
        # that inserted the same key first makes this one a no-op instead of an error.
        alert, created = Alert.objects.get_or_create(
            kind=kind, **key, defaults={"team": team, "data": data}
        )
        if not created:
            return None
        rows = [Delivery(alert=alert, channel=c) for c in channels if c.is_enabled]
        rows += [Delivery(alert=alert, recipient=u) for u in recipients if u.is_active]
        Delivery.objects.bulk_create(rows)
        ids = list(Delivery.objects.filter(alert=alert).values_list("pk", flat=True))
        notify.queue_on_commit(ids)
    log.info("alert fired", extra={"alert": alert.pk, "kind": kind, "deliveries": len(ids)})
    return alert


def _budget_data(status: BudgetStatus) -> dict:
    budget = status.budget
    return {
        "budget": budget.name,
        "budget_id": str(budget.public_id),
        "scope": budget.scope_label,
        "period": budget.period,
        "period_start": status.period_start.isoformat(),
        "period_end": status.period_end.isoformat(),
        "spent_usd": str(status.spent),
        "amount_usd": str(status.amount),
        "percent": status.percent,
    }


def _statuses(budgets: list[Budget], now: datetime) -> list[BudgetStatus]:
    """Every budget's spend and forecast, read together (budgets.status.statuses: a fixed
    number of queries however many budgets a burst of syncs moved); one by one if that
    fails, so one broken budget cannot silence the others."""
    try:
        return statuses(budgets, now)
    except Exception:
        log.exception("reading budgets together failed; reading them one by one")
    out = []
    for budget in budgets:
        try:
            out.append(status_of(budget, now))
        except Exception:
            log.exception("alert check failed", extra={"budget": budget.pk})
    return out


def evaluate_budget(budget: Budget, now: datetime) -> list[Alert]:
    """The threshold and forecast alerts of one budget (reads its status on its own)."""
    return evaluate_status(status_of(budget, now), now)


def evaluate_status(status: BudgetStatus, now: datetime) -> list[Alert]:
    """The threshold alerts `status` has crossed (the highest is sent, the lower recorded)
    and its forecast alert, each once per period."""
    budget = status.budget
    crossed = [t for t in budget.sorted_thresholds if status.spent * 100 >= budget.amount_usd * t]
    fired: list[Alert] = []
    channels = list(budget.channels.all())
    # People hear about the highest threshold crossed only (one sync may jump past several);
    # the lower ones are still recorded, so they never fire later in this period.
    covered_by = None
    for threshold in sorted(crossed, reverse=True):
        data = {**_budget_data(status), "threshold": threshold}
        if covered_by is not None:
            data["superseded_by"] = covered_by
        alert = _fire(
            budget.team,
            AlertKind.THRESHOLD,
            {"budget": budget, "period_start": status.period_start, "threshold": threshold},
            data,
            channels=channels if covered_by is None else (),
        )
        if alert is not None:
            fired.append(alert)
        if covered_by is None:
            covered_by = threshold
    if budget.forecast_alerts and status.spent < status.amount:
        fired += _evaluate_forecast(status, channels)
    return fired


def _evaluate_forecast(status: BudgetStatus, channels: list[Channel]) -> list[Alert]:
    budget = status.budget
    # The status's forecast: the pace's run-out day within the period (budgets.status).
    projected, run_out = status.projected, status.projected_day
    if run_out is None:
        return []
    data = {
        **_budget_data(status),
        "projected_day": run_out.isoformat(),
        "projected_usd": None if projected is None else str(projected),
    }
    alert = _fire(
        budget.team,
        AlertKind.FORECAST,
        {"budget": budget, "period_start": status.period_start},
        data,
        channels=channels,
    )
    return [alert] if alert else []


def evaluate_quotas(team: Team, now: datetime) -> list[Alert]:
    """Official quota windows past each subscription owner's chosen threshold, once per window."""
    fired: list[Alert] = []
    subscriptions = [
        s
        for s in Subscription.objects.filter(
            owner__membership__team=team, owner__is_active=True
        ).select_related("owner", "quota_alert_setting")
        if getattr(s, "quota_alert_setting", None) is None or s.quota_alert_setting.enabled
    ]
    for subscription_id, quota in latest_quotas(subscriptions, now).items():
        subscription = quota.subscription
        setting = getattr(subscription, "quota_alert_setting", None)
        threshold = setting.threshold if setting else DEFAULT_QUOTA_THRESHOLD
        for reading in quota.readings:
            # A stale reading describes a window that has already reset.
            if reading.stale or reading.resets_at is None or reading.used_pct < threshold:
                continue
            # Readings of one window from several machines may differ by seconds; the minute
            # is the window's identity in the dedupe key.
            resets_at = reading.resets_at.replace(second=0, microsecond=0)
            data = {
                "subscription": subscription.label,
                "owner": subscription.owner.email,
                "window": reading.window,
                "used_percent": reading.used_pct,
                "resets_at": resets_at.isoformat(),
                "threshold": threshold,
                "machine": reading.machine_name,
            }
            alert = _fire(
                team,
                AlertKind.QUOTA,
                {
                    "subscription_id": subscription_id,
                    "window": reading.window,
                    "window_resets_at": resets_at,
                },
                data,
                recipients=[subscription.owner],
            )
            if alert is not None:
                fired.append(alert)
    return fired


def evaluate_stale_agents(team: Team, now: datetime) -> list[Alert]:
    """Machines silent for longer than their owner's setting; once per silence."""
    fired: list[Alert] = []
    settings_by_user = {
        s.user_id: s for s in StaleAgentSetting.objects.filter(user__membership__team=team)
    }
    machines = Machine.objects.filter(
        team=team, retired_at__isnull=True, last_seen_at__isnull=False, owner__is_active=True
    ).select_related("owner")
    for machine in machines:
        setting = settings_by_user.get(machine.owner_id)
        if setting is not None and not setting.enabled:
            continue
        hours = setting.hours if setting else DEFAULT_STALE_AGENT_HOURS
        silent = now - machine.last_seen_at
        if silent < timedelta(hours=hours):
            continue
        data = {
            "machine": machine.name,
            "owner": machine.owner.email,
            "last_seen_at": machine.last_seen_at.isoformat(),
            "hours": hours,
            "silent_hours": int(silent.total_seconds() // 3600),
        }
        # The last sync time is part of the key: a machine that syncs and goes quiet again
        # alerts again, but one silence alerts once.
        alert = _fire(
            team,
            AlertKind.STALE_AGENT,
            {"machine": machine, "machine_last_seen_at": machine.last_seen_at},
            data,
            recipients=[machine.owner],
        )
        if alert is not None:
            fired.append(alert)
    return fired


def evaluate_all_teams(now: datetime | None = None) -> int:
    """The beat's periodic pass: periods roll over and agents go quiet without any ingest."""
    count = 0
    for team_id in Team.objects.values_list("pk", flat=True):
        try:
            count += len(evaluate_team(team_id, now))
        except Exception:
            # One team's broken data must not stop the others' alerts.
            log.exception("evaluating a team failed", extra={"team": team_id})
    return count
