"""The operator commands: adduser is idempotent, create_api_token prints only the token, and
mistakes are one readable line."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AllowedEmail, ApiToken, Membership, Role, Team, User
from tests.conftest import api_client

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_adduser_creates_team_user_membership_and_allow_list_entry():
    out, _ = run("adduser", "Boss@Example.com", "--team", "acme", "--role", "owner")
    user = User.objects.get(email="boss@example.com")
    assert user.membership.team.slug == "acme"
    assert user.membership.role == Role.OWNER
    assert AllowedEmail.objects.get(pattern="boss@example.com").role == Role.OWNER
    assert not user.has_usable_password()
    assert "Created boss@example.com as owner of team acme" in out
    assert "Created team acme" in out


def test_adduser_twice_changes_nothing():
    run("adduser", "boss@example.com", "--team", "acme", "--role", "owner")
    before = (User.objects.count(), Team.objects.count(), Membership.objects.count())
    out, _ = run("adduser", "boss@example.com", "--team", "acme", "--role", "owner")
    after = (User.objects.count(), Team.objects.count(), Membership.objects.count())
    assert before == after == (1, 1, 1)
    assert AllowedEmail.objects.count() == 1
    assert out.startswith("Updated")


def test_adduser_changes_a_role_and_reactivates():
    run("adduser", "boss@example.com", "--team", "acme", "--role", "owner")
    run("adduser", "dev@example.com", "--team", "acme")
    User.objects.filter(email="dev@example.com").update(is_active=False)
    run("adduser", "dev@example.com", "--team", "acme", "--role", "admin")
    dev = User.objects.get(email="dev@example.com")
    assert dev.is_active
    assert dev.membership.role == Role.ADMIN
    assert AllowedEmail.objects.get(pattern="dev@example.com").role == Role.ADMIN


def test_adduser_sets_a_new_teams_timezone_and_name():
    run(
        "adduser",
        "a@example.com",
        "--team",
        "tokyo",
        "--timezone",
        "Asia/Tokyo",
        "--team-name",
        "Tokyo office",
    )
    team = Team.objects.get(slug="tokyo")
    assert (team.name, team.timezone) == ("Tokyo office", "Asia/Tokyo")


@pytest.mark.parametrize(
    "args, message",
    [
        (["not-an-email", "--team", "acme"], "is not a valid email address"),
        (["a@example.com", "--team", "bad slug!"], "use letters, numbers"),
        (["a@example.com", "--team", "acme", "--timezone", "Mars/Base"], "not a known IANA"),
        (["a@example.com", "--team", "x" * 61], "at most 60"),
    ],
)
def test_adduser_refuses_bad_input_and_writes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run("adduser", *args)
    assert not User.objects.exists()
    assert not Team.objects.exists()


def test_adduser_refuses_to_move_someone_between_teams():
    run("adduser", "a@example.com", "--team", "one", "--role", "owner")
    with pytest.raises(CommandError, match="already belongs to team 'one'"):
        run("adduser", "a@example.com", "--team", "two")
    assert not Team.objects.filter(slug="two").exists()


def test_adduser_refuses_an_address_allow_listed_for_another_team(team_b):
    AllowedEmail.objects.create(pattern="pending@example.com", team=team_b)
    with pytest.raises(CommandError, match="allow-list of team 'team-b'"):
        run("adduser", "pending@example.com", "--team", "acme")
    assert not User.objects.filter(email="pending@example.com").exists()


def test_adduser_will_not_demote_the_last_owner():
    run("adduser", "boss@example.com", "--team", "acme", "--role", "owner")
    with pytest.raises(CommandError, match="last owner"):
        run("adduser", "boss@example.com", "--team", "acme", "--role", "member")
    assert Membership.objects.get().role == Role.OWNER


def test_create_api_token_prints_only_a_working_token(member):
    out, err = run("create_api_token", member.email, "--name", "laptop", "--scopes", "ingest")
    raw = out.strip()
    assert out == raw + "\n"
    assert err == ""
    token = ApiToken.objects.get()
    assert (token.name, token.scopes) == ("laptop", ["ingest"])
    assert api_client(raw).get("/api/schema/").status_code == 200


def test_create_api_token_defaults_to_both_scopes(member):
    run("create_api_token", member.email.upper(), "--name", "x")
    assert ApiToken.objects.get().scopes == ["ingest", "read"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["nobody@example.com", "--name", "x"], "No user 'nobody@example.com'"),
        (["member@a.example", "--name", "x", "--scopes", "admin"], "unknown admin"),
        (["member@a.example", "--name", "x", "--scopes", ","], r"\(none given\)"),
        (["member@a.example", "--name", "  "], "must not be empty"),
        (["member@a.example", "--name", "x" * 101], "at most 100"),
    ],
)
def test_create_api_token_refuses_bad_input(member, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_api_token", *args)
    assert not ApiToken.objects.exists()


def test_create_api_token_refuses_a_deactivated_user(member):
    User.objects.filter(pk=member.pk).update(is_active=False)
    with pytest.raises(CommandError, match="deactivated"):
        run("create_api_token", member.email, "--name", "x")


def test_create_api_token_warns_on_stderr_when_the_user_is_not_allow_listed(member):
    AllowedEmail.objects.filter(pattern=member.email).delete()
    out, err = run("create_api_token", member.email, "--name", "x")
    assert out.startswith("cct_")
    assert "not on their team's allow-list" in err


def test_a_command_line_mistake_is_one_readable_line_not_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "adduser", "not-an-email", "--team", "acme"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: 'not-an-email' is not a valid email address."
    assert result.stdout == ""
