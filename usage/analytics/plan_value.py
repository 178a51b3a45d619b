"""Plan value: what a subscription costs against what its usage would have cost on the API.

ccusage prices every entry at API rates, so the cost in the facts is the API-equivalent
cost. A subscription's own cost for a period is its monthly price (the price table, or the
subscription's own price) pro rata per day.

Cheapest plan that would have covered the usage pattern (the heuristic, `suggest_plan`):
- The need is measured in "Pro units" (PlanPrice.capacity_vs_pro): the current plan's
  allowance times the peak utilisation of any official quota window seen in the period
  (statusline readings). A peak of 40% on Max 5x needs 2 Pro units; 100% needs all 5.
- Hours that hit a usage limit mean the current allowance was not enough: a plan without
  limit hits then needs at least 1.25 times the current plan's allowance.
- Limit hits are weighed by what they cost: the time from the last request of a limit-hit
  hour to the limit's reset (at most 5 hours per reset, since the hours a person would have
  gone on working are unknown) is time lost, worth the subscription's API-equivalent cost per
  active hour (hourly figures). Staying on the current plan costs its price plus that value;
  a plan whose allowance covers the need costs its price; pay-as-you-go costs the period's
  API-equivalent cost plus the lost hours' value (the work would have been done and paid).
  All are scaled to a month; the cheapest wins, so one limit-hit hour on Pro does not send
  someone paying $20 to a $52 pay-as-you-go bill.
- Candidates are the individual plans (Pro, Max 5x, Max 20x) and the API; Team and Enterprise
  seats are bought per organisation, not per person, so they are never suggested.
- Without quota readings or limit hits the allowance a pattern needs is unknown: only the
  API option is compared with the current price.
- `fit_note` says in words why the result is what it is: which plans the peak or the limit
  hits ruled out and what the lost hours were worth.

A subscription whose plan nobody has chosen (Plan.UNKNOWN, the default of one a first sync
creates) has no price, no plan cost, no savings and no suggestion: only its API value.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Count, Max, Q, Sum

from accounts.models import User, calendar_team
from telemetry_site.formatting import CENT, duration, usd
from usage import rollups
from usage.models import (
    DailyUsage,
    HourlyUsage,
    Plan,
    PlanPrice,
    RateLimitSnapshot,
    Source,
    Subscription,
)

DAYS_PER_MONTH = Decimal("30.436875")  # the Gregorian average
LIMIT_HIT_NEED = Decimal("1.25")
# Time lost to one limit is counted up to one 5-hour window (see the module docstring).
MAX_LOST_PER_RESET = timedelta(hours=5)
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
    lost_hours: Decimal = Decimal(0)
    lost_value: Decimal | None = None
    fit_note: str = ""


def plan_value(subscription, since: date, until: date) -> PlanValue:
    """Plan cost vs API-equivalent cost of the subscription's Claude usage, days inclusive."""
    return plan_values([subscription], since, until)[subscription.pk]


