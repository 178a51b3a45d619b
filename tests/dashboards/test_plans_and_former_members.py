"""The overview's plan cards (the cheapest fit explained, the whole team's plans per member)
and former members' spend kept in every breakdown, marked as former."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from accounts.team import remove_member
from tests.conftest import login, make_member
from tests.dashboards.conftest import NOW
from tests.factories import MachineFactory, daily, hour, snapshot
from usage.models import Plan

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def former(populated, team_a, owner):
    """Someone who spent $16 on the 23rd and was then removed from the team."""
    person = make_member(team_a, "gone@a.example", "member")
    machine = MachineFactory(owner=person, name="gone-box")
    daily(machine, (NOW - timedelta(days=1)).date(), cost="16.00", project=populated.projects[0])
    remove_member(owner.membership, person.membership)
    return person


def test_the_cheapest_fit_card_says_why_the_plan_stays(populated, member):
    sub = populated.subscriptions["member"]
    sub.plan = Plan.PRO
    sub.save()
    laptop = populated.machines["member"][0]
    snapshot(laptop, NOW - timedelta(hours=3), five=100, seven=40)
    hour(laptop, NOW.replace(hour=9, minute=0), limit_reset_at=NOW.replace(hour=11, minute=0))
    html = login(member).get("/").content.decode()
    assert 'class="hint cheapest-fit">Pro at $20.00 a month is still the cheapest fit' in html
    assert "1 hour hit Pro&#x27;s usage limit, losing about 1 h 30 min of use" in html


def test_the_team_overview_shows_every_members_plans(populated, admin, member, former):
    sub = populated.subscriptions["member"]
    sub.plan = Plan.PRO
    sub.save()
    response = login(admin).get("/", {"scope": "team"})
    team_plan = response.context["team_plan"]
    assert response.context["plan_values"] == []
    rows = {m.owner.email: m for m in team_plan.members}
    assert set(rows) == {
        "owner@a.example",
        "admin@a.example",
        "member@a.example",
        "gone@a.example",
    }
    # Pro's $20 for Nov 1-24 pro rata: 20 x 24 / 30.436875 = 15.77; 3 machines x 5 days x $1.50.
    assert rows["member@a.example"].plan_cost == Decimal("15.77")
    assert rows["member@a.example"].api_cost == Decimal("22.50")
    assert rows["member@a.example"].savings == Decimal("6.73")
    # Plans nobody chose are unknown, never guessed: the admin's only plan is unknown; the
    # owner's spare Max 5x counts ($100 x 24 / 30.436875) but no difference is claimed.
    assert rows["admin@a.example"].plan_cost is None
    assert rows["owner@a.example"].plan_cost == Decimal("78.85")
    assert rows["owner@a.example"].unknown_plans == 1
    assert rows["owner@a.example"].savings is None
    assert rows["gone@a.example"].former is True
    assert rows["gone@a.example"].api_cost == Decimal("16.00")
    assert team_plan.api_cost == Decimal("83.50")
    html = response.content.decode()
    assert 'id="team-plan-table"' in html
    # Pro pro rata and the spare Max 5x: 15.77 + 78.85; the owner's, the admin's and the
    # former member's default subscriptions have no plan chosen.
    assert '<dd id="team-plan-cost">$94.62 <span class="muted">+ 3 plans unknown' in html


def test_a_team_without_any_known_plan_shows_no_plan_spend(populated, admin):
    populated.subscriptions["owner_spare"].delete()
    html = login(admin).get("/", {"scope": "team"}).content.decode()
    assert '<dd id="team-plan-cost">plan unknown' in html
    assert "$0.00 <span" not in html


def test_a_member_never_gets_the_team_plans(populated, member):
    response = login(member).get("/", {"scope": "team"})
    assert response.context["team_plan"] is None
    assert b"team-plan-table" not in response.content


def test_former_members_stay_in_the_team_table_so_rows_add_up(populated, admin, former):
    response = login(admin).get("/team/")
    members = response.context["members"]
    gone = [m for m in members if m["user"] == former]
    assert len(gone) == 1 and gone[0].get("former") is True
    assert gone[0]["cost_usd"] == Decimal("16.00")
    # 3 people x 3 machines x 5 days x $1.50 = $67.50, plus the former member's $16.
    assert sum(m["cost_usd"] for m in members) == response.context["summary"].period.cost_usd
    assert response.context["summary"].period.cost_usd == Decimal("83.50")
    assert "former</span>" in response.content.decode()


def test_former_members_are_marked_in_the_explorer_split(populated, admin, former):
    response = login(admin).get("/usage/", {"scope": "team", "split": "member"})
    labels = {r["key"]: r["label"] for r in response.context["data"]["results"]}
    assert labels[str(former.public_id)].endswith("(former member)")
    assert not any(
        label.endswith("(former member)")
        for key, label in labels.items()
        if key != str(former.public_id)
    )
