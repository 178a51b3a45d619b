"""The operator's Django admin for usage: lists, reprocessing batches, grouping projects, plan
prices, read-only blocks; team members never get in."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import User
from tests.factories import ProjectFactory
from tests.usage.ingest.helpers import encode, envelope, fixture_reports, post
from usage.ingest.pipeline import archive
from usage.models import (
    BatchStatus,
    DailyUsage,
    IngestBatch,
    Machine,
    OtlpMetricPoint,
    Plan,
    PlanPrice,
    ProductivityDaily,
    Project,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = User.objects.create_superuser("operator@example.com")
    client.force_login(user)
    return client


@pytest.fixture
def ingested(fixtures_dir, owner_client):
    assert post(owner_client, envelope(fixture_reports())).status_code == 201


@pytest.mark.parametrize(
    "model",
    [
        "machine",
        "subscription",
        "project",
        "ingestbatch",
        "dailyusage",
        "hourlyusage",
        "sessionusage",
        "ratelimitsnapshot",
        "otlpmetricpoint",
        "productivitydaily",
    ],
)
def test_every_usage_list_opens_and_searches(operator, ingested, model):
    url = reverse(f"admin:usage_{model}_changelist")
    assert operator.get(url).status_code == 200
    assert operator.get(url, {"q": "webapp"}).status_code == 200


def test_a_batch_page_shows_the_start_of_its_body(operator, ingested):
    batch = IngestBatch.objects.get()
    page = operator.get(reverse("admin:usage_ingestbatch_change", args=[batch.pk]))
    assert page.status_code == 200
    assert b"claude_daily_instances" in page.content


def test_otlp_points_and_productivity_are_listed_read_only(operator, ingested):
    machine = Machine.objects.get()
    project = Project.objects.filter(team=machine.owner.team).first()
    day = date(2026, 11, 2)
    point = OtlpMetricPoint.objects.create(
        machine=machine,
        metric="claude_code.commit.count",
        key="k1",
        end_at=datetime(2026, 11, 2, 10, tzinfo=UTC),
        value=Decimal(2),
    )
    row = ProductivityDaily.objects.create(
        team=machine.owner.team, member=machine.owner, machine=machine, project=project, day=day
    )
    for model, obj, needle in (
        ("otlpmetricpoint", point, b"claude_code.commit.count"),
        ("productivitydaily", row, machine.name.encode()),
    ):
        listing = operator.get(reverse(f"admin:usage_{model}_changelist"))
        assert listing.status_code == 200 and needle in listing.content
        assert operator.get(reverse(f"admin:usage_{model}_add")).status_code == 403
        change = reverse(f"admin:usage_{model}_change", args=[obj.pk])
        assert operator.post(change, {"value": "9", "commits": "9"}).status_code == 403
    point.refresh_from_db()
    row.refresh_from_db()
    assert point.value == 2 and row.commits == 0


def test_facts_cannot_be_added_or_edited_by_hand(operator, ingested):
    assert operator.get(reverse("admin:usage_dailyusage_add")).status_code == 403
    fact = DailyUsage.objects.first()
    page = operator.post(
        reverse("admin:usage_dailyusage_change", args=[fact.pk]), {"total_tokens": 1}
    )
    assert page.status_code == 403


def test_the_reprocess_action_replays_failed_batches(operator, owner, fixtures_dir):
    batch = archive(owner, None, b'{"schema": 1, "machine": {"uuid": "x"}}')
    good = archive(owner, None, encode(envelope(fixture_reports())))
    response = operator.post(
        reverse("admin:usage_ingestbatch_changelist"),
        {"action": "reprocess", "_selected_action": [batch.pk, good.pk]},
        follow=True,
    )
    assert b"Reprocessed 1 batch(es); 1 failed." in response.content
    batch.refresh_from_db()
    good.refresh_from_db()
    assert batch.status == BatchStatus.FAILED and "machine.uuid" in batch.error
    assert good.status == BatchStatus.PROCESSED
    assert DailyUsage.objects.exists()


def test_projects_are_grouped_under_the_oldest_and_ungrouped(operator, ingested):
    projects = list(Project.objects.exclude(key="").order_by("created_at", "id")[:3])
    url = reverse("admin:usage_project_changelist")
    operator.post(
        url,
        {"action": "group_under_oldest", "_selected_action": [p.pk for p in projects]},
    )
    grouped = Project.objects.filter(pk__in=[p.pk for p in projects[1:]])
    assert set(grouped.values_list("alias_of", flat=True)) == {projects[0].pk}
    operator.post(url, {"action": "ungroup", "_selected_action": [p.pk for p in projects]})
    assert not Project.objects.filter(alias_of__isnull=False).exists()


def test_a_project_cannot_be_grouped_with_another_teams(operator, ingested, outsider):
    ours = Project.objects.exclude(key="").first()
    theirs = ProjectFactory(team=outsider.team, key="-x", display_name="x")
    response = operator.post(
        reverse("admin:usage_project_change", args=[ours.pk]),
        {
            "team": ours.team_id,
            "key": ours.key,
            "display_name": ours.display_name,
            "alias_of": theirs.pk,
            "cwd": "",
            "git_remote": "",
        },
    )
    assert response.status_code == 200
    assert b"Choose a project of the same team." in response.content
    ours.refresh_from_db()
    assert ours.alias_of is None


# --- Plan prices and blocks ----------------------------------------------------------------


def test_an_operator_edits_a_plan_price_in_the_admin(operator):
    row = PlanPrice.objects.get(plan=Plan.MAX5X)
    url = reverse("admin:usage_planprice_change", args=[row.pk])
    assert operator.get(url).status_code == 200
    response = operator.post(url, {"monthly_usd": "90.00", "capacity_vs_pro": "5"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.plan, row.monthly_usd) == (Plan.MAX5X, Decimal("90.00"))


def test_blocks_are_read_only_in_the_admin(operator):
    assert operator.get(reverse("admin:usage_block_changelist")).status_code == 200
    assert operator.get(reverse("admin:usage_block_add")).status_code == 403


def test_team_members_cannot_reach_the_admin(client, member):
    client.force_login(member)
    response = client.get(reverse("admin:usage_planprice_changelist"))
    assert response.status_code == 302
