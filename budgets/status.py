"""How far each budget is into its current period, for the pages, the API and the evaluation.

`budget_status_for(viewer)` is what the Budgets page, the Overview and GET /api/v1/budgets/ show,
for the budgets Budget.objects.visible_to(viewer) gives.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from budgets.models import Budget, period_bounds
from telemetry_site.formatting import CENT
from usage.analytics.pace import pace_of
from usage.models import DailyUsage

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


def period_spend(budget: Budget, start: date, end: date) -> Decimal:
    total = DailyUsage.objects.filter(
        budget.usage_filter(), day__gte=start, day__lte=end
    ).aggregate(total=Sum("cost_usd"))["total"]
    return (total or ZERO).quantize(CENT)


def forecast(
    budget: Budget, start: date, end: date, today: date, spent: Decimal
) -> tuple[Decimal | None, date | None]:
    """The analytics pace applied to this budget: (projected period total, run-out day)."""
    pace = pace_of(DailyUsage.objects.filter(budget.usage_filter()), today)
    projected = pace.projected_week_total if budget.period == "week" else pace.projected_month_total
    run_out = pace.run_out_day(budget.amount_usd, start, end, spent)
    if run_out is not None and not (start <= run_out <= end):
        run_out = None
    return projected, run_out


def status_of(budget: Budget, now: datetime | None = None, *, with_forecast=True) -> BudgetStatus:
    today = budget.team.today(now)
    start, end = period_bounds(budget.period, today)
    spent = period_spend(budget, start, end)
    amount = budget.amount_usd
    percent = round(float(spent * 100 / amount), 1) if amount else 0.0
    projected, projected_day = (None, None)
    if with_forecast:
        projected, projected_day = forecast(budget, start, end, today, spent)
    if spent >= amount:
        projected_day = None
    return BudgetStatus(budget, start, end, today, spent, amount, percent, projected, projected_day)


def budget_status_for(viewer, now: datetime | None = None) -> list[BudgetStatus]:
    """Active budgets the viewer may see, with their progress in the current period."""
    now = now or timezone.now()
    return [status_of(b, now) for b in Budget.objects.visible_to(viewer).filter(active=True)]
