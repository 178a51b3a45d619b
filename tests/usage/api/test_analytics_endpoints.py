"""The analytics API: who sees which blocks, quotas, pace, headroom and plan value."""

from datetime import date, timedelta

import pytest
import time_machine

from tests.conftest import api_client, make_member, token_for
from tests.factories import (
    MachineFactory,
    ProjectFactory,
    SubscriptionFactory,
    daily,
    hour,
    snapshot,
    utc,
)
from usage.analytics import ratelimits
from usage.analytics.blocks import recompute_blocks
from usage.analytics.plan_value import plan_value
from usage.models import HourlyUsage, Subscription

pytestmark = pytest.mark.django_db

NOW = utc(2026, 11, 24, 12, 0)
ROLES = ("owner", "admin", "member", "outsider")


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def usage(cast, subscription, laptop, desktop):
    """The member's account: two machines sharing this morning's block, quota readings,
    and three weeks of daily spending; the admin has an account of their own."""
    hour(laptop, utc(2026, 11, 24, 9), tokens=6_000, cost="0.60", minutes=50)
    hour(desktop, utc(2026, 11, 24, 10), tokens=4_000, cost="0.40", minutes=40)
    hour(
        laptop,
        utc(2026, 11, 23, 14),
        tokens=1_000,
        cost="0.10",
        limit_reset_at=utc(2026, 11, 23, 16),
    )
    recompute_blocks(subscription.pk)
    snapshot(
        laptop,
        NOW - timedelta(minutes=10),
        five=35,
        five_resets=NOW + timedelta(hours=3),
        seven=55,
        seven_resets=NOW + timedelta(days=2),
    )
    project = ProjectFactory(team=laptop.team, key="-home-dev-src-webapp")
    for offset in range(1, 22):
        daily(laptop, date(2026, 11, 24) - timedelta(days=offset), "4.00", project=project)
    admin_sub = SubscriptionFactory(owner=cast["admin"], label="Admin account", plan="pro")
    admin_pc = MachineFactory(owner=cast["admin"], subscription=admin_sub, name="admin-pc")
    hour(admin_pc, utc(2026, 11, 24, 8), tokens=500, cost="0.05")
    recompute_blocks(admin_sub.pk)
    snapshot(admin_pc, NOW - timedelta(minutes=1), seven=90, seven_resets=NOW + timedelta(days=1))
    outsider_pc = MachineFactory(owner=cast["outsider"], name="outsider-pc")
    hour(outsider_pc, utc(2026, 11, 24, 9))
    recompute_blocks(outsider_pc.subscription_id)
    return {
        "subscription": subscription,
        "admin_sub": admin_sub,
        "project": project,
        "laptop": laptop,
        "outsider_pc": outsider_pc,
    }


def client_for(user, scopes=("read",)):
    return api_client(token_for(user, scopes))


# --- blocks ----------------------------------------------------------------------------------


def test_the_blocks_api_shows_account_blocks_with_machines_burn_rate_and_projection(cast, usage):
    response = client_for(cast["member"]).get("/api/v1/blocks/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["start_time"] for r in results] == ["2026-11-24T09:00:00Z", "2026-11-23T14:00:00Z"]
    active = results[0]
    assert active["end_time"] == "2026-11-24T14:00:00Z"
    assert active["last_activity"] == "2026-11-24T10:40:00Z"
    assert active["first_activity"] is None  # hours from agents that did not send it
    assert (active["is_active"], active["overlap"], active["machine_count"]) == (True, True, 2)
    assert (active["total_tokens"], active["cost_usd"]) == (10_000, "1.00")
    assert [(m["name"], m["total_tokens"]) for m in active["machines"]] == [
        ("desktop", 4_000),
        ("laptop", 6_000),
    ]
    # 10,000 tokens over 100 minutes; two hours left at noon.
    assert active["burn_rate"] == {"tokens_per_minute": 100.0, "cost_per_hour": 0.6}
    assert active["projection"] == {
        "total_tokens": 22_000,
        "cost_usd": 2.2,
        "remaining_minutes": 120,
    }
    earlier = results[1]
    assert earlier["is_active"] is False and earlier["projection"] is None
    assert earlier["limit_hit_at"] == "2026-11-23T14:00:00Z"
    assert earlier["subscription"]["public_id"] == str(usage["subscription"].public_id)


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner", 200), ("admin", 200), ("member", 200), ("outsider", 404)],
)
def test_a_members_subscription_blocks_are_visible_to_them_and_their_admins(
    cast, usage, role, status
):
    sub = usage["subscription"].public_id
    response = client_for(cast[role]).get(f"/api/v1/blocks/?subscription={sub}")
    assert response.status_code == status
    if status == 200:
        assert len(response.json()["results"]) == 2


