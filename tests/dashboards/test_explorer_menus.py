"""The explorer's long filter menus: past MENU_LIMIT options a menu holds "All" and the chosen
option and is searched through /usage/search/<kind>/; who may search what, bad input, the
page's fixed query count, and figures equal to the raw facts'."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from dashboards import forms as dashboard_forms
from tests.conftest import login, make_member
from tests.dashboards import conftest
from tests.dashboards.conftest import NOW, menu_html
from tests.factories import MachineFactory, ProjectFactory, daily
from usage.models import DailyUsage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("at_now")]

URL = "/usage/"


def search_url(kind: str) -> str:
    return f"/usage/search/{kind}/"


def add_people(team, first: int, count: int) -> None:
    """`count` more members with two machines each and a day of usage on each."""
    conftest.add_people(team, first, count, lambda machine: daily(machine, NOW.date()))


# --- the search endpoint: who may and who may not -------------------------------------------
def test_anonymous_visitors_are_sent_to_the_login_page():
    response = login(None).get(search_url("machine"), {"q": "laptop"})
    assert response.status_code == 302


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_search_the_teams_machines_named_with_their_owner(cast, populated, role):
    response = login(cast[role]).get(search_url("machine"), {"q": "laptop"})
    assert response.status_code == 200
    body = response.json()
    labels = {option["label"] for option in body["results"]}
    mine = f"{role}-laptop"
    others = {f"{r}-laptop ({r}@a.example)" for r in ("owner", "admin", "member") if r != role}
    assert labels == {mine, *others}
    assert body["more"] is False
    by_id = {option["id"] for option in body["results"]}
    assert str(populated.machines["member"][0].uuid) in by_id
    # Never another team's machine, by name or by id.
    assert "outsider-box" not in str(body)
    outside = str(populated.machines["outsider"][0].uuid)
    asked = login(cast[role]).get(search_url("machine"), {"id": outside}).json()
    assert asked == {"results": [], "more": False}


def test_admins_search_members_and_projects(cast, populated):
    client = login(cast["admin"])
    members = client.get(search_url("member"), {"q": "member"}).json()
    assert [m["label"] for m in members["results"]] == ["member@a.example"]
    assert members["results"][0]["id"] == str(cast["member"].public_id)
    projects = client.get(search_url("project"), {"q": "api"}).json()
    assert [p["label"] for p in projects["results"]] == ["server"]


def test_a_member_finds_only_their_own_machines(cast, populated):
    client = login(cast["member"])
    body = client.get(search_url("machine")).json()
    assert sorted(o["label"] for o in body["results"]) == [
        "member-desktop",
        "member-laptop",
        "member-server",
    ]
    # A colleague's machine asked for by id is left out, as the menu leaves it out.
    colleague = str(populated.machines["owner"][0].uuid)
    assert client.get(search_url("machine"), {"id": colleague}).json()["results"] == []
    assert client.get(search_url("machine"), {"q": "owner"}).json()["results"] == []


@pytest.mark.parametrize(
    ("kind", "params"),
    [("machine", {"scope": "team"}), ("member", {}), ("member", {"q": "owner"})],
)
def test_a_member_may_not_search_other_members_or_their_machines(cast, populated, kind, params):
    response = login(cast["member"]).get(search_url(kind), params)
    assert response.status_code == 403
    assert "Only team admins" in response.json()["detail"]


def test_a_member_of_a_team_whose_members_see_each_other_finds_the_teams_machines(
    cast, populated, team_a
):
    team_a.members_see_each_other = True
    team_a.save()
    body = login(cast["member"]).get(search_url("machine"), {"q": "owner-"}).json()
    assert len(body["results"]) == 3


def test_an_outsider_finds_only_their_own_teams_rows(cast, populated):
    client = login(cast["outsider"])
    machines = client.get(search_url("machine"), {"scope": "team"}).json()
    assert [m["label"] for m in machines["results"]] == ["outsider-box"]
    team_a_ids = [str(m.uuid) for m in populated.machines["owner"]]
    assert client.get(search_url("machine"), {"id": team_a_ids}).json()["results"] == []
    projects = client.get(search_url("project")).json()
    assert [p["label"] for p in projects["results"]] == ["secret"]
    members = client.get(search_url("member"), {"q": "a.example"}).json()
    assert members["results"] == []


def test_the_owners_own_scope_narrows_to_their_machines(cast, populated):
    body = login(cast["owner"]).get(search_url("machine"), {"scope": "me"}).json()
    assert sorted(o["label"] for o in body["results"]) == [
        "owner-desktop",
        "owner-laptop",
        "owner-server",
    ]


def test_a_search_answers_at_most_its_limit_and_says_more_match(cast, team_a):
    add_people(team_a, 0, 12)
    body = login(cast["owner"]).get(search_url("machine"), {"q": "pc"}).json()
    assert len(body["results"]) == dashboard_forms.SEARCH_RESULTS
    assert body["more"] is True
    narrowed = login(cast["owner"]).get(search_url("machine"), {"q": "pc11-"}).json()
    assert [o["label"] for o in narrowed["results"]] == [
        "pc11-0 (person11@a.example)",
        "pc11-1 (person11@a.example)",
    ]
    assert narrowed["more"] is False


# --- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"q": "x" * 101}, "q", "at most 100 characters"),
        ({"id": "not-a-uuid"}, "id", "'not-a-uuid' is not a UUID"),
        ({"id": ["0" * 32] * 101}, "id", "at most 100 ids"),
        ({"id": "0" * 32, "q": "laptop"}, "id", "either a search (q) or ids"),
        ({"scope": "everyone"}, "scope", "'everyone' is not one of me, team"),
    ],
)
def test_bad_input_is_a_json_error_naming_the_field(cast, populated, params, field, reason):
    response = login(cast["owner"]).get(search_url("machine"), params)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Invalid input."
    assert list(body["errors"]) == [field]
    assert reason in body["errors"][field][0]


def test_only_the_machine_search_takes_a_scope(cast, populated):
    response = login(cast["owner"]).get(search_url("project"), {"scope": "team"})
    assert response.status_code == 400
    assert "scope" in response.json()["errors"]


def test_an_unknown_kind_is_a_json_404_and_a_post_is_refused(cast, populated):
    client = login(cast["owner"])
    unknown = client.get(search_url("budget"))
    assert unknown.status_code == 404
    assert "machine, member or project" in unknown.json()["detail"]
    assert client.post(search_url("machine"), {"q": "x"}).status_code == 405


# --- the page with searched menus --------------------------------------------------------------
def test_a_long_menu_holds_all_and_the_chosen_option_and_offers_a_search(
    cast, populated, short_menus
):
    machine = populated.machines["member"][0]
    response = login(cast["owner"]).get(URL, {"scope": "team", "machine": str(machine.uuid)})
    html = response.content.decode()
    menu = menu_html(html, "machine")
    assert 'data-search="/usage/search/machine/"' in menu
    assert menu.count("<option") == 2
    assert f'<option value="{machine.uuid}" selected>member-laptop (member@a.example)' in menu
    # The chosen machine's figures: five days at $1.50.
    assert response.context["data"]["totals"]["cost_usd"] == Decimal("7.5")
    assert not response.context["filters"].errors
    members = menu_html(html, "member")
    assert members.count("<option") == 1 and "data-search" in members
    assert menu_html(html, "project").count("<option") == 1


def test_a_machine_the_viewer_may_not_see_is_still_refused(cast, populated, short_menus):
    client = login(cast["owner"])
    outside = populated.machines["outsider"][0]
    response = client.get(URL, {"machine": str(outside.uuid)})
    assert "is not one of the options" in response.content.decode()
    # The filter is ignored: the owner's own figures (3 machines x 5 days x $1.50).
    assert response.context["data"]["totals"]["cost_usd"] == Decimal("22.5")
    colleague = populated.machines["owner"][0]
    refused = login(cast["member"]).get(URL, {"machine": str(colleague.uuid)})
    assert "is not one of the options" in refused.content.decode()
    assert refused.context["data"]["totals"]["cost_usd"] == Decimal("22.5")


def test_a_small_teams_menus_still_list_every_option(cast, populated):
    html = login(cast["owner"]).get(URL).content.decode()
    menu = menu_html(html, "machine")
    assert "data-search" not in menu
    assert menu.count("<option") == 1 + 9


def test_a_split_by_machine_names_every_row_and_equals_the_raw_facts(cast, populated, short_menus):
    response = login(cast["owner"]).get(URL, {"scope": "team", "split": "machine"})
    rows = {row["key"]: row for row in response.context["data"]["results"]}
    raw = DailyUsage.objects.filter(
        machine__team=cast["owner"].membership.team, day__gte=NOW.date().replace(day=1)
    )
    expected = {
        str(m["machine__uuid"]): m["cost"]
        for m in raw.values("machine__uuid").annotate(cost=Sum("cost_usd"))
    }
    assert {str(k): row["cost_usd"] for k, row in rows.items()} == expected
    labels = {row["label"] for row in rows.values()}
    assert "member-laptop (member@a.example)" in labels
    assert "owner-laptop" in labels
    config = response.context["explorer_config"]
    assert config["machine_search"] == "/usage/search/machine/"
    assert config["machine_labels"][str(populated.machines["admin"][1].uuid)] == (
        "admin-desktop (admin@a.example)"
    )


def test_a_split_by_member_marks_only_former_members(cast, populated, short_menus, team_a):
    former = make_member(team_a, "gone@a.example", Role.MEMBER)
    daily(MachineFactory(owner=former, name="old-pc"), NOW.date(), cost="4.00")
    former.membership.delete()
    response = login(cast["owner"]).get(URL, {"scope": "team", "split": "member"})
    labels = sorted(row["label"] for row in response.context["data"]["results"])
    assert [label for label in labels if label.endswith("(former member)")] == [
        next(label for label in labels if label.startswith("gone"))
    ]
    assert len(labels) == 4


@pytest.mark.parametrize("url", [URL, f"{URL}?scope=team", f"{URL}?scope=team&split=machine"])
def test_the_page_costs_the_same_queries_however_many_machines(
    cast, team_a, url, django_assert_max_num_queries
):
    add_people(team_a, 0, 5)
    client = login(cast["owner"])
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    add_people(team_a, 5, 40)  # 90 machines, past MENU_LIMIT: the menus become searches
    with django_assert_max_num_queries(len(small) + 2):
        response = client.get(url)
    assert response.status_code == 200
    assert "data-search" in menu_html(response.content.decode(), "machine")
    with CaptureQueriesContext(connection) as large:
        client.get(url)
    add_people(team_a, 45, 10)
    with CaptureQueriesContext(connection) as larger:
        client.get(url)
    assert len(larger) == len(large)
    with django_assert_max_num_queries(20):
        client.get(url)


def test_a_member_page_costs_the_same_queries_too(cast, team_a, django_assert_max_num_queries):
    MachineFactory(owner=cast["member"], name="mine")
    add_people(team_a, 0, 30)
    client = login(cast["member"])
    client.get(f"{URL}?scope=team")
    with CaptureQueriesContext(connection) as before:
        client.get(f"{URL}?scope=team")
    add_people(team_a, 30, 30)
    with django_assert_max_num_queries(len(before)):
        response = client.get(f"{URL}?scope=team")
    assert menu_html(response.content.decode(), "machine").count("<option") == 2


def test_project_search_finds_projects_past_the_menu(cast, team_a):
    for n in range(60):
        ProjectFactory(team=team_a, key=f"-home-dev-src-svc{n:02d}")
    html = login(cast["owner"]).get(URL).content.decode()
    assert menu_html(html, "project").count("<option") == 1
    body = login(cast["member"]).get(search_url("project"), {"q": "svc5"}).json()
    assert [p["label"] for p in body["results"]] == [f"svc5{n}" for n in range(10)]


@pytest.mark.parametrize("kind", ["machine", "member", "project"])
def test_a_null_character_in_a_search_or_a_filter_is_refused_not_a_server_error(
    cast, populated, kind
):
    """PostgreSQL cannot even compare text holding NUL: the search answers 400 naming `q`, and
    a member or project filter holding one is simply no such member or project."""
    client = login(cast["owner"])
    response = client.get(search_url(kind), {"q": "lap\x00top"})
    assert response.status_code == 400
    assert response.json()["errors"]["q"] == ["Null characters are not allowed."]
    assert client.get("/team/", {"member": "owner\x00@a.example"}).status_code == 404
    assert client.get("/api/v1/usage/", {"project": "web\x00app"}).status_code in (400, 404)
