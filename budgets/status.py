"""How far each budget is into its current period, for the pages, the API and the evaluation.

`budget_status_for(viewer)` is what the Budgets page, the Overview and GET /api/v1/budgets/ show,
for the budgets Budget.objects.visible_to(viewer) gives.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from budgets.models import Budget, ScopeKind, period_bounds
from telemetry_site.formatting import CENT
from usage import rollups
from usage.analytics.pace import compute_pace, history_start, pace_of_slice
from usage.models import Project

ZERO = Decimal("0")


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    period_start: date
    period_end: date
    today: date
    spent: Decimal
    amount: Decimal
    percent: float
    # Spend expected by the end of the period at the current pace, and the day it passes the
    # amount (None when the pace does not reach it within the period).
    projected: Decimal | None
    projected_day: date | None

    @property
    def level(self) -> str:
        """ok, warn (past the lowest threshold or forecast to pass) or over (the amount)."""
        if self.spent >= self.amount:
            return "over"
        lowest = min(self.budget.sorted_thresholds, default=100)
        if self.percent >= lowest or self.projected_day is not None:
            return "warn"
        return "ok"

    @property
    def css_level(self) -> str:
        """The stylesheet's bar and badge suffix: ok, warn or bad."""
        return "bad" if self.level == "over" else self.level

    @property
    def level_word(self) -> str:
        """Words with the bar's colour, so colour is never the only signal."""
        if self.level == "over":
            return "Over budget"
        if self.percent >= min(self.budget.sorted_thresholds, default=100):
            return "Near the limit"
        if self.projected_day is not None:
            return "On pace to pass"
        return "On track"

    @property
    def meter_value(self) -> Decimal:
        return min(self.spent, self.amount)


def usage_slice(budget: Budget, aliases: dict[int, list[int]] | None = None) -> rollups.Slice:
    """The rollup rows of the facts this budget counts (Budget.usage_filter, as a slice);
    `aliases` (project id → ids grouped under it) spares a project budget's query."""
    # A budget whose project or member is gone counts nothing (no row has key 0).
    if budget.scope == ScopeKind.PROJECT:
        project_id = budget.project_id or 0
        grouped = (
            aliases.get(project_id, [])
            if aliases is not None
            else Project.objects.filter(alias_of_id=project_id).values_list("pk", flat=True)
        )
        return rollups.Slice(
            rollups.PROJECT, team_id=budget.team_id, key_ids=(project_id, *grouped)
        )
    if budget.scope == ScopeKind.MEMBER:
        return rollups.Slice(
            rollups.MEMBER, team_id=budget.team_id, key_ids=(budget.member_id or 0,)
        )
    return rollups.Slice(rollups.TEAM, team_id=budget.team_id)


def period_spend(budget: Budget, start: date, end: date, part=None) -> Decimal:
    """USD the budget's facts cost from `start` to `end` (team days, inclusive)."""
    rows = rollups.sums(part or usage_slice(budget), start, end, by="key")
    return sum((row["cost_usd"] for row in rows), ZERO).quantize(CENT)


def forecast(
    budget: Budget, start: date, end: date, today: date, spent: Decimal, part=None
) -> tuple[Decimal | None, date | None]:
    """The analytics pace applied to this budget: (projected period total, run-out day)."""
    pace = pace_of_slice(part or usage_slice(budget), today)
    projected = pace.projected_week_total if budget.period == "week" else pace.projected_month_total
    run_out = pace.run_out_day(budget.amount_usd, start, end, spent)
    if run_out is not None and not (start <= run_out <= end):
        run_out = None
    return projected, run_out


