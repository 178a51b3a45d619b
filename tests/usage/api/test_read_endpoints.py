"""GET /api/v1/usage/, machines/, sessions/ and projects/: right sums, and only for who may see."""

from decimal import Decimal

import pytest
from rest_framework.serializers import ModelSerializer

from accounts.models import User
from tests.conftest import api_client, token_for
from tests.factories import session
from tests.usage.ingest.helpers import (
    ACTIVE_SESSION,
    API_SERVER,
    INFRA,
    OUTPUT,
    ROLES,
    WEBAPP,
    cents,
    envelope,
    expected_totals,
    fixture_reports,
    load,
    post,
)
from usage.api import sessions as sessions_api
from usage.api.sessions import SessionSerializer
from usage.models import DailyUsage, Machine, Project, SessionUsage
from usage.queries import aggregate_usage

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/usage/"
MACHINES = "/api/v1/machines/"
SESSIONS = "/api/v1/sessions/"
PROJECTS = "/api/v1/projects/"
ONE_MACHINE = expected_totals(OUTPUT) if OUTPUT.exists() else {}
# The sessions ccusage reports for one fixture machine.
# A nested subagent transcript (a `/` in its project path) belongs to its parent session.
SESSIONS_PER_MACHINE = len(
    [s for s in load(OUTPUT / "claude-session.json")["sessions"] if "/" not in s["projectPath"]]
)


@pytest.fixture
def data(fixtures_dir, cast):
    """The fixture machine's reports sent by the owner, the member and the outsider."""
    machines = {}
    for role in ("owner", "member", "outsider"):
        body = envelope(fixture_reports(), name=f"{role}-pc")
        assert post(api_client(token_for(cast[role])), body).status_code == 201
        machines[role] = Machine.objects.get(uuid=body["machine"]["uuid"])
    return machines


def client_for(user, scopes=("read",)):
    return api_client(token_for(user, scopes=scopes))


def totals(response) -> tuple[int, Decimal]:
    body = response.json()["totals"]
    return body["total_tokens"], cents(body["cost_usd"])


def times(n: int) -> tuple[int, Decimal]:
    return n * ONE_MACHINE["total_tokens"], cents(n * ONE_MACHINE["cost_usd"])