def test_a_member_cannot_read_an_admins_subscription(cast, usage):
    sub = usage["admin_sub"].public_id
    response = client_for(cast["member"]).get(f"/api/v1/blocks/?subscription={sub}")
    assert response.status_code == 404


def test_anonymous_requests_are_refused(usage):
    for path in ("blocks", "rate-limits", "pace", "headroom", "plan-value"):
        assert api_client().get(f"/api/v1/{path}/").status_code == 401


def test_a_token_without_the_read_scope_is_refused(cast, usage):
    client = client_for(cast["member"], scopes=("ingest",))
    for path in ("blocks", "rate-limits", "pace", "headroom", "plan-value"):
        assert client.get(f"/api/v1/{path}/").status_code == 403


def test_the_team_scope_lists_every_members_blocks_for_admins_only(cast, usage):
    response = client_for(cast["admin"]).get("/api/v1/blocks/?scope=team")
    labels = {r["subscription"]["label"] for r in response.json()["results"]}
    assert labels == {"Work account", "Admin account"}
    assert client_for(cast["member"]).get("/api/v1/blocks/?scope=team").status_code == 403


def test_a_machines_own_blocks_are_computed_live(cast, usage):
    laptop = usage["laptop"].uuid
    response = client_for(cast["member"]).get(f"/api/v1/blocks/?machine={laptop}")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["start_time"], r["total_tokens"], r["overlap"]) for r in results] == [
        ("2026-11-24T09:00:00Z", 6_000, False),
        ("2026-11-23T14:00:00Z", 1_000, False),
    ]
    assert results[0]["subscription"] is None
    outsider = client_for(cast["outsider"]).get(f"/api/v1/blocks/?machine={laptop}")
    assert outsider.status_code == 404
    other = usage["outsider_pc"].uuid
    assert client_for(cast["admin"]).get(f"/api/v1/blocks/?machine={other}").status_code == 404


def test_blocks_outside_the_days_asked_for_are_left_out(cast, usage):
    response = client_for(cast["member"]).get("/api/v1/blocks/?since=2026-11-24&until=2026-11-24")
    assert [r["start_time"] for r in response.json()["results"]] == ["2026-11-24T09:00:00Z"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("since=2026-11-24&until=2026-11-01", "until"),
        ("subscription=not-a-uuid", "subscription"),
        ("scope=everyone", "scope"),
        ("limit=-5", None),
    ],
)
def test_bad_parameters_answer_400_naming_the_field(cast, usage, query, field):
    response = client_for(cast["member"]).get(f"/api/v1/blocks/?{query}")
    if field is None:
        assert response.status_code == 200  # DRF's paginator ignores a bad limit
        return
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_listing_blocks_reads_a_bounded_number_of_queries(
    cast, usage, django_assert_max_num_queries
):
    # Twenty more blocks on two machines cost no extra query: contributions are prefetched.
    admin_pcs = [MachineFactory(owner=cast["admin"], subscription=usage["admin_sub"])]
    admin_pcs.append(MachineFactory(owner=cast["admin"], subscription=usage["admin_sub"]))
    for n in range(20):
        start = utc(2026, 11, 19, 0) + timedelta(hours=6 * n)
        for pc in admin_pcs:
            hour(pc, start)
    recompute_blocks(usage["admin_sub"].pk)
    client = client_for(cast["admin"])
    # Authentication, throttling and activity tracking take ten of these.
    with django_assert_max_num_queries(16):
        response = client.get("/api/v1/blocks/?scope=team")
    assert len(response.json()["results"]) > 20


