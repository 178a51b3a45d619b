"""GET /api/v1/budgets/: the same visibility as the page, for tokens and browser sessions."""

from datetime import date

import pytest

from tests.budgets.conftest import spend
from tests.conftest import api_client, token_for
from tests.factories import machine_for, make_budget, project_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/budgets/"


@pytest.fixture
def budgets(team_a, team_b, admin, member):
    project = project_for(team_a, "-home-dev-src-webapp", display_name="webapp")
    return [
        make_budget(team_a, "500", name="Team month"),
        make_budget(team_a, "100", name="Webapp", scope="project", project=project),
        make_budget(team_a, "50", name="Member cap", scope="member", member=member),
        make_budget(team_a, "80", name="Admin cap", scope="member", member=admin),
        make_budget(team_a, "80", name="Paused", active=False),
        make_budget(team_b, "999", name="Team B month"),
    ]


def names(response) -> list[str]:
    return sorted(r["name"] for r in response.json()["results"])


def test_a_member_token_lists_the_budgets_that_concern_the_member(member, budgets):
    spend(machine_for(member), date.today(), "12.5")
    response = api_client(token_for(member, ["read"])).get(URL)
    assert response.status_code == 200
    assert names(response) == ["Member cap", "Team month", "Webapp"]
    mine = next(r for r in response.json()["results"] if r["name"] == "Member cap")
    assert mine["scope"] == "member"
    assert mine["member"]["email"] == "member@a.example"
    assert mine["amount_usd"] == "50.00"
    assert mine["spent_usd"] == "12.50"
    assert mine["percent"] == 25.0
    assert mine["thresholds"] == [90, 100]
    assert set(mine) >= {"period_start", "period_end", "projected_usd", "projected_day", "level"}


def test_an_admin_token_lists_every_active_budget_of_the_team(admin, budgets):
    response = api_client(token_for(admin, ["read"])).get(URL)
    assert names(response) == ["Admin cap", "Member cap", "Team month", "Webapp"]


def test_an_outsider_sees_only_their_own_teams_budgets(outsider, budgets):
    response = api_client(token_for(outsider, ["read"])).get(URL)
    assert names(response) == ["Team B month"]


def test_a_logged_in_browser_session_may_read_it(client, member, budgets):
    client.force_login(member)
    assert client.get(URL).status_code == 200


def test_no_token_is_401_and_an_ingest_only_token_is_403(member, budgets):
    assert api_client().get(URL).status_code == 401
    response = api_client(token_for(member, ["ingest"])).get(URL)
    assert response.status_code == 403
    assert "read" in response.json()["detail"]


def test_the_list_costs_a_bounded_number_of_queries(admin, budgets, django_assert_max_num_queries):
    client = api_client(token_for(admin, ["read"]))
    # Three per budget (four here) plus the token, the throttle's cache and the team.
    with django_assert_max_num_queries(24):
        assert client.get(URL).status_code == 200
