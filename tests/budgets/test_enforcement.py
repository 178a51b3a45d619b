"""Warn and stop in Claude Code: each limit's level for a member, the agent status endpoint,
and who may set enforcement, quota levels and exemptions."""

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.cache import cache
from django.urls import reverse

from budgets.api import AgentStatusView
from budgets.enforcement import member_status
from budgets.models import (
    Budget,
    Enforcement,
    EnforcementEvent,
    EnforcementExemption,
    QuotaEnforcement,
    ScopeKind,
)
from tests.budgets.conftest import spend
from tests.conftest import api_client, login, token_for
from tests.factories import make_budget, project_for
from tests.factories.usage import RateLimitSnapshotFactory, machine_for
from tests.usage.ingest.helpers import daily_report, envelope, post
from usage.models import Block, DailyUsage, IngestBatch

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def team_budget(team, enforcement=Enforcement.STOP, amount="100", **extra) -> Budget:
    return make_budget(
        team, amount=amount, name="Team cap", thresholds=[80, 90], enforcement=enforcement, **extra
    )


def check_of(status: dict, name_start: str) -> dict:
    return next(c for c in status["checks"] if c["name"].startswith(name_start))


@pytest.mark.parametrize(
    ("spent", "level", "threshold"),
    [("79.99", "ok", None), ("80", "warn", 80), ("95", "warn", 90), ("100", "stop", 100)],
)
def test_a_stop_budget_is_ok_then_warns_at_each_threshold_then_stops_at_the_amount(
    team_a, member, spent, level, threshold
):
    team_budget(team_a)
    spend(machine_for(member), TODAY, spent)
    status = member_status(member)
    check = check_of(status, "Team cap")
    assert (check["level"], check["threshold"]) == (level, threshold)
    assert status["decision"] == level
    assert check["cap_usd"] == "100.00"
    assert check["resets_at"] == "2026-12-01T00:00:00Z"


def test_a_warn_budget_past_its_amount_only_warns(team_a, member):
    team_budget(team_a, enforcement=Enforcement.WARN)
    spend(machine_for(member), TODAY, "150")
    assert check_of(member_status(member), "Team cap")["level"] == "warn"


def test_alert_only_budgets_and_other_members_budgets_do_not_reach_a_member(team_a, member, admin):
    team_budget(team_a, enforcement=Enforcement.NOTIFY)
    make_budget(
        team_a,
        amount="1",
        name="Admin cap",
        scope=ScopeKind.MEMBER,
        member=admin,
        enforcement=Enforcement.STOP,
    )
    spend(machine_for(admin), TODAY, "50")
    assert member_status(member)["checks"] == []
    assert member_status(admin)["decision"] == "stop"


def test_a_member_budget_counts_only_that_members_spend(team_a, member, admin):
    make_budget(
        team_a, amount="10", name="Mine", scope=ScopeKind.MEMBER, member=member, enforcement="stop"
    )
    spend(machine_for(admin), TODAY, "50")
    assert check_of(member_status(member), "Mine")["level"] == "ok"
    spend(machine_for(member, "pc"), TODAY, "10")
    assert check_of(member_status(member), "Mine")["level"] == "stop"


def test_a_project_budget_stops_in_that_project_only_and_names_its_keys(team_a, member, admin):
    project = project_for(team_a)
    clone = project_for(team_a, "-home-dev-work-api-server")
    clone.set_alias(project)
    make_budget(
        team_a,
        amount="10",
        name="API",
        scope=ScopeKind.PROJECT,
        project=project,
        enforcement=Enforcement.STOP,
    )
    spend(machine_for(admin), TODAY, "9", project=clone)  # an alias counts for its project
    check = check_of(member_status(member), "API")
    assert (check["level"], check["threshold"]) == ("warn", 90)
    spend(machine_for(member), TODAY, "1", project=project)
    status = member_status(member)
    check = check_of(status, "API")
    assert (check["level"], check["spent_usd"], check["cap_usd"]) == ("stop", "10.00", "10.00")
    assert check["project"] == {
        "id": str(project.public_id),
        "name": project.display_name,
        "keys": ["-home-dev-src-api-server", "-home-dev-work-api-server"],
    }
    # It holds in that project only, so it is not the member's overall decision.
    assert status["decision"] == "ok"
    assert status["budget_percent"] is None


