"""GET /metrics: who may scrape what, the figures it exposes, and its bounded cost."""

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from accounts.forms import TokenCreateForm
from accounts.models import ApiToken, Membership, Role, User
from tests.conftest import ROOT, api_client, login, token_for
from tests.factories.budgets import make_budget
from tests.factories.usage import daily, hourly, machine_for, project_for, rate_limit, utc
from usage.analytics.blocks import recompute_blocks
from usage.models import DailyUsage, IngestBatch, Machine, Subscription

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


def scrape(raw_token: str | None, **headers) -> tuple[int, dict[str, dict[tuple, float]]]:
    """Status and {sample name: {sorted label pairs: value}} of one scrape."""
    response = api_client(raw_token).get("/metrics", **headers)
    if response.status_code != 200:
        return response.status_code, {}
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return 200, samples


def values_of(samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in samples.get(name, {}).items()}


@pytest.fixture
def usage(cast, team_a, team_b):
    """Team A: a laptop each for owner and member, two projects, two models, two sources;
    team B: the outsider's desktop."""
    api = project_for(team_a, "-home-dev-src-api")
    web = project_for(team_a, "-home-dev-src-web")
    owner_laptop = machine_for(
        cast["owner"], "owner-laptop", last_seen_at=NOW - timedelta(minutes=5)
    )
    member_laptop = machine_for(
        cast["member"], "member-laptop", last_seen_at=NOW - timedelta(hours=2)
    )
    daily(owner_laptop, TODAY, "3.25", project=api, model="claude-opus-4-5", tokens=300_000)
    daily(owner_laptop, TODAY, "0.75", project=web, model="claude-sonnet-4-5", tokens=90_000)
    daily(member_laptop, TODAY, "1.50", project=api, model="claude-sonnet-4-5", tokens=120_000)
    daily(
        member_laptop,
        TODAY,
        "0.40",
        project=api,
        model="gpt-5-codex",
        source="codex",
        tokens=40_000,
    )
    desktop = machine_for(cast["outsider"], "outsider-desktop", last_seen_at=NOW)
    daily(desktop, TODAY, "9.00", project=project_for(team_b, "-home-dev-src-secret"), tokens=1)
    return {"owner": owner_laptop, "member": member_laptop, "outsider": desktop}


def metrics_token(user: User) -> str:
    return token_for(user, scopes=("metrics",))


# --- who may scrape -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer cct_" + "x" * 43, "Bearer not-a-token", "Basic dXNlcjpwYXNz"],
    ids=["missing", "unknown", "malformed", "basic"],
)
def test_a_scrape_without_a_valid_token_is_a_json_401(header):
    client = api_client()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("scopes", [("read",), ("ingest",), ("ingest", "read")])
def test_a_token_without_the_metrics_scope_is_refused_with_403(cast, scopes):
    response = api_client(token_for(cast["admin"], scopes=scopes)).get("/metrics")
    assert response.status_code == 403
    assert "'metrics' scope" in response.json()["detail"]


def test_a_revoked_metrics_token_no_longer_scrapes(cast):
    raw = metrics_token(cast["admin"])
    ApiToken.objects.get(user=cast["admin"]).revoke()
    assert api_client(raw).get("/metrics").status_code == 401


@pytest.mark.parametrize("role", ["owner", "admin"])
@time_machine.travel(NOW, tick=False)
def test_owners_and_admins_see_every_member_and_machine_of_their_team_only(cast, usage, role):
    status, samples = scrape(metrics_token(cast[role]))
    assert status == 200
    members = values_of(samples, "claude_telemetry_member_cost_usd_total", "member")
    assert members == {"owner@a.example": 4.0, "member@a.example": 1.9}
    machines = values_of(samples, "claude_telemetry_machine_cost_usd_total", "machine")
    assert machines == {"owner-laptop": 4.0, "member-laptop": 1.9}
    assert values_of(samples, "claude_telemetry_team_cost_usd_total", "team") == {
        "team-a": pytest.approx(5.9)
    }
    text = str(samples)
    assert "outsider" not in text and "team-b" not in text and "secret" not in text


