"""Inputs that used to give a 500: days past the calendar and text that is not valid Unicode.
Run on PostgreSQL too (DATABASE_URL), where a lone surrogate fails at the INSERT."""

from datetime import date

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import api_client, login, token_for
from tests.factories import project_for

pytestmark = pytest.mark.django_db

# Every API endpoint with date query parameters, and the parameters.
API_DATES = [
    ("/api/v1/usage/", ("since", "until")),
    ("/api/v1/sessions/", ("since", "until")),
    ("/api/v1/blocks/", ("since", "until")),
    ("/api/v1/plan-value/", ("since", "until")),
]
PAGES_WITH_DATES = ["usage_explorer", "usage_csv", "sessions", "blocks"]
PAST_THE_CALENDAR = ["9999-12-31", "0001-01-01"]


@pytest.mark.parametrize("day", PAST_THE_CALENDAR)
@pytest.mark.parametrize(("url", "names"), API_DATES)
def test_api_days_past_the_calendar_are_a_400_naming_the_field(owner, url, names, day):
    client = api_client(token_for(owner))
    for name in names:
        response = client.get(url, {name: day, "scope": "team"})
        if response.status_code == 404 and url.startswith("/api/v1/plan"):
            pytest.skip("no plan-value endpoint in this tree")
        assert response.status_code == 400, (url, name, response.content)
        assert name in response.json()["errors"]


@pytest.mark.parametrize("day", PAST_THE_CALENDAR)
@pytest.mark.parametrize("page", PAGES_WITH_DATES)
def test_pages_show_days_past_the_calendar_as_a_form_error(owner, page, day):
    client = login(owner)
    for name in ("since", "until"):
        response = client.get(reverse(page), {name: day})
        assert response.status_code in (200, 400), (page, name, response.status_code)
        if page != "usage_csv":
            assert "Give a day from 1970-01-01 to 2999-12-31" in response.content.decode()


def date_parameters(client) -> list[tuple[str, str]]:
    """(path, parameter) for every GET endpoint's query parameter of format `date`."""
    document = client.get("/api/schema/?format=json").json()
    found = []
    for path, operations in document["paths"].items():
        for parameter in operations.get("get", {}).get("parameters", []):
            if parameter["in"] == "query" and parameter["schema"].get("format") == "date":
                found.append((path, parameter["name"]))
    return found


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(day=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_no_day_in_any_api_date_parameter_or_page_filter_gives_a_server_error(client, owner, day):
    api = api_client(token_for(owner))
    parameters = date_parameters(client)
    assert ("/api/v1/sessions/", "until") in parameters
    for path, name in parameters:
        response = api.get(path, {name: day.isoformat(), "scope": "team"})
        assert response.status_code < 500, (path, name, day)
    browser = login(owner)
    for page in PAGES_WITH_DATES:
        for name in ("since", "until"):
            response = browser.get(reverse(page), {name: day.isoformat()})
            assert response.status_code < 500, (page, name, day)


def test_a_lone_surrogate_in_a_json_body_is_a_400_naming_where(admin, team_a):
    project = project_for(team_a)
    client = login(admin)
    response = client.patch(
        f"/api/v1/projects/{project.public_id}/",
        '{"name": "web\\ud800app"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "body.name": ["not valid Unicode text (a lone surrogate)."]
    }
    project.refresh_from_db()
    assert "\ud800" not in project.display_name


def test_a_lone_surrogate_in_the_ingest_envelope_is_a_400(member, fixtures_dir):
    from tests.usage.ingest.helpers import envelope, fixture_reports, post

    response = post(api_client(token_for(member)), envelope(fixture_reports(), name="lap\ud800"))
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("page", PAGES_WITH_DATES)
def test_a_start_day_after_the_default_end_is_a_form_error_not_a_500(owner, page):
    response = login(owner).get(reverse(page), {"since": "2999-12-31"})
    assert response.status_code == 200
