"""Error pages: 403 and 404 in the site's layout with the reason and a way back; 500 without
the database."""

import pytest
from django.db import connection
from django.test import RequestFactory
from django.views.defaults import server_error

from tests.conftest import login

pytestmark = pytest.mark.django_db


def test_a_missing_page_is_a_styled_404_with_a_way_back(member):
    response = login(member).get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Nothing here" in html and "<code>/no-such-page/</code>" in html
    assert 'href="/">Back to the overview</a>' in html
    assert 'class="site-nav"' in html  # the site's layout, with its navigation


def test_another_teams_object_is_the_same_404_as_a_missing_one(member, outsider):
    from tests.factories import MachineFactory

    theirs = MachineFactory(owner=outsider)
    response = login(member).get(f"/machines/{theirs.uuid}/")
    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()


def test_an_owner_at_the_admin_is_told_it_needs_a_staff_account_and_how(owner):
    response = login(owner).get("/admin/", follow=True)
    assert response.status_code == 403
    html = response.content.decode()
    assert "staff account" in html and "owner@a.example" in html
    assert "manage.py createsuperuser --noinput --email ops@example.com" in html
    assert "Back to the overview" in html


def test_a_refused_page_says_why(member):
    response = login(member).get("/settings/team/members/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "You may not open this page" in html and "staff account" not in html
    assert "Only the team&#x27;s admins and owners can open this page." in html
    assert "Back to the overview" in html


def test_the_500_page_renders_without_the_database():
    def no_database(*args, **kwargs):
        raise AssertionError("the 500 page touched the database")

    request = RequestFactory().get("/")
    with connection.execute_wrapper(no_database):
        response = server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on the server" in html
    assert 'href="/">Back to the overview</a>' in html


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1/nope/", "/api/v1/usage/extra/segments"])
def test_an_unknown_api_path_is_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "No such API endpoint" in response.json()["detail"]
