"""The Django admin: every accounts model is there with search and filters, plus the two actions."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from accounts.models import AllowedEmail, ApiToken, LoginLink, Membership, Team, User
from tests.conftest import api_client, token_for

pytestmark = pytest.mark.django_db

MODELS = [User, Team, Membership, AllowedEmail, ApiToken, LoginLink]


@pytest.fixture
def operator(cast) -> Client:
    User.objects.filter(pk=cast["owner"].pk).update(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(User.objects.get(pk=cast["owner"].pk))
    return client


def _admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:accounts_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_accounts_model_is_registered_with_columns_search_and_filters(model):
    model_admin = admin.site._registry[model]
    assert len(model_admin.list_display) >= 4
    assert model_admin.search_fields
    assert model_admin.list_filter


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_changelist_renders_and_searches(operator, cast, model):
    ApiToken.issue(cast["member"], "laptop", ["read"])
    LoginLink.issue(cast["member"])
    assert operator.get(_admin_url(model, "changelist")).status_code == 200
    response = operator.get(_admin_url(model, "changelist"), {"q": "member"})
    assert response.status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_change_page_renders(operator, cast, model):
    ApiToken.issue(cast["member"], "laptop", ["read"])
    LoginLink.issue(cast["member"])
    obj = model.objects.first()
    assert operator.get(_admin_url(model, "change", obj.pk)).status_code == 200


def test_the_user_page_has_no_password_field(operator, cast):
    body = operator.get(_admin_url(User, "change", cast["member"].pk)).content.decode()
    assert 'name="password"' not in body
    assert 'type="password"' not in body


def test_tokens_cannot_be_created_in_the_admin_and_show_no_hash(operator, cast):
    token, _ = ApiToken.issue(cast["member"], "laptop", ["read"])
    assert operator.get(_admin_url(ApiToken, "add")).status_code == 403
    body = operator.get(_admin_url(ApiToken, "change", token.pk)).content.decode()
    assert token.token_hash not in body
    assert token.display in body


def test_the_revoke_action_revokes_the_selected_tokens(operator, cast):
    raw = token_for(cast["member"])
    keep = token_for(cast["admin"])
    token = ApiToken.objects.get(user=cast["member"])
    response = operator.post(
        _admin_url(ApiToken, "changelist"),
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    assert api_client(raw).get("/api/schema/").status_code == 401
    assert api_client(keep).get("/api/schema/").status_code == 200


def test_the_deactivate_action_ends_sessions_and_tokens(operator, cast):
    member = cast["member"]
    raw = token_for(member)
    session = Client()
    session.force_login(member)
    operator.post(
        _admin_url(User, "changelist"),
        {"action": "deactivate_users", "_selected_action": [member.pk]},
    )
    assert not User.objects.get(pk=member.pk).is_active
    assert api_client(raw).get("/api/schema/").status_code == 401
    assert session.get(reverse("profile")).status_code == 302


def test_an_operator_cannot_deactivate_themselves(operator, cast):
    operator.post(
        _admin_url(User, "changelist"),
        {"action": "deactivate_users", "_selected_action": [cast["owner"].pk]},
    )
    assert User.objects.get(pk=cast["owner"].pk).is_active


def test_a_non_operator_cannot_use_the_admin(cast):
    client = Client()
    client.force_login(cast["owner"])
    response = client.get(_admin_url(User, "changelist"))
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 403


def test_the_token_status_filter_narrows_the_list(operator, cast):
    ApiToken.issue(cast["member"], "kept", ["read"])
    revoked, _ = ApiToken.issue(cast["member"], "gone", ["read"])
    revoked.revoke()
    body = operator.get(_admin_url(ApiToken, "changelist"), {"status": "revoked"}).content
    assert b"gone" in body
    assert b"kept" not in body