@time_machine.travel(NOW, tick=False)
def test_a_member_sees_team_totals_and_only_their_own_member_and_machine_figures(cast, usage):
    status, samples = scrape(metrics_token(cast["member"]))
    assert status == 200
    assert values_of(samples, "claude_telemetry_team_cost_usd_total", "team") == {
        "team-a": pytest.approx(5.9)
    }
    assert values_of(samples, "claude_telemetry_project_cost_usd_total", "project") == {
        "api": pytest.approx(5.15),
        "web": 0.75,
    }
    assert values_of(samples, "claude_telemetry_member_cost_usd_total", "member") == {
        "member@a.example": 1.9
    }
    assert set(values_of(samples, "claude_telemetry_machine_cost_usd_total", "machine")) == {
        "member-laptop"
    }
    assert set(values_of(samples, "claude_telemetry_machine_last_sync_age_seconds", "machine")) == {
        "member-laptop"
    }
    assert set(values_of(samples, "claude_telemetry_block_active", "member")) == {
        "member@a.example"
    }
    assert "owner@a.example" not in str(samples)


@time_machine.travel(NOW, tick=False)
def test_a_member_sees_everyone_when_the_team_shares_figures(cast, usage, team_a):
    team_a.members_see_each_other = True
    team_a.save()
    _, samples = scrape(metrics_token(cast["member"]))
    assert set(values_of(samples, "claude_telemetry_member_cost_usd_total", "member")) == {
        "owner@a.example",
        "member@a.example",
    }


@time_machine.travel(NOW, tick=False)
def test_an_outsider_sees_only_their_own_team(cast, usage):
    _, samples = scrape(metrics_token(cast["outsider"]))
    assert values_of(samples, "claude_telemetry_team_cost_usd_total", "team") == {"team-b": 9.0}
    assert "team-a" not in str(samples) and "a.example" not in str(samples.keys())
    assert "owner@a.example" not in str(samples) and "member@a.example" not in str(samples)


def test_an_operator_outside_any_team_scrapes_only_the_server_metrics(usage):
    operator = User.objects.create_user(email="ops@example.com", is_staff=True)
    status, samples = scrape(metrics_token(operator))
    assert status == 200
    assert "claude_telemetry_ingest_batches" in samples
    assert not [name for name in samples if "cost" in name or "block" in name]


@time_machine.travel(NOW, tick=False)
def test_server_metrics_are_only_for_the_deployments_operator(cast, usage):
    _, samples = scrape(metrics_token(cast["owner"]))
    assert "claude_telemetry_ingest_batches" not in samples
    assert not any(name.startswith("claude_telemetry_http_request") for name in samples)

    User.objects.filter(pk=cast["owner"].pk).update(is_staff=True)
    _, samples = scrape(metrics_token(cast["owner"]))
    assert samples["claude_telemetry_ingest_batches"]
    assert "claude_telemetry_alert_deliveries" in samples
    assert (
        "claude_telemetry_task_queue_length" in samples
        or samples["claude_telemetry_task_broker_up"]
    )


# --- scopes on the tokens page and the command line ---------------------------------------


def test_the_tokens_page_offers_and_issues_the_metrics_scope(cast):
    assert "metrics" in dict(TokenCreateForm.base_fields["scopes"].choices)
    client = login(cast["admin"])
    response = client.post(reverse("tokens"), {"name": "prometheus", "scopes": ["metrics"]})
    assert response.status_code == 201
    raw = response.context["raw_token"]
    assert ApiToken.objects.get(user=cast["admin"]).scopes == ["metrics"]
    assert api_client(raw).get("/metrics").status_code == 200
    assert api_client(raw).get("/api/v1/usage/").status_code == 403