def test_a_project_stop_is_recorded_for_the_members_who_work_there(team_a, member, admin):
    project = project_for(team_a)
    make_budget(
        team_a,
        amount="10",
        name="API",
        scope=ScopeKind.PROJECT,
        project=project,
        enforcement="stop",
    )
    spend(machine_for(member), TODAY, "12", project=project)
    member_status(member)
    member_status(admin)  # the admin did not work in the project this month
    assert list(EnforcementEvent.objects.values_list("member__email", "kind")) == [
        (member.email, "stop")
    ]


def test_an_exemption_lifts_the_stop_for_that_member_until_it_ends(team_a, member, admin):
    budget = team_budget(team_a)
    spend(machine_for(member), TODAY, "120")
    EnforcementExemption.objects.create(team=team_a, member=member, until=NOW + timedelta(hours=2))
    check = check_of(member_status(member), "Team cap")
    assert (check["level"], check["exempt"]) == ("warn", True)
    assert check["exempt_until"] == "2026-11-20T14:00:00Z"
    assert member_status(admin)["decision"] == "stop"  # the exemption is the member's alone
    with time_machine.travel(NOW + timedelta(hours=3), tick=False):
        assert check_of(member_status(member), "Team cap")["level"] == "stop"
    # A lift of one budget for everyone.
    EnforcementExemption.objects.create(team=team_a, budget=budget)
    assert member_status(admin)["decision"] == "warn"


def test_each_warning_and_stop_is_recorded_once_per_period_and_level(team_a, member):
    team_budget(team_a)
    machine = machine_for(member)
    spend(machine, TODAY, "85")
    member_status(member)
    member_status(member)
    spend(machine, TODAY, "101")
    member_status(member)
    rows = list(EnforcementEvent.objects.order_by("threshold").values_list("kind", "threshold"))
    assert rows == [("warn", 80), ("stop", 100)]
    event = EnforcementEvent.objects.get(kind="stop")
    assert (event.member, event.team, event.data["spent_usd"]) == (member, team_a, "101.00")


def test_quota_levels_warn_and_stop_until_the_window_resets(team_a, member):
    QuotaEnforcement.objects.create(team=team_a, five_hour_warn_at=80, five_hour_stop_at=95)
    machine = machine_for(member)
    resets = NOW + timedelta(hours=2)
    RateLimitSnapshotFactory(
        machine=machine, captured_at=NOW - timedelta(minutes=5), five=85, five_hour_resets_at=resets
    )
    assert check_of(member_status(member), "5-hour")["level"] == "warn"
    RateLimitSnapshotFactory(machine=machine, captured_at=NOW, five=96, five_hour_resets_at=resets)
    status = member_status(member)
    assert check_of(status, "5-hour")["level"] == "stop"
    assert status["five_hour"] == {"used_percentage": 96.0, "resets_at": "2026-11-20T14:00:00Z"}
    with time_machine.travel(resets + timedelta(minutes=1), tick=False):
        assert member_status(member)["checks"] == []


def test_the_status_has_the_running_block_and_weekly_use(team_a, member):
    machine = machine_for(member)
    Block.objects.create(
        subscription=machine.subscription,
        start_time=NOW - timedelta(hours=2),
        end_time=NOW + timedelta(hours=3),
        first_activity=NOW - timedelta(hours=2),
        last_activity=NOW,
        is_active=True,
        cost_usd=Decimal("12"),
        total_tokens=1000,
    )
    RateLimitSnapshotFactory(
        machine=machine, captured_at=NOW, seven=40, seven_day_resets_at=NOW + timedelta(days=3)
    )
    status = member_status(member)
    assert status["block"]["minutes_left"] == 180
    assert status["block"]["burn_rate_usd_per_hour"] == "6.00"
    assert status["weekly"]["used_percentage"] == 40.0


# --- GET /api/v1/agent/status/ ---------------------------------------------------------------


