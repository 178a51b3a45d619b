"""Operators edit plan prices in the Django admin; the beat schedule runs the block refresh."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.models import User
from telemetry_site.celery import app
from usage.models import Plan, PlanPrice

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):
    return User.objects.create_superuser("ops@example.org")


def test_an_operator_edits_a_plan_price_in_the_admin(client, operator):
    client.force_login(operator)
    row = PlanPrice.objects.get(plan=Plan.MAX5X)
    url = reverse("admin:usage_planprice_change", args=[row.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"monthly_usd": "90.00", "capacity_vs_pro": "5"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.plan, row.monthly_usd) == (Plan.MAX5X, Decimal("90.00"))


def test_blocks_are_read_only_in_the_admin(client, operator):
    client.force_login(operator)
    assert client.get(reverse("admin:usage_block_changelist")).status_code == 200
    assert client.get(reverse("admin:usage_block_add")).status_code == 403


def test_team_members_cannot_reach_the_admin(client, member):
    client.force_login(member)
    response = client.get(reverse("admin:usage_planprice_changelist"))
    assert response.status_code == 302


def test_the_beat_schedule_refreshes_blocks_with_a_registered_task():
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-blocks"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    assert entry["schedule"].total_seconds() <= 600
