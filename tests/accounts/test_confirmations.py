"""Revoke a token and remove a member ask first: a GET page that says what stops working and
POSTs to the unchanged action; opening it changes nothing."""

import pytest
from django.urls import reverse

from accounts.models import ApiToken, Membership
from tests.accounts.test_pages import ROLES, client_as, is_login_redirect

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ROLES)
def test_only_the_owner_of_a_token_sees_its_revoke_confirmation(cast, role):
    token, _ = ApiToken.issue(cast["member"], "laptop", ["ingest"])
    url = reverse("token_revoke_confirm", args=[token.public_id])
    response = client_as(cast, role).get(url)
    if role == "anonymous":
        assert is_login_redirect(response)
    elif role == "member":
        assert response.status_code == 200
        html = response.content.decode()
        assert "Revoke the token “laptop”?" in html
        assert "an agent with it stops syncing" in html
        assert f'action="{reverse("token_revoke", args=[token.public_id])}"' in html
        assert f'href="{reverse("tokens")}">Cancel' in html
    else:
        assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_revoked_token_has_no_confirmation_page(cast):
    token, _ = ApiToken.issue(cast["member"], "laptop", ["ingest"])
    token.revoke()
    url = reverse("token_revoke_confirm", args=[token.public_id])
    assert client_as(cast, "member").get(url).status_code == 404


def test_the_token_list_links_to_the_confirmation_instead_of_revoking(cast):
    token, _ = ApiToken.issue(cast["member"], "laptop", ["ingest"])
    html = client_as(cast, "member").get(reverse("tokens")).content.decode()
    assert reverse("token_revoke_confirm", args=[token.public_id]) in html
    assert f'action="{reverse("token_revoke", args=[token.public_id])}"' not in html


REMOVE_CONFIRM = {"owner": 200, "admin": 200, "member": 403, "outsider": 404}


@pytest.mark.parametrize("role", ROLES)
def test_only_admins_of_the_team_see_a_members_removal_confirmation(cast, role):
    ApiToken.issue(cast["member"], "laptop", ["ingest"])
    url = reverse("member_remove_confirm", args=[cast["member"].public_id])
    response = client_as(cast, role).get(url)
    if role == "anonymous":
        assert is_login_redirect(response)
    else:
        assert response.status_code == REMOVE_CONFIRM[role]
    if response.status_code == 200:
        html = response.content.decode()
        assert "Remove member@a.example from the team?" in html
        assert "Their API tokens (1) are revoked: agents using them stop syncing." in html
        assert "logged out at once" in html
        remove = reverse("member_remove", args=[cast["member"].public_id])
        assert f'action="{remove}"' in html
    assert Membership.objects.filter(user=cast["member"]).exists()


def test_an_admin_is_told_only_an_owner_can_remove_an_owner(cast):
    url = reverse("member_remove_confirm", args=[cast["owner"].public_id])
    response = client_as(cast, "admin").get(url)
    assert response.status_code == 403
    assert "Only an owner can remove an owner." in response.content.decode()


def test_leaving_the_team_is_confirmed_in_the_first_person(cast):
    url = reverse("member_remove_confirm", args=[cast["admin"].public_id])
    html = client_as(cast, "admin").get(url).content.decode()
    assert "Leave the team?" in html and "You are logged out at once" in html


def test_the_members_list_links_to_the_confirmation_and_says_api_tokens(cast):
    html = client_as(cast, "owner").get(reverse("team_members")).content.decode()
    assert reverse("member_remove_confirm", args=[cast["member"].public_id]) in html
    assert f'action="{reverse("member_remove", args=[cast["member"].public_id])}"' not in html
    assert '<th class="num">API tokens</th>' in html