# --- /api/v1/usage/ -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "group_by", ["day", "week", "month", "project", "model", "machine", "member", "source"]
)
def test_every_grouping_adds_up_to_the_same_totals(data, cast, group_by):
    response = client_for(cast["admin"]).get(USAGE, {"group_by": group_by, "scope": "team"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert totals(response) == times(2)
    assert sum(row["total_tokens"] for row in body["results"]) == body["totals"]["total_tokens"]
    for row in body["results"]:
        assert row["total_tokens"] == (
            row["input_tokens"]
            + row["output_tokens"]
            + row["cache_creation_tokens"]
            + row["cache_read_tokens"]
        )
        assert isinstance(row["cost_usd"], str) and Decimal(row["cost_usd"]) >= 0


def test_time_groupings_have_readable_keys_and_weeks_start_on_monday(data, cast):
    client = client_for(cast["owner"])
    days = client.get(USAGE, {"group_by": "day"}).json()["results"]
    assert [r["key"] for r in days][:2] == ["2026-11-16", "2026-11-17"]
    weeks = client.get(USAGE, {"group_by": "week"}).json()["results"]
    assert [(r["key"], r["label"]) for r in weeks] == [
        ("2026-11-16", "2026-W47"),
        ("2026-11-23", "2026-W48"),
    ]
    months = client.get(USAGE, {"group_by": "month"}).json()["results"]
    assert [(r["key"], r["total_tokens"]) for r in months] == [
        ("2026-11", ONE_MACHINE["total_tokens"])
    ]


def test_sources_and_models_are_their_own_keys(data, cast):
    client = client_for(cast["owner"])
    sources = {r["key"]: r for r in client.get(USAGE, {"group_by": "source"}).json()["results"]}
    claude = pytest.importorskip("json").loads((OUTPUT / "claude-daily.json").read_text())
    assert sources["claude-code"]["total_tokens"] == claude["totals"]["totalTokens"]
    assert sources["codex"]["label"] == "Codex"
    models = client.get(USAGE, {"group_by": "model", "source": "codex"}).json()["results"]
    assert {r["key"] for r in models} == {"gpt-5.1-codex", "gpt-5.1-codex-mini", "gpt-5.1"}


def test_since_and_until_are_inclusive_reporting_days(data, cast):
    client = client_for(cast["owner"])
    response = client.get(USAGE, {"group_by": "day", "since": "2026-11-18", "until": "2026-11-22"})
    days = [r["key"] for r in response.json()["results"]]
    assert days[0] == "2026-11-18" and days[-1] == "2026-11-22"
    stored = DailyUsage.objects.filter(
        machine=data["owner"], day__range=("2026-11-18", "2026-11-22")
    )
    assert response.json()["totals"]["total_tokens"] == sum(r.total_tokens for r in stored)


def test_a_member_sees_their_own_figures_and_the_team_totals(data, cast):
    client = client_for(cast["member"])
    assert totals(client.get(USAGE, {"group_by": "day"})) == times(1)
    assert totals(client.get(USAGE, {"group_by": "project", "scope": "team"})) == times(2)


@pytest.mark.parametrize(
    "params",
    [
        {"group_by": "member"},
        {"group_by": "member", "scope": "team"},
        {"group_by": "machine", "scope": "team"},
        {"group_by": "day", "member": "owner@a.example"},
    ],
)
def test_a_member_may_not_see_colleagues_one_by_one(data, cast, params):
    response = client_for(cast["member"]).get(USAGE, params)
    assert response.status_code == 403
    assert response.json()["detail"]


def test_a_member_may_not_filter_on_a_colleagues_machine(data, cast):
    response = client_for(cast["member"]).get(USAGE, {"machine": str(data["owner"].uuid)})
    assert response.status_code == 403


def test_members_see_each_other_when_the_team_allows_it(data, cast, team_a):
    team_a.members_see_each_other = True
    team_a.save()
    response = client_for(cast["member"]).get(USAGE, {"group_by": "member", "scope": "team"})
    assert response.status_code == 200
    assert {r["key"] for r in response.json()["results"]} == {
        str(cast["owner"].public_id),
        str(cast["member"].public_id),
    }


def test_admins_and_owners_see_every_member(data, cast):
    for role in ("admin", "owner"):
        response = client_for(cast[role]).get(USAGE, {"group_by": "member", "scope": "team"})
        assert response.status_code == 200
        rows = {r["key"]: r["total_tokens"] for r in response.json()["results"]}
        assert rows == {
            str(cast["owner"].public_id): ONE_MACHINE["total_tokens"],
            str(cast["member"].public_id): ONE_MACHINE["total_tokens"],
        }
    by_email = client_for(cast["admin"]).get(USAGE, {"member": "member@a.example"})
    assert totals(by_email) == times(1)
    by_id = client_for(cast["admin"]).get(USAGE, {"member": str(cast["member"].public_id)})
    assert totals(by_id) == times(1)
    machine = client_for(cast["admin"]).get(USAGE, {"machine": str(data["member"].uuid)})
    assert totals(machine) == times(1)


def test_another_teams_objects_are_not_found(data, cast):
    admin = client_for(cast["admin"])
    outsider_project = Project.objects.filter(team=cast["outsider"].team).first()
    assert admin.get(USAGE, {"machine": str(data["outsider"].uuid)}).status_code == 404
    assert admin.get(USAGE, {"member": "outsider@b.example"}).status_code == 404
    assert admin.get(USAGE, {"project": str(outsider_project.public_id)}).status_code == 404
    outsider = client_for(cast["outsider"])
    assert outsider.get(USAGE, {"machine": str(data["owner"].uuid)}).status_code == 404
    assert totals(outsider.get(USAGE, {"scope": "team"})) == times(1)


def test_the_project_filter_takes_a_key_or_public_id_and_includes_aliases(data, cast):
    client = client_for(cast["owner"])
    webapp = Project.objects.get(team=cast["owner"].team, key=WEBAPP)
    infra = Project.objects.get(team=cast["owner"].team, key=INFRA)
    by_key = client.get(USAGE, {"project": webapp.key})
    by_id = client.get(USAGE, {"project": str(webapp.public_id)})
    assert by_key.json() == by_id.json()
    webapp_tokens = by_key.json()["totals"]["total_tokens"]
    infra_tokens = client.get(USAGE, {"project": infra.key}).json()["totals"]["total_tokens"]

    infra.set_alias(webapp)
    grouped = client.get(USAGE, {"project": infra.key}).json()["totals"]["total_tokens"]
    assert grouped == webapp_tokens + infra_tokens
    rows = client.get(USAGE, {"group_by": "project"}).json()["results"]
    assert str(infra.public_id) not in {r["key"] for r in rows}
    assert {r["key"]: r["total_tokens"] for r in rows}[str(webapp.public_id)] == grouped
    sessions = client.get(SESSIONS, {"project": str(webapp.public_id), "limit": 100}).json()
    assert {s["project"]["public_id"] for s in sessions["results"]} == {str(webapp.public_id)}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "year"}, "group_by"),
        ({"since": "2026-13-01"}, "since"),
        ({"until": "soon"}, "until"),
        ({"since": "2026-11-20", "until": "2026-11-19"}, "until"),
        ({"machine": "not-a-uuid"}, "machine"),
        ({"scope": "everyone"}, "scope"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_parameter(data, cast, params, param):
    response = client_for(cast["owner"]).get(USAGE, params)
    assert response.status_code == 400
    assert param in response.json()["errors"]


@pytest.mark.parametrize(("group_by", "count"), [("week", 1), ("project", 2), ("member", 2)])
def test_usage_is_one_grouped_query_and_one_to_name_the_keys(
    data, cast, group_by, count, django_assert_num_queries
):
    admin = User.objects.select_related("membership__team").get(pk=cast["admin"].pk)
    # The rollup rows summed by id, then the ids named (usage.queries._rollup_rows).
    with django_assert_num_queries(count):
        result = aggregate_usage(admin, group_by=group_by, scope="team")
    assert result["totals"]["total_tokens"] == times(2)[0]


# --- who may call each endpoint ------------------------------------------------------------------
READ_ENDPOINTS = [USAGE, MACHINES, SESSIONS, PROJECTS]


@pytest.mark.parametrize("url", READ_ENDPOINTS)
def test_anonymous_callers_get_401(data, url):
    assert api_client().get(url).status_code == 401


@pytest.mark.parametrize("url", READ_ENDPOINTS)
def test_an_ingest_only_token_may_not_read(data, cast, url):
    response = client_for(cast["owner"], scopes=("ingest",)).get(url)
    assert response.status_code == 403
    assert "read" in response.json()["detail"]


@pytest.mark.parametrize("url", READ_ENDPOINTS)
@pytest.mark.parametrize("role", ["owner", "admin", "member", "outsider"])
def test_every_role_may_read_its_own_view(data, cast, url, role):
    assert client_for(cast[role]).get(url).status_code == 200


@pytest.mark.parametrize("url", READ_ENDPOINTS)
def test_a_logged_in_browser_may_read(data, cast, url, client):
    client.force_login(cast["member"])
    assert client.get(url).status_code == 200


# --- machines ------------------------------------------------------------------------------------
def uuids(response) -> set[str]:
    return {m["uuid"] for m in response.json()["results"]}


def test_machines_are_listed_by_who_may_see_them(data, cast):
    owner_pc, member_pc = str(data["owner"].uuid), str(data["member"].uuid)
    assert uuids(client_for(cast["owner"]).get(MACHINES)) == {owner_pc}
    assert uuids(client_for(cast["member"]).get(MACHINES)) == {member_pc}
    team = client_for(cast["admin"]).get(MACHINES, {"scope": "team"})
    assert uuids(team) == {owner_pc, member_pc}
    assert client_for(cast["member"]).get(MACHINES, {"scope": "team"}).status_code == 403
    assert uuids(client_for(cast["outsider"]).get(MACHINES, {"scope": "team"})) == {
        str(data["outsider"].uuid)
    }
    first = team.json()["results"][0]
    assert first["owner"]["email"] in ("owner@a.example", "member@a.example")
    assert first["last_sync_status"] == "ok"


def test_one_machine_is_404_for_anyone_who_may_not_see_it(data, cast):
    url = f"{MACHINES}{data['member'].uuid}/"
    assert client_for(cast["member"]).get(url).status_code == 200
    assert client_for(cast["admin"]).get(url).status_code == 200
    assert client_for(cast["owner"]).get(url).status_code == 200
    assert client_for(cast["outsider"]).get(url).status_code == 404
    assert client_for(cast["member"]).get(f"{MACHINES}{data['owner'].uuid}/").status_code == 404
    assert api_client().get(url).status_code == 401


def test_machines_are_ordered_and_paginated(data, cast):
    client = client_for(cast["admin"])
    response = client.get(MACHINES, {"scope": "team", "order": "-name", "limit": 1})
    body = response.json()
    assert body["count"] == 2 and len(body["results"]) == 1
    assert body["results"][0]["name"] == "owner-pc"
    assert body["next"]
    assert client.get(MACHINES, {"order": "size"}).status_code == 400


# --- sessions ------------------------------------------------------------------------------------
def test_sessions_are_listed_newest_first_with_their_project(data, cast):
    body = client_for(cast["owner"]).get(SESSIONS).json()
    assert body["count"] == SESSIONS_PER_MACHINE
    first = body["results"][0]
    # The fixture's active session is the last one active (ccusage's lastActivity).
    assert first["session_id"] == ACTIVE_SESSION
    assert first["project"]["key"] == ROLES["active_session_project"] == API_SERVER
    assert first["machine"]["uuid"] == str(data["owner"].uuid)
    assert first["member"]["email"] == "owner@a.example"
    assert isinstance(first["cost_usd"], str)


def test_sessions_filter_order_and_paginate(data, cast):
    client = client_for(cast["owner"])
    by_cost = client.get(SESSIONS, {"order": "-cost_usd", "limit": 5}).json()
    costs = [Decimal(s["cost_usd"]) for s in by_cost["results"]]
    assert costs == sorted(costs, reverse=True) and len(costs) == 5
    assert by_cost["count"] == SESSIONS_PER_MACHINE and by_cost["next"]
    day = client.get(SESSIONS, {"since": "2026-11-24", "until": "2026-11-24"}).json()
    assert {s["last_activity"][:10] for s in day["results"]} == {"2026-11-24"}
    project = client.get(SESSIONS, {"project": INFRA}).json()
    assert {s["project"]["key"] for s in project["results"]} == {INFRA}
    assert client.get(SESSIONS, {"order": "random"}).status_code == 400
    assert client.get(SESSIONS, {"since": "tomorrow"}).status_code == 400


def test_team_sessions_need_the_right_to_see_members(data, cast):
    assert client_for(cast["member"]).get(SESSIONS, {"scope": "team"}).status_code == 403
    admin = client_for(cast["admin"]).get(SESSIONS, {"scope": "team", "limit": 1000}).json()
    assert admin["count"] == 2 * SESSIONS_PER_MACHINE
    assert {s["member"]["email"] for s in admin["results"]} == {
        "owner@a.example",
        "member@a.example",
    }
    machine = str(data["owner"].uuid)
    assert client_for(cast["member"]).get(SESSIONS, {"machine": machine}).status_code == 403
    outsider = client_for(cast["outsider"]).get(SESSIONS, {"machine": machine})
    assert outsider.status_code == 404


@pytest.mark.parametrize(
    ("role", "status", "machines"),
    [("owner", 200, 2), ("admin", 200, 2), ("member", 403, 0), ("outsider", 200, 1)],
)
def test_the_team_session_list_is_for_those_who_see_members(data, cast, role, status, machines):
    response = client_for(cast[role]).get(SESSIONS, {"scope": "team", "limit": 1000})
    assert response.status_code == status
    if status == 200:
        # The outsider's team is theirs alone: their own machine's sessions.
        assert response.json()["count"] == machines * SESSIONS_PER_MACHINE


@pytest.mark.parametrize("role", ["owner", "member", "outsider"])
def test_a_members_own_session_list_is_theirs(data, cast, role):
    body = client_for(cast[role]).get(SESSIONS, {"limit": 1000}).json()
    assert body["count"] == SESSIONS_PER_MACHINE
    assert {s["member"]["email"] for s in body["results"]} == {cast[role].email}


def test_sessions_beyond_the_count_cap_are_paged_without_a_count(data, cast, monkeypatch):
    client = client_for(cast["admin"])
    whole = client.get(SESSIONS, {"scope": "team", "limit": 1000}).json()
    total = whole["count"]
    assert total == 2 * SESSIONS_PER_MACHINE > 6 and whole["next"] is None
    # A cap below the list's length: the count is left out, never guessed.
    monkeypatch.setattr(sessions_api, "COUNT_CAP", 4)
    page = client.get(SESSIONS, {"scope": "team", "limit": 2}).json()
    assert page["count"] is None and "offset=2" in page["next"] and page["previous"] is None
    paged, url = [], f"{SESSIONS}?scope=team&limit=3"
    while url:
        body = client.get(url).json()
        paged += body["results"]
        url = body["next"]
    assert paged == whole["results"]
    # A page reaching the end (the list is counted up to the page's end) has the exact count.
    last = client.get(SESSIONS, {"scope": "team", "limit": 3, "offset": total - 3}).json()
    assert last["count"] == total and last["next"] is None
    past = client.get(SESSIONS, {"scope": "team", "offset": total + 5}).json()
    assert past["count"] == total and past["results"] == [] and past["next"] is None
    # A list no longer than the cap is counted exactly.
    monkeypatch.setattr(sessions_api, "COUNT_CAP", total)
    assert client.get(SESSIONS, {"scope": "team", "limit": 2}).json()["count"] == total


def test_a_bad_page_of_sessions_is_a_400_naming_the_field(data, cast):
    client = client_for(cast["owner"])
    too_far = str(2**63)  # past PostgreSQL's bigint: a 400, never an overflow
    for field, value in (
        ("limit", "0"),
        ("limit", "x"),
        ("offset", "-1"),
        ("offset", "y"),
        ("offset", too_far),
    ):
        for url in (SESSIONS, "/api/v1/plan-value/", "/api/v1/rate-limits/"):
            response = client.get(url, {field: value, "scope": "team"})
            assert response.status_code == 400, (url, field, value)
            assert field in response.json()["errors"]


def test_a_session_reads_the_same_as_drfs_own_serializer(data, cast, team_a):
    # The list builds each row directly; DRF's field-by-field answer is the reference.
    webapp = Project.objects.get(team=team_a, key=WEBAPP)
    webapp.set_alias(Project.objects.get(team=team_a, key=INFRA))
    machine = data["owner"]
    session(machine, "no-start", minutes=None, models=["a", "b"], project=webapp)
    rows = SessionUsage.objects.select_related("machine__owner", "project__alias_of").filter(
        machine=machine
    )
    assert rows.count() == SESSIONS_PER_MACHINE + 1
    serializer = SessionSerializer()
    for row in rows:
        direct = serializer.to_representation(row)
        assert direct == ModelSerializer.to_representation(serializer, row)
    aliased = serializer.to_representation(rows.get(session_id="no-start"))
    assert aliased["project"]["key"] == INFRA and aliased["first_activity"] is None


def test_a_page_of_team_sessions_reads_a_fixed_number_of_queries(
    data, cast, django_assert_max_num_queries
):
    client = client_for(cast["admin"])
    # Authentication, throttling and activity tracking, the team, the count and the page.
    with django_assert_max_num_queries(14):
        body = client.get(SESSIONS, {"scope": "team", "limit": 1000}).json()
    assert len(body["results"]) == 2 * SESSIONS_PER_MACHINE


# --- projects ------------------------------------------------------------------------------------
def test_projects_are_the_teams(data, cast):
    keys = {p["key"] for p in client_for(cast["member"]).get(PROJECTS).json()["results"]}
    assert WEBAPP in keys and "" in keys
    outsider = client_for(cast["outsider"]).get(PROJECTS).json()
    team_b = {p.public_id for p in Project.objects.filter(team=cast["outsider"].team)}
    assert {p["public_id"] for p in outsider["results"]} == {str(i) for i in team_b}


def project(team, key) -> Project:
    return Project.objects.get(team=team, key=key)


def test_an_admin_groups_one_project_under_another(data, cast, client):
    team = cast["owner"].team
    webapp, infra = project(team, WEBAPP), project(team, INFRA)
    client.force_login(cast["admin"])
    url = f"{PROJECTS}{infra.public_id}/"
    response = client.patch(
        url, {"alias_of": str(webapp.public_id), "name": "infra (old clone)"}, "application/json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["alias_of"] == str(webapp.public_id)
    assert response.json()["name"] == "infra (old clone)"
    infra.refresh_from_db()
    assert infra.alias_of == webapp
    # Grouping webapp under api-server moves infra along: no chains.
    api_server = project(team, API_SERVER)
    client.patch(
        f"{PROJECTS}{webapp.public_id}/",
        {"alias_of": str(api_server.public_id)},
        "application/json",
    )
    infra.refresh_from_db()
    assert infra.alias_of == api_server
    ungroup = client.patch(url, {"alias_of": None}, "application/json")
    assert ungroup.json()["alias_of"] is None
    # Ungrouped by an admin: the automatic grouping by git remote leaves it apart.
    assert ungroup.json()["keep_apart"] is True


def test_grouping_refuses_itself_and_other_teams(data, cast, client):
    team = cast["owner"].team
    webapp = project(team, WEBAPP)
    theirs = Project.objects.filter(team=cast["outsider"].team).first()
    client.force_login(cast["admin"])
    url = f"{PROJECTS}{webapp.public_id}/"
    itself = client.patch(url, {"alias_of": str(webapp.public_id)}, "application/json")
    assert itself.status_code == 400 and "alias_of" in itself.json()["errors"]
    other = client.patch(url, {"alias_of": str(theirs.public_id)}, "application/json")
    assert other.status_code == 400 and "alias_of" in other.json()["errors"]


def test_only_team_admins_in_a_session_manage_projects(data, cast, client):
    webapp = project(cast["owner"].team, WEBAPP)
    url = f"{PROJECTS}{webapp.public_id}/"
    body = {"name": "renamed"}
    client.force_login(cast["member"])
    assert client.patch(url, body, "application/json").status_code == 403
    client.force_login(cast["outsider"])
    assert client.patch(url, body, "application/json").status_code == 404
    assert client.get(url).status_code == 404
    token = client_for(cast["admin"], scopes=("ingest", "read"))
    assert token.patch(url, body, format="json").status_code == 403
    assert api_client().patch(url, body, format="json").status_code == 401
    client.force_login(cast["owner"])
    assert client.patch(url, body, "application/json").status_code == 200
    assert client_for(cast["member"]).get(url).json()["name"] == "renamed"
