"""What a member's Claude Code hooks and status line act on: each limit's level for that member.

`member_status(user)` is the body of GET /api/v1/agent/status/ (docs/agent.md): the budgets and
quota windows set to warn or stop, each at ok / warn / stop for this member now, the running
5-hour block across the member's machines and the weekly quota. Computing it records each new
warning or stop as an EnforcementEvent (once per subject, period, level and threshold);
`record_refusals` stores each prompt the member's hook refused (POST /api/v1/agent/refusals/).

A project budget applies only to prompts in that project: its check carries the project's
keys (ccusage's encoded working folder, or the agent's salted hash of it) and the hook
compares them with the session's own (docs/agent.md, "Project budgets").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from accounts.access import team_of
from accounts.models import Membership, Role
from budgets.models import (
    Budget,
    Enforcement,
    EnforcementEvent,
    EnforcementExemption,
    QuotaEnforcement,
    QuotaWindow,
    ScopeKind,
)
from budgets.status import status_of
from telemetry_site.formatting import CENT, decimal_string
from usage.models import Block, DailyUsage, Project, RateLimitSnapshot

OK, WARN, STOP = "ok", "warn", "stop"
_RANK = {OK: 0, WARN: 1, STOP: 2}


@dataclass(frozen=True)
class Check:
    """One limit for one member: `percent` of the cap used, and what Claude Code should do."""

    subject: str  # budget:<uuid> or quota:<window>
    kind: str  # budget or quota
    name: str
    level: str  # ok, warn or stop (a lifted stop is warn with exempt_until set)
    threshold: int | None  # the percent crossed, None when ok
    percent: float
    spent_usd: Decimal | None
    cap_usd: Decimal | None
    resets_at: datetime | None
    period_key: str
    exempt: bool = False
    exempt_until: datetime | None = None
    # Project budgets only: {"id", "name", "keys"}; the check applies in those folders only.
    project: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "kind": self.kind,
            "name": self.name,
            "level": self.level,
            "threshold": self.threshold,
            "percent": self.percent,
            "spent_usd": decimal_string(self.spent_usd) if self.spent_usd is not None else None,
            "cap_usd": decimal_string(self.cap_usd) if self.cap_usd is not None else None,
            "resets_at": _iso(self.resets_at),
            "exempt": self.exempt,
            "exempt_until": _iso(self.exempt_until),
            "project": self.project,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _exemption(exemptions: list[EnforcementExemption], budget: Budget | None):
    """The exemption covering this limit (its own or one for all limits), longest first."""
    matching = [
        e for e in exemptions if e.budget_id is None or (budget and e.budget_id == budget.pk)
    ]
    if not matching:
        return None
    return max(matching, key=lambda e: e.until or datetime.max.replace(tzinfo=UTC))


def _lift(level: str, exemption) -> tuple[str, bool, datetime | None]:
    if level == STOP and exemption is not None:
        return WARN, True, exemption.until
    return level, False, None


def project_keys(project: Project) -> list[str]:
    """The keys agents report a project under: its own and its aliases' (sorted; the empty
    key of usage without a project is never one)."""
    keys = {project.key, *Project.objects.filter(alias_of=project).values_list("key", flat=True)}
    keys.discard("")
    return sorted(keys)


def budget_checks(user, team, now: datetime, exemptions) -> list[Check]:
    """The team, project and own member budgets set to warn or stop, at their level for `user`.

    A project budget's check names the project and its keys: the hook applies it only to
    sessions in that project (the server does not know which project a prompt is for)."""
    budgets = (
        Budget.objects.filter(team=team, active=True)
        .exclude(enforcement=Enforcement.NOTIFY)
        .filter(
            Q(scope=ScopeKind.TEAM)
            | Q(scope=ScopeKind.PROJECT)
            | Q(scope=ScopeKind.MEMBER, member=user)
        )
        .select_related("team", "project", "member")
    )
    checks = []
    for budget in budgets:
        status = status_of(budget, now, with_forecast=False)
        # Exact money, not the rounded percent: $79.99 of $100 has not crossed 80%.
        crossed = [t for t in budget.sorted_thresholds if status.spent * 100 >= status.amount * t]
        level = WARN if crossed else OK
        threshold = max(crossed) if crossed else None
        if budget.enforcement == Enforcement.STOP and status.spent >= status.amount:
            level, threshold = STOP, 100
        level, exempt, until = _lift(level, _exemption(exemptions, budget))
        project = None
        if budget.scope == ScopeKind.PROJECT and budget.project is not None:
            project = {
                "id": str(budget.project.public_id),
                "name": budget.project.display_name,
                "keys": project_keys(budget.project),
            }
        checks.append(
            Check(
                subject=f"budget:{budget.public_id}",
                kind="budget",
                name=f"{budget.name} ({budget.scope_label.lower()}, {budget.period}ly)",
                level=level,
                threshold=threshold,
                percent=status.percent,
                spent_usd=status.spent,
                cap_usd=status.amount,
                resets_at=team.day_start(status.period_end + timedelta(days=1)),
                period_key=status.period_start.isoformat(),
                exempt=exempt,
                exempt_until=until,
                project=project,
            )
        )
    return checks


def latest_quota(user, now: datetime) -> dict[str, tuple[float, datetime]]:
    """The member's highest current use of each official quota window over their
    subscriptions: {window: (percent used, resets at)}; windows already reset are left out."""
    found: dict[str, tuple[float, datetime]] = {}
    snapshots = RateLimitSnapshot.objects.filter(
        subscription__owner=user, captured_at__gte=now - timedelta(days=7)
    ).order_by("subscription_id", "-captured_at")
    seen: set[int] = set()
    for snap in snapshots:
        if snap.subscription_id in seen:
            continue
        seen.add(snap.subscription_id)
        for window in QuotaWindow.values:
            pct = getattr(snap, f"{window}_used_pct")
            resets = getattr(snap, f"{window}_resets_at")
            if pct is None or resets is None or resets <= now:
                continue
            if window not in found or float(pct) > found[window][0]:
                found[window] = (float(pct), resets)
    return found


def quota_checks(team, quota, now: datetime, exemptions) -> list[Check]:
    rules = QuotaEnforcement.objects.filter(team=team).first()
    if rules is None:
        return []
    checks = []
    for window in QuotaWindow:
        warn_at, stop_at = rules.levels(window.value)
        if (warn_at is None and stop_at is None) or window.value not in quota:
            continue
        percent, resets = quota[window.value]
        level, threshold = OK, None
        if warn_at is not None and percent >= warn_at:
            level, threshold = WARN, warn_at
        if stop_at is not None and percent >= stop_at:
            level, threshold = STOP, stop_at
        level, exempt, until = _lift(level, _exemption(exemptions, None))
        checks.append(
            Check(
                subject=f"quota:{window.value}",
                kind="quota",
                name=window.label,
                level=level,
                threshold=threshold,
                percent=round(percent, 1),
                spent_usd=None,
                cap_usd=None,
                resets_at=resets,
                period_key=_iso(resets) or "",
                exempt=exempt,
                exempt_until=until,
            )
        )
    return checks


def running_block(user, now: datetime) -> dict[str, Any] | None:
    """The member's running 5-hour block across all their machines (the costliest when two
    subscriptions run at once): minutes left, cost, tokens and the cost burn rate per hour."""
    blocks = [
        b
        for b in Block.objects.filter(subscription__owner=user, end_time__gt=now)
        if b.is_active_at(now)
    ]
    if not blocks:
        return None
    block = max(blocks, key=lambda b: b.cost_usd)
    began = block.first_activity or block.start_time
    minutes = max((block.last_activity - began).total_seconds() / 60, 1.0)
    per_hour = (block.cost_usd * 60 / Decimal(str(minutes))).quantize(CENT)
    return {
        "start_time": _iso(block.start_time),
        "end_time": _iso(block.end_time),
        "minutes_left": int((block.end_time - now).total_seconds() // 60),
        "cost_usd": decimal_string(block.cost_usd.quantize(CENT)),
        "total_tokens": block.total_tokens,
        "burn_rate_usd_per_hour": decimal_string(per_hour),
        "machine_count": block.machine_count,
    }


def _works_in(user, check: Check, now: datetime) -> bool:
    """Whether `user` spent in the check's project this period: a project budget's warning or
    stop concerns only the members working there, so only theirs are recorded."""
    budget = Budget.objects.select_related("team").get(public_id=check.subject.split(":", 1)[1])
    start, end = budget.current_period(now)
    return (
        DailyUsage.objects.filter(budget.usage_filter(), machine__owner=user)
        .filter(day__gte=start, day__lte=end)
        .exists()
    )


def _record(user, team, checks: list[Check], now: datetime) -> None:
    events = [
        EnforcementEvent(
            team=team,
            member=user,
            kind=EnforcementEvent.Kind.STOP if c.level == STOP else EnforcementEvent.Kind.WARN,
            subject=c.subject,
            label=c.name,
            period_key=c.period_key,
            threshold=c.threshold or 0,
            data=c.as_json(),
            exempt=c.exempt,
            created_at=now,
        )
        for c in checks
        if c.level != OK and (c.project is None or _works_in(user, c, now))
    ]
    # The unique constraint keeps one row per crossing, whichever request computes it first.
    EnforcementEvent.objects.bulk_create(events, ignore_conflicts=True)


def contacts(team) -> list[str]:
    """Who can raise a limit or lift a stop: the team's owners and admins (emails, sorted)."""
    return sorted(
        Membership.objects.filter(team=team, role__in=[Role.OWNER, Role.ADMIN]).values_list(
            "user__email", flat=True
        )
    )


