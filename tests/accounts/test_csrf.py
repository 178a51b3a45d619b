"""Every accounts form refuses a POST without the CSRF token, and accepts one with it."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AllowedEmail, ApiToken, LoginLink, Membership, Role, Team, User

pytestmark = pytest.mark.django_db


def browser_as(user=None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def csrf_token_of(client: Client, page: str) -> str:
    client.get(page)
    return client.cookies["csrftoken"].value


def forms(cast):
    """(page that shows the form, URL it posts to, data, did-it-happen check)."""
    member = cast["member"]
    token, _ = ApiToken.issue(cast["owner"], "x", ["read"])
    domain = AllowedEmail.objects.create(pattern="@csrf.example", team=member.team)
    return [
        (
            reverse("profile"),
            reverse("profile"),
            {"name": "Changed", "timezone": ""},
            lambda: User.objects.filter(name="Changed").exists(),
        ),
        (
            reverse("tokens"),
            reverse("tokens"),
            {"name": "new", "scopes": ["read"]},
            lambda: ApiToken.objects.filter(name="new").exists(),
        ),
        (
            reverse("tokens"),
            reverse("token_revoke", args=[token.public_id]),
            {},
            lambda: ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=False).exists(),
        ),
        (
            reverse("team_settings"),
            reverse("team_settings"),
            {"name": "Changed", "timezone": "UTC"},
            lambda: Team.objects.filter(name="Changed").exists(),
        ),
        (
            reverse("team_members"),
            reverse("member_invite"),
            {"email": "csrf@example.com", "role": Role.MEMBER},
            lambda: AllowedEmail.objects.filter(pattern="csrf@example.com").exists(),
        ),
        (
            reverse("team_members"),
            reverse("member_role", args=[member.public_id]),
            {"role": Role.ADMIN},
            lambda: Membership.objects.filter(user=member, role=Role.ADMIN).exists(),
        ),
        (
            reverse("team_members"),
            reverse("domain_add"),
            # The owner's own domain: only that one may they allow.
            {"domain": "a.example", "role": Role.MEMBER},
            lambda: AllowedEmail.objects.filter(pattern="@a.example").exists(),
        ),
        (
            reverse("team_members"),
            reverse("allowed_remove", args=[domain.public_id]),
            {},
            lambda: not AllowedEmail.objects.filter(pk=domain.pk).exists(),
        ),
        (
            reverse("team_members"),
            reverse("member_remove", args=[member.public_id]),
            {},
            lambda: not Membership.objects.filter(user=member).exists(),
        ),
    ]


def test_settings_forms_refuse_a_post_without_the_csrf_token(cast):
    for _page, url, data, happened in forms(cast):
        client = browser_as(cast["owner"])
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert not happened(), url


def test_settings_forms_work_with_the_csrf_token(cast):
    for page, url, data, happened in forms(cast):
        client = browser_as(cast["owner"])
        token = csrf_token_of(client, page)
        response = client.post(url, data, HTTP_X_CSRFTOKEN=token)
        assert response.status_code in (201, 302), (url, response.status_code)
        assert happened(), url


def test_the_login_form_needs_the_csrf_token(member, mailoutbox):
    client = browser_as()
    assert client.post(reverse("account_login"), {"email": member.email}).status_code == 403
    assert mailoutbox == []
    token = csrf_token_of(client, reverse("account_login"))
    response = client.post(
        reverse("account_login"), {"email": member.email, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert len(mailoutbox) == 1


def test_confirming_a_link_needs_the_csrf_token_the_confirm_page_sets(member, mailoutbox):
    from tests.accounts.conftest import ask_for_link, link_path

    ask_for_link(Client(), member.email)
    path = link_path(mailoutbox[0])
    other_device = browser_as()
    assert other_device.post(path).status_code == 403
    assert LoginLink.objects.get().used_at is None
    token = csrf_token_of(other_device, path)
    response = other_device.post(path, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert LoginLink.objects.get().used_at is not None


def test_logging_out_needs_the_csrf_token(member):
    client = browser_as(member)
    assert client.post(reverse("account_logout")).status_code == 403
    assert client.get(reverse("profile")).status_code == 200
