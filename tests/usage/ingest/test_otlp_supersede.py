"""OTLP facts fill what the agent has not reported and give way when it does (docs/ingest.md)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from tests.conftest import api_client, token_for
from tests.factories import SubscriptionFactory
from tests.usage.ingest.helpers import daily_report, envelope, hourly_report
from tests.usage.ingest.helpers import post as post_agent
from tests.usage.ingest.otlp_helpers import LOGS_URL, PROTOBUF, api_request, logs_body, resource
from usage.analytics.blocks import recompute_blocks
from usage.models import Block, DailyUsage, HourlyUsage, Machine, OtlpRequest

pytestmark = pytest.mark.django_db

DAY_20 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
DAY_21 = datetime(2026, 11, 21, 14, 5, tzinfo=UTC)
AGENT_REPORTS = {
    **daily_report("-home-dev-webapp", "2026-11-20", 100, 900),
    **hourly_report("2026-11-20T09:00:00Z"),
}


def send_otlp(user, events, host="laptop.local"):
    client = api_client(token_for(user, ["ingest"]))
    response = client.post(LOGS_URL, data=logs_body(events, resource(host)), content_type=PROTOBUF)
    assert response.status_code == 200
    return Machine.objects.get(owner=user, ingest_path="otlp", hostname=host)


def send_agent(user, capture):
    # The supersede rule runs when the agent's batch has committed, as in production.
    with capture(execute=True):
        response = post_agent(
            api_client(token_for(user, ["ingest"])), envelope(AGENT_REPORTS, name="laptop")
        )
    assert response.status_code == 201, response.content
    return Machine.objects.get(owner=user, ingest_path="agent")


def otlp_events():
    return [api_request(DAY_20, request_id="r20"), api_request(DAY_21, request_id="r21")]


def test_an_agent_report_after_otlp_replaces_the_otlp_figures_of_its_days_and_hours(
    member, django_capture_on_commit_callbacks
):
    otlp = send_otlp(member, otlp_events())
    assert set(DailyUsage.objects.filter(machine=otlp).values_list("day", flat=True)) == {
        DAY_20.date(),
        DAY_21.date(),
    }
    send_agent(member, django_capture_on_commit_callbacks)
    # Day 20 and its 09:00 hour are the agent's now; day 21, which it did not report, stays.
    assert list(DailyUsage.objects.filter(machine=otlp).values_list("day", flat=True)) == [
        DAY_21.date()
    ]
    assert list(HourlyUsage.objects.filter(machine=otlp).values_list("hour", flat=True)) == [
        DAY_21.replace(minute=0)
    ]
    # The events themselves are kept: the OTLP figures are withheld, not lost.
    assert OtlpRequest.objects.filter(machine=otlp).count() == 2


def test_otlp_after_an_agent_report_fills_only_what_the_agent_has_not_reported(
    member, outsider, django_capture_on_commit_callbacks
):
    agent = send_agent(member, django_capture_on_commit_callbacks)
    agent_day_20 = DailyUsage.objects.get(machine=agent, day=DAY_20.date()).total_tokens
    otlp = send_otlp(member, otlp_events())
    assert list(DailyUsage.objects.filter(machine=otlp).values_list("day", flat=True)) == [
        DAY_21.date()
    ]
    assert not HourlyUsage.objects.filter(machine=otlp, hour=DAY_20.replace(minute=0)).exists()
    day_20_total = DailyUsage.objects.filter(machine__owner=member, day=DAY_20.date()).aggregate(
        t=Sum("total_tokens")
    )["t"]
    assert day_20_total == agent_day_20
    # Another person's machine of the same name is not this agent's: nothing is withheld.
    theirs = send_otlp(outsider, otlp_events())
    assert DailyUsage.objects.filter(machine=theirs).count() == 2


def test_a_request_id_seen_in_two_batches_counts_once(member):
    otlp = send_otlp(member, [api_request(DAY_20, request_id="same")])
    send_otlp(
        member,
        [api_request(DAY_20, request_id="same"), api_request(DAY_20, request_id="other")],
    )
    row = DailyUsage.objects.get(machine=otlp)
    assert row.cost_usd == Decimal("0.025")
    assert HourlyUsage.objects.get(machine=otlp).entries == 2


def test_without_host_name_the_service_instance_id_names_the_machine_and_none_is_rejected(
    member,
):
    client = api_client(token_for(member, ["ingest"]))
    body = logs_body([api_request(DAY_20)], resource(None, **{"service.instance.id": "ci-7"}))
    assert client.post(LOGS_URL, data=body, content_type=PROTOBUF).status_code == 200
    assert Machine.objects.get(owner=member, ingest_path="otlp").hostname == "ci-7"
    anonymous = logs_body([api_request(DAY_20)], resource(None))
    response = client.post(LOGS_URL, data=anonymous, content_type=PROTOBUF)
    assert response.status_code == 200
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceResponse,
    )

    answer = ExportLogsServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_log_records == 1
    assert "host.name" in answer.partial_success.error_message


def test_an_otlp_machine_on_another_subscription_has_its_blocks_recomputed_when_superseded(
    member, django_capture_on_commit_callbacks
):
    otlp = send_otlp(member, otlp_events())
    separate = SubscriptionFactory(owner=member, label="second account")
    Machine.objects.filter(pk=otlp.pk).update(subscription=separate)
    recompute_blocks(separate.pk)
    assert sorted(
        Block.objects.filter(subscription=separate).values_list("start_time", flat=True)
    ) == [
        DAY_20.replace(minute=0),
        DAY_21.replace(minute=0),
    ]
    send_agent(member, django_capture_on_commit_callbacks)
    agent = Machine.objects.get(owner=member, ingest_path="agent")
    assert agent.subscription_id != separate.pk
    # Day 20's hour is the agent's now: the OTLP machine's account no longer holds its block.
    assert list(
        Block.objects.filter(subscription=separate).values_list("start_time", flat=True)
    ) == [DAY_21.replace(minute=0)]