def plan_values(subscriptions, since: date, until: date) -> dict[int, PlanValue]:
    """plan_value for each of `subscriptions` (with their owners), by subscription pk, in a
    fixed number of queries however many there are (a 1,000-member team's list took 9,000):
    each figure is read for all of them at once, grouped by subscription. Days are the team's
    reporting days of each owner's team, inclusive; figures in USD, hours, percent."""
    subscriptions = list(subscriptions)
    days = (until - since).days + 1
    prices = price_table()
    values: dict[int, PlanValue] = {}
    # Days are the team's reporting days; instants are compared in UTC. Owners of one team
    # share the bounds, so a team's subscriptions are read together.
    by_bounds: dict[tuple, list] = defaultdict(list)
    for sub in subscriptions:
        by_bounds[calendar_team(sub.owner.team).day_bounds(since, until)].append(sub)
    daily = (
        DailyUsage.objects.filter(
            machine__subscription__in=subscriptions,
            source=Source.CLAUDE_CODE,
            day__gte=since,
            day__lte=until,
        )
        .values("machine__subscription_id")
        .annotate(
            cost=Sum("cost_usd"),
            active=Count("day", distinct=True, filter=Q(cost_usd__gt=0)),
        )
    )
    api_costs = {row["machine__subscription_id"]: row for row in daily}
    for (start, end), group in by_bounds.items():
        peaks = _peak_utilizations(group, start, end)
        hours = HourlyUsage.objects.filter(
            machine__subscription__in=group, hour__gte=start, hour__lt=end
        )
        hour_figures = {
            row["machine__subscription_id"]: row
            for row in hours.values("machine__subscription_id").annotate(
                hits=Count("hour", distinct=True, filter=Q(limit_reset_at__isnull=False)),
                active_cost=Sum("cost_usd", filter=Q(cost_usd__gt=0)),
                active_hours=Count("hour", filter=Q(cost_usd__gt=0)),
            )
        }
        lost_by_sub = _lost_times(hours)
        for sub in group:
            daily_row = api_costs.get(sub.pk, {})
            hour_row = hour_figures.get(sub.pk, {})
            lost = lost_by_sub.get(sub.pk, timedelta(0))
            values[sub.pk] = _plan_value_of(
                sub,
                since,
                until,
                days,
                prices,
                api_cost=Decimal(daily_row.get("cost") or 0),
                active_days=daily_row.get("active") or 0,
                peak=peaks.get(sub.pk),
                hits=hour_row.get("hits") or 0,
                lost=lost,
                lost_value=_value_of_lost(
                    lost, hour_row.get("active_cost"), hour_row.get("active_hours") or 0
                ),
            )
    return values


def _plan_value_of(
    subscription,
    since: date,
    until: date,
    days: int,
    prices: dict[str, PlanPrice],
    *,
    api_cost: Decimal,
    active_days: int,
    peak: Decimal | None,
    hits: int,
    lost: timedelta,
    lost_value: Decimal | None,
) -> PlanValue:
    """One subscription's PlanValue from its figures read by plan_values."""
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

    month_share = DAYS_PER_MONTH / days if days > 0 else Decimal(0)
    api_monthly = api_cost * month_share
    fit = suggest_plan(
        subscription,
        prices,
        price,
        peak,
        hits,
        api_monthly,
        lost=lost,
        lost_monthly=lost_value * month_share if lost_value is not None else None,
    )

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
        suggestion=fit.suggestion,
        lost_hours=(Decimal(lost.total_seconds()) / 3600).quantize(Decimal("0.1")),
        lost_value=_money(lost_value) if lost_value is not None else None,
        fit_note=fit.note,
    )


def _lost_times(hours) -> dict[int, timedelta]:
    """Time lost to usage limits among `hours` (HourlyUsage rows) per subscription pk, in one
    query: per reset instant, from the last request of the hours that hit it to the reset, at
    most MAX_LOST_PER_RESET."""
    totals: dict[int, timedelta] = defaultdict(timedelta)
    resets = (
        hours.filter(limit_reset_at__isnull=False)
        .values("machine__subscription_id", "limit_reset_at")
        .annotate(last=Max("last_activity"))
    )
    for row in resets:
        gap = row["limit_reset_at"] - row["last"]
        totals[row["machine__subscription_id"]] += min(max(gap, timedelta(0)), MAX_LOST_PER_RESET)
    return totals


def _value_of_lost(lost: timedelta, active_cost, active_hours: int) -> Decimal | None:
    """What `lost` time is worth at the API-equivalent cost per active hour (USD): the cost of
    the hours with usage over their count; None without such hours to measure the rate."""
    if not lost:
        return Decimal(0)
    if not active_hours:
        return None
    return Decimal(active_cost) / active_hours * Decimal(lost.total_seconds()) / 3600