def member_status(user, now: datetime | None = None) -> dict[str, Any]:
    """The agent status of `user` (shape in docs/agent.md); records new warnings and stops.

    `decision` is the worst level over the checks that hold in every project (project budgets
    are left out: they hold in their project only); a user outside any team gets no checks.
    """
    now = now or timezone.now()
    team = team_of(user)
    quota = latest_quota(user, now)
    checks: list[Check] = []
    if team is not None:
        exemptions = list(
            EnforcementExemption.objects.filter(team=team)
            .filter(Q(member=user) | Q(member__isnull=True))
            .filter(Q(until__isnull=True) | Q(until__gt=now))
        )
        checks = budget_checks(user, team, now, exemptions) + quota_checks(
            team, quota, now, exemptions
        )
        _record(user, team, checks, now)
    # A project's stop holds in that project only, so it does not set the overall decision.
    everywhere = [c for c in checks if c.project is None]
    decision = max((c.level for c in everywhere), key=_RANK.__getitem__, default=OK)
    weekly = quota.get(QuotaWindow.SEVEN_DAY)
    five_hour = quota.get(QuotaWindow.FIVE_HOUR)
    personal = [c for c in everywhere if c.kind == "budget"]
    return {
        "generated_at": _iso(now),
        "member": user.email,
        "decision": decision,
        "contacts": contacts(team) if team is not None else [],
        "checks": [c.as_json() for c in checks],
        "block": running_block(user, now),
        "budget_percent": max((c.percent for c in personal), default=None),
        "weekly": {"used_percentage": weekly[0], "resets_at": _iso(weekly[1])} if weekly else None,
        "five_hour": (
            {"used_percentage": five_hour[0], "resets_at": _iso(five_hour[1])}
            if five_hour
            else None
        ),
    }


