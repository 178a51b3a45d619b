"""The numbers of a report, as JSON-ready dicts (USD as decimal strings, days as ISO dates).

Periods are team days (Team.today, accounts.models): a week is Monday to Sunday, a month is
the calendar month, both inclusive. Costs are DailyUsage.cost_usd summed over the team's
machines, as on every other page.
"""

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from statistics import median

from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import Coalesce

from accounts.models import Team, User
from budgets.models import Budget
from budgets.status import status_of
from telemetry_site.formatting import CENT
from usage.analytics.ratelimits import latest_quotas
from usage.models import DailyUsage, Machine, Subscription

ZERO = Decimal("0")
TOP = 5
# An unusual day: at least UNUSUAL_FACTOR times the median day of the 28 days before the week,
# and at least UNUSUAL_MIN_USD more than it (so a quiet team's $2 day is not "unusual"). A team
# with fewer than BASELINE_MIN_DAYS days of spend in those 28 has no "usual" yet: none is flagged.
UNUSUAL_FACTOR = Decimal("2")
UNUSUAL_MIN_USD = Decimal("10")
BASELINE_DAYS = 28
BASELINE_MIN_DAYS = 7
# A machine went quiet: it synced in the BASELINE_DAYS before the report, but not in the last
# QUIET_AFTER before it.
QUIET_AFTER = timedelta(hours=48)


def money(value) -> str:
    return str((value or ZERO).quantize(CENT))


def _team_usage(team: Team, start: date, end: date):
    return DailyUsage.objects.filter(machine__team=team, day__gte=start, day__lte=end)


def _people(rows, key: str = "machine__owner") -> dict[int, User]:
    """The users a list of grouped rows names, by id (one query)."""
    return User.objects.in_bulk({row[key] for row in rows if row[key] is not None})


def _totals(team: Team, start: date, end: date) -> tuple[Decimal, int]:
    row = _team_usage(team, start, end).aggregate(
        cost=Coalesce(Sum("cost_usd"), ZERO), tokens=Coalesce(Sum("total_tokens"), 0)
    )
    return row["cost"], int(row["tokens"])


def top_members(team: Team, start: date, end: date, limit: int | None = TOP) -> list[dict]:
    """[{"name", "email", "spent_usd", "tokens"}], biggest spend first."""
    query = (
        _team_usage(team, start, end)
        .values("machine__owner")
        .annotate(spent=Sum("cost_usd"), tokens=Sum("total_tokens"))
        .order_by("-spent", "machine__owner")
    )
    rows = list(query[:limit] if limit else query)
    people = _people(rows)
    return [
        {
            "name": people[r["machine__owner"]].display_name,
            "email": people[r["machine__owner"]].email,
            "spent_usd": money(r["spent"]),
            "tokens": int(r["tokens"] or 0),
        }
        for r in rows
    ]


def _project_name():
    # Aliases count under their main project, as budgets and the projects page do.
    return Coalesce("project__alias_of__display_name", "project__display_name")


def top_projects(team: Team, start: date, end: date) -> list[dict]:
    rows = (
        _team_usage(team, start, end)
        .annotate(project_name=_project_name())
        .values("project_name")
        .annotate(spent=Sum("cost_usd"), tokens=Sum("total_tokens"))
        .order_by("-spent", "project_name")[:TOP]
    )
    return [
        {
            "name": r["project_name"] or "(no project)",
            "spent_usd": money(r["spent"]),
            "tokens": int(r["tokens"] or 0),
        }
        for r in rows
    ]


def top_models(team: Team, start: date, end: date) -> list[dict]:
    rows = (
        _team_usage(team, start, end)
        .values("model")
        .annotate(spent=Sum("cost_usd"), tokens=Sum("total_tokens"))
        .order_by("-spent", "model")[:TOP]
    )
    return [
        {"name": r["model"], "spent_usd": money(r["spent"]), "tokens": int(r["tokens"] or 0)}
        for r in rows
    ]


def daily_spend(team: Team, start: date, end: date) -> dict[date, Decimal]:
    """Every day from start to end (inclusive), zero where nothing was spent."""
    days = {start + timedelta(days=i): ZERO for i in range((end - start).days + 1)}
    for row in _team_usage(team, start, end).values("day").annotate(spent=Sum("cost_usd")):
        days[row["day"]] = row["spent"] or ZERO
    return days


def unusual_days(team: Team, start: date, end: date) -> list[dict]:
    """Days of start..end whose spend stands out against the median day of the BASELINE_DAYS
    before `start`: [{"day", "spent_usd", "typical_usd"}]."""
    before = daily_spend(team, start - timedelta(days=BASELINE_DAYS), start - timedelta(days=1))
    if sum(1 for spent in before.values() if spent) < BASELINE_MIN_DAYS:
        return []
    typical = Decimal(median(before.values()))
    found = []
    for day, spent in daily_spend(team, start, end).items():
        if spent >= typical * UNUSUAL_FACTOR and spent - typical >= UNUSUAL_MIN_USD:
            found.append(
                {"day": day.isoformat(), "spent_usd": money(spent), "typical_usd": money(typical)}
            )
    return found