# --- rate limits -----------------------------------------------------------------------------


def test_rate_limits_show_the_latest_reading_limit_hits_and_history(cast, usage):
    response = client_for(cast["member"]).get("/api/v1/rate-limits/?history_since=2026-11-20")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["five_hour"]["used_percentage"] == 35
    assert row["five_hour"]["machine"] == "laptop"
    assert row["five_hour"]["stale"] is False
    assert row["seven_day"]["resets_at"] == "2026-11-26T12:00:00Z"
    assert row["closeness"] == 55
    assert row["limit_hits"] == [{"week_start": "2026-11-23", "hours": 1, "minutes_lost": 90}]
    assert [p["five_hour_used_pct"] for p in row["history"]] == [35.0]


def test_a_reading_past_its_reset_is_shown_as_stale(cast, usage):
    with time_machine.travel(NOW + timedelta(hours=4), tick=False):
        [row] = client_for(cast["member"]).get("/api/v1/rate-limits/").json()["results"]
    assert row["five_hour"]["stale"] is True
    assert row["closeness"] == 55


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner", 200), ("admin", 200), ("member", 200), ("outsider", 404)],
)
def test_a_subscriptions_quota_is_visible_to_its_owner_and_admins(cast, usage, role, status):
    sub = usage["subscription"].public_id
    response = client_for(cast[role]).get(f"/api/v1/rate-limits/?subscription={sub}")
    assert response.status_code == status


@pytest.mark.parametrize(
    ("role", "count"), [("owner", 2), ("admin", 2), ("member", None), ("outsider", 1)]
)
def test_the_teams_rate_limits_are_for_admins(cast, usage, role, count):
    response = client_for(cast[role]).get("/api/v1/rate-limits/?scope=team")
    if count is None:
        assert response.status_code == 403
    else:
        assert response.status_code == 200 and response.json()["count"] == count


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_the_rate_limits_of_a_big_team_come_a_page_at_a_time(
    cast, usage, team_a, role, django_assert_max_num_queries
):
    for n in range(6):
        person = make_member(team_a, f"seat{n}@a.example", "member")
        pc = MachineFactory(owner=person, subscription=SubscriptionFactory(owner=person))
        snapshot(pc, NOW - timedelta(hours=n), five=10 * n, five_resets=NOW + timedelta(hours=n))
        hour(pc, utc(2026, 11, 23, n), limit_reset_at=utc(2026, 11, 23, n + 1))
    client = client_for(cast[role])
    url = "/api/v1/rate-limits/?scope=team&history_since=2026-11-20"
    whole = client.get(url).json()
    assert whole["count"] == 8 and len(whole["results"]) == 8 and whole["next"] is None
    # Session, token, throttle and membership reads, the count, the page, the stored
    # readings, the limit hits, then one history query per subscription of the page.
    with django_assert_max_num_queries(19):
        first = client.get(f"{url}&limit=3").json()
    assert first["count"] == 8 and len(first["results"]) == 3 and "offset=3" in first["next"]
    last = client.get(f"{url}&limit=3&offset=6").json()
    assert last["next"] is None and "offset=3" in last["previous"]
    paged = first["results"] + client.get(f"{url}&limit=3&offset=3").json()["results"]
    assert paged + last["results"] == whole["results"]
    # Each row is what the raw readings and hours of its subscription alone give.
    for row in whole["results"]:
        sub = Subscription.objects.get(public_id=row["subscription"]["public_id"])
        quota = ratelimits.latest_quota(sub, NOW)
        assert row["closeness"] == quota.closeness
        five = quota.five_hour and {
            "used_percentage": quota.five_hour.used_pct,
            "resets_at": quota.five_hour.resets_at.isoformat().replace("+00:00", "Z"),
            "captured_at": quota.five_hour.captured_at.isoformat().replace("+00:00", "Z"),
            "machine": quota.five_hour.machine_name,
            "stale": quota.five_hour.stale,
        }
        assert row["five_hour"] == five
        hits = ratelimits.limit_hits(HourlyUsage.objects.filter(machine__subscription=sub))
        assert [h["hours"] for h in row["limit_hits"]] == [h.hours for h in hits]
        assert len(row["history"]) == len(ratelimits.utilization_history(sub, utc(2026, 11, 20)))