def test_create_api_token_issues_a_metrics_only_token(cast, capsys):
    call_command(
        "create_api_token", "admin@a.example", "--name", "prometheus", "--scopes", "metrics"
    )
    raw = capsys.readouterr().out.strip()
    assert ApiToken.objects.get(user=cast["admin"]).scopes == ["metrics"]
    assert api_client(raw).get("/metrics").status_code == 200


# --- the figures --------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_usage_counters_equal_the_usage_api_for_every_breakdown(cast, usage):
    _, samples = scrape(metrics_token(cast["admin"]))
    read = api_client(token_for(cast["admin"], scopes=("read",)))
    breakdowns = {
        "member": ("member", lambda row: User.objects.get(public_id=row["key"]).email),
        "machine": ("machine_uuid", lambda row: row["key"]),
        "project": ("project_id", lambda row: row["key"]),
        "model": ("model", lambda row: row["key"]),
        "source": ("source", lambda row: row["key"]),
    }
    for group_by, (label, label_of) in breakdowns.items():
        body = read.get("/api/v1/usage/", {"group_by": group_by, "scope": "team"}).json()
        expected = {label_of(row): float(row["cost_usd"]) for row in body["results"]}
        assert values_of(samples, f"claude_telemetry_{group_by}_cost_usd_total", label) == (
            pytest.approx(expected)
        ), group_by
        tokens = {}
        for labels, value in samples[f"claude_telemetry_{group_by}_tokens_total"].items():
            key = dict(labels)[label]
            tokens[key] = tokens.get(key, 0) + value
        assert tokens == {label_of(row): row["total_tokens"] for row in body["results"]}
    totals = read.get("/api/v1/usage/", {"group_by": "source", "scope": "team"}).json()["totals"]
    team_tokens = samples["claude_telemetry_team_tokens_total"]
    assert {dict(k)["type"]: v for k, v in team_tokens.items()} == {
        "input": totals["input_tokens"],
        "output": totals["output_tokens"],
        "cache_creation": totals["cache_creation_tokens"],
        "cache_read": totals["cache_read_tokens"],
    }


@time_machine.travel(NOW, tick=False)
def test_projects_and_models_past_the_top_n_are_summed_into_other(cast, team_a, settings):
    settings.METRICS_TOP_PROJECTS = 2
    settings.METRICS_TOP_MODELS = 1
    laptop = machine_for(cast["owner"])
    for n, cost in enumerate(["5", "4", "3", "2"]):
        daily(
            laptop, TODAY, cost, project=project_for(team_a, f"-home-dev-src-p{n}"), model=f"m{n}"
        )
    _, samples = scrape(metrics_token(cast["owner"]))
    projects = values_of(samples, "claude_telemetry_project_cost_usd_total", "project")
    assert projects == {"p0": 5.0, "p1": 4.0, "other": 5.0}
    assert values_of(samples, "claude_telemetry_model_cost_usd_total", "model") == {
        "m0": 5.0,
        "other": 9.0,
    }


@time_machine.travel(NOW, tick=False)
def test_running_block_quota_budget_and_sync_age_are_exposed(cast, usage, team_a):
    laptop = usage["owner"]
    hourly(laptop, utc(2026, 3, 10, 10), tokens=600_000, cost="6.00")
    recompute_blocks(laptop.subscription_id)
    rate_limit(laptop.subscription, laptop, NOW - timedelta(minutes=10), five_hour=42.5)
    make_budget(team_a, amount="10", name="Team March")

    _, samples = scrape(metrics_token(cast["owner"]))
    sub = str(laptop.subscription.public_id)

    def one(name, **labels):
        matches = [
            value
            for key, value in samples[name].items()
            if dict(key)["subscription_id"] == sub and labels.items() <= dict(key).items()
        ]
        assert len(matches) == 1, (name, samples[name])
        return matches[0]

    assert one("claude_telemetry_block_active") == 1
    assert one("claude_telemetry_block_tokens") == 600_000
    assert one("claude_telemetry_block_cost_usd") == 6.0
    assert one("claude_telemetry_block_burn_rate_tokens_per_minute") > 0
    assert one("claude_telemetry_block_remaining_seconds") == 3 * 3600
    assert one("claude_telemetry_quota_utilization_ratio", window="five_hour") == 0.425
    assert one("claude_telemetry_quota_reset_seconds", window="five_hour") == 110 * 60
    assert one("claude_telemetry_quota_utilization_ratio", window="seven_day") == 0.61

    member_sub = str(usage["member"].subscription.public_id)
    idle = {
        dict(k)["subscription_id"]: v for k, v in samples["claude_telemetry_block_active"].items()
    }
    assert idle[member_sub] == 0

    budget = values_of(samples, "claude_telemetry_budget_spent_usd", "budget")
    assert budget == {"Team March": 5.9}
    assert values_of(samples, "claude_telemetry_budget_used_ratio", "budget") == {
        "Team March": pytest.approx(0.59)
    }
    ages = values_of(samples, "claude_telemetry_machine_last_sync_age_seconds", "machine")
    assert ages == {"owner-laptop": 300.0, "member-laptop": 7200.0}