def _peak_utilizations(subscriptions, start: datetime, end: datetime) -> dict[int, Decimal]:
    """The highest reading of any quota window captured in [start, end), per subscription pk
    (those with a reading), in two queries."""
    qs = RateLimitSnapshot.objects.filter(
        subscription__in=subscriptions, captured_at__gte=start, captured_at__lt=end
    )
    values: dict[int, list[Decimal]] = defaultdict(list)
    for row in qs.values("subscription_id").annotate(
        five=Max("five_hour_used_pct"), seven=Max("seven_day_used_pct")
    ):
        values[row["subscription_id"]].extend(
            Decimal(row[k]) for k in ("five", "seven") if row[k] is not None
        )
    for sub_id, extra in qs.exclude(extra_windows={}).values_list(
        "subscription_id", "extra_windows"
    ):
        for window in (extra or {}).values():
            pct = window.get("used_percentage") if isinstance(window, dict) else None
            if isinstance(pct, int | float) and not isinstance(pct, bool):
                values[sub_id].append(Decimal(str(pct)))
    return {sub_id: max(found) for sub_id, found in values.items() if found}


@dataclass(frozen=True)
class Fit:
    """suggest_plan's answer: the suggestion (None: the current plan is the cheapest fit) and
    a sentence saying why, for the overview's card."""

    suggestion: Suggestion | None
    note: str


def suggest_plan(
    subscription,
    prices: dict[str, PlanPrice],
    current_price: Decimal | None,
    peak_pct: Decimal | None,
    limit_hits: int,
    api_monthly: Decimal,
    *,
    lost: timedelta = timedelta(0),
    lost_monthly: Decimal | None = None,
) -> Fit:
    """The cheapest plan that would have covered the pattern, limit hits weighed by the value
    of the time they cost (see the module docstring). Monthly amounts in USD. The Fit's
    suggestion is None when the plan is unknown or already the cheapest fit."""
    if subscription.plan == Plan.UNKNOWN:
        # Comparing against a plan nobody named would present a guess as advice.
        return Fit(None, "")
    current_label = subscription.get_plan_display()
    current = prices.get(subscription.plan)
    capacity = Decimal(current.capacity_vs_pro) if current else Decimal(0)
    penalty = lost_monthly or Decimal(0)
    need = None
    reason = ""
    if capacity > 0 and (peak_pct is not None or limit_hits):
        need = capacity * (peak_pct or Decimal(0)) / 100
        reason = f"peak quota use {peak_pct or 0:.0f}% of {current_label}"
        if limit_hits:
            need = max(need, capacity * LIMIT_HIT_NEED)
            reason = _hits_phrase(limit_hits, current_label, lost, lost_monthly)

    options: list[Suggestion] = []
    excluded: list[str] = []
    if need is not None:
        for plan in SUGGESTABLE:
            row = prices.get(plan)
            if not row or plan == subscription.plan:
                continue
            if Decimal(row.capacity_vs_pro) >= need:
                options.append(
                    Suggestion(
                        plan=plan,
                        label=Plan(plan).label,
                        monthly_usd=_money(row.monthly_usd),
                        reason=f"{reason}: needs about {need:.1f}x Pro's allowance",
                    )
                )
            else:
                excluded.append(Plan(plan).label)
    if subscription.plan != Plan.API:
        options.append(
            Suggestion(
                plan=Plan.API,
                label=Plan.API.label,
                monthly_usd=_money(api_monthly + penalty),
                reason="pay as you go at the API-equivalent cost of this usage"
                + (", the hours lost to limits included" if penalty else ""),
            )
        )
    if not options:
        return Fit(None, "")
    best = min(options, key=lambda s: (s.monthly_usd, s.plan != Plan.API))
    if current_price is None:
        return Fit(best, reason)
    staying = current_price + penalty
    if best.monthly_usd >= staying:
        # Nothing is cheaper than the plan paid now, lost hours counted: it is the right one.
        if not limit_hits and need is None:
            return Fit(None, "")
        return Fit(None, _stay_note(current_label, reason, options, current_price))
    if excluded and limit_hits:
        note = f"{', '.join(excluded)} would not cover it ({reason})."
    else:
        note = ""
    return Fit(best, note)


