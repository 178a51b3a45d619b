"""The overview: today/week/month, running blocks, quota bars, plan value, pace, budgets."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Role
from tests.conftest import login, make_member
from tests.dashboards.conftest import NOW
from tests.factories import BudgetFactory, MachineFactory, daily, rate_limit
from usage.analytics.blocks import recompute_blocks
from usage.models import DailyUsage, Subscription

pytestmark = pytest.mark.django_db

URL = "/"


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = login(None).get(URL)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_a_member_sees_today_this_week_and_this_month(populated, member):
    response = login(member).get(URL)
    assert response.status_code == 200
    summary = response.context["summary"]
    # 3 machines, $1.50 a day each; Nov 24 2026 is a Tuesday.
    assert summary.today.cost_usd == Decimal("4.5")
    assert summary.week.cost_usd == Decimal("9")
    assert summary.month.cost_usd == Decimal("22.5")
    assert summary.month.total_tokens == 1_500_000
    html = response.content.decode()
    assert '<span class="value" id="stat-today">$4.50</span>' in html
    assert "1.5M tokens" in html


def test_the_figures_match_the_read_api(populated, member):
    client = login(member)
    summary = client.get(URL).context["summary"]
    api = client.get(
        "/api/v1/usage/", {"group_by": "day", "since": "2026-11-01", "until": "2026-11-24"}
    ).json()
    assert Decimal(api["totals"]["cost_usd"]) == summary.month.cost_usd
    assert api["totals"]["total_tokens"] == summary.month.total_tokens


def test_a_member_never_gets_the_team_view(populated, member):
    response = login(member).get(URL, {"scope": "team"})
    assert response.context["team_view"] is False
    assert response.context["summary"].month.cost_usd == Decimal("22.5")
    assert b"Whole team" not in response.content


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_switch_to_the_whole_team(populated, cast, role):
    response = login(cast[role]).get(URL, {"scope": "team"})
    assert response.context["team_view"] is True
    assert response.context["summary"].month.cost_usd == Decimal("67.5")
    assert len(response.context["by_machine"]) == 9
    labels = {row["label"] for row in response.context["by_machine"]}
    assert f"{role}-laptop" in labels
    assert "member-laptop (member@a.example)" in labels
    assert len(response.context["active"]) == 3


def test_an_outsider_sees_only_their_own_figures(populated, outsider):
    response = login(outsider).get(URL, {"scope": "team"})
    assert response.context["summary"].month.cost_usd == Decimal("99")
    assert b"member-laptop" not in response.content


def test_the_running_block_shows_its_machines(populated, member):
    response = login(member).get(URL)
    [card] = response.context["active"]
    assert {p["machine"].name for p in card.machines} == {"member-laptop", "member-desktop"}
    assert "Running 5-hour block" in response.content.decode()
    # The burn rate says the span it is measured over (here from the block's start).
    assert "tokens/min" in response.content.decode()
    assert "over 40 min of use, from the block's start" in response.content.decode()


def test_quota_bars_have_colour_classes_words_and_countdowns(populated, member):
    sub = populated.subscriptions["member"]
    laptop = populated.machines["member"][0]
    rate_limit(sub, laptop, NOW - timedelta(minutes=5), five_hour=85, seven_day=30)
    html = login(member).get(URL).content.decode()
    assert 'class="bar bar-bad"' in html
    assert "85% used</strong> · near the limit" in html
    assert 'class="bar bar-ok"' in html
    assert "30% used</strong> · low" in html
    assert "data-countdown=" in html


def test_a_stale_quota_reading_is_greyed_and_says_so(populated, member):
    sub = populated.subscriptions["member"]
    laptop = populated.machines["member"][0]
    rate_limit(sub, laptop, NOW - timedelta(hours=6), five_hour=95, seven_day=30)
    html = login(member).get(URL).content.decode()
    assert 'class="bar bar-stale"' in html
    assert "stale reading" in html
    assert "the window has reset since" in html


def test_plan_value_pace_and_the_method_are_shown(populated, member):
    response = login(member).get(URL)
    [item] = response.context["plan_values"]
    assert item["value"].api_cost == Decimal("22.50")
    html = response.content.decode()
    assert "Plan vs API value" in html
    assert "Daily average" in html
    assert 'id="pace-method"' in html


def test_budget_bars_show_spend_against_the_amount(populated, member, team_a):
    BudgetFactory(team=team_a, name="Team monthly", amount_usd=Decimal("100"))
    response = login(member).get(URL)
    [status] = response.context["budgets"]
    assert status.spent == Decimal("67.50")
    html = response.content.decode()
    assert "$67.50 of $100.00" in html


def test_insights_name_the_top_machine_and_project(populated, member):
    response = login(member).get(URL)
    machines = response.context["by_machine"]
    assert {m["label"] for m in machines} == {"member-laptop", "member-desktop", "member-server"}
    assert sum(m["share"] for m in machines) == pytest.approx(100)
    html = response.content.decode()
    assert 'id="top-machine"' in html
    assert 'id="top-project"' in html
    assert 'id="overview-data"' in html


def test_without_machines_the_page_says_how_to_get_data_in(member):
    response = login(member).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No usage yet" in html
    assert "/machines/#onboarding" in html


def test_the_page_runs_a_bounded_number_of_queries(
    populated, admin, team_a, django_assert_max_num_queries
):
    BudgetFactory(team=team_a, name="Team monthly", amount_usd=Decimal("100"))
    for role in ("owner", "admin", "member"):
        rate_limit(
            populated.subscriptions[role], populated.machines[role][0], NOW - timedelta(minutes=5)
        )
    client = login(admin)
    with django_assert_max_num_queries(28):  # +1: allow-list check per request
        client.get(URL)
    # +1: allow-list check per request; +1: the plan-value page's subscriptions are loaded
    # after everyone is ranked from light rows.
    with django_assert_max_num_queries(32):
        response = client.get(URL, {"scope": "team"})
    assert len(response.context["headroom"]) == 3


def test_an_unknown_plan_shows_the_api_value_and_asks_for_the_plan(member):
    from tests.factories import MachineFactory, daily
    from usage.models import Subscription

    sub = Subscription.default_for(member)  # as a member's first sync creates it
    daily(MachineFactory(owner=member, subscription=sub), NOW.date(), "10.00")
    response = login(member).get(URL)
    [item] = response.context["plan_values"]
    assert item["value"].plan_cost is None and item["value"].savings is None
    html = response.content.decode()
    assert "plan unknown" in html and "Plan unknown" in html
    assert "$10.00" in html
    assert "Paid extra" not in html and "Saved" not in html and "Cheapest fit" not in html
    choose = reverse("subscription_edit", args=[sub.public_id])
    assert f'<a href="{choose}">Choose the plan</a>' in html


@pytest.fixture
def big_team(populated, team_a):
    """12 more members in team A: person n has a running block that cost 20 + n USD so far
    and spent 20 + n USD today (more than any populated member, who spent 22.50 in 5 days)."""
    from tests.factories import hourly

    people = []
    for n in range(12):
        person = make_member(team_a, f"person{n:02}@a.example", Role.MEMBER)
        sub = Subscription.default_for(person)
        machine = MachineFactory(owner=person, subscription=sub, name=f"pc{n:02}")
        daily(machine, NOW.date(), Decimal(20 + n), project=populated.projects[0])
        hourly(machine, NOW.replace(hour=13, minute=0), cost=Decimal(20 + n))
        recompute_blocks(sub.pk, now=NOW)
        people.append(person)
    return people


def test_the_team_overview_shows_the_costliest_running_blocks_and_links_to_all(big_team, admin):
    response = login(admin).get(URL, {"scope": "team"})
    cards = response.context["active"]
    # 3 populated members' blocks and 12 more run now; the 6 costliest are shown.
    assert response.context["active_count"] == 15
    assert len(cards) == 6
    costs = [card.block.cost_usd for card in cards]
    assert costs == sorted(costs, reverse=True)
    assert cards[0].block.subscription.owner.email == "person11@a.example"
    html = response.content.decode()
    assert 'id="all-running-blocks">All 15 running blocks</a>' in html
    assert "the 6 costliest of 15" in html
    # The personal overview still shows one's own running block only.
    own = login(admin).get(URL)
    assert own.context["active_count"] == len(own.context["active"]) == 1


def test_the_team_plan_table_shows_the_biggest_spenders_a_page_at_a_time(big_team, admin):
    client = login(admin)
    first = client.get(URL, {"scope": "team", "preset": "7d"})
    plan = first.context["team_plan"]
    # 3 populated members and 12 people; a page shows the 10 biggest API values.
    assert plan.member_count == 15
    assert len(plan.members) == 10
    assert plan.members[0].owner.email == "person11@a.example"
    values = [m.api_cost for m in plan.members]
    assert values == sorted(values, reverse=True)
    html = first.content.decode()
    assert "?scope=team&amp;preset=7d&amp;plan_page=2#value-title" in html
    second = client.get(URL, {"scope": "team", "preset": "7d", "plan_page": "2"})
    rest = second.context["team_plan"].members
    assert len(rest) == 5
    assert {m.owner.email for m in plan.members}.isdisjoint({m.owner.email for m in rest})
    # The totals cover everyone on every page: the rows of both pages add up to them.
    assert (
        second.context["team_plan"].api_cost
        == plan.api_cost
        == sum((m.api_cost for m in plan.members + rest), Decimal(0))
    )
    # Past the end: the last page; not a number: the first.
    assert (
        client.get(URL, {"scope": "team", "plan_page": "9"}).context["team_plan_page"].number == 2
    )
    assert (
        client.get(URL, {"scope": "team", "plan_page": "x"}).context["team_plan_page"].number == 1
    )


def test_a_member_gets_no_team_plan_page_whatever_they_ask(big_team, member):
    response = login(member).get(URL, {"scope": "team", "plan_page": "2"})
    assert response.context["team_view"] is False
    assert response.context["team_plan"] is None
    assert response.context["headroom"] == []
    assert "person11@a.example" not in response.content.decode()


def test_an_outsider_sees_only_their_own_teams_plans_and_blocks(big_team, outsider):
    response = login(outsider).get(URL, {"scope": "team", "plan_page": "2"})
    plan = response.context["team_plan"]
    assert [m.owner.email for m in plan.members] == ["outsider@b.example"]
    assert all(
        c.block.subscription.owner.email == "outsider@b.example" for c in response.context["active"]
    )


def test_the_team_machine_card_names_the_costliest_and_sums_the_rest_exactly(big_team, admin):
    """15 people's 21 machines: the 8 costliest shown, the other 13 folded, the same figures
    as the full breakdown by machine."""
    from dashboards.cards import shares
    from usage import queries

    response = login(admin).get(URL, {"scope": "team"})
    card = response.context["by_machine"]
    full = shares(
        queries.aggregate_usage(
            admin,
            group_by="machine",
            since=NOW.date().replace(day=1),
            until=NOW.date(),
            scope="team",
        )
    )

    # The page adds each machine's owner to its name; the figures are the full breakdown's.
    def figures(rows):
        return [(r["key"], r["cost_usd"], r["total_tokens"], r["share"]) for r in rows]

    assert figures(card) == figures(full)
    assert len(card) == 9
    assert card[0]["label"].startswith("pc11")
    assert card[-1]["label"] == "13 others"
    assert sum(r["cost_usd"] for r in card) == response.context["summary"].period.cost_usd
    # The count is every machine with usage in the period, not the card's 9 rows.
    with_usage = (
        DailyUsage.objects.filter(
            machine__team=admin.membership.team,
            day__gte=NOW.date().replace(day=1),
            day__lte=NOW.date(),
        )
        .values("machine")
        .distinct()
        .count()
    )
    assert with_usage == 21
    assert response.context["machine_count"] == with_usage
    assert '<dd id="machine-count">21</dd>' in response.content.decode()


def test_team_machines_cut_keeps_a_single_leftover_and_checks_permissions(populated, cast):
    from django.core.exceptions import PermissionDenied

    from dashboards.cards import shares
    from usage import queries

    day = NOW.date()
    # 9 machines in team A: 8 + 1 left over is shown, not folded into "1 others".
    cut = shares(queries.top_team_machines(cast["admin"], since=day, until=day, limit=9), limit=8)
    assert cut == shares(
        queries.aggregate_usage(
            cast["admin"], group_by="machine", since=day, until=day, scope="team"
        )
    )
    assert len(cut) == 9 and not any(r["label"].endswith("others") for r in cut)
    with pytest.raises(PermissionDenied):
        queries.top_team_machines(cast["member"], since=day, until=day, limit=9)
    outsider = queries.top_team_machines(cast["outsider"], since=day, until=day, limit=9)
    assert {r["label"] for r in outsider["results"]} == {"outsider-box"}