@time_machine.travel(NOW, tick=False)
def test_a_retired_or_never_synced_machine_has_no_sync_age(cast, usage):
    Machine.objects.filter(pk=usage["member"].pk).update(retired_at=NOW)
    machine_for(cast["owner"], "new-box")  # created by ingest, never seen syncing
    _, samples = scrape(metrics_token(cast["admin"]))
    ages = values_of(samples, "claude_telemetry_machine_last_sync_age_seconds", "machine")
    assert set(ages) == {"owner-laptop"}


def test_prometheus_gets_openmetrics_when_it_asks_for_it(cast, usage):
    response = api_client(metrics_token(cast["admin"])).get(
        "/metrics", HTTP_ACCEPT="application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
    )
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().endswith("# EOF\n")
    plain = api_client(metrics_token(cast["admin"])).get("/metrics")
    assert plain["Content-Type"].startswith("text/plain; version=0.0.4")


# --- operational figures --------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_server_metrics_count_batches_derived_lag_and_deliveries(cast, usage):
    User.objects.filter(pk=cast["owner"].pk).update(is_staff=True)
    base = {"user": cast["member"], "body_gzip": b"", "sha256": "0" * 64, "size_bytes": 0}
    IngestBatch.objects.create(**base, compressed_bytes=0, status="failed", error="bad json")
    IngestBatch.objects.create(
        **base, compressed_bytes=0, status="processed", processed_at=NOW - timedelta(minutes=3)
    )
    IngestBatch.objects.create(
        **base,
        compressed_bytes=0,
        status="processed",
        processed_at=NOW - timedelta(minutes=9),
        derived_at=NOW,
    )
    raw = metrics_token(cast["owner"])
    api_client(token_for(cast["member"], scopes=("read",))).get("/api/v1/usage/")
    _, samples = scrape(raw)
    assert values_of(samples, "claude_telemetry_ingest_batches", "status") == {
        "received": 0,
        "processed": 2,
        "failed": 1,
    }
    assert samples["claude_telemetry_derived_work_pending_batches"] == {(): 1}
    assert samples["claude_telemetry_derived_work_lag_seconds"] == {(): 180.0}
    assert set(values_of(samples, "claude_telemetry_alert_deliveries", "status")) == {
        "pending",
        "sending",
        "sent",
        "failed",
    }
    durations = samples["claude_telemetry_http_request_duration_seconds_count"]
    usage_requests = [
        v
        for k, v in durations.items()
        if dict(k)["route"] == "api-usage" and dict(k)["status"] == "200"
    ]
    assert usage_requests and usage_requests[0] >= 1


# --- cost at scale ------------------------------------------------------------------------


