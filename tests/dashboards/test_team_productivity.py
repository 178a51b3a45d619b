"""The team page's productivity card: team totals for everyone in the team, each member's
lines, commits, cost per commit and per pull request, active time and accept rate for those
who may see other members; nothing of another team."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from dashboards.views import team as team_view
from tests.conftest import login
from tests.usage.api.test_productivity import send_work

pytestmark = pytest.mark.django_db

URL = reverse("team_dashboard")


@pytest.fixture
def worked(owner, member, outsider):
    send_work(owner, "3.00")  # 2 commits, 1 pull request each (see send_work)
    send_work(member, "1.00")
    send_work(outsider, "5.00")


def page(user):
    # The work is on Nov 20; the card shows the current month.
    with time_machine.travel(datetime(2026, 11, 25, 12, tzinfo=UTC), tick=False):
        return login(user).get(URL)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_see_each_members_productivity_and_cost_per_commit(cast, worked, role):
    response = page(cast[role])
    assert response.status_code == 200
    card = response.context["productivity"]
    assert card["totals"]["commits"] == 4
    rows = {row["label"]: row for row in card["members"]}
    member = rows[cast["member"].display_name]
    assert str(member["cost_per_commit"]) == "0.5000000000"
    html = response.content.decode()
    assert 'id="productivity-table"' in html
    assert "$0.50" in html  # the member's cost per commit: $1.00 / 2
    assert "$1.50" in html  # the owner's: $3.00 / 2
    assert "75%" in html  # 3 of 4 edits accepted


def test_a_member_sees_the_team_totals_but_no_one_elses_row(member, worked):
    response = page(member)
    assert response.status_code == 200
    card = response.context["productivity"]
    assert card["members"] == []
    assert card["totals"]["commits"] == 4  # the team's, shared like its cost
    html = response.content.decode()
    assert 'id="productivity-table"' not in html
    assert 'id="productivity-commits">4' in html


def test_an_outsider_sees_only_their_own_team(outsider, worked):
    card = page(outsider).context["productivity"]
    assert card["totals"]["commits"] == 2
    assert [row["label"] for row in card["members"]] == [outsider.display_name]


def test_without_otlp_metrics_the_card_says_how_to_set_them_up(owner):
    html = page(owner).content.decode()
    assert "No productivity figures yet" in html
    assert reverse("otlp_setup") in html


def test_anonymous_visitors_are_sent_to_log_in():
    assert login(None).get(URL).status_code == 302


@pytest.fixture
def one_a_page(monkeypatch):
    # Two members with metrics, one row a page: the paging a 1,000-member team sees.
    monkeypatch.setattr(team_view, "PRODUCTIVITY_PER_PAGE", 1)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_page_through_the_members_most_commits_first(cast, worked, one_a_page, role):
    first = page(cast[role])
    card = first.context["productivity"]
    assert card["members_page"].paginator.count == 2
    assert card["totals"]["commits"] == 4  # everyone's, not the page's
    html = first.content.decode()
    assert 'id="productivity-pages"' in html
    assert "productivity_page=2#productivity-title" in html
    with time_machine.travel(datetime(2026, 11, 25, 12, tzinfo=UTC), tick=False):
        second = login(cast[role]).get(URL, {"productivity_page": "2"})
    labels = [row["label"] for row in card["members"]]
    labels += [row["label"] for row in second.context["productivity"]["members"]]
    # Equal commits: the label decides (aggregate_productivity's order).
    assert labels == sorted([cast["owner"].display_name, cast["member"].display_name])
    with time_machine.travel(datetime(2026, 11, 25, 12, tzinfo=UTC), tick=False):
        past_the_end = login(cast[role]).get(URL, {"productivity_page": "9"})
    assert past_the_end.context["productivity"]["members_page"].number == 2


@pytest.mark.parametrize("role", ["member", "outsider"])
def test_no_page_shows_others_rows_to_those_who_may_not_see_them(cast, worked, one_a_page, role):
    with time_machine.travel(datetime(2026, 11, 25, 12, tzinfo=UTC), tick=False):
        response = login(cast[role]).get(URL, {"productivity_page": "2"})
    card = response.context["productivity"]
    if role == "member":
        assert card["members"] == [] and card["members_page"] is None
        assert 'id="productivity-pages"' not in response.content.decode()
    else:
        # An outsider is an admin of their own team: their own row only, one page.
        assert [row["label"] for row in card["members"]] == [cast["outsider"].display_name]
        assert card["members_page"].paginator.count == 1