def _hits_phrase(hits: int, plan_label: str, lost: timedelta, lost_monthly) -> str:
    words = f"{hits} hour{'s' if hits != 1 else ''} hit {plan_label}'s usage limit"
    if lost:
        words += f", losing about {duration(lost)} of use"
        if lost_monthly is not None:
            words += f" worth {usd(lost_monthly)} a month at API prices"
    return words


def _stay_note(
    current_label: str, reason: str, options: list[Suggestion], current_price: Decimal
) -> str:
    others = "; ".join(
        f"{o.label} would cost {usd(o.monthly_usd)} a month"
        for o in sorted(options, key=lambda o: o.monthly_usd)
    )
    return (
        f"{current_label} at {usd(current_price)} a month is still the cheapest fit"
        + (f" ({reason})" if reason else "")
        + (f": {others}." if others else ".")
    )


@dataclass(frozen=True)
class MemberPlanValue:
    """One person's subscriptions in a team over a period: what their plans cost (None when
    no plan of theirs is known) against the API value of their Claude usage (USD)."""

    owner: User
    former: bool
    subscriptions: list
    unknown_plans: int
    plan_cost: Decimal | None
    api_cost: Decimal

    @property
    def savings(self) -> Decimal | None:
        """API value minus plan cost, only when every plan of theirs is known."""
        if self.plan_cost is None or self.unknown_plans:
            return None
        return self.api_cost - self.plan_cost


@dataclass(frozen=True)
class TeamPlanValue:
    """A team's plan spend against the API value of its Claude usage: the totals cover
    everyone; `members` holds the rows asked for (everyone, or one page of them)."""

    since: date
    until: date
    members: list[MemberPlanValue]
    plan_cost: Decimal
    api_cost: Decimal
    unknown_plans: int
    # Everyone's, not only the rows in `members`.
    member_count: int
    any_known: bool
    api_cost_of_known_plans: Decimal


@dataclass
class _OwnerFigures:
    """One owner's sums from light rows, before (and whether or not) their row is built."""

    owner_id: int
    email: str
    subscription_ids: list[int] = field(default_factory=list)
    api_cost: Decimal = Decimal(0)
    known: list[Decimal] = field(default_factory=list)
    unknown: int = 0

    # Rounded to the cent once all subscriptions are in (settle).
    plan_cost: Decimal | None = None
    api_money: Decimal = Decimal(0)

    def settle(self) -> None:
        self.plan_cost = _money(sum(self.known, Decimal(0))) if self.known else None
        self.api_money = _money(self.api_cost)