URL = "/api/v1/agent/status/"


@pytest.mark.parametrize("scopes", [("ingest",), ("read",)])
def test_the_agents_ingest_token_or_a_read_token_gets_the_callers_own_status(
    team_a, member, scopes
):
    team_budget(team_a)
    spend(machine_for(member), TODAY, "120")
    response = api_client(token_for(member, scopes)).get(URL)
    assert response.status_code == 200, response.content
    assert response.json()["member"] == member.email
    assert response.json()["decision"] == "stop"
    assert response.json()["contacts"] == []  # no owner or admin in this test's team


def test_no_token_is_401_and_an_outsider_sees_nothing_of_another_team(team_a, member, outsider):
    team_budget(team_a)
    spend(machine_for(member), TODAY, "120")
    assert api_client().get(URL).status_code == 401
    body = api_client(token_for(outsider)).get(URL).json()
    assert (body["member"], body["checks"], body["decision"]) == (outsider.email, [], "ok")


def test_the_status_is_cached_per_member_for_a_few_seconds(
    team_a, member, admin, owner, monkeypatch
):
    monkeypatch.setattr("budgets.api.STATUS_CACHE_SECONDS", 1)
    team_budget(team_a)
    machine = machine_for(member)
    client = api_client(token_for(member))
    assert client.get(URL).json()["decision"] == "ok"
    spend(machine, TODAY, "120")
    assert client.get(URL).json()["decision"] == "ok"  # cached
    assert api_client(token_for(admin)).get(URL).json()["decision"] == "stop"  # per member
    # Past the expiry by the frozen clock (database and memory caches) and the real one (Redis).
    time.sleep(1.1)
    with time_machine.travel(NOW + timedelta(seconds=2), tick=False):
        body = client.get(URL).json()
    assert body["decision"] == "stop"
    assert body["contacts"] == [admin.email, owner.email]


def test_redis_down_costs_the_cache_not_the_answer(team_a, member, settings, monkeypatch):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # discard port: nothing listens
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    # The request throttle keeps its counters in the same cache; its outage is its own concern.
    monkeypatch.setattr(AgentStatusView, "throttle_classes", [])
    team_budget(team_a)
    spend(machine_for(member), TODAY, "120")
    response = api_client(token_for(member)).get(URL)
    assert response.status_code == 200, response.content
    assert response.json()["decision"] == "stop"


# --- the same status with an ingest answer (?include=agent_status) ---------------------------


def report_of_today(cost_tokens: int = 1000) -> dict:
    """An envelope whose one Claude Code row (today, one project) costs a few cents."""
    return envelope(daily_report("-home-dev-app", TODAY.isoformat(), cost_tokens, cost_tokens))


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_an_ingest_that_asks_gets_the_callers_status_with_the_report_counted(
    team_a, cast, role, monkeypatch
):
    person = cast[role]
    team_budget(team_a)
    # 99.99 USD before the report (past the 90 % warning); its row (a cent or two) reaches 100.
    spend(machine_for(person), TODAY, "99.99")
    client = api_client(token_for(person, ("ingest",)))
    assert client.get(URL).json()["decision"] == "warn"  # and cached, which must not matter
    response = post(client, report_of_today(), QUERY_STRING="include=agent_status")
    assert response.status_code == 201, response.content
    status = response.json()["agent_status"]
    assert (status["member"], status["decision"]) == (person.email, "stop")
    assert check_of(status, "Team cap")["level"] == "stop"
    # What the status endpoint answers once the cached status is gone (the derived work
    # drops it: the next test), to the byte.
    cache.clear()
    assert status == client.get(URL).json()
    assert DailyUsage.objects.filter(machine__owner=person, day=TODAY).count() == 2


