"""The team page: totals for every member, per member figures and headroom for those who may."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from budgets.models import EnforcementEvent
from tests.conftest import login
from tests.dashboards.conftest import NOW
from tests.factories import MachineFactory, daily, rate_limit

pytestmark = pytest.mark.django_db

URL = "/team/"


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = login(None).get(URL)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_see_every_member_with_this_months_cost(populated, cast, role):
    response = login(cast[role]).get(URL)
    assert response.status_code == 200
    members = {m["user"].email: m for m in response.context["members"]}
    assert set(members) == {"owner@a.example", "admin@a.example", "member@a.example"}
    assert members["member@a.example"]["cost_usd"] == Decimal("22.5")
    assert members["member@a.example"]["today_usd"] == Decimal("4.5")
    assert members["member@a.example"]["machines"] == 3
    assert response.context["summary"].month.cost_usd == Decimal("67.5")
    html = response.content.decode()
    assert "outsider" not in html
    assert 'id="team-data"' in html


def test_a_member_sees_the_team_totals_but_nobody_elses_figures(populated, member):
    response = login(member).get(URL)
    assert response.context["summary"].month.cost_usd == Decimal("67.5")
    assert response.context["members"] == []
    html = response.content.decode()
    assert "admin@a.example" not in html
    assert "each member's figures are for admins" in html


def test_members_see_each_other_when_the_team_allows_it(populated, member, team_a):
    team_a.members_see_each_other = True
    team_a.save()
    response = login(member).get(URL)
    assert len(response.context["members"]) == 3


def test_an_outsider_sees_their_own_team_only(populated, outsider):
    response = login(outsider).get(URL)
    assert response.context["summary"].month.cost_usd == Decimal("99")
    assert [m["user"].email for m in response.context["members"]] == ["outsider@b.example"]


def test_the_headroom_list_puts_the_closest_to_a_limit_first(populated, admin):
    rate_limit(
        populated.subscriptions["member"],
        populated.machines["member"][0],
        NOW - timedelta(minutes=5),
        five_hour=92,
        seven_day=40,
    )
    rate_limit(
        populated.subscriptions["owner"],
        populated.machines["owner"][0],
        NOW - timedelta(minutes=5),
        five_hour=20,
        seven_day=35,
    )
    response = login(admin).get(URL)
    headroom = response.context["headroom"]
    assert headroom[0]["row"].member_email == "member@a.example"
    html = response.content.decode()
    assert "92% used</strong> · near the limit" in html


def test_an_admin_drills_down_into_a_member(populated, admin, member):
    response = login(admin).get(URL, {"member": str(member.public_id)})
    assert response.status_code == 200
    assert response.context["target"] == member
    assert response.context["summary"].month.cost_usd == Decimal("22.5")
    assert {m["machine"].name for m in response.context["machines"]} == {
        "member-laptop",
        "member-desktop",
        "member-server",
    }
    assert len(response.context["by_project"]) == 3
    assert b'id="member-data"' in response.content


def test_a_member_may_open_their_own_drill_down(populated, member):
    response = login(member).get(URL, {"member": str(member.public_id)})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("role", "target"),
    [("member", "admin"), ("outsider", "member"), ("admin", "outsider")],
)
def test_a_drill_down_into_someone_not_visible_is_404(populated, cast, role, target):
    response = login(cast[role]).get(URL, {"member": str(cast[target].public_id)})
    assert response.status_code == 404


@pytest.mark.parametrize("value", ["nobody", "00000000-0000-0000-0000-000000000000", "x" * 300])
def test_a_drill_down_into_an_unknown_member_is_404(populated, admin, value):
    assert login(admin).get(URL, {"member": value}).status_code == 404


def test_the_page_runs_a_bounded_number_of_queries(
    populated, admin, team_a, django_assert_max_num_queries
):
    from tests.conftest import make_member

    for n in range(8):
        person = make_member(team_a, f"extra{n}@a.example", "member")
        machine = MachineFactory(owner=person)
        daily(machine, NOW.date(), project=populated.projects[0])
        rate_limit(machine.subscription, machine, NOW - timedelta(minutes=n))
    client = login(admin)
    # +1: allow-list check per request; +1: the warnings and stops in Claude Code;
    # +2: the productivity card (its figures and their cost); +3: the members named after
    # their rollup rows are summed, for the period, today and the productivity card's cost.
    with django_assert_max_num_queries(22):
        response = client.get(URL)
    assert len(response.context["members"]) == 11
    with django_assert_max_num_queries(19):  # +1: allow-list check per request
        client.get(URL, {"member": str(populated.machines["member"][0].owner.public_id)})


@pytest.fixture
def events(cast, team_a, team_b):
    """A stop of the member and a warning of the admin in team A; one of team B's owner."""
    for user, kind, label in (
        (cast["member"], "stop", "Member budget"),
        (cast["admin"], "warn", "Team budget"),
    ):
        EnforcementEvent.objects.create(
            team=team_a,
            member=user,
            kind=kind,
            subject=f"budget:{label}",
            label=label,
            period_key="2026-11",
            threshold=100 if kind == "stop" else 80,
            data={"spent_usd": "101.00", "cap_usd": "100.00"},
        )
    EnforcementEvent.objects.create(
        team=team_b,
        member=cast["outsider"],
        kind="stop",
        subject="budget:b",
        label="Outsider budget",
        period_key="2026-11",
        threshold=100,
    )


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_see_every_warning_and_stop_in_claude_code_on_the_team_page(events, cast, role):
    html = login(cast[role]).get(URL).content.decode()
    assert "Warnings and stops in Claude Code" in html
    assert "Member budget" in html and "Team budget" in html
    assert "Outsider budget" not in html


def test_a_member_sees_only_their_own_warnings_and_stops(events, member):
    html = login(member).get(URL).content.decode()
    assert "Member budget" in html
    assert "Team budget" not in html and "Outsider budget" not in html


def test_an_outsider_sees_only_their_own_teams_warnings_and_stops(events, outsider):
    html = login(outsider).get(URL).content.decode()
    assert "Outsider budget" in html
    assert "Member budget" not in html