def team_plan_values(
    team, since: date, until: date, *, offset: int = 0, limit: int | None = None
) -> TeamPlanValue:
    """Every subscription used in `team` (its members', and those of people who left but
    whose machines stay in the team) over team days `since`..`until`, inclusive, grouped by
    owner: plan cost pro rata (as plan_value) and API value (USD). Members are sorted by API
    value, largest first, then email; `members` holds rows `offset` to `offset + limit` of
    that order (all when `limit` is None), built with their subscriptions and owner, while
    the totals, `member_count` and `any_known` cover everyone. Three queries, whatever the
    team's size: everyone is summed from one light row per subscription (its machines' costs
    added up by the database), only the rows returned are loaded."""
    days = (until - since).days + 1
    prices = price_table()
    owners: dict[int, _OwnerFigures] = {}
    # A thousand subscriptions share a handful of plans and prices: each is priced once.
    pro_rata: dict[tuple, Decimal | None] = {}
    for pk, owner_id, email, plan, own_price, sub_api in _subscription_costs(team, since, until):
        figures = owners.get(owner_id)
        if figures is None:
            figures = owners[owner_id] = _OwnerFigures(owner_id, email)
        figures.subscription_ids.append(pk)
        figures.api_cost += sub_api
        if plan == Plan.API and own_price is None:
            figures.known.append(sub_api)
            continue
        if (plan, own_price) not in pro_rata:
            price = monthly_price(_PriceOf(plan, own_price), prices)
            pro_rata[plan, own_price] = None if price is None else price * days / DAYS_PER_MONTH
        cost = pro_rata[plan, own_price]
        if cost is None:
            figures.unknown += 1
        else:
            figures.known.append(cost)
    for figures in owners.values():
        figures.settle()
    ranked = sorted(owners.values(), key=lambda f: (-f.api_money, f.email))
    shown = ranked[offset : None if limit is None else offset + limit]
    subscriptions: dict[int, list] = defaultdict(list)
    wanted = [pk for f in shown for pk in f.subscription_ids]
    for sub in (
        Subscription.objects.filter(pk__in=wanted)
        .select_related("owner__membership")
        .order_by("owner__email", "label")
        if wanted
        else []
    ):
        subscriptions[sub.owner_id].append(sub)
    members = []
    for figures in shown:
        subs = subscriptions[figures.owner_id]
        owner = subs[0].owner
        membership = getattr(owner, "membership", None)
        members.append(
            MemberPlanValue(
                owner=owner,
                former=membership is None or membership.team_id != team.pk,
                subscriptions=subs,
                unknown_plans=figures.unknown,
                plan_cost=figures.plan_cost,
                api_cost=figures.api_money,
            )
        )
    return TeamPlanValue(
        since=since,
        until=until,
        members=members,
        plan_cost=sum((f.plan_cost or Decimal(0) for f in ranked), Decimal(0)),
        api_cost=sum((f.api_money for f in ranked), Decimal(0)),
        unknown_plans=sum(f.unknown for f in ranked),
        member_count=len(ranked),
        any_known=any(f.plan_cost is not None for f in ranked),
        api_cost_of_known_plans=sum((f.api_money for f in ranked if not f.unknown), Decimal(0)),
    )


def _subscription_costs(team, since: date, until: date) -> list[tuple]:
    """(pk, owner id, owner email, plan, own monthly price, API value in USD) of every
    subscription used in `team`: its members' and those of the team's machines. The API value
    is the Claude Code cost in [since, until] (team days) of the subscription's machines in
    the team, from the rollups' machine rows, summed in one query."""
    part = rollups.Slice(rollups.MACHINE, team_id=team.pk, key_texts=(Source.CLAUDE_CODE,))
    costs, cost_params = rollups.cost_by_key_sql(part, since, until)
    # Built from constants and the rollups' own SQL; values go in as parameters.
    sql = (
        "SELECT s.id, s.owner_id, u.email, s.plan, s.monthly_price_usd, SUM(c.cost_usd) "  # noqa: S608
        "FROM usage_subscription s JOIN accounts_user u ON u.id = s.owner_id "
        "LEFT JOIN usage_machine m ON m.subscription_id = s.id AND m.team_id = %s "
        f"LEFT JOIN ({costs}) c ON c.key_id = m.id "
        "WHERE s.owner_id IN (SELECT user_id FROM accounts_membership WHERE team_id = %s) "
        "OR s.id IN (SELECT subscription_id FROM usage_machine WHERE team_id = %s) "
        "GROUP BY s.id, s.owner_id, u.email, s.plan, s.monthly_price_usd"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [team.pk, *cost_params, team.pk, team.pk])
        rows = cursor.fetchall()
    return [
        (*row[:4], _decimal_or_none(row[4]), _decimal_or_none(row[5]) or Decimal(0)) for row in rows
    ]


def _decimal_or_none(value) -> Decimal | None:
    # SQLite hands sums and decimals over as floats or text.
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


@dataclass(frozen=True)
class _PriceOf:
    """The two fields monthly_price reads, from a light row."""

    plan: str
    monthly_price_usd: Decimal | None
