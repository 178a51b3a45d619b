"""Pages of a big team: the sessions list's searched menus and default last 30 days, the
projects page a page at a time with one list of group targets, and the budgets page's long
member menu; query counts that do not grow with the team, who may see what, and totals equal
to the raw facts'."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from budgets.forms import ExemptionForm
from dashboards.views import explorer as explorer_view
from dashboards.views import projects as projects_view
from tests.conftest import login, make_member
from tests.dashboards import conftest
from tests.dashboards.conftest import NOW, menu_html
from tests.factories import MachineFactory, ProjectFactory, daily, session
from usage.models import DailyUsage, SessionUsage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("at_now")]

SESSIONS = "/sessions/"
PROJECTS = "/projects/"


def add_people(team, first: int, count: int) -> None:
    """`count` more members with two machines each and a session on each."""
    conftest.add_people(team, first, count, lambda machine: session(machine, last_activity=NOW))


# --- the sessions list -------------------------------------------------------------------------
@pytest.mark.parametrize("url", [SESSIONS, f"{SESSIONS}?scope=team"])
def test_the_sessions_page_costs_the_same_queries_however_many_machines(
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
    html = response.content.decode()
    assert 'data-search="/usage/search/machine/"' in menu_html(html, "machine")
    # 48 members: still under MENU_LIMIT, so that menu lists them all.
    assert "data-search" not in menu_html(html, "member")
    assert menu_html(html, "machine").count("<option") == 1
    assert "js/menu_search.js" in html
    with CaptureQueriesContext(connection) as large:
        client.get(url)
    add_people(team_a, 45, 10)
    with CaptureQueriesContext(connection) as larger:
        client.get(url)
    assert len(larger) == len(large)


def test_a_short_menu_lists_everything_and_loads_no_search_script(cast, populated):
    html = login(cast["owner"]).get(SESSIONS).content.decode()
    assert "data-search" not in menu_html(html, "machine")
    assert "member-laptop (member@a.example)" in menu_html(html, "machine")
    assert "js/menu_search.js" not in html


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_filter_by_a_machine_of_a_searched_menu(cast, populated, short_menus, role):
    laptop = populated.machines["member"][0]
    response = login(cast[role]).get(SESSIONS, {"scope": "team", "machine": str(laptop.uuid)})
    assert response.status_code == 200
    assert not response.context["filters"].errors
    assert {s.machine_id for s in response.context["page"].object_list} == {laptop.pk}
    # The chosen machine is the menu's one option besides "All machines".
    menu = menu_html(response.content.decode(), "machine")
    assert menu.count("<option") == 2 and "member-laptop (member@a.example)" in menu


def test_a_member_may_not_pick_a_colleagues_machine_in_a_searched_menu(
    cast, populated, short_menus
):
    theirs = populated.machines["admin"][0]
    response = login(cast["member"]).get(SESSIONS, {"machine": str(theirs.uuid)})
    assert response.status_code == 200
    assert "machine" in response.context["filters"].errors
    assert {s.machine.owner_id for s in response.context["page"].object_list} == {cast["member"].pk}
    assert "member" not in response.context["filters"].fields


def test_an_outsider_picking_this_teams_machine_gets_none_of_its_sessions(cast, populated):
    laptop = populated.machines["member"][0]
    response = login(cast["outsider"]).get(SESSIONS, {"machine": str(laptop.uuid)})
    assert response.status_code == 200
    assert "machine" in response.context["filters"].errors
    assert all(
        s.machine.owner_id == cast["outsider"].pk for s in response.context["page"].object_list
    )


def test_the_sessions_page_shows_the_last_30_days_unless_asked(cast, populated):
    laptop = populated.machines["member"][0]
    session(laptop, last_activity=NOW - timedelta(days=45), cost_usd=Decimal("7.00"))
    client = login(cast["member"])
    recent = client.get(SESSIONS)
    assert recent.context["filters"].value("range") == "30d"
    start = NOW - timedelta(days=40)
    raw_recent = SessionUsage.objects.filter(
        machine__owner=cast["member"], last_activity__gte=start
    ).aggregate(count=Count("pk"), cost_usd=Sum("cost_usd"))
    assert recent.context["totals"]["count"] == raw_recent["count"]
    assert recent.context["totals"]["cost_usd"] == raw_recent["cost_usd"]
    # "Any time" (an empty range) counts every session, the old one included.
    everything = client.get(SESSIONS, {"range": ""})
    raw_all = SessionUsage.objects.filter(machine__owner=cast["member"]).aggregate(
        count=Count("pk"), cost_usd=Sum("cost_usd")
    )
    assert everything.context["totals"]["count"] == raw_all["count"] == raw_recent["count"] + 1
    assert everything.context["totals"]["cost_usd"] == raw_all["cost_usd"]
    # Dates without a preset are a custom range, never the default.
    dated = client.get(SESSIONS, {"since": (NOW - timedelta(days=50)).date().isoformat()})
    assert dated.context["totals"]["count"] == raw_all["count"]


# --- the projects page -------------------------------------------------------------------------
def test_projects_come_a_page_at_a_time_with_one_target_list(
    cast, team_a, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(projects_view, "PROJECTS_PER_PAGE", 5)
    for n in range(12):
        ProjectFactory(team=team_a, key=f"-home-dev-src-svc{n:02d}", display_name=f"svc{n:02d}")
    client = login(cast["owner"])
    with django_assert_max_num_queries(8):
        first = client.get(PROJECTS)
    html = first.content.decode()
    assert first.context["page"].paginator.count == 12
    assert "12 projects" in html and 'rel="next"' in html
    assert html.count('class="card project"') == 5
    # Every project is a target once, in the one list the forms share.
    assert html.count('<datalist id="project-targets">') == 1
    assert all(f">svc{n:02d} (" in html for n in range(12))
    assert html.count('list="project-targets"') == 5
    last = client.get(PROJECTS, {"page": "999"})
    assert last.context["page"].number == 3
    assert last.content.decode().count('class="card project"') == 2
    with CaptureQueriesContext(connection) as before:
        client.get(PROJECTS)
    for n in range(12, 40):
        ProjectFactory(team=team_a, key=f"-home-dev-src-svc{n:02d}")
    with django_assert_max_num_queries(len(before)):
        client.get(PROJECTS)


@pytest.mark.parametrize("role", ["member", "outsider"])
def test_who_may_not_manage_gets_no_forms_and_no_target_list(cast, populated, role):
    response = login(cast[role]).get(PROJECTS)
    if role == "outsider":
        # Their own team's projects only: none of team A's.
        assert not any(
            g["project"].team_id == populated.projects[0].team_id
            for g in response.context["groups"]
        )
    assert "project-targets" not in response.content.decode()


# --- the budgets page's member menu --------------------------------------------------------------
def test_the_long_member_menu_renders_as_djangos_select_did(cast, team_a):
    form = ExemptionForm(team=team_a, now=NOW)
    html = str(form["member"])
    members = list(form.fields["member"].queryset.order_by("pk"))
    assert html.startswith('<select name="member" id="id_member">')
    assert '<option value="" selected>Everyone in the team</option>' in html
    for user in members:
        assert f'<option value="{user.pk}">' in html
    chosen = ExemptionForm({"member": str(members[0].pk)}, team=team_a, now=NOW)
    assert f'<option value="{members[0].pk}" selected>' in str(chosen["member"])
    assert '<option value="" selected>' not in str(chosen["member"])


def test_the_budgets_page_costs_the_same_queries_however_many_members(
    cast, team_a, django_assert_max_num_queries
):
    client = login(cast["owner"])
    client.get("/budgets/")
    with CaptureQueriesContext(connection) as before:
        client.get("/budgets/")
    add_people(team_a, 0, 30)
    with django_assert_max_num_queries(len(before)):
        response = client.get("/budgets/")
    assert (
        response.content.decode().count("@a.example)</option>")
        + response.content.decode().count("@a.example</option>")
        >= 30
    )


# --- the explorer's split table ----------------------------------------------------------------
def add_spenders(team, count: int) -> None:
    """`count` more members with one machine each and a day of usage of distinct cost."""
    for n in range(count):
        person = make_member(team, f"spender{n}@a.example", Role.MEMBER)
        daily(MachineFactory(owner=person, name=f"box{n}"), NOW.date(), cost=f"{n + 1}.00")


def test_a_long_split_is_paged_and_the_csv_keeps_every_row(
    cast, team_a, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(explorer_view, "SPLIT_ROWS_PER_PAGE", 4)
    add_spenders(team_a, 10)
    client = login(cast["owner"])
    url = "/usage/?scope=team&split=machine"
    first = client.get(url)
    rows = first.context["data"]["results"]
    assert [row["label"] for row in rows] == [
        f"box{n} (spender{n}@a.example)" for n in (9, 8, 7, 6)
    ]
    assert first.context["data"]["rows_page"].paginator.count == 10
    html = first.content.decode()
    assert "Rows 1\N{EN DASH}4 of 10" in html and "rows_page=2" in html
    # Totals cover every machine, as the raw facts say.
    raw = DailyUsage.objects.filter(machine__team=team_a, day=NOW.date()).aggregate(
        cost=Sum("cost_usd")
    )["cost"]
    assert first.context["data"]["totals"]["cost_usd"] == raw == Decimal("55.00")
    last = client.get(f"{url}&rows_page=99")
    assert [row["label"] for row in last.context["data"]["results"]] == [
        "box1 (spender1@a.example)",
        "box0 (spender0@a.example)",
    ]
    with CaptureQueriesContext(connection) as before:
        client.get(url)
    add_spenders_more = [make_member(team_a, f"late{n}@a.example", Role.MEMBER) for n in range(20)]
    for n, person in enumerate(add_spenders_more):
        daily(MachineFactory(owner=person, name=f"late{n}"), NOW.date(), cost="0.50")
    with django_assert_max_num_queries(len(before)):
        client.get(url)
    csv_lines = client.get("/usage/export.csv?scope=team&split=machine").content.decode()
    assert csv_lines.count("\n") == 1 + 30 + 1  # header, every machine, total
    assert "box0 (spender0@a.example)" in csv_lines


@pytest.mark.parametrize("role", ["member", "outsider"])
def test_who_may_not_split_the_team_by_machine_gets_no_pages_of_it(cast, team_a, role):
    add_spenders(team_a, 6)
    response = login(cast[role]).get("/usage/", {"scope": "team", "split": "machine"})
    assert response.status_code == 200
    assert response.context["group_by"] != "machine" or all(
        "spender" not in row["label"] for row in response.context["data"]["results"]
    )