def quiet_machines(team: Team, at: datetime) -> list[dict]:
    """Machines that synced in the BASELINE_DAYS before `at` but not in the QUIET_AFTER before
    it: [{"name", "owner", "owner_email", "last_seen_at"}], longest silence first."""
    machines = (
        Machine.objects.filter(
            team=team,
            retired_at__isnull=True,
            last_seen_at__gte=at - timedelta(days=BASELINE_DAYS),
            last_seen_at__lt=at - QUIET_AFTER,
        )
        .select_related("owner")
        .order_by("last_seen_at")
    )
    return [
        {
            "name": m.name,
            "owner": m.owner.display_name,
            "owner_email": m.owner.email,
            "last_seen_at": m.last_seen_at.isoformat() if m.last_seen_at else None,
        }
        for m in machines
    ]


def budgets_now(team: Team, now: datetime) -> list[dict]:
    """Each active budget's current period: spent, amount, percent, member email (or None)."""
    found = []
    for budget in Budget.objects.filter(team=team, active=True).select_related(
        "team", "project", "member"
    ):
        status = status_of(budget, now, with_forecast=False)
        found.append(
            {
                "name": budget.name,
                "scope": budget.scope_label,
                "member_email": budget.member.email if budget.member else None,
                "spent_usd": money(status.spent),
                "amount_usd": money(status.amount),
                "percent": status.percent,
                "period_start": status.period_start.isoformat(),
                "period_end": status.period_end.isoformat(),
                "level": status.level,
            }
        )
    found.sort(key=lambda b: -b["percent"])
    return found


def quota_headroom(team: Team, now: datetime) -> list[dict]:
    """The latest current reading of each member's official quota windows, fullest first:
    [{"subscription", "owner", "owner_email", "window", "used_percent", "resets_at"}]."""
    subscriptions = Subscription.objects.filter(
        owner__membership__team=team, owner__is_active=True
    ).select_related("owner")
    found: list[dict] = []
    for quota in latest_quotas(subscriptions, now).values():
        for reading in quota.readings:
            if reading.stale:
                continue
            found.append(
                {
                    "subscription": quota.subscription.label,
                    "owner": quota.subscription.owner.display_name,
                    "owner_email": quota.subscription.owner.email,
                    "window": reading.window,
                    "used_percent": reading.used_pct,
                    "resets_at": reading.resets_at.isoformat() if reading.resets_at else None,
                }
            )
    found.sort(key=lambda q: -q["used_percent"])
    return found


def weekly_digest(team: Team, start: date, end: date, now: datetime) -> dict:
    """The weekly digest of team days start..end; `now` dates budgets, quotas and silences."""
    previous_start, previous_end = start - timedelta(days=7), end - timedelta(days=7)
    spent, tokens = _totals(team, start, end)
    previous, previous_tokens = _totals(team, previous_start, previous_end)
    change = None if not previous else round(float((spent - previous) * 100 / previous), 1)
    return {
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "previous_start": previous_start.isoformat(),
        "previous_end": previous_end.isoformat(),
        "spent_usd": money(spent),
        "previous_usd": money(previous),
        "change_percent": change,
        "tokens": tokens,
        "previous_tokens": previous_tokens,
        "top_members": top_members(team, start, end),
        "top_projects": top_projects(team, start, end),
        "top_models": top_models(team, start, end),
        "budgets": budgets_now(team, now),
        "quotas": quota_headroom(team, now),
        "unusual_days": unusual_days(team, start, end),
        "quiet_machines": quiet_machines(team, min(now, team.day_start(end + timedelta(days=1)))),
        "site_url": settings.SITE_URL,
    }


def chargeback(team: Team, start: date, end: date) -> dict:
    """Spend per project and member for team days start..end (names, never ids):
    {"rows": [{"project", "member", "email", "spent_usd", "tokens"}], "projects": [...],
    "members": [...], "total_usd", "tokens"}."""
    rows = (
        _team_usage(team, start, end)
        .annotate(project_name=_project_name())
        .values("project_name", "machine__owner")
        .annotate(spent=Sum("cost_usd"), tokens=Sum("total_tokens"))
        .order_by("project_name", "-spent", "machine__owner")
    )
    rows = list(rows)
    people = _people(rows)
    table = []
    by_project: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for r in rows:
        project = r["project_name"] or "(no project)"
        by_project[project] += r["spent"] or ZERO
        table.append(
            {
                "project": project,
                "member": people[r["machine__owner"]].display_name,
                "email": people[r["machine__owner"]].email,
                "spent_usd": money(r["spent"]),
                "tokens": int(r["tokens"] or 0),
            }
        )
    spent, tokens = _totals(team, start, end)
    projects = sorted(by_project.items(), key=lambda item: (-item[1], item[0]))
    return {
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "total_usd": money(spent),
        "tokens": tokens,
        "rows": table,
        "projects": [{"name": name, "spent_usd": money(v)} for name, v in projects],
        "members": top_members(team, start, end, limit=None),
        "site_url": settings.SITE_URL,
    }