@pytest.mark.parametrize(("field", "value"), [("limit", "0"), ("limit", "x"), ("offset", "-1")])
def test_a_bad_page_of_rate_limits_is_a_400_naming_the_field(cast, usage, field, value):
    response = client_for(cast["admin"]).get(f"/api/v1/rate-limits/?scope=team&{field}={value}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


# --- headroom --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner", 200), ("admin", 200), ("member", 403), ("outsider", 200)],
)
def test_headroom_is_for_admins_of_their_own_team(cast, usage, role, status):
    response = client_for(cast[role]).get("/api/v1/headroom/")
    assert response.status_code == status
    if role in ("owner", "admin"):
        rows = response.json()["results"]
        assert [(r["member"]["email"], r["closeness"]) for r in rows] == [
            ("admin@a.example", 90),
            ("member@a.example", 55),
        ]
    if role == "outsider":
        emails = {r["member"]["email"] for r in response.json()["results"]}
        assert emails == {"outsider@b.example"}


# --- pace ------------------------------------------------------------------------------------


def test_pace_of_my_spending_with_a_budget_and_the_weekly_quota(cast, usage):
    response = client_for(cast["member"]).get("/api/v1/pace/?budget=100")
    assert response.status_code == 200
    data = response.json()
    assert (data["scope"], data["timezone"], data["today"]) == ("me", "UTC", "2026-11-24")
    assert data["daily_average"] == "4.00" and data["trend"] == "stable"
    assert data["month_spent"] == "84.00"  # 3 to 23 November at $4 a day
    # $16 left at $4 a day: the rest of today's pace, then three more days.
    assert data["budget"]["run_out_day"] == "2026-11-27"
    assert "least-squares" in data["method"]
    [quota] = data["quota"]
    # 55% of the week went on $20 since it opened; $4 a day uses the rest after it resets.
    assert (quota["used_percentage"], quota["run_out_day"]) == (55, None)


def test_the_team_pace_is_a_total_every_member_may_see(cast, usage):
    for role in ("owner", "admin", "member"):
        response = client_for(cast[role]).get("/api/v1/pace/?scope=team")
        assert response.status_code == 200
        assert response.json()["daily_average"] == "4.00"
        assert response.json()["member"] is None


def test_another_members_pace_is_for_admins(cast, usage):
    email = cast["member"].email
    assert client_for(cast["admin"]).get(f"/api/v1/pace/?member={email}").status_code == 200
    assert client_for(cast["outsider"]).get(f"/api/v1/pace/?member={email}").status_code == 404
    admin_email = cast["admin"].email
    assert client_for(cast["member"]).get(f"/api/v1/pace/?member={admin_email}").status_code == 404


def test_a_projects_pace_and_another_teams_project(cast, usage):
    project = usage["project"].public_id
    response = client_for(cast["member"]).get(f"/api/v1/pace/?scope=team&project={project}")
    assert response.status_code == 200 and response.json()["project"] == str(project)
    outsider = client_for(cast["outsider"]).get(f"/api/v1/pace/?project={project}")
    assert outsider.status_code == 404


