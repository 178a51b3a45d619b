"""Plan value: what a subscription costs against what its usage would have cost on the API.

ccusage prices every entry at API rates, so the cost in the facts is the API-equivalent
cost. A subscription's own cost for a period is its monthly price (the price table, or the
subscription's own price) pro rata per day.

Cheapest plan that would have covered the usage pattern (the heuristic, `suggest_plan`):
- The need is measured in "Pro units" (PlanPrice.capacity_vs_pro): the current plan's
  allowance times the peak utilisation of any official quota window seen in the period
  (statusline readings). A peak of 40% on Max 5x needs 2 Pro units; 100% needs all 5.
- Hours that hit a usage limit mean the current allowance was not enough: the need is then
  at least 1.25 times the current plan's.
- Candidates are the individual plans (Pro, Max 5x, Max 20x) whose allowance covers the
  need, and pay-as-you-go API at the period's API-equivalent cost per month; the cheapest
  monthly cost wins. Team and Enterprise seats are bought per organisation, not per person,
  so they are never suggested.
- Without quota readings or limit hits the allowance a pattern needs is unknown: only the
  API option is compared with the current price.

A subscription whose plan nobody has chosen (Plan.UNKNOWN, the default of one a first sync
creates) has no price, no plan cost, no savings and no suggestion: only its API value.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Max, Sum

from accounts.models import calendar_team
from telemetry_site.formatting import CENT
from usage.models import DailyUsage, HourlyUsage, Plan, PlanPrice, RateLimitSnapshot, Source

DAYS_PER_MONTH = Decimal("30.436875")  # the Gregorian average
LIMIT_HIT_NEED = Decimal("1.25")
SUGGESTABLE = (Plan.PRO, Plan.MAX5X, Plan.MAX20X)


def _money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def monthly_price(subscription, prices: dict[str, PlanPrice] | None = None) -> Decimal | None:
    """The subscription's monthly price in USD: its own price wins over the table; None when
    neither knows it or its plan is unknown (a price of an unnamed plan is not trusted)."""
    if subscription.plan == Plan.UNKNOWN:
        return None
    if subscription.monthly_price_usd is not None:
        return Decimal(subscription.monthly_price_usd)
    if subscription.plan == Plan.CUSTOM:
        return None
    prices = prices if prices is not None else price_table()
    row = prices.get(subscription.plan)
    return Decimal(row.monthly_usd) if row else None


def price_table() -> dict[str, PlanPrice]:
    return {row.plan: row for row in PlanPrice.objects.all()}


@dataclass(frozen=True)
class Suggestion:
    plan: str
    label: str
    monthly_usd: Decimal
    reason: str


@dataclass(frozen=True)
class PlanValue:
    subscription_id: int
    since: date
    until: date
    days: int
    active_days: int
    plan: str
    plan_label: str
    monthly_price: Decimal | None
    plan_cost: Decimal | None
    api_cost: Decimal
    savings: Decimal | None
    savings_pct: Decimal | None
    cost_per_active_day: Decimal | None
    api_cost_per_active_day: Decimal | None
    peak_utilization_pct: Decimal | None
    limit_hit_hours: int
    suggestion: Suggestion | None


def plan_value(subscription, since: date, until: date) -> PlanValue:
    """Plan cost vs API-equivalent cost of the subscription's Claude usage, days inclusive."""
    days = (until - since).days + 1
    prices = price_table()
    facts = DailyUsage.objects.filter(
        machine__subscription=subscription,
        source=Source.CLAUDE_CODE,
        day__gte=since,
        day__lte=until,
    )
    totals = facts.aggregate(cost=Sum("cost_usd"))
    api_cost = Decimal(totals["cost"] or 0)
    active_days = facts.filter(cost_usd__gt=0).aggregate(n=Count("day", distinct=True))["n"]

    price = monthly_price(subscription, prices)
    if subscription.plan == Plan.API and subscription.monthly_price_usd is None:
        plan_cost = api_cost
    elif price is None:
        plan_cost = None
    else:
        plan_cost = price * days / DAYS_PER_MONTH

    savings = savings_pct = None
    if plan_cost is not None:
        savings = api_cost - plan_cost
        if api_cost > 0:
            savings_pct = savings / api_cost * 100

    # Days are the team's reporting days; instants are compared in UTC.
    start, end = calendar_team(subscription.owner.team).day_bounds(since, until)
    peak = _peak_utilization(subscription, start, end)
    hits = (
        HourlyUsage.objects.filter(
            machine__subscription=subscription,
            limit_reset_at__isnull=False,
            hour__gte=start,
            hour__lt=end,
        )
        .values("hour")
        .distinct()
        .count()
    )
    api_monthly = api_cost / days * DAYS_PER_MONTH if days > 0 else Decimal(0)
    suggestion = suggest_plan(subscription, prices, price, peak, hits, api_monthly)

    def per_active_day(amount):
        return _money(amount / active_days) if amount is not None and active_days else None

    return PlanValue(
        subscription_id=subscription.pk,
        since=since,
        until=until,
        days=days,
        active_days=active_days,
        plan=subscription.plan,
        plan_label=subscription.get_plan_display(),
        monthly_price=_money(price) if price is not None else None,
        plan_cost=_money(plan_cost) if plan_cost is not None else None,
        api_cost=_money(api_cost),
        savings=_money(savings) if savings is not None else None,
        savings_pct=_money(savings_pct) if savings_pct is not None else None,
        cost_per_active_day=per_active_day(plan_cost),
        api_cost_per_active_day=per_active_day(api_cost),
        peak_utilization_pct=peak,
        limit_hit_hours=hits,
        suggestion=suggestion,
    )