def _grow_team(team, members: int) -> None:
    """`members` more members, each with a machine and a day of usage, in bulk."""
    created = User.objects.bulk_create([User(email=f"dev{n}@a.example") for n in range(members)])
    Membership.objects.bulk_create(
        [Membership(user=u, team=team, role=Role.MEMBER) for u in created]
    )
    subs = Subscription.objects.bulk_create(
        [Subscription(owner=u, label="Claude account", is_default=True) for u in created]
    )
    machines = Machine.objects.bulk_create(
        [
            Machine(
                uuid=uuid.uuid4(),
                owner=u,
                team=team,
                subscription=s,
                name=f"pc{n}",
                last_seen_at=NOW,
            )
            for n, (u, s) in enumerate(zip(created, subs, strict=True))
        ]
    )
    project = project_for(team, "-home-dev-src-api")
    DailyUsage.objects.bulk_create(
        [
            DailyUsage(
                machine=m,
                day=TODAY,
                project=project,
                model="claude-sonnet-4-5",
                input_tokens=10,
                total_tokens=10,
                cost_usd=Decimal("0.01"),
            )
            for m in machines
        ]
    )


@time_machine.travel(NOW, tick=False)
def test_a_scrape_of_a_thousand_member_team_takes_as_few_queries_as_a_small_one(
    cast, usage, team_a
):
    make_budget(team_a, amount="100")
    raw = metrics_token(cast["admin"])

    def queries() -> list[str]:
        """The scrape's own queries; the embedded cache's (Redis in production) left out."""
        with CaptureQueriesContext(connection) as captured:
            assert api_client(raw).get("/metrics").status_code == 200
        return [
            q["sql"]
            for q in captured.captured_queries
            if "cache_entries" not in q["sql"] and "SAVEPOINT" not in q["sql"]
        ]

    queries()  # the first use of a token records it (once a minute)
    small = queries()
    _grow_team(team_a, 1000)
    large = queries()
    assert len(large) == len(small)
    # Token, allow-list, team, 4 usage sums, machines twice, subscriptions, blocks, quotas,
    # budgets and one spend per budget.
    assert len(large) <= 15, "\n".join(large)
    _, samples = scrape(raw)
    assert len(samples["claude_telemetry_member_cost_usd_total"]) == 1002


# --- several gunicorn workers ---------------------------------------------------------------

WORKER = """
import django, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetry_site.settings")
django.setup()
from django.http import HttpResponse
from django.test import RequestFactory
from prometheus_client import generate_latest
from telemetry_site.metrics.server import RequestMetricsMiddleware, process_registry

if sys.argv[1] == "serve":
    middleware = RequestMetricsMiddleware(lambda request: HttpResponse(status=202))
    for _ in range(int(sys.argv[2])):
        middleware(RequestFactory().post("/api/v1/ingest/"))
else:
    sys.stdout.write(generate_latest(process_registry()).decode())
"""


def test_request_durations_of_every_worker_reach_any_workers_scrape(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in (2, 3):  # two worker processes, each serving and exiting
        subprocess.run([sys.executable, "-c", WORKER, "serve", str(count)], env=env, check=True)
    scrape = subprocess.run(
        [sys.executable, "-c", WORKER, "scrape"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts = {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == "claude_telemetry_http_request_duration_seconds_count"
    }
    assert counts == {(("method", "POST"), ("route", "unmatched"), ("status", "202")): 5.0}


# --- the Grafana dashboard ------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_every_metric_the_grafana_dashboard_queries_is_in_an_operators_scrape(cast, usage, team_a):
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    laptop = usage["owner"]
    rate_limit(laptop.subscription, laptop, NOW - timedelta(minutes=10))
    make_budget(team_a)
    User.objects.filter(pk=cast["owner"].pk).update(is_staff=True)
    api_client(metrics_token(cast["owner"])).get("/metrics")  # a request to time
    _, samples = scrape(metrics_token(cast["owner"]))

    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"claude_telemetry_\w+", target["expr"])
    }
    variable = dashboard["templating"]["list"][1]["definition"]
    queried |= set(re.findall(r"claude_telemetry_\w+", variable))
    assert len(queried) > 20
    assert queried - set(samples) == set()
