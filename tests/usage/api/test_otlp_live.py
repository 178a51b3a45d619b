"""Live: an OTLP batch moves the running block, its burn rate and the budget status at once
(the derived work runs after the batch commits, as after an agent report)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from budgets.models import Budget
from tests.conftest import api_client, token_for
from tests.usage.ingest.otlp_helpers import LOGS_URL, PROTOBUF, api_request, logs_body
from tests.usage.ingest.otlp_metric_helpers import post_metrics, request_points

pytestmark = pytest.mark.django_db


def running_block(user) -> dict:
    response = api_client(token_for(user, ["read"])).get("/api/v1/blocks/")
    assert response.status_code == 200, response.content
    [block] = [b for b in response.json()["results"] if b["is_active"]]
    return block


def test_an_otlp_log_batch_shows_in_the_running_block_and_its_burn_rate(
    member, django_capture_on_commit_callbacks
):
    now = timezone.now()
    first, second = now - timedelta(minutes=20), now - timedelta(minutes=2)
    client = api_client(token_for(member, ["ingest"]))
    with django_capture_on_commit_callbacks(execute=True):
        body = logs_body([api_request(first, request_id="r1", cost_usd="0.40")])
        assert client.post(LOGS_URL, data=body, content_type=PROTOBUF).status_code == 200
    block = running_block(member)
    assert Decimal(block["cost_usd"]) == Decimal("0.40")
    assert block["total_tokens"] == 1160
    # The next batch, seconds later, moves the same block: cost, tokens and last activity.
    with django_capture_on_commit_callbacks(execute=True):
        body = logs_body([api_request(second, request_id="r2", cost_usd="0.60")])
        assert client.post(LOGS_URL, data=body, content_type=PROTOBUF).status_code == 200
    block = running_block(member)
    assert Decimal(block["cost_usd"]) == Decimal("1.00")
    assert block["total_tokens"] == 2320
    assert block["last_activity"].startswith(second.strftime("%Y-%m-%dT%H:%M"))
    assert block["burn_rate"] is not None


def test_a_metrics_only_batch_shows_in_the_running_block(
    member, django_capture_on_commit_callbacks
):
    now = timezone.now() - timedelta(minutes=3)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_metrics(member, request_points(now, 0.3, {"input": 10, "output": 5}))
    assert response.status_code == 200
    block = running_block(member)
    assert Decimal(block["cost_usd"]) == Decimal("0.3")
    assert block["total_tokens"] == 15


def test_an_otlp_batch_updates_the_budget_status(owner, member, django_capture_on_commit_callbacks):
    Budget.objects.create(
        team=owner.membership.team, name="Team", amount_usd=Decimal("10"), period="month"
    )
    client = api_client(token_for(member, ["ingest"]))
    with django_capture_on_commit_callbacks(execute=True):
        body = logs_body([api_request(timezone.now(), request_id="r1", cost_usd="2.50")])
        assert client.post(LOGS_URL, data=body, content_type=PROTOBUF).status_code == 200
    response = api_client(token_for(owner, ["read"])).get("/api/v1/budgets/")
    assert response.status_code == 200
    [budget] = response.json()["results"]
    assert Decimal(budget["spent_usd"]) == Decimal("2.50")
