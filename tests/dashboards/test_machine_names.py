"""Two machines of one account never share a name: the machines page and PATCH
/api/v1/machines/<uuid>/ refuse it with a message and change nothing."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.conftest import api_client, login, token_for

pytestmark = pytest.mark.django_db


def rename_url(machine) -> str:
    return reverse("machine_rename", args=[machine.uuid])


def api_url(machine) -> str:
    return f"/api/v1/machines/{machine.uuid}/"


def session_api(user) -> APIClient:
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def test_the_page_refuses_a_name_another_machine_of_the_account_has(populated, member):
    laptop = populated.machines["member"][0]
    response = login(member).post(rename_url(laptop), {"name": " MEMBER-desktop "}, follow=True)
    laptop.refresh_from_db()
    assert laptop.name == "member-laptop"
    assert "Not renamed: “member-desktop” is already the name of another machine" in (
        response.content.decode()
    )


def test_a_retired_machines_name_is_taken_too(populated, member):
    laptop, desktop = populated.machines["member"][:2]
    desktop.retired_at = desktop.first_seen_at
    desktop.save()
    response = login(member).post(rename_url(laptop), {"name": "member-desktop"}, follow=True)
    assert "(retired) is already the name" in response.content.decode()


def test_another_persons_machine_may_share_a_name(populated, admin, member):
    laptop = populated.machines["member"][0]
    login(member).post(rename_url(laptop), {"name": "admin-laptop"})
    laptop.refresh_from_db()
    assert laptop.name == "admin-laptop"


def test_the_api_renames_for_the_owner_and_admins(populated, member, admin):
    laptop = populated.machines["member"][0]
    response = session_api(member).patch(api_url(laptop), {"name": "travel"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "travel"
    response = session_api(admin).patch(api_url(laptop), {"name": "by admin"}, format="json")
    assert response.status_code == 200
    laptop.refresh_from_db()
    assert laptop.name == "by admin"


def test_the_api_refuses_a_duplicate_name_with_the_field_and_reason(populated, member):
    laptop = populated.machines["member"][0]
    response = session_api(member).patch(api_url(laptop), {"name": "member-server"}, format="json")
    assert response.status_code == 400
    assert "already the name of another machine" in response.json()["errors"]["name"][0]
    laptop.refresh_from_db()
    assert laptop.name == "member-laptop"


@pytest.mark.parametrize("role", ["member", "outsider"])
def test_others_get_a_404_from_the_api(populated, cast, role):
    target = populated.machines["admin"][0]
    response = session_api(cast[role]).patch(api_url(target), {"name": "mine"}, format="json")
    assert response.status_code == 404
    target.refresh_from_db()
    assert target.name == "admin-laptop"


def test_a_token_cannot_rename_and_anonymous_is_refused(populated, member):
    laptop = populated.machines["member"][0]
    with_token = api_client(token_for(member)).patch(api_url(laptop), {"name": "x"}, format="json")
    assert with_token.status_code == 403
    assert api_client().patch(api_url(laptop), {"name": "x"}, format="json").status_code in (
        401,
        403,
    )
    laptop.refresh_from_db()
    assert laptop.name == "member-laptop"


def test_the_api_needs_the_csrf_token_of_the_session(populated, member):
    laptop = populated.machines["member"][0]
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(member)
    response = client.patch(api_url(laptop), {"name": "x"}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("lap\x00top", "Null characters are not allowed"),
        ("laptop\u202egnp.exe", "right-to-left override"),
        ("lap\u200dtop", "invisible formatting characters"),
        ("x" * 101, "at most 100 characters"),
    ],
)
def test_a_name_that_would_read_as_something_else_is_refused_with_the_reason(
    populated, member, name, reason
):
    laptop = populated.machines["member"][0]
    response = login(member).post(rename_url(laptop), {"name": name}, follow=True)
    laptop.refresh_from_db()
    assert laptop.name == "member-laptop"
    assert reason in response.content.decode()
