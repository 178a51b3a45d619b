"""The team's plan value (plan_value.team_plan_values, which sums every subscription's API
value in the database from the rollups): each member's figures and the totals equal what
plan_value gives from the raw daily facts, subscription by subscription."""

from datetime import date
from decimal import Decimal

import pytest

from accounts.team import remove_member
from tests.conftest import make_member
from tests.factories import MachineFactory, SubscriptionFactory, daily
from usage.analytics import plan_value
from usage.models import Plan, Source, Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_usage(owner, admin, member, outsider, team_a):
    """Members with one or two accounts on every kind of plan, a Codex day (never in plan
    value), a day outside the period, and someone who left with their machine's spend."""
    pro = SubscriptionFactory(owner=member, label="Work", plan=Plan.PRO)
    api = SubscriptionFactory(owner=member, label="Side", plan=Plan.API)
    custom = SubscriptionFactory(owner=admin, plan=Plan.CUSTOM, monthly_price_usd="33.30")
    unknown = SubscriptionFactory(owner=owner, plan=Plan.UNKNOWN)
    max5 = SubscriptionFactory(owner=owner, label="Max", plan=Plan.MAX5X)
    for sub, costs in (
        (pro, ["1.10", "2.25"]),
        (api, ["4.05"]),
        (custom, ["0.33", "7.77"]),
        (unknown, ["12.50"]),
        (max5, ["3.33", "0.01"]),
    ):
        machine = MachineFactory(owner=sub.owner, subscription=sub)
        for n, cost in enumerate(costs):
            daily(machine, date(2026, 11, 10 + n), cost=cost)
    codex = MachineFactory(owner=member, subscription=pro)
    daily(codex, date(2026, 11, 12), cost="9.00", source=Source.CODEX)
    daily(MachineFactory(owner=admin, subscription=custom), date(2026, 10, 30), cost="50.00")
    gone = make_member(team_a, "gone@a.example", "member")
    gone_sub = SubscriptionFactory(owner=gone, plan=Plan.PRO)
    daily(MachineFactory(owner=gone, subscription=gone_sub), date(2026, 11, 11), cost="2.00")
    remove_member(owner.membership, gone.membership)
    # Another team's spend is never counted.
    daily(MachineFactory(owner=outsider), date(2026, 11, 11), cost="99.00")


@pytest.mark.parametrize(
    "since, until",
    [
        (date(2026, 11, 1), date(2026, 11, 30)),  # a whole month: its month rows
        (date(2026, 11, 11), date(2026, 11, 25)),  # part of a month: day rows
        (date(2026, 10, 15), date(2026, 11, 10)),  # across months
    ],
)
def test_every_members_figures_equal_plan_value_from_the_raw_facts(
    team_usage, team_a, since, until
):
    figures = plan_value.team_plan_values(team_a, since, until)
    used = Subscription.objects.filter(machines__team=team_a).distinct()
    members = list(Subscription.objects.filter(owner__membership__team=team_a))
    expected: dict[str, dict] = {}
    for sub in {*used, *members}:
        raw = plan_value.plan_value(sub, since, until)
        row = expected.setdefault(sub.owner.email, {"api": Decimal(0), "known": [], "unknown": 0})
        row["api"] += raw.api_cost
        if raw.plan_cost is None:
            row["unknown"] += 1
        else:
            row["known"].append(raw.plan_cost)
    got = {m.owner.email: m for m in figures.members}
    assert set(got) == set(expected)
    for email, row in expected.items():
        member = got[email]
        assert member.api_cost == row["api"], email
        assert member.unknown_plans == row["unknown"], email
        if row["known"]:
            # plan_value rounds each subscription to the cent, the team sums first.
            assert abs(member.plan_cost - sum(row["known"])) <= Decimal("0.01") * len(
                row["known"]
            ), email
        else:
            assert member.plan_cost is None
    assert figures.api_cost == sum(row["api"] for row in expected.values())
    assert figures.member_count == len(expected)
    # Biggest API value first, then email; the page is a slice of the same order.
    order = [m.owner.email for m in figures.members]
    assert order == sorted(order, key=lambda e: (-got[e].api_cost, e))
    page = plan_value.team_plan_values(team_a, since, until, offset=1, limit=2)
    assert [m.owner.email for m in page.members] == order[1:3]
    assert (page.api_cost, page.plan_cost) == (figures.api_cost, figures.plan_cost)


def test_the_figures_take_three_queries_whatever_the_team_size(
    team_usage, team_a, django_assert_max_num_queries
):
    with django_assert_max_num_queries(3):
        plan_value.team_plan_values(team_a, date(2026, 11, 1), date(2026, 11, 30), limit=2)
