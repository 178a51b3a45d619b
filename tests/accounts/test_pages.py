"""The settings pages: who may open and change what (the role matrix), and what each change does."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AllowedEmail, ApiToken, Membership, Role, Team, User
from tests.conftest import api_client, make_member, token_for
from tests.factories import machine_for

pytestmark = pytest.mark.django_db

ROLES = ["owner", "admin", "member", "outsider", "anonymous"]


def client_as(cast, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(cast[role])
    return client


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


# --- The role matrix -----------------------------------------------------------------------

PAGE_ACCESS = {
    "profile": {"owner": 200, "admin": 200, "member": 200, "outsider": 200},
    "tokens": {"owner": 200, "admin": 200, "member": 200, "outsider": 200},
    "team_settings": {"owner": 200, "admin": 200, "member": 403, "outsider": 200},
    "team_members": {"owner": 200, "admin": 200, "member": 403, "outsider": 200},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", list(PAGE_ACCESS))
def test_who_may_open_each_settings_page(cast, page, role):
    response = client_as(cast, role).get(reverse(page))
    if role == "anonymous":
        assert is_login_redirect(response)
    else:
        assert response.status_code == PAGE_ACCESS[page][role]


@pytest.mark.parametrize("page", ["team_settings", "team_members"])
def test_an_outsider_sees_only_their_own_team(cast, page):
    body = client_as(cast, "outsider").get(reverse(page)).content.decode()
    assert "Team B" in body
    assert "Team A" not in body
    assert cast["member"].email not in body


def _target_url(cast, action: str) -> tuple[str, dict]:
    member = cast["member"]
    if action == "member_role":
        return reverse("member_role", args=[member.public_id]), {"role": Role.ADMIN}
    if action == "member_remove":
        return reverse("member_remove", args=[member.public_id]), {}
    if action == "allowed_remove":
        entry = AllowedEmail.objects.create(pattern="@team-a.example", team=member.team)
        return reverse("allowed_remove", args=[entry.public_id]), {}
    if action == "member_invite":
        return reverse("member_invite"), {"email": "new@a.example", "role": Role.MEMBER}
    if action == "domain_add":
        return reverse("domain_add"), {"domain": "@a.example", "role": Role.MEMBER}
    if action == "team_settings":
        return reverse("team_settings"), {"name": "Renamed", "timezone": "Asia/Tokyo"}
    raise AssertionError(action)


def _happened(cast, action: str, team_slug: str = "team-a") -> bool:
    """Did the action change team A (or the team named)?"""
    member = cast["member"]
    if action == "member_role":
        return Membership.objects.get(user=member).role == Role.ADMIN
    if action == "member_remove":
        return not Membership.objects.filter(user=member).exists()
    if action == "allowed_remove":
        return not AllowedEmail.objects.filter(pattern="@team-a.example").exists()
    if action == "member_invite":
        return AllowedEmail.objects.filter(pattern="new@a.example", team__slug=team_slug).exists()
    if action == "domain_add":
        return AllowedEmail.objects.filter(pattern="@a.example", team__slug=team_slug).exists()
    if action == "team_settings":
        return Team.objects.filter(name="Renamed", slug=team_slug).exists()
    raise AssertionError(action)


# What each role gets when it acts on team A's objects. Team-level forms (invite, domain,
# settings) act on the actor's own team, so there the outsider changes team B, never team A.
ACTION_ACCESS = {
    "member_role": {"owner": 302, "admin": 302, "member": 403, "outsider": 404},
    "member_remove": {"owner": 302, "admin": 302, "member": 403, "outsider": 404},
    "allowed_remove": {"owner": 302, "admin": 302, "member": 403, "outsider": 404},
    "member_invite": {"owner": 302, "admin": 302, "member": 403, "outsider": "own team"},
    # Only an owner whose own address is at the domain may allow it (team A's is @a.example).
    "domain_add": {"owner": 302, "admin": 400, "member": 403, "outsider": 400},
    "team_settings": {"owner": 302, "admin": 302, "member": 403, "outsider": "own team"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ACTION_ACCESS))
def test_who_may_change_team_a(cast, action, role, mailoutbox):
    url, data = _target_url(cast, action)
    response = client_as(cast, role).post(url, data)
    if role == "anonymous":
        assert is_login_redirect(response)
        assert not _happened(cast, action)
        return
    expected = ACTION_ACCESS[action][role]
    if expected == "own team":
        assert response.status_code == 302
        assert not _happened(cast, action)
        assert _happened(cast, action, team_slug="team-b")
        return
    assert response.status_code == expected
    assert _happened(cast, action) == (response.status_code == 302)


@pytest.mark.parametrize("role", ROLES)
def test_only_the_owner_of_a_token_may_revoke_it(cast, role):
    token, _ = ApiToken.issue(cast["member"], "laptop", ["ingest"])
    response = client_as(cast, role).post(reverse("token_revoke", args=[token.public_id]))
    token.refresh_from_db()
    if role == "anonymous":
        assert is_login_redirect(response)
    elif role == "member":
        assert response.status_code == 302
        assert token.revoked_at is not None
        return
    else:
        # Not even the team's owner: objects that are not yours are 404.
        assert response.status_code == 404
    assert token.revoked_at is None


@pytest.mark.parametrize(
    "url_name",
    ["token_revoke", "member_role", "member_remove", "allowed_remove", "member_invite"],
)
def test_changes_are_post_only(cast, url_name):
    client = client_as(cast, "owner")
    if url_name == "token_revoke":
        token, _ = ApiToken.issue(cast["owner"], "x", ["read"])
        url = reverse(url_name, args=[token.public_id])
    elif url_name == "member_invite":
        url = reverse(url_name)
    elif url_name == "allowed_remove":
        entry = AllowedEmail.objects.get(pattern=cast["member"].email)
        url = reverse(url_name, args=[entry.public_id])
    else:
        url = reverse(url_name, args=[cast["member"].public_id])
    assert client.get(url).status_code == 405


# --- Profile --------------------------------------------------------------------------------


def test_the_profile_saves_a_name_and_a_personal_timezone(cast):
    client = client_as(cast, "member")
    response = client.post(reverse("profile"), {"name": "Mem Ber", "timezone": "Asia/Tokyo"})
    assert response.status_code == 302
    member = User.objects.get(pk=cast["member"].pk)
    assert (member.name, member.timezone) == ("Mem Ber", "Asia/Tokyo")
    assert member.viewer_timezone() == "Asia/Tokyo"


def test_an_empty_profile_timezone_falls_back_to_the_teams(cast):
    outsider = cast["outsider"]
    client = client_as(cast, "outsider")
    client.post(reverse("profile"), {"name": "", "timezone": ""})
    outsider.refresh_from_db()
    assert outsider.viewer_timezone() == "Europe/Paris"
    assert "Team default (Europe/Paris)" in client.get(reverse("profile")).content.decode()


def test_an_unknown_timezone_is_a_form_error(cast):
    response = client_as(cast, "member").post(reverse("profile"), {"timezone": "Mars/Base"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert User.objects.get(pk=cast["member"].pk).timezone == ""


# --- Tokens page ------------------------------------------------------------------------------


def test_a_new_token_is_shown_once_and_then_only_by_prefix_and_last_four(cast):
    client = client_as(cast, "member")
    response = client.post(reverse("tokens"), {"name": "laptop", "scopes": ["ingest", "read"]})
    assert response.status_code == 201
    assert response["Cache-Control"].startswith("max-age=0")
    raw = response.context["raw_token"]
    assert raw in response.content.decode()
    token = ApiToken.objects.get(user=cast["member"])
    assert token.scopes == ["ingest", "read"]
    assert api_client(raw).get("/api/schema/").status_code == 200

    listing = client.get(reverse("tokens")).content.decode()
    assert raw not in listing
    assert token.prefix in listing and token.last_four in listing


@pytest.mark.parametrize(
    ("name", "argument"),
    [
        ("laptop", "--name=laptop"),
        ('$(touch x) " y', "--name=&#x27;$(touch x) &quot; y&#x27;"),
        ("-x", "--name=-x"),
    ],
)
def test_the_setup_command_passes_the_token_name_quoted_for_a_shell(cast, name, argument):
    response = client_as(cast, "member").post(
        reverse("tokens"), {"name": name, "scopes": ["ingest"]}
    )
    html = response.content.decode()
    command = html[html.index("claude-telemetry setup --server") :].split("</pre>", 1)[0]
    assert command.endswith(" " + argument)


def test_the_token_list_shows_last_use_and_expiry_in_the_viewers_timezone(cast):
    member = cast["member"]
    member.timezone = "Asia/Tokyo"
    member.save()
    token, _ = ApiToken.issue(member, "laptop", ["read"])
    used = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=used, last_used_ip="10.0.0.7")
    body = client_as(cast, "member").get(reverse("tokens")).content.decode()
    assert "2026-01-02 12:04" in body  # 03:04 UTC in Tokyo
    assert "10.0.0.7" in body
    assert "Times in Asia/Tokyo." in body  # the zone's name, not an abbreviation such as "+14"


def test_a_token_may_expire_at_the_end_of_a_chosen_day(cast):
    client = client_as(cast, "member")
    with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC)):
        client.post(
            reverse("tokens"),
            {"name": "ci", "scopes": ["read"], "expires_on": "2026-03-31"},
        )
    token = ApiToken.objects.get(user=cast["member"])
    assert token.expires_at == datetime(2026, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "data, error",
    [
        ({"name": "x", "scopes": []}, "This field is required"),
        ({"name": "x", "scopes": ["admin"]}, "Select a valid choice"),
        ({"name": "   ", "scopes": ["read"]}, "This field is required"),
        ({"name": "x", "scopes": ["read"], "expires_on": "2000-01-01"}, "today or a later day"),
        ({"name": "x", "scopes": ["read"], "expires_on": "2999-01-01"}, "within five years"),
        # The last day a calendar has: its next day is not a date, so no arithmetic may come first.
        ({"name": "x", "scopes": ["read"], "expires_on": "9999-12-31"}, "within five years"),
        ({"name": "x", "scopes": ["read"], "expires_on": "soon"}, "Enter a valid date"),
    ],
)
def test_bad_token_requests_are_form_errors_and_create_nothing(cast, data, error):
    response = client_as(cast, "member").post(reverse("tokens"), data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_token_page_does_not_grow_queries_with_tokens(cast, django_assert_max_num_queries):
    for i in range(30):
        ApiToken.issue(cast["member"], f"t{i}", ["read"])
    client = client_as(cast, "member")
    client.get(reverse("tokens"))
    with django_assert_max_num_queries(8):
        assert client.get(reverse("tokens")).status_code == 200


# --- Team settings ----------------------------------------------------------------------------


def test_an_admin_changes_the_team_settings(cast):
    response = client_as(cast, "admin").post(
        reverse("team_settings"),
        {"name": "Renamed", "timezone": "America/New_York", "members_see_each_other": "on"},
    )
    assert response.status_code == 302
    team = Team.objects.get(slug="team-a")
    assert (team.name, team.timezone, team.members_see_each_other) == (
        "Renamed",
        "America/New_York",
        True,
    )


def test_a_bad_team_timezone_changes_nothing(cast):
    response = client_as(cast, "owner").post(
        reverse("team_settings"), {"name": "Renamed", "timezone": "Nowhere/City"}
    )
    assert response.status_code == 200
    assert Team.objects.get(slug="team-a").name == "Team A"


# --- Members: invitations, roles, removal, allow-list ----------------------------------------


def test_an_invitation_allow_lists_the_address_and_sends_an_email(cast, mailoutbox):
    response = client_as(cast, "admin").post(
        reverse("member_invite"), {"email": "New.Person@Example.com", "role": Role.ADMIN}
    )
    assert response.status_code == 302
    entry = AllowedEmail.objects.get(pattern="new.person@example.com")
    assert (entry.team.slug, entry.role, entry.created_by) == ("team-a", Role.ADMIN, cast["admin"])
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new.person@example.com"]
    assert "/accounts/login/" in mailoutbox[0].body
    assert "Team A" in mailoutbox[0].body


def test_the_invited_person_logs_in_and_joins_with_the_granted_role(cast, mailoutbox):
    client_as(cast, "owner").post(
        reverse("member_invite"), {"email": "joiner@example.com", "role": Role.ADMIN}
    )
    browser = Client()
    browser.post(reverse("account_login"), {"email": "joiner@example.com"})
    from tests.accounts.conftest import link_path

    browser.post(link_path(mailoutbox[-1]))
    joiner = User.objects.get(email="joiner@example.com")
    assert joiner.membership.team.slug == "team-a"
    assert joiner.membership.role == Role.ADMIN
    assert browser.get(reverse("team_members")).status_code == 200


def test_an_admin_cannot_invite_an_owner(cast, mailoutbox):
    response = client_as(cast, "admin").post(
        reverse("member_invite"), {"email": "boss@example.com", "role": Role.OWNER}
    )
    assert response.status_code == 400
    assert not AllowedEmail.objects.filter(pattern="boss@example.com").exists()
    assert mailoutbox == []


def test_an_address_of_another_team_cannot_be_invited(cast, mailoutbox):
    response = client_as(cast, "owner").post(
        reverse("member_invite"), {"email": cast["outsider"].email, "role": Role.MEMBER}
    )
    assert response.status_code == 400
    assert "belongs to another team" in response.content.decode()
    assert AllowedEmail.objects.get(pattern=cast["outsider"].email).team.slug == "team-b"
    assert mailoutbox == []


def test_a_current_member_is_not_invited_twice(cast, mailoutbox):
    response = client_as(cast, "owner").post(
        reverse("member_invite"), {"email": cast["member"].email, "role": Role.ADMIN}
    )
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert Membership.objects.get(user=cast["member"]).role == Role.MEMBER


def test_an_invalid_invitation_address_is_a_form_error(cast):
    response = client_as(cast, "owner").post(
        reverse("member_invite"), {"email": "not-an-address", "role": Role.MEMBER}
    )
    assert response.status_code == 400
    assert "Enter a valid email address" in response.content.decode()


def test_a_mail_outage_still_allow_lists_the_invitee_with_a_warning(cast, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    response = client_as(cast, "owner").post(
        reverse("member_invite"), {"email": "x@example.com", "role": Role.MEMBER}, follow=True
    )
    assert response.status_code == 200
    assert "could not be sent" in response.content.decode()
    assert AllowedEmail.objects.filter(pattern="x@example.com").exists()


def test_an_admin_cannot_change_an_owners_role(cast):
    client_as(cast, "admin").post(
        reverse("member_role", args=[cast["owner"].public_id]), {"role": Role.MEMBER}
    )
    assert Membership.objects.get(user=cast["owner"]).role == Role.OWNER


def test_an_admin_cannot_make_anyone_owner(cast):
    client_as(cast, "admin").post(
        reverse("member_role", args=[cast["member"].public_id]), {"role": Role.OWNER}
    )
    assert Membership.objects.get(user=cast["member"]).role == Role.MEMBER


def test_the_last_owner_cannot_step_down(cast):
    response = client_as(cast, "owner").post(
        reverse("member_role", args=[cast["owner"].public_id]), {"role": Role.ADMIN}, follow=True
    )
    assert "last owner" in response.content.decode()
    assert Membership.objects.get(user=cast["owner"]).role == Role.OWNER


def test_an_owner_hands_over_and_then_steps_down(cast):
    client = client_as(cast, "owner")
    client.post(reverse("member_role", args=[cast["admin"].public_id]), {"role": Role.OWNER})
    client.post(reverse("member_role", args=[cast["owner"].public_id]), {"role": Role.ADMIN})
    assert Membership.objects.get(user=cast["admin"]).role == Role.OWNER
    assert Membership.objects.get(user=cast["owner"]).role == Role.ADMIN
    # The allow-list entry follows the role, so a re-created membership keeps it.
    assert AllowedEmail.objects.get(pattern=cast["admin"].email).role == Role.OWNER


def test_an_unknown_role_changes_nothing(cast):
    client_as(cast, "owner").post(
        reverse("member_role", args=[cast["member"].public_id]), {"role": "emperor"}
    )
    assert Membership.objects.get(user=cast["member"]).role == Role.MEMBER


def test_removing_a_member_ends_their_access_everywhere(cast):
    member = cast["member"]
    raw = token_for(member)
    session = client_as(cast, "member")
    response = client_as(cast, "admin").post(reverse("member_remove", args=[member.public_id]))
    assert response.status_code == 302
    member.refresh_from_db()
    assert not member.is_active
    assert not Membership.objects.filter(user=member).exists()
    assert not AllowedEmail.objects.filter(pattern=member.email).exists()
    assert ApiToken.objects.get(user=member).revoked_at is not None
    assert api_client(raw).get("/api/schema/").status_code == 401
    assert is_login_redirect(session.get(reverse("profile")))


def test_a_removed_member_cannot_come_back_through_a_domain_entry(cast, mailoutbox):
    member = cast["member"]
    AllowedEmail.objects.create(pattern="@a.example", team=member.team)
    client_as(cast, "owner").post(reverse("member_remove", args=[member.public_id]))
    Client().post(reverse("account_login"), {"email": member.email})
    assert mailoutbox == []


def test_inviting_a_removed_member_again_lets_them_back(cast, mailoutbox):
    member = cast["member"]
    owner = client_as(cast, "owner")
    owner.post(reverse("member_remove", args=[member.public_id]))
    owner.post(reverse("member_invite"), {"email": member.email, "role": Role.MEMBER})
    member.refresh_from_db()
    assert member.is_active
    Client().post(reverse("account_login"), {"email": member.email})
    assert len(mailoutbox) == 2  # the invitation, then the login link


def test_an_admin_cannot_remove_an_owner(cast):
    client_as(cast, "admin").post(reverse("member_remove", args=[cast["owner"].public_id]))
    assert Membership.objects.filter(user=cast["owner"]).exists()


def test_the_last_owner_cannot_leave(cast):
    response = client_as(cast, "owner").post(
        reverse("member_remove", args=[cast["owner"].public_id]), follow=True
    )
    assert "last owner cannot leave" in response.content.decode()
    assert Membership.objects.filter(user=cast["owner"]).exists()
    assert User.objects.get(pk=cast["owner"].pk).is_active


def test_an_owner_may_leave_when_another_owner_stays(cast):
    Membership.objects.filter(user=cast["admin"]).update(role=Role.OWNER)
    client = client_as(cast, "owner")
    response = client.post(reverse("member_remove", args=[cast["owner"].public_id]))
    assert is_login_redirect(response)
    assert not Membership.objects.filter(user=cast["owner"]).exists()
    assert is_login_redirect(client.get(reverse("profile")))


def test_an_owner_adds_their_own_domain_and_an_admin_removes_it(cast):
    client_as(cast, "owner").post(reverse("domain_add"), {"domain": "A.Example", "role": "member"})
    entry = AllowedEmail.objects.get(pattern="@a.example")
    assert entry.team.slug == "team-a"
    client_as(cast, "admin").post(reverse("allowed_remove", args=[entry.public_id]))
    assert not AllowedEmail.objects.filter(pattern="@a.example").exists()


@pytest.mark.parametrize(
    "role, domain, error",
    [
        ("owner", "example.org", "only allow @example.org if your own address is at it"),
        ("admin", "a.example", "Only a team owner may allow a whole domain"),
        ("member", "a.example", None),
        ("outsider", "a.example", "only allow @a.example if your own address is at it"),
    ],
)
def test_no_one_claims_a_domain_their_own_address_is_not_at(cast, role, domain, error):
    response = client_as(cast, role).post(
        reverse("domain_add"), {"domain": domain, "role": "member"}
    )
    assert response.status_code == (403 if error is None else 400)
    if error is not None:
        assert error in response.content.decode()
    assert not AllowedEmail.objects.filter(pattern__startswith="@").exists()


@pytest.mark.parametrize(
    "domain, role, error",
    [
        ("not a domain", Role.MEMBER, "is not a domain name"),
        ("localhost", Role.MEMBER, "full domain name"),
        ("example.org", Role.OWNER, "Select a valid choice"),
        ("b.example", Role.MEMBER, "your own address is at it"),
    ],
)
def test_bad_domains_are_refused(cast, domain, role, error):
    AllowedEmail.objects.create(pattern="@b.example", team=cast["outsider"].team)
    data = {"domain": domain, "role": role}
    response = client_as(cast, "owner").post(reverse("domain_add"), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    team_domains = AllowedEmail.objects.filter(team=cast["owner"].team, pattern__startswith="@")
    assert not team_domains.exists()


def test_an_admin_cannot_remove_the_entry_that_lets_an_owner_in(cast):
    entry = AllowedEmail.objects.get(pattern=cast["owner"].email)
    client_as(cast, "admin").post(reverse("allowed_remove", args=[entry.public_id]))
    assert AllowedEmail.objects.filter(pk=entry.pk).exists()


def test_nobody_can_remove_the_entry_of_the_last_owner(cast):
    entry = AllowedEmail.objects.get(pattern=cast["owner"].email)
    client_as(cast, "owner").post(reverse("allowed_remove", args=[entry.public_id]))
    assert AllowedEmail.objects.filter(pk=entry.pk).exists()


def test_removing_a_members_entry_blocks_their_tokens_but_keeps_the_membership(cast):
    member = cast["member"]
    raw = token_for(member)
    entry = AllowedEmail.objects.get(pattern=member.email)
    response = client_as(cast, "admin").post(
        reverse("allowed_remove", args=[entry.public_id]), follow=True
    )
    assert "can no longer log in" in response.content.decode()
    assert Membership.objects.filter(user=member).exists()
    assert api_client(raw).get("/api/schema/").status_code == 401
    page = client_as(cast, "admin").get(reverse("team_members")).content.decode()
    assert "not on allow-list" in page


def test_removing_a_members_entry_ends_their_open_browser_session_at_the_next_click(cast):
    member = cast["member"]
    machine = machine_for(member)
    session = client_as(cast, "member")
    assert session.get(reverse("profile")).status_code == 200
    assert session.get("/api/v1/usage/").status_code == 200
    AllowedEmail.objects.filter(pattern=member.email).delete()

    assert is_login_redirect(session.get(reverse("profile")))
    # Once out, each of these needs a new login that the allow-list no longer grants.
    session = client_as(cast, "member")
    assert session.get("/api/v1/usage/").status_code in (401, 403)
    session = client_as(cast, "member")
    assert is_login_redirect(session.post(reverse("tokens"), {"name": "x", "scopes": ["read"]}))
    session = client_as(cast, "member")
    rename = session.post(reverse("machine_rename", args=[machine.uuid]), {"name": "renamed"})
    assert is_login_redirect(rename)
    machine.refresh_from_db()
    assert machine.name != "renamed"
    assert not ApiToken.objects.filter(user=member, name="x").exists()
    assert "_auth_user_id" not in session.session


def test_the_members_page_shows_role_and_last_activity(cast):
    member = cast["member"]
    member.last_activity_at = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
    member.save()
    body = client_as(cast, "owner").get(reverse("team_members")).content.decode()
    assert member.email in body
    assert "2026-02-03 04:05" in body
    assert 'value="member" selected' in body


def test_the_members_page_does_not_grow_queries_with_members(cast, django_assert_max_num_queries):
    team = cast["owner"].team
    for i in range(25):
        user = make_member(team, f"m{i}@a.example", Role.MEMBER)
        ApiToken.issue(user, "t", ["read"])
    client = client_as(cast, "owner")
    client.get(reverse("team_members"))
    with django_assert_max_num_queries(10):
        assert client.get(reverse("team_members")).status_code == 200


# --- Last activity -----------------------------------------------------------------------------


def test_last_activity_is_written_at_most_once_a_minute(cast):
    client = client_as(cast, "member")
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client.get(reverse("profile"))
        assert User.objects.get(pk=cast["member"].pk).last_activity_at == start
        clock.shift(timedelta(seconds=40))
        client.get(reverse("profile"))
        assert User.objects.get(pk=cast["member"].pk).last_activity_at == start
        clock.shift(timedelta(seconds=30))
        client.get(reverse("profile"))
        assert User.objects.get(pk=cast["member"].pk).last_activity_at == start + timedelta(
            seconds=70
        )


def test_token_requests_count_as_activity(cast):
    raw = token_for(cast["member"])
    api_client(raw).get("/api/schema/")
    assert User.objects.get(pk=cast["member"].pk).last_activity_at is not None