def _peak_utilization(subscription, start: datetime, end: datetime) -> Decimal | None:
    """The highest reading of any quota window captured in [start, end)."""
    qs = RateLimitSnapshot.objects.filter(
        subscription=subscription, captured_at__gte=start, captured_at__lt=end
    )
    peaks = qs.aggregate(five=Max("five_hour_used_pct"), seven=Max("seven_day_used_pct"))
    values = [Decimal(v) for v in peaks.values() if v is not None]
    for extra in qs.exclude(extra_windows={}).values_list("extra_windows", flat=True):
        for window in (extra or {}).values():
            pct = window.get("used_percentage") if isinstance(window, dict) else None
            if isinstance(pct, int | float) and not isinstance(pct, bool):
                values.append(Decimal(str(pct)))
    return max(values) if values else None


def suggest_plan(
    subscription,
    prices: dict[str, PlanPrice],
    current_price: Decimal | None,
    peak_pct: Decimal | None,
    limit_hits: int,
    api_monthly: Decimal,
) -> Suggestion | None:
    """The cheapest plan that would have covered the pattern (see the module docstring);
    None when the current plan is unknown or already the cheapest fit."""
    if subscription.plan == Plan.UNKNOWN:
        # Comparing against a plan nobody named would present a guess as advice.
        return None
    current = prices.get(subscription.plan)
    capacity = Decimal(current.capacity_vs_pro) if current else Decimal(0)
    need = None
    reason = ""
    if capacity > 0 and (peak_pct is not None or limit_hits):
        need = capacity * (peak_pct or Decimal(0)) / 100
        reason = f"peak quota use {peak_pct or 0:.0f}% of {subscription.get_plan_display()}"
        if limit_hits:
            need = max(need, capacity * LIMIT_HIT_NEED)
            reason = f"{limit_hits} hour(s) hit a usage limit on {subscription.get_plan_display()}"

    options: list[Suggestion] = []
    if need is not None:
        for plan in SUGGESTABLE:
            row = prices.get(plan)
            if row and Decimal(row.capacity_vs_pro) >= need:
                options.append(
                    Suggestion(
                        plan=plan,
                        label=Plan(plan).label,
                        monthly_usd=_money(row.monthly_usd),
                        reason=f"{reason}: needs about {need:.1f}x Pro's allowance",
                    )
                )
    if subscription.plan != Plan.API:
        options.append(
            Suggestion(
                plan=Plan.API,
                label=Plan.API.label,
                monthly_usd=_money(api_monthly),
                reason="pay as you go at the API-equivalent cost of this usage",
            )
        )
    if not options:
        return None
    best = min(options, key=lambda s: (s.monthly_usd, s.plan != Plan.API))
    # No cheaper option than what is paid now means the current plan is the right one.
    if current_price is not None and best.monthly_usd >= current_price and need is None:
        return None
    return best
