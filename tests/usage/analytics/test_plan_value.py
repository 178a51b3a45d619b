"""Plan value: the plan's price against the API-equivalent cost, and the cheapest fitting plan."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests.factories import (
    MachineFactory,
    SubscriptionFactory,
    daily,
    hour,
    hourly,
    snapshot,
    utc,
)
from usage.analytics.plan_value import plan_value
from usage.models import Plan, PlanPrice

pytestmark = pytest.mark.django_db

NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))


def spend(machine, per_day: str, days: int = 10, source: str = "claude-code"):
    for offset in range(days):
        daily(machine, date(2026, 11, 1) + timedelta(days=offset), per_day, source=source)


def test_the_seeded_price_table_has_every_plan_but_the_unknown_one():
    prices = {p.plan: p.monthly_usd for p in PlanPrice.objects.all()}
    assert set(prices) == set(Plan.values) - {Plan.UNKNOWN}
    assert (prices["pro"], prices["max5x"], prices["max20x"]) == (20, 100, 200)


def test_savings_are_the_api_cost_minus_the_plans_price(subscription, laptop):
    spend(laptop, "30.00")  # $300 of API-equivalent usage on a $100 plan
    value = plan_value(subscription, *NOVEMBER)
    assert value.days == 30 and value.active_days == 10
    assert value.api_cost == Decimal("300.00")
    # 30 days of a $100/month plan, pro rata over the average month.
    assert value.plan_cost == Decimal("98.56")
    assert value.savings == Decimal("201.44")
    assert value.savings_pct == Decimal("67.15")
    assert value.cost_per_active_day == Decimal("9.86")
    assert value.api_cost_per_active_day == Decimal("30.00")


def test_only_claude_usage_counts_against_a_claude_plan(subscription, laptop):
    spend(laptop, "5.00", source="codex")
    value = plan_value(subscription, *NOVEMBER)
    assert value.api_cost == 0 and value.savings_pct is None and value.cost_per_active_day is None


def test_a_subscriptions_own_price_wins_over_the_table(member):
    sub = SubscriptionFactory(owner=member, plan=Plan.CUSTOM, monthly_price_usd=Decimal("60.875"))
    value = plan_value(sub, date(2026, 11, 1), date(2026, 11, 30))
    assert value.monthly_price == Decimal("60.88")
    unknown = SubscriptionFactory(owner=member, plan=Plan.CUSTOM)
    assert plan_value(unknown, *NOVEMBER).plan_cost is None


def test_an_edited_price_in_the_table_is_used(subscription, laptop):
    PlanPrice.objects.filter(plan=Plan.MAX5X).update(monthly_usd=Decimal("90"))
    assert plan_value(subscription, *NOVEMBER).monthly_price == Decimal("90.00")


def test_light_usage_on_a_big_plan_suggests_a_smaller_one(subscription, laptop):
    spend(laptop, "10.00")
    # Peak weekly use of 15% of Max 5x is 0.75 Pro: Pro covers it.
    snapshot(laptop, utc(2026, 11, 10, 12), five=12, seven=15)
    value = plan_value(subscription, *NOVEMBER)
    assert value.peak_utilization_pct == 15
    assert value.suggestion.plan == Plan.PRO
    assert "0.8x Pro" in value.suggestion.reason


def test_limit_hits_worth_more_than_the_price_difference_suggest_a_bigger_plan(
    subscription, laptop
):
    spend(laptop, "40.00", days=30)
    snapshot(laptop, utc(2026, 11, 10, 12), five=100, seven=81)
    for day in range(1, 11):
        start = utc(2026, 11, day, 10)
        # $20 in the hour, last request at 10:30, the limit resets at 15:00: 4.5 h lost.
        hourly(laptop, start, cost="20.00", minutes=30, limit_reset_at=start + timedelta(hours=5))
    value = plan_value(subscription, *NOVEMBER)
    assert value.limit_hit_hours == 10
    assert value.lost_hours == Decimal("45.0")
    # 45 h at $20 an active hour = $900 in November's 30 days.
    assert value.lost_value == Decimal("900.00")
    # Staying: $100 + $900 x 30.436875 / 30 = $1,013.11 a month; Max 20x: $200; the API:
    # $1,200 + $900 over 30 days scaled to a month, far more.
    assert value.suggestion.plan == Plan.MAX20X
    assert "10 hours hit Max 5x's usage limit" in value.suggestion.reason
    assert "worth $913.11 a month" in value.suggestion.reason
    assert value.fit_note.startswith("Pro would not cover it")


def test_one_limit_hit_hour_does_not_push_a_pro_user_to_pay_as_you_go(member):
    pro = SubscriptionFactory(owner=member, plan=Plan.PRO)
    machine = MachineFactory(owner=member, subscription=pro)
    spend(machine, "2.00", days=26)  # $52 of API-equivalent use in November
    snapshot(machine, utc(2026, 11, 10, 12), five=100, seven=40)
    # The small bucket: $0.10, last request at 11:30; the limit resets at 13:00.
    hour(machine, utc(2026, 11, 10, 11), limit_reset_at=utc(2026, 11, 10, 13))
    value = plan_value(pro, *NOVEMBER)
    assert value.limit_hit_hours == 1
    assert value.lost_hours == Decimal("1.5")
    assert value.lost_value == Decimal("0.15")
    # Staying costs $20 + $0.15; pay as you go $52 x 30.436875 / 30 + $0.15 = $52.91.
    assert value.suggestion is None
    assert value.fit_note == (
        "Pro at $20.00 a month is still the cheapest fit (1 hour hit Pro's usage limit, "
        "losing about 1 h 30 min of use worth $0.15 a month at API prices): "
        "API (pay as you go) would cost $52.91 a month; Max 5x would cost $100.00 a month; "
        "Max 20x would cost $200.00 a month."
    )


def test_without_quota_readings_only_pay_as_you_go_is_compared(subscription, laptop):
    spend(laptop, "1.00", days=3)
    value = plan_value(subscription, *NOVEMBER)
    assert value.suggestion.plan == Plan.API
    assert value.suggestion.monthly_usd == Decimal("3.04")
    heavy = SubscriptionFactory(owner=subscription.owner, plan=Plan.PRO)
    spend(MachineFactory(owner=subscription.owner, subscription=heavy), "50.00")
    assert plan_value(heavy, *NOVEMBER).suggestion is None


def test_pay_as_you_go_costs_exactly_its_usage(member):
    api = SubscriptionFactory(owner=member, plan=Plan.API)
    spend(MachineFactory(owner=member, subscription=api), "2.00")
    value = plan_value(api, *NOVEMBER)
    assert value.plan_cost == value.api_cost == Decimal("20.00")
    assert value.savings == 0


def test_an_unknown_plan_shows_the_api_value_only(member):
    sub = SubscriptionFactory(owner=member, plan=Plan.UNKNOWN, monthly_price_usd=Decimal("100"))
    machine = MachineFactory(owner=member, subscription=sub)
    spend(machine, "30.00")
    snapshot(machine, utc(2026, 11, 10, 12), five=100, seven=81)
    value = plan_value(sub, *NOVEMBER)
    assert value.api_cost == Decimal("300.00")
    assert (value.plan, value.plan_label) == ("unknown", "Plan unknown")
    assert (value.monthly_price, value.plan_cost, value.savings, value.savings_pct) == (None,) * 4
    assert value.cost_per_active_day is None and value.suggestion is None


def test_a_subscription_created_by_a_first_sync_has_no_plan_yet(member):
    from usage.models import Subscription

    assert Subscription.default_for(member).plan == Plan.UNKNOWN


def test_many_subscriptions_at_once_equal_each_one_alone(
    member, admin, django_assert_max_num_queries
):
    """plan_values reads each figure for all subscriptions together (the API's team list);
    each subscription's figures equal plan_value of it alone, with no spill between them, in
    queries that do not grow with their number."""
    from usage.analytics.plan_value import plan_values

    subs = []
    for n, (owner, plan) in enumerate(
        [(member, Plan.PRO), (member, Plan.API), (admin, Plan.MAX5X), (admin, Plan.UNKNOWN)]
    ):
        sub = SubscriptionFactory(owner=owner, plan=plan, label=f"account {n}")
        machine = MachineFactory(owner=owner, subscription=sub)
        spend(machine, f"{n + 1}.50", days=5 + n)
        snapshot(machine, utc(2026, 11, 3, 12), five=20 * (n + 1), seven=10 + n)
        for day in range(1, 2 + n):
            start = utc(2026, 11, day, 9)
            hourly(
                machine,
                start,
                cost="3.00",
                minutes=20 + n,
                limit_reset_at=start + timedelta(hours=2),
            )
        subs.append(sub)
    # A second machine of the first account adds to its figures, not another's.
    spend(MachineFactory(owner=member, subscription=subs[0]), "0.25", days=3)
    with django_assert_max_num_queries(8):
        together = plan_values(subs, *NOVEMBER)
    for sub in subs:
        assert together[sub.pk] == plan_value(sub, *NOVEMBER)
    assert together[subs[0].pk].api_cost == Decimal("8.25")  # 5 x 1.50 + 3 x 0.25
    assert together[subs[3].pk].limit_hit_hours == 4
    for n in range(4, 12):
        sub = SubscriptionFactory(owner=admin, plan=Plan.PRO, label=f"more {n}")
        spend(MachineFactory(owner=admin, subscription=sub), "1.00", days=2)
        subs.append(sub)
    with django_assert_max_num_queries(8):
        assert len(plan_values(subs, *NOVEMBER)) == 12