def test_derived_work_drops_the_cached_status_of_the_members_it_changed(
    team_a, member, admin, django_capture_on_commit_callbacks
):
    team_budget(team_a)
    spend(machine_for(member), TODAY, "99.99")
    client = api_client(token_for(member))
    other = api_client(token_for(admin))
    assert client.get(URL).json()["decision"] == "warn"  # now cached for STATUS_CACHE_SECONDS
    assert other.get(URL).json()["decision"] == "warn"
    # The member's report and its derived work (inline here, a worker in production).
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, report_of_today()).status_code == 201
    assert client.get(URL).json()["decision"] == "stop"
    # Another member's cached status stands until it ages out (the team budget moved too).
    assert other.get(URL).json()["decision"] == "warn"


def test_without_include_the_answer_has_no_status_and_a_duplicate_gets_it_too(team_a, member):
    team_budget(team_a)
    client = api_client(token_for(member, ("ingest",)))
    body = report_of_today()
    first = post(client, body)
    assert first.status_code == 201
    assert "agent_status" not in first.json()
    again = post(client, body, QUERY_STRING="include=agent_status")
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert again.json()["agent_status"]["member"] == member.email


@pytest.mark.parametrize("query", ["include=everything", "include=agent_status,counts"])
def test_an_unknown_include_is_a_400_naming_it_and_nothing_is_archived(team_a, member, query):
    response = post(
        api_client(token_for(member, ("ingest",))), report_of_today(), QUERY_STRING=query
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["include"]
    assert "agent_status" in response.json()["errors"]["include"][0]
    assert not IngestBatch.objects.exists()
    assert not DailyUsage.objects.exists()


def test_a_report_left_to_the_worker_answers_202_without_a_status(team_a, member, settings):
    settings.INGEST_ASYNC_BODY_BYTES = 100
    response = post(
        api_client(token_for(member, ("ingest",))),
        report_of_today(),
        QUERY_STRING="include=agent_status",
    )
    assert response.status_code == 202
    assert "agent_status" not in response.json()


def test_a_status_that_fails_leaves_it_out_and_the_report_stays_stored(
    team_a, member, monkeypatch, caplog
):
    def broken(user, **kwargs):
        raise RuntimeError("status store down")

    monkeypatch.setattr("budgets.receivers.agent_status", broken)
    response = post(
        api_client(token_for(member, ("ingest",))),
        report_of_today(),
        QUERY_STRING="include=agent_status",
    )
    assert response.status_code == 201
    assert "agent_status" not in response.json()
    assert DailyUsage.objects.filter(machine__owner=member, day=TODAY).exists()
    assert "ingest answer part failed" in caplog.text


# --- pages: who may set warn/stop, quota levels and exemptions -------------------------------


def budget_post(**changes) -> dict:
    return {
        "name": "Team cap",
        "scope": "team",
        "period": "month",
        "amount_usd": "100",
        "thresholds": "80, 90",
        "active": "on",
        "enforcement": "stop",
        **changes,
    }


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_set_a_budget_to_stop(cast, role):
    form = login(cast[role]).get(reverse("budget_create")).content.decode()
    assert 'name="enforcement" value="stop"' in form
    response = login(cast[role]).post(reverse("budget_create"), budget_post())
    assert response.status_code == 302
    assert Budget.objects.get().enforcement == Enforcement.STOP


def test_a_member_may_not_set_enforcement_and_an_outsider_gets_404(cast, team_a):
    budget = team_budget(team_a, enforcement=Enforcement.NOTIFY)
    edit = reverse("budget_edit", args=[budget.public_id])
    assert login(cast["member"]).post(edit, budget_post()).status_code == 403
    assert login(cast["outsider"]).post(edit, budget_post()).status_code == 404
    budget.refresh_from_db()
    assert budget.enforcement == Enforcement.NOTIFY


def test_a_budget_form_without_the_field_keeps_alerts_only_and_a_project_budget_may_stop(
    cast, team_a
):
    client = login(cast["admin"])
    data = budget_post()
    del data["enforcement"]
    assert client.post(reverse("budget_create"), data).status_code == 302
    assert Budget.objects.get().enforcement == Enforcement.NOTIFY
    project = project_for(team_a)
    response = client.post(
        reverse("budget_create"), budget_post(scope="project", project=project.pk, name="P")
    )
    assert response.status_code == 302
    assert Budget.objects.get(name="P").enforcement == Enforcement.STOP


@pytest.mark.parametrize(("role", "code"), [("owner", 302), ("admin", 302), ("member", 403)])
def test_who_may_set_quota_levels(cast, team_a, role, code):
    response = login(cast[role]).post(
        reverse("quota_enforcement"), {"five_hour_warn_at": "80", "five_hour_stop_at": "95"}
    )
    assert response.status_code == code
    assert QuotaEnforcement.objects.filter(team=team_a).exists() == (code == 302)


def test_an_outsider_sets_quota_levels_of_their_own_team_only(cast, team_a, team_b):
    login(cast["outsider"]).post(reverse("quota_enforcement"), {"seven_day_stop_at": "90"})
    assert not QuotaEnforcement.objects.filter(team=team_a).exists()
    assert QuotaEnforcement.objects.get(team=team_b).seven_day_stop_at == 90


def test_bad_quota_levels_are_refused_with_the_reason(cast, team_a):
    response = login(cast["admin"]).post(
        reverse("quota_enforcement"), {"five_hour_warn_at": "96", "five_hour_stop_at": "90"}
    )
    assert response.status_code == 400
    assert "Warn at a lower share than the stop" in response.content.decode()
    response = login(cast["admin"]).post(reverse("quota_enforcement"), {"seven_day_stop_at": "0"})
    assert response.status_code == 400
    assert not QuotaEnforcement.objects.exists()


@pytest.mark.parametrize(("role", "code"), [("owner", 302), ("admin", 302), ("member", 403)])
def test_who_may_exempt_a_member(cast, role, code):
    response = login(cast[role]).post(
        reverse("exemption_create"),
        {"member": cast["member"].pk, "until": "2026-11-21T09:00", "note": "release day"},
    )
    assert response.status_code == code
    assert EnforcementExemption.objects.count() == (1 if code == 302 else 0)


def test_an_outsider_cannot_exempt_another_teams_member_nor_remove_its_exemption(cast, team_a):
    response = login(cast["outsider"]).post(
        reverse("exemption_create"), {"member": cast["member"].pk}
    )
    assert response.status_code == 400
    assert not EnforcementExemption.objects.exists()
    exemption = EnforcementExemption.objects.create(team=team_a, member=cast["member"])
    remove = reverse("exemption_delete", args=[exemption.public_id])
    assert login(cast["outsider"]).post(remove).status_code == 404
    assert login(cast["member"]).post(remove).status_code == 403
    assert EnforcementExemption.objects.exists()
    assert login(cast["admin"]).post(remove).status_code == 302
    assert not EnforcementExemption.objects.exists()


def test_an_exemption_ending_in_the_past_is_refused(cast):
    response = login(cast["admin"]).post(reverse("exemption_create"), {"until": "2026-11-19T09:00"})
    assert response.status_code == 400
    assert "Give a time in the future" in response.content.decode()


def test_the_budgets_page_lists_warnings_and_stops_to_whom_they_concern(cast, team_a):
    team_budget(team_a)
    spend(machine_for(cast["member"]), TODAY, "120")
    member_status(cast["member"])
    page = login(cast["admin"]).get(reverse("budgets")).content.decode()
    assert 'id="enforcement-events"' in page and "member@a.example" in page
    assert 'id="exemption-new"' in page
    own = login(cast["member"]).get(reverse("budgets")).content.decode()
    assert "member@a.example" in own and 'id="exemption-new"' not in own
    other = login(cast["outsider"]).get(reverse("budgets")).content.decode()
    assert "member@a.example" not in other


# --- refused prompts reported by the agent -----------------------------------------------------

REFUSALS = "/api/v1/agent/refusals/"


def refusal(subject: str, **changes) -> dict:
    return {
        "id": "5f0c6a52-8d0e-4a55-9a4b-6a1d3c1f0e01",
        "at": "2026-11-20T11:58:00Z",
        "subject": subject,
        "threshold": 100,
        "name": "Team cap (whole team, monthly)",
        "percent": 120.0,
        "spent_usd": "120.00",
        "cap_usd": "100.00",
        "session_id": "session-1",
        **changes,
    }


def test_each_refused_prompt_is_a_row_and_a_resent_one_counts_once(team_a, member):
    budget = team_budget(team_a)
    spend(machine_for(member), TODAY, "120")
    member_status(member)  # the stop itself, once per period
    client = api_client(token_for(member, ("ingest",)))
    first = refusal(f"budget:{budget.public_id}")
    second = refusal("quota:five_hour", id="6a7b0c11-0000-4000-8000-000000000002", threshold=95)
    response = client.post(REFUSALS, {"refusals": [first, second]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"recorded": 2, "duplicates": 0}
    # The agent did not get the answer and sends the same batch again.
    again = client.post(REFUSALS, {"refusals": [first, second, first]}, format="json")
    assert again.json() == {"recorded": 0, "duplicates": 2}
    refused = EnforcementEvent.objects.filter(kind="refused").order_by("threshold")
    assert [(e.label, e.threshold, e.created_at) for e in refused] == [
        ("5-hour quota", 95, datetime(2026, 11, 20, 11, 58, tzinfo=UTC)),
        ("Team cap (whole team, monthly)", 100, datetime(2026, 11, 20, 11, 58, tzinfo=UTC)),
    ]
    assert refused[1].data["spent_usd"] == "120.00" and refused[1].member == member
    assert EnforcementEvent.objects.filter(kind="stop").count() == 1


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"id": "not-a-uuid"}, "id"),
        ({"at": "2026-11-20T15:00:00Z"}, "at"),  # three hours ahead of the server
        ({"subject": "budget:<script>"}, "subject"),
        ({"threshold": -1}, "threshold"),
        ({"spent_usd": "lots"}, "spent_usd"),
    ],
)
def test_a_bad_refusal_is_a_400_naming_the_field_and_nothing_is_stored(team_a, member, item, field):
    budget = team_budget(team_a)
    good = refusal(f"budget:{budget.public_id}", id="6a7b0c11-0000-4000-8000-000000000009")
    bad = refusal(**{"subject": f"budget:{budget.public_id}", **item})
    response = api_client(token_for(member, ("ingest",))).post(
        REFUSALS, {"refusals": [good, bad]}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [f"refusals[1].{field}"]
    assert not EnforcementEvent.objects.exists()


def test_more_refusals_than_a_request_takes_are_refused_whole(team_a, member):
    budget = team_budget(team_a)
    items = [
        refusal(f"budget:{budget.public_id}", id=f"6a7b0c11-0000-4000-8000-{n:012d}")
        for n in range(501)
    ]
    response = api_client(token_for(member, ("ingest",))).post(
        REFUSALS, {"refusals": items}, format="json"
    )
    assert response.status_code == 400
    assert "At most 500" in response.json()["errors"]["refusals"][0]
    assert not EnforcementEvent.objects.exists()


def test_refusals_take_the_agents_ingest_token_and_stay_in_the_callers_team(
    team_a, member, outsider
):
    budget = team_budget(team_a)
    body = {"refusals": [refusal(f"budget:{budget.public_id}")]}
    assert api_client().post(REFUSALS, body, format="json").status_code == 401
    read_only = api_client(token_for(member, ("read",))).post(REFUSALS, body, format="json")
    assert read_only.status_code == 403
    # Another team's budget id means nothing to the outsider's team: no row of team A's.
    answer = api_client(token_for(outsider, ("ingest",))).post(REFUSALS, body, format="json")
    assert answer.status_code == 200
    event = EnforcementEvent.objects.get()
    assert (event.team, event.member) == (outsider.team, outsider)
    assert event.label == "Team cap (whole team, monthly) (removed)"
    assert not EnforcementEvent.objects.filter(team=team_a).exists()


def test_the_team_page_lists_refused_prompts(cast, team_a):
    budget = team_budget(team_a)
    api_client(token_for(cast["member"], ("ingest",))).post(
        REFUSALS, {"refusals": [refusal(f"budget:{budget.public_id}")]}, format="json"
    )
    page = login(cast["admin"]).get(reverse("budgets")).content.decode()
    assert "Prompt refused" in page and "member@a.example" in page