def recent_events(user, team, *, whole_team: bool, limit: int = 20):
    """The latest warnings and stops of `team` in Claude Code, newest first: every member's
    when `whole_team` (admins, or members of a team that shares figures), else `user`'s own."""
    events = EnforcementEvent.objects.filter(team=team).select_related("member")
    if not whole_team:
        events = events.filter(member=user)
    return events[:limit]


def _refusal_label(team, subject: str, shown: str) -> str | None:
    """The limit's name as the status gives it, from the server's own records; `shown` (what
    the agent displayed) for a budget removed since. None for a subject of no known shape."""
    kind, _, key = subject.partition(":")
    if kind == "quota":
        return QuotaWindow(key).label if key in QuotaWindow.values else None
    if kind != "budget":
        return None
    try:
        budget = Budget.objects.select_related("project", "member").get(team=team, public_id=key)
    except (Budget.DoesNotExist, ValueError, ValidationError):
        return f"{shown[:180]} (removed)" if shown else None
    return f"{budget.name} ({budget.scope_label.lower()}, {budget.period}ly)"


def record_refusals(user, refusals: list[dict[str, Any]]) -> tuple[int, int]:
    """Store each prompt `user`'s hook refused as an EnforcementEvent of kind `refused`.

    `refusals`: validated items (budgets.api.RefusalSerializer): `id` (UUID, the agent's key),
    `at` (aware datetime), `subject`, `threshold` (percent), `name` and the figures shown
    (`percent`, `spent_usd`, `cap_usd` in USD, `session_id`). Returns (recorded, already
    recorded): an id seen before counts once however often it is sent. Raises ValueError
    (nothing stored) when `user` is in no team or a subject is of no known shape.
    """
    team = team_of(user)
    if team is None:
        raise ValueError("You are not in a team, so there are no limits to report on.")
    events = []
    seen: set = set()
    for item in refusals:
        if item["id"] in seen:
            continue
        seen.add(item["id"])
        label = _refusal_label(team, item["subject"], item.get("name") or "")
        if label is None:
            raise ValueError(f"Unknown subject {item['subject']!r}.")
        figures = {
            "percent": item.get("percent"),
            "spent_usd": item.get("spent_usd"),
            "cap_usd": item.get("cap_usd"),
            "session_id": item.get("session_id") or "",
        }
        events.append(
            EnforcementEvent(
                team=team,
                member=user,
                kind=EnforcementEvent.Kind.REFUSED,
                subject=item["subject"],
                label=label,
                period_key=_iso(item["at"]) or "",
                threshold=item["threshold"],
                data={k: v for k, v in figures.items() if v not in (None, "")},
                client_id=item["id"],
                created_at=item["at"],
            )
        )
    ids = [e.client_id for e in events]
    known = set(
        EnforcementEvent.objects.filter(
            member=user, kind=EnforcementEvent.Kind.REFUSED, client_id__in=ids
        ).values_list("client_id", flat=True)
    )
    fresh = [e for e in events if e.client_id not in known]
    # The partial unique index keeps a refusal sent twice at once to one row.
    EnforcementEvent.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh), len(events) - len(fresh)
