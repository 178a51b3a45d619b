"""Pace, trend and forecasts of spending, per member, team or project, in the team's days.

The method, in the words pages show as a tooltip (`PACE_TOOLTIP`):

- History: the complete days of the last 28 (today is still running), starting no earlier
  than the first day with any usage, so a new member is not averaged over days before
  they started.
- Daily average: mean cost of the history days that had usage ("active days").
- Pace: mean cost per calendar day of the history, idle days included; projections use it,
  because weekends and days off are part of how a week is spent.
- Trend: least-squares slope of daily cost over the history. It is "increasing" or
  "decreasing" when |slope| is at least 5% of the pace per day, else "stable"; with fewer
  than 7 history days it is "unknown".
- Anomalies: history days whose z-score against the history is at least 2 in size, plus
  today when it already lies 2 standard deviations above the mean (it can only grow).
- Projections: spent so far in the week (Monday start) or month, plus the larger of today's
  spend and the pace for today, plus the pace for each day left.
- Run-out day: the first day on which spending at that pace reaches an amount.
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q, Sum

from accounts.models import calendar_team
from telemetry_site.formatting import CENT
from usage import rollups
from usage.analytics.ratelimits import latest_quota
from usage.figures import COST_PLACES
from usage.models import DailyUsage

HISTORY_DAYS = 28
MIN_TREND_DAYS = 7
TREND_THRESHOLD = 0.05  # |slope| per day, as a share of the pace
ANOMALY_Z = 2.0

PACE_TOOLTIP = (
    "Daily average: mean cost of the days with usage among the last 28 complete days. "
    "Trend: least-squares slope of daily cost over those days; increasing or decreasing when "
    "the slope is at least 5% of the average cost per calendar day, per day (needs 7 days). "
    "Anomalies: days at least 2 standard deviations away from the mean. "
    "Projections: spent so far plus the average cost per calendar day, idle days included, "
    "for every day left; the run-out day is when that reaches the amount."
)


class Trend:
    INCREASING = "increasing"
    STABLE = "stable"
    DECREASING = "decreasing"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Anomaly:
    day: date
    cost_usd: Decimal
    z: float


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def month_end(day: date) -> date:
    next_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return next_month - timedelta(days=1)


@dataclass(frozen=True)
class Pace:
    today: date
    history_start: date | None
    history_days: int
    active_days: int
    daily_average: Decimal
    daily_rate: Decimal
    slope: Decimal
    trend: str
    spent_today: Decimal
    week_start: date
    week_spent: Decimal
    month_spent: Decimal
    projected_week_total: Decimal
    projected_month_total: Decimal
    anomalies: list[Anomaly] = field(default_factory=list)

    def run_out_day(
        self, amount: Decimal, period_start: date, period_end: date, spent: Decimal
    ) -> date | None:
        """The day spending at this pace reaches `amount` in [period_start, period_end].

        `spent` is what the period has used so far, today included. Returns today when the
        amount is already reached, None when it is not reached before the period ends.
        """
        amount, spent = Decimal(amount), Decimal(spent)
        if spent >= amount:
            return max(self.today, period_start)
        rate = self.daily_rate
        if rate <= 0:
            return None
        remaining = amount - spent
        # Today still has the rest of its pace to spend before tomorrow starts.
        today_left = max(Decimal(0), rate - self.spent_today)
        if remaining <= today_left:
            day = self.today
        else:
            day = self.today + timedelta(days=math.ceil((remaining - today_left) / rate))
        day = max(day, period_start)
        return day if day <= period_end else None


def compute_pace(
    daily_costs: dict[date, Decimal], today: date, first_day: date | None = None
) -> Pace:
    """Pace from daily costs (missing days cost nothing); see the module docstring.

    `first_day` is the first day with usage when it lies before the days given (callers
    pass only the days the figures need).
    """
    costs = {
        day: Decimal(cost).quantize(COST_PLACES)
        for day, cost in daily_costs.items()
        if day <= today
    }
    used_days = [day for day, cost in costs.items() if cost > 0]
    if first_day is not None:
        used_days.append(first_day)
    first_day = min(used_days, default=None)
    start = max(first_day, today - timedelta(days=HISTORY_DAYS)) if first_day else None
    history = (
        [costs.get(start + timedelta(days=i), Decimal(0)) for i in range((today - start).days)]
        if start
        else []
    )
    spent_today = costs.get(today, Decimal(0))
    # On the first day of use nothing is complete yet: today is the only evidence there is.
    history_for_rate = [spent_today] if not history and spent_today > 0 else history

    n = len(history_for_rate)
    values = [float(c) for c in history_for_rate]
    active = [v for v in values if v > 0]
    mean = sum(values) / n if n else 0.0
    daily_average = sum(active) / len(active) if active else 0.0

    slope = 0.0
    trend = Trend.UNKNOWN
    anomalies: list[Anomaly] = []
    # A history means a first day of use, so `start` is set.
    if start is not None and len(history) >= MIN_TREND_DAYS:
        x_mean = (n - 1) / 2
        sxx = sum((i - x_mean) ** 2 for i in range(n))
        slope = sum((i - x_mean) * (v - mean) for i, v in enumerate(values)) / sxx
        if mean > 0 and abs(slope) >= TREND_THRESHOLD * mean:
            trend = Trend.INCREASING if slope > 0 else Trend.DECREASING
        else:
            trend = Trend.STABLE
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
        if std > 0:
            for i, v in enumerate(values):
                z = (v - mean) / std
                if abs(z) >= ANOMALY_Z:
                    anomalies.append(Anomaly(start + timedelta(days=i), history[i], round(z, 2)))
            z_today = (float(spent_today) - mean) / std
            if z_today >= ANOMALY_Z:
                anomalies.append(Anomaly(today, spent_today, round(z_today, 2)))

    rate = Decimal(str(mean))
    today_expected = max(spent_today, rate)
    week_start = today - timedelta(days=today.weekday())
    week_end = week_start + timedelta(days=6)
    month_start = today.replace(day=1)
    week_spent = sum((c for d, c in costs.items() if week_start <= d <= today), Decimal(0))
    month_spent = sum((c for d, c in costs.items() if month_start <= d <= today), Decimal(0))
    week_before_today = week_spent - spent_today
    month_before_today = month_spent - spent_today
    projected_week = week_before_today + today_expected + rate * (week_end - today).days
    projected_month = month_before_today + today_expected + rate * (month_end(today) - today).days
    return Pace(
        today=today,
        history_start=start,
        history_days=len(history),
        active_days=len(active),
        daily_average=_money(daily_average),
        daily_rate=rate,
        slope=_money(slope),
        trend=trend,
        spent_today=spent_today,
        week_start=week_start,
        week_spent=week_spent,
        month_spent=month_spent,
        projected_week_total=_money(projected_week),
        projected_month_total=_money(projected_month),
        anomalies=anomalies,
    )


# --- Who the pace is for -------------------------------------------------------------------


def history_start(today: date) -> date:
    """The first day pace reads: the month's first day or the history's, whichever is first."""
    return min(today - timedelta(days=HISTORY_DAYS), today.replace(day=1))


def daily_costs(facts, today: date) -> dict[date, Decimal]:
    """Cost per day of a DailyUsage queryset, from the first day pace needs up to today."""
    rows = (
        facts.filter(day__gte=history_start(today), day__lte=today)
        .values("day")
        .annotate(cost=Sum("cost_usd"))
        .values_list("day", "cost")
    )
    return {day: Decimal(cost or 0) for day, cost in rows}


def pace_of(facts, today: date) -> Pace:
    """Pace of any DailyUsage queryset (three small queries on indexed days).

    Only whether usage began before the history matters (compute_pace starts the history at
    the later of that day and 28 days ago), so an EXISTS on the days before replaces a
    MIN(day) over every fact.
    """
    first = history_start(today)
    earlier = facts.filter(cost_usd__gt=0, day__lt=first).exists()
    return compute_pace(daily_costs(facts, today), today, first_day=first if earlier else None)


def pace_of_slice(part: rollups.Slice, today: date) -> Pace:
    """Pace of a rollup slice (the team, a member, a project): two queries on rollup rows."""
    first = history_start(today)
    earlier = rollups.has_cost_before(part, first)
    costs = rollups.daily_costs(part, first, today)
    return compute_pace(costs, today, first_day=first if earlier else None)


def project_facts(project):
    """Facts of a project and every alias merged into it."""
    canonical = project.canonical
    return DailyUsage.objects.filter(Q(project=canonical) | Q(project__alias_of=canonical))


def project_slice(project) -> rollups.Slice:
    """A project and every alias merged into it, as a rollup slice."""
    canonical = project.canonical
    ids = (canonical.pk, *canonical.aliases.values_list("pk", flat=True))
    return rollups.Slice(rollups.PROJECT, team_id=canonical.team_id, key_ids=ids)


def pace_for_team(team, today: date | None = None) -> Pace:
    today = today or team.today()
    return pace_of_slice(rollups.Slice(rollups.TEAM, team_id=team.pk), today)


def pace_for_member(user, today: date | None = None) -> Pace:
    today = today or calendar_team(user.team).today()
    return pace_of_slice(rollups.Slice(rollups.MEMBER, key_ids=(user.pk,)), today)


def pace_for_project(project, today: date | None = None, member=None) -> Pace:
    """A project's pace for the whole team, or for one member's machines when given."""
    today = today or project.team.today()
    if member is None:
        return pace_of_slice(project_slice(project), today)
    return pace_of(project_facts(project).filter(machine__owner=member), today)


@dataclass(frozen=True)
class QuotaRunOut:
    used_pct: float
    resets_at: datetime | None
    run_out_day: date | None


def quota_run_out(subscription, today: date | None = None) -> QuotaRunOut | None:
    """The day the weekly quota would be used up at the subscription's Claude pace.

    The latest current 7-day reading says how much of the quota the spending since the
    window opened (reset time minus 7 days) used; at that ratio, the remaining percentage
    is a dollar amount, and the pace's run-out day for it is the answer (None when the
    window resets first). No reading, or a stale one, gives None.
    """
    team = calendar_team(subscription.owner.team)
    zone = team.zone
    today = today or team.today()
    reading = latest_quota(subscription).seven_day
    if reading is None or reading.stale or reading.resets_at is None:
        return None
    facts = DailyUsage.objects.filter(machine__subscription=subscription, source="claude-code")
    window_start = (reading.resets_at - timedelta(days=7)).astimezone(zone).date()
    window_end = reading.resets_at.astimezone(zone).date()
    spent = facts.filter(day__gte=window_start, day__lte=today).aggregate(s=Sum("cost_usd"))["s"]
    spent = Decimal(spent or 0)
    used = Decimal(str(reading.used_pct))
    if used >= 100:
        return QuotaRunOut(reading.used_pct, reading.resets_at, today)
    if spent <= 0 or used <= 0:
        return QuotaRunOut(reading.used_pct, reading.resets_at, None)
    quota_dollars = spent * 100 / used
    day = pace_of(facts, today).run_out_day(quota_dollars, window_start, window_end, spent)
    return QuotaRunOut(reading.used_pct, reading.resets_at, day)