def status_of(budget: Budget, now: datetime | None = None, *, with_forecast=True) -> BudgetStatus:
    today = budget.team.today(now)
    start, end = period_bounds(budget.period, today)
    part = usage_slice(budget)
    spent = period_spend(budget, start, end, part)
    amount = budget.amount_usd
    percent = round(float(spent * 100 / amount), 1) if amount else 0.0
    projected, projected_day = (None, None)
    if with_forecast:
        projected, projected_day = forecast(budget, start, end, today, spent, part)
    if spent >= amount:
        projected_day = None
    return BudgetStatus(budget, start, end, today, spent, amount, percent, projected, projected_day)


def statuses(budgets: list[Budget], now: datetime | None = None) -> list[BudgetStatus]:
    """status_of for many budgets in a fixed number of queries, however many there are: per
    rollup dimension, one query for the days every budget of that kind needs and one for
    whether their usage began before the pace history (see pace.pace_of_slice)."""
    now = now or timezone.now()
    aliases: dict[int, list[int]] = defaultdict(list)
    project_ids = [b.project_id for b in budgets if b.scope == ScopeKind.PROJECT]
    if project_ids:
        for canonical, pk in Project.objects.filter(alias_of_id__in=project_ids).values_list(
            "alias_of_id", "pk"
        ):
            aliases[canonical].append(pk)
    planned = []
    for budget in budgets:
        today = budget.team.today(now)
        start, end = period_bounds(budget.period, today)
        part = usage_slice(budget, aliases)
        planned.append((budget, today, start, end, part))
    # One read per (dimension, team, today): the union of the keys, the union of the days.
    groups: dict[tuple, list] = defaultdict(list)
    for item in planned:
        budget, today, start, end, part = item
        groups[(part.dimension, part.team_id, today)].append(item)
    costs: dict[tuple, dict[date, Decimal]] = {}
    before: dict[tuple, bool] = {}
    for (dimension, team_id, today), items in groups.items():
        keys = tuple(sorted({k for item in items for k in item[4].key_ids}))
        part = rollups.Slice(dimension, team_id=team_id, key_ids=keys)
        first = min(history_start(today), *(item[2] for item in items))
        last = max(today, *(item[3] for item in items))
        for row in rollups.sums(part, first, last, by="key_day"):
            # A member's rows are per source agent: add them up.
            daily = costs.setdefault((dimension, team_id, row["key_id"]), {})
            daily[row["day"]] = daily.get(row["day"], ZERO) + row["cost_usd"]
        for row in rollups.sums(part, None, history_start(today) - timedelta(1), by="key"):
            if row["cost_usd"] > 0:
                before[(dimension, team_id, row["key_id"])] = True
    out = []
    for budget, today, start, end, part in planned:
        keys = part.key_ids or (0,)
        summed: dict[date, Decimal] = defaultdict(Decimal)
        for key in keys:
            for day, cost in costs.get((part.dimension, part.team_id, key), {}).items():
                summed[day] += cost
        spent = sum((c for d, c in summed.items() if start <= d <= end), ZERO).quantize(CENT)
        history = history_start(today)
        earlier = any(before.get((part.dimension, part.team_id, key)) for key in keys)
        pace = compute_pace(
            {d: c for d, c in summed.items() if history <= d <= today},
            today,
            first_day=history if earlier else None,
        )
        out.append(_status(budget, today, start, end, spent, pace))
    return out


def _status(budget, today, start, end, spent, pace) -> BudgetStatus:
    amount = budget.amount_usd
    percent = round(float(spent * 100 / amount), 1) if amount else 0.0
    projected = pace.projected_week_total if budget.period == "week" else pace.projected_month_total
    projected_day = pace.run_out_day(amount, start, end, spent)
    if projected_day is not None and not (start <= projected_day <= end):
        projected_day = None
    if spent >= amount:
        projected_day = None
    return BudgetStatus(budget, start, end, today, spent, amount, percent, projected, projected_day)


def budget_status_for(viewer, now: datetime | None = None) -> list[BudgetStatus]:
    """Active budgets the viewer may see, with their progress in the current period."""
    budgets = Budget.objects.visible_to(viewer).filter(active=True).select_related("team")
    return statuses(list(budgets), now)
