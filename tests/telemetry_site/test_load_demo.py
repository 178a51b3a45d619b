"""`load_demo`: the real agent and the real ccusage fill a demo team, and a second run adds
nothing."""

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum

from accounts.models import ApiToken, Team, User
from budgets.models import Budget, Channel
from tests.conftest import login
from usage.models import Block, DailyUsage, Machine, RateLimitSnapshot, SessionUsage, Subscription
from usage.naming import rename_machine

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_var(settings, tmp_path, fixtures_dir):
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def load(*args: str) -> str:
    out = io.StringIO()
    call_command("load_demo", "--days", "10", "--force", *args, stdout=out)
    return out.getvalue()


def counts() -> dict:
    return {
        "users": User.objects.count(),
        "machines": Machine.objects.count(),
        "daily": DailyUsage.objects.count(),
        "sessions": SessionUsage.objects.count(),
        "blocks": Block.objects.count(),
        "readings": RateLimitSnapshot.objects.count(),
        "tokens": ApiToken.objects.filter(revoked_at__isnull=True).count(),
        "budgets": Budget.objects.count(),
        "channels": Channel.objects.count(),
        "cost": DailyUsage.objects.aggregate(total=Sum("cost_usd"))["total"],
    }


def test_the_demo_refuses_a_production_database_and_changes_nothing(settings, demo_var):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--force"):
        call_command("load_demo", stdout=io.StringIO())
    assert not Team.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "3"], "between 10 and 90"),
        (["--anchor", "yesterday"], "is not a time like"),
        (["--anchor", "2999-01-01T00:00:00Z"], "must not be in the future"),
    ],
)
def test_bad_options_are_refused_and_change_nothing(demo_var, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("load_demo", "--force", *args, stdout=io.StringIO())
    assert not Team.objects.exists()


def test_the_demo_fills_a_team_through_the_agent_and_a_second_run_adds_nothing(demo_var):
    # The same anchor twice gives the same logs, so every count and sum must come out equal.
    anchor = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    output = load("--anchor", anchor)
    assert "Demo team ready: 3 members, 4 machines" in output
    assert "owner@demo.example" in output
    # Each machine's line says what it sent; the agent's link to the temporary server is not
    # passed on (it is gone when the command ends).
    assert "Dashboard: http" not in output and "Sent " in output
    team = Team.objects.get(slug="demo-team")
    owner = User.objects.get(email="owner@demo.example")
    assert owner.membership.team == team and owner.membership.role == "owner"
    # One account on two machines, working the same hours: blocks with an overlap.
    shared = Subscription.objects.get(owner=owner, is_default=True)
    assert shared.machines.count() == 2
    assert Block.objects.filter(subscription=shared, overlap=True).exists()
    assert Subscription.objects.filter(owner__membership__team=team).count() == 3
    # Every machine synced Claude Code and Codex usage, sessions and (three) quota readings.
    assert set(DailyUsage.objects.values_list("source", flat=True).distinct()) == {
        "claude-code",
        "codex",
    }
    assert SessionUsage.objects.count() > 0
    assert RateLimitSnapshot.objects.count() == 3
    assert Budget.objects.filter(team=team).count() == 2
    # Every demo budget alerts through the leads' email channel (issue 14).
    for budget in Budget.objects.filter(team=team):
        assert [c.name for c in budget.channels.all()] == ["Team leads"]
    assert Channel.objects.get(team=team).recipients() == [
        "admin@demo.example",
        "owner@demo.example",
    ]

    first = counts()
    # A rename on the web (the machines page's rule) survives the next run (issue 14).
    laptop = Machine.objects.get(owner=owner, name="laptop")
    rename_machine(laptop, "Work laptop")
    output = load("--anchor", anchor)
    assert counts() == first
    laptop.refresh_from_db()
    assert laptop.name == "Work laptop"
    # No site answers in the test: the report says how to start one, at SITE_URL.
    assert "Start the site with `make run`, open http" in output


def test_the_demo_pages_show_the_figures_of_the_read_api(demo_var):
    load()
    client = login(User.objects.get(email="owner@demo.example"))
    overview = client.get("/", {"scope": "team"})
    assert overview.status_code == 200
    summary = overview.context["summary"]
    today = overview.context["today"]
    api = client.get(
        "/api/v1/usage/",
        {"group_by": "day", "scope": "team", "since": today.replace(day=1), "until": today},
    ).json()
    assert Decimal(api["totals"]["cost_usd"]) == summary.month.cost_usd
    assert api["totals"]["total_tokens"] == summary.month.total_tokens
    assert summary.month.total_tokens > 0
    assert overview.context["active"], "the generated logs end with a running block"
    for url in ("/usage/", "/blocks/", "/sessions/", "/machines/", "/team/"):
        assert client.get(url).status_code == 200