def test_a_negative_budget_is_a_400(cast, usage):
    response = client_for(cast["member"]).get("/api/v1/pace/?budget=-1")
    assert response.status_code == 400 and "budget" in response.json()["errors"]


# --- plan value ------------------------------------------------------------------------------


def test_plan_value_compares_my_plan_with_the_api_cost(cast, usage):
    response = client_for(cast["member"]).get(
        "/api/v1/plan-value/?since=2026-11-01&until=2026-11-30"
    )
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert (row["plan"], row["monthly_price"], row["api_cost"]) == ("max5x", "100.00", "84.00")
    assert row["savings"] == "-14.56"
    assert row["member"]["email"] == "member@a.example"


def test_plan_value_of_an_unknown_plan_has_the_api_cost_and_no_price(cast, usage, subscription):
    subscription.plan = "unknown"
    subscription.save()
    response = client_for(cast["member"]).get(
        "/api/v1/plan-value/?since=2026-11-01&until=2026-11-30"
    )
    [row] = response.json()["results"]
    assert (row["plan"], row["plan_label"], row["api_cost"]) == ("unknown", "Plan unknown", "84.00")
    assert row["monthly_price"] is row["plan_cost"] is row["savings"] is row["suggestion"] is None


@pytest.mark.parametrize(
    ("role", "count"), [("owner", 2), ("admin", 2), ("member", None), ("outsider", 1)]
)
def test_plan_value_of_the_whole_team_is_for_admins(cast, usage, role, count):
    response = client_for(cast[role]).get("/api/v1/plan-value/?scope=team")
    if count is None:
        assert response.status_code == 403
    else:
        assert response.status_code == 200 and len(response.json()["results"]) == count


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_plan_value_of_a_big_team_comes_a_page_at_a_time(
    cast, usage, team_a, role, django_assert_max_num_queries
):
    for n in range(6):
        person = make_member(team_a, f"seat{n}@a.example", "member")
        sub = SubscriptionFactory(owner=person, plan="pro")
        daily(MachineFactory(owner=person, subscription=sub), date(2026, 11, 3), cost=f"{n}.50")
    client = client_for(cast[role])
    url = "/api/v1/plan-value/?scope=team&since=2026-11-01&until=2026-11-30"
    whole = client.get(url).json()
    assert whole["count"] == 8 and len(whole["results"]) == 8 and whole["next"] is None
    # Session, token, throttle and membership reads, the count, the page, then each figure
    # once for the page: no query per subscription.
    with django_assert_max_num_queries(17):
        first = client.get(f"{url}&limit=3").json()
    assert first["count"] == 8 and len(first["results"]) == 3 and "offset=3" in first["next"]
    last = client.get(f"{url}&limit=3&offset=6").json()
    paged = first["results"] + client.get(f"{url}&limit=3&offset=3").json()["results"]
    paged += last["results"]
    assert paged == whole["results"]
    # Each row is the subscription's plan value alone, from its own facts.
    for row in paged:
        sub = Subscription.objects.get(public_id=row["subscription"]["public_id"])
        assert row["api_cost"] == str(
            plan_value(sub, date(2026, 11, 1), date(2026, 11, 30)).api_cost
        )
    assert client.get(f"{url}&limit=0").status_code == 400
    assert "limit" in client.get(f"{url}&limit=x").json()["errors"]


def test_the_openapi_schema_documents_the_analytics_endpoints(cast, client):
    client.force_login(cast["member"])
    response = client.get("/api/schema/?format=json")
    paths = response.json()["paths"]
    for path in ("blocks", "rate-limits", "pace", "headroom", "plan-value"):
        assert f"/api/v1/{path}/" in paths


def test_a_logged_in_browser_session_may_read(cast, usage, client):
    client.force_login(cast["member"])
    assert client.get("/api/v1/blocks/").status_code == 200
