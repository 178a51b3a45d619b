"""The overview: today/week/month, running blocks, quota bars, plan value, pace, budgets."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from tests.conftest import login
from tests.dashboards.conftest import NOW
from tests.factories import BudgetFactory, rate_limit

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
    with django_assert_max_num_queries(31):  # +1: allow-list check per request
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
