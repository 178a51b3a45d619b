"""The sessions list: scoping by viewer, filters, paging and a bounded number of queries."""

from datetime import timedelta

import pytest
from django.urls import reverse

from tests.conftest import login
from tests.dashboards.conftest import NOW
from tests.factories import session

pytestmark = pytest.mark.django_db

URL = "/sessions/"


def machines_listed(response) -> set[str]:
    return {s.machine.name for s in response.context["page"].object_list}


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = login(None).get(URL)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_a_member_sees_their_own_sessions(populated, member):
    response = login(member).get(URL)
    assert response.status_code == 200
    assert machines_listed(response) == {"member-laptop", "member-desktop", "member-server"}
    assert response.context["totals"]["count"] == 15


def test_a_member_asking_for_the_whole_team_still_sees_only_their_own(populated, member):
    response = login(member).get(URL, {"scope": "team"})
    assert machines_listed(response) == {"member-laptop", "member-desktop", "member-server"}


def test_a_member_cannot_filter_by_a_colleague(populated, member, admin):
    response = login(member).get(URL, {"member": str(admin.public_id)})
    assert response.status_code == 200
    assert "admin-laptop" not in machines_listed(response)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_start_with_their_own_and_can_see_the_whole_team(populated, cast, role):
    client = login(cast[role])
    own = client.get(URL)
    assert {name.split("-")[0] for name in machines_listed(own)} == {role}
    team = client.get(URL, {"scope": "team"})
    assert team.context["totals"]["count"] == 45
    assert "outsider-box" not in machines_listed(team)


def test_an_admin_filters_by_one_member(populated, admin, member):
    response = login(admin).get(URL, {"member": str(member.public_id)})
    assert machines_listed(response) == {"member-laptop", "member-desktop", "member-server"}


def test_an_outsider_sees_nothing_of_team_a(populated, outsider):
    response = login(outsider).get(URL, {"scope": "team"})
    assert machines_listed(response) == {"outsider-box"}


def test_filters_by_machine_project_source_and_dates(populated, member):
    laptop = populated.machines["member"][0]
    webapp = populated.projects[0]
    client = login(member)
    by_machine = client.get(URL, {"machine": str(laptop.uuid)})
    assert machines_listed(by_machine) == {"member-laptop"}
    by_project = client.get(URL, {"project": str(webapp.public_id)})
    assert {s.project_id for s in by_project.context["page"].object_list} == {webapp.pk}
    assert by_project.context["totals"]["count"] == 5
    by_source = client.get(URL, {"source": "codex"})
    assert by_source.context["totals"]["count"] == 0
    one_day = (NOW - timedelta(days=1)).date().isoformat()
    by_day = client.get(URL, {"since": one_day, "until": one_day})
    assert by_day.context["totals"]["count"] == 3


def test_a_project_filter_includes_its_aliases(populated, member):
    webapp, api = populated.projects[0], populated.projects[1]
    api.alias_of = webapp
    api.save()
    response = login(member).get(URL, {"project": str(webapp.public_id)})
    assert response.context["totals"]["count"] == 10


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"machine": "not-a-machine"},
        {"project": "00000000-0000-0000-0000-000000000000"},
        {"source": "<script>"},
        {"until": "2026-13-01"},
    ],
)
def test_bad_filter_values_show_an_error_and_are_ignored(populated, member, params):
    response = login(member).get(URL, params)
    assert response.status_code == 200
    assert response.context["filters"].errors
    assert b"errorlist" in response.content
    assert response.context["totals"]["count"] == 15


def test_an_end_date_before_the_start_date_is_read_as_the_range_between_them(populated, member):
    response = login(member).get(URL, {"since": "2026-11-24", "until": "2026-11-23"})
    html = response.content.decode()
    assert "The end date is before the start date, so the two were swapped" in html
    # The fields say what the list shows: Nov 23 to Nov 24, 3 machines a day.
    assert 'name="since" value="2026-11-23"' in html and 'name="until" value="2026-11-24"' in html
    assert response.context["totals"]["count"] == 6


def test_sessions_are_paged_newest_first(populated, member, django_assert_max_num_queries):
    laptop = populated.machines["member"][0]
    for n in range(100):
        session(
            laptop, project=populated.projects[0], last_activity=NOW - timedelta(days=30, minutes=n)
        )
    client = login(member)
    with django_assert_max_num_queries(11):
        # "Any time" (range=): the new sessions are 30 days old, past the default last 30 days.
        first = client.get(URL, {"range": ""})
    rows = list(first.context["page"].object_list)
    assert len(rows) == 50
    assert rows == sorted(rows, key=lambda s: s.last_activity, reverse=True)
    assert first.context["page"].paginator.num_pages == 3
    assert b'rel="next"' in first.content
    last = client.get(URL, {"page": "999", "range": ""})
    assert last.context["page"].number == 3
    assert len(last.context["page"].object_list) == 15
    garbage = client.get(URL, {"page": "abc", "range": ""})
    assert garbage.context["page"].number == 1


def test_the_page_shows_figures_for_people(populated, member):
    html = login(member).get(URL).content.decode()
    assert "15 sessions" in html
    assert "$11.25" in html  # 15 sessions at $0.75
    assert "750K tokens" in html


def test_without_machines_the_page_says_how_to_get_data_in(member):
    html = login(member).get(URL).content.decode()
    assert "No sessions yet" in html
    assert "/machines/#onboarding" in html
