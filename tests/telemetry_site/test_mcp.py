"""/mcp: the SDK's own MCP client over Streamable HTTP against a live server answers what the
REST API answers, to the same people, and refuses bad tokens and bad arguments with reasons."""

import json

import anyio
import httpx2
import pytest
from django.utils import timezone
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from accounts.models import ApiToken, hash_token
from tests.conftest import api_client, token_for
from tests.factories.budgets import BudgetFactory
from tests.usage.ingest.helpers import envelope, fixture_reports, post
from usage.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TOOL_NAMES = {
    "get_usage",
    "list_sessions",
    "list_blocks",
    "get_running_blocks",
    "get_limits",
    "get_team_headroom",
    "get_pace",
    "get_plan_value",
    "compare_periods",
    "compare_projects",
    "list_budgets",
    "list_machines",
    "get_data_quality",
    "list_projects",
}


@pytest.fixture
def data(fixtures_dir, cast):
    """The fixture machine's reports sent by the owner, the member and the outsider."""
    for role in ("owner", "member", "outsider"):
        body = envelope(fixture_reports(), name=f"{role}-pc")
        assert post(api_client(token_for(cast[role])), body).status_code == 201
    return cast


def mcp_session(url: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    return Client(streamable_http_client(f"{url}/mcp", http_client=http))


def call(url: str, token: str, name: str, arguments: dict | None = None):
    """Call one tool through a fresh client; (is_error, JSON body)."""

    async def go():
        async with mcp_session(url, token) as client:
            result = await client.call_tool(name, arguments or {})
            return result.is_error, json.loads(result.content[0].text)

    return anyio.run(go)


def list_tools(url: str, token: str):
    async def go():
        async with mcp_session(url, token) as client:
            return (await client.list_tools()).tools

    return anyio.run(go)


def refusal(fn, *args) -> MCPError:
    """The MCPError `fn` raises (the SDK's client wraps it in exception groups)."""
    with pytest.raises(BaseExceptionGroup) as caught:
        fn(*args)
    found = caught.value.subgroup(lambda exc: isinstance(exc, MCPError))
    assert found is not None, caught.value
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return found


def rest(user, path: str, **params):
    response = api_client(token_for(user, scopes=("read",))).get(path, params)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_tools_are_listed_with_json_schema_inputs(live_server, member):
    tools = {tool.name: tool for tool in list_tools(live_server.url, token_for(member, ["read"]))}
    assert set(tools) == TOOL_NAMES
    usage = tools["get_usage"].input_schema
    assert "group_by" in usage["properties"]
    assert "timezone" in tools["get_usage"].description or "USD" in tools["get_usage"].description


def test_usage_by_project_is_what_the_rest_api_answers(live_server, data):
    member = data["member"]
    error, body = call(
        live_server.url, token_for(member, ["read"]), "get_usage", {"group_by": "project"}
    )
    assert not error
    expected = rest(member, "/api/v1/usage/", group_by="project")
    assert body["results"] == expected["results"]
    assert body["totals"] == expected["totals"]
    assert body["period"]["timezone"]


# (tool, arguments, REST path, REST query): the tool's results are the endpoint's.
SAME_AS_REST = [
    (
        "get_usage",
        {"group_by": "model", "since": "2026-10-01"},
        "usage",
        {"group_by": "model", "since": "2026-10-01"},
    ),
    ("list_sessions", {"limit": 20}, "sessions", {"limit": 20}),
    ("list_blocks", {"since": "2026-11-01"}, "blocks", {"since": "2026-11-01", "limit": 50}),
    ("get_plan_value", {}, "plan-value", {}),
    ("list_machines", {}, "machines", {"limit": 1000}),
    ("list_projects", {}, "projects", {"limit": 1000}),
    ("list_budgets", {"order": "name"}, "budgets", {"limit": 1000}),
]


@pytest.mark.parametrize(("tool", "arguments", "path", "query"), SAME_AS_REST)
@pytest.mark.parametrize("role", ["admin", "member", "outsider"])
def test_each_list_tool_answers_what_the_rest_api_answers_that_person(
    live_server, data, role, tool, arguments, path, query
):
    user = data[role]
    BudgetFactory(team=user.membership.team, name=f"{role} budget")
    error, body = call(live_server.url, token_for(user, ["read"]), tool, arguments)
    assert not error, body
    expected = rest(user, f"/api/v1/{path}/", **query)
    assert body["results"] == expected["results"]


@pytest.mark.parametrize("role", ["admin", "member", "outsider"])
def test_the_data_quality_tool_answers_what_the_rest_api_answers_that_person(
    live_server, data, role
):
    user = data[role]
    error, body = call(live_server.url, token_for(user, ["read"]), "get_data_quality")
    assert not error, body
    assert body == rest(user, "/api/v1/data-quality/")


def test_pace_limits_and_headroom_carry_the_rest_figures(live_server, data):
    admin = data["admin"]
    token = token_for(admin, ["read"])
    _, pace = call(live_server.url, token, "get_pace", {"scope": "team", "budget_usd": 100})
    expected = rest(admin, "/api/v1/pace/", scope="team", budget="100")
    assert {k: v for k, v in pace.items() if k != "today"} == {
        k: v for k, v in expected.items() if k != "today"
    }
    _, limits = call(live_server.url, token, "get_limits", {"scope": "team"})
    quotas = rest(admin, "/api/v1/rate-limits/", scope="team")["results"]
    assert [row["subscription"] for row in limits["results"]] == [q["subscription"] for q in quotas]
    assert all("pace_to_limit" in row for row in limits["results"])
    # A big team's quotas come a page at a time, like the endpoint's.
    assert limits["count"] == len(quotas) > 1 and limits["next"] is None
    pages = [
        call(live_server.url, token, "get_limits", {"scope": "team", "limit": 1, "offset": n})[1]
        for n in range(len(quotas))
    ]
    assert [p["results"][0]["subscription"] for p in pages] == [q["subscription"] for q in quotas]
    assert pages[0]["next"] and pages[-1]["next"] is None
    _, headroom = call(live_server.url, token, "get_team_headroom")
    assert headroom["results"] == rest(admin, "/api/v1/headroom/")["results"]


def test_compare_periods_puts_the_two_usage_answers_side_by_side(live_server, data):
    member = data["member"]
    arguments = {
        "first_since": "2026-10-01",
        "first_until": "2026-10-31",
        "second_since": "2026-11-01",
        "second_until": "2026-11-30",
    }
    error, body = call(live_server.url, token_for(member, ["read"]), "compare_periods", arguments)
    assert not error, body
    october = rest(
        member, "/api/v1/usage/", group_by="project", since="2026-10-01", until="2026-10-31"
    )
    november = rest(
        member, "/api/v1/usage/", group_by="project", since="2026-11-01", until="2026-11-30"
    )
    assert body["first"]["totals"] == october["totals"]
    assert body["second"]["totals"] == november["totals"]
    assert body["second"]["period"] == {
        "since": "2026-11-01",
        "until": "2026-11-30",
        "timezone": "UTC",
        "today": body["second"]["period"]["today"],
    }


def test_a_member_is_refused_the_team_view_as_the_rest_api_refuses_it(live_server, data):
    member = data["member"]
    error, body = call(live_server.url, token_for(member, ["read"]), "get_team_headroom")
    assert error
    assert body["status"] == 403
    assert body["error"] == "Only team admins see the team's headroom."
    arguments = {"scope": "team", "limit": 1}
    error, body = call(live_server.url, token_for(member, ["read"]), "get_limits", arguments)
    assert error and body["status"] == 403


def test_a_bad_page_of_limits_is_refused_before_any_request(live_server, data):
    token = token_for(data["owner"], ["read"])
    for arguments in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        error, body = call(live_server.url, token, "get_limits", arguments)
        assert error and next(iter(arguments)) in str(body), body


def test_an_outsider_cannot_reach_another_teams_project(live_server, data):
    project = Project.objects.filter(team=data["owner"].membership.team).first()
    assert project is not None
    token = token_for(data["outsider"], ["read"])
    error, body = call(live_server.url, token, "get_usage", {"project": str(project.public_id)})
    rest_answer = api_client(token).get("/api/v1/usage/", {"project": str(project.public_id)})
    assert error
    assert body["status"] == rest_answer.status_code
    _, projects = call(live_server.url, token, "list_projects")
    assert str(project.public_id) not in {p["public_id"] for p in projects["results"]}


def test_reversed_dates_and_unknown_arguments_are_tool_errors_naming_the_field(live_server, member):
    token = token_for(member, ["read"])
    error, body = call(
        live_server.url, token, "get_usage", {"since": "2026-11-10", "until": "2026-11-01"}
    )
    assert error
    assert "until must not be before since" in json.dumps(body)
    error, body = call(live_server.url, token, "get_usage", {"group_by": "planet"})
    assert error
    assert "group_by" in body["errors"]
    error, body = call(
        live_server.url,
        token,
        "compare_projects",
        {"first_project": "nope", "second_project": "no"},
    )
    assert error
    assert body["status"] in (400, 404)
    assert "project" in json.dumps(body).lower()


def test_an_unknown_tool_is_an_mcp_error(live_server, member):
    error = refusal(call, live_server.url, token_for(member, ["read"]), "drop_tables")
    assert "Unknown tool: 'drop_tables'" in str(error)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("cct_" + "x" * 40, "API token"),
        ("not-a-token", "Malformed API token."),
        (None, "Authentication credentials were not provided."),
    ],
)
def test_a_bad_or_missing_token_is_refused_with_the_reason(live_server, member, token, reason):
    assert reason in str(refusal(list_tools, live_server.url, token))


def test_a_token_without_read_or_revoked_is_refused(live_server, member):
    error = refusal(list_tools, live_server.url, token_for(member, ["ingest"]))
    assert "lacks the 'read' scope" in str(error)
    raw = token_for(member, ["read"])
    token = ApiToken.objects.get(token_hash=hash_token(raw))
    token.revoked_at = timezone.now()
    token.save()
    assert "revoked" in str(refusal(list_tools, live_server.url, raw))


def test_a_session_login_is_not_a_token(live_server, member, client):
    client.force_login(member)
    response = client.post("/mcp", data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["message"]
