"""Claude Code's usage metrics become facts when nothing better covers them (docs/ingest.md,
"OTLP and the agent"): events win per session and hour, the agent wins over both, a resent
point counts once, cumulative points are refused."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from tests.conftest import api_client, token_for
from tests.usage.ingest.otlp_helpers import LOGS_URL, PROTOBUF, api_request, logs_body, resource
from tests.usage.ingest.otlp_metric_helpers import (
    CUMULATIVE,
    cost,
    metrics_export,
    post_metrics,
    request_points,
    tokens,
)
from tests.usage.ingest.test_otlp_supersede import send_agent
from usage.models import (
    DailyUsage,
    HourlyUsage,
    IngestBatch,
    Machine,
    OtlpMetricPoint,
    SessionUsage,
)

pytestmark = pytest.mark.django_db

# 09:31 on the 20th (an hour the agent helper reports) and 14:06 on the 21st.
AT = datetime(2026, 11, 20, 9, 31, tzinfo=UTC)
LATER = datetime(2026, 11, 21, 14, 6, tzinfo=UTC)
COUNTS = {"input": 100, "output": 50, "cacheRead": 1000, "cacheCreation": 10}


def machine_of(user, host="laptop.local") -> Machine:
    return Machine.objects.get(owner=user, ingest_path="otlp", hostname=host)


def totals(machine) -> dict:
    return DailyUsage.objects.filter(machine=machine).aggregate(
        cost=Sum("cost_usd"), tokens=Sum("total_tokens")
    )


def send_events(user, events, host="laptop.local"):
    client = api_client(token_for(user, ["ingest"]))
    response = client.post(LOGS_URL, data=logs_body(events, resource(host)), content_type=PROTOBUF)
    assert response.status_code == 200


def answer_of(response) -> ExportMetricsServiceResponse:
    answer = ExportMetricsServiceResponse()
    answer.ParseFromString(response.content)
    return answer


def test_a_machine_that_sends_only_metrics_gets_daily_hourly_and_session_facts(member):
    points = request_points(AT, 0.0125, COUNTS) + request_points(
        AT + timedelta(minutes=1), 0.5, {"input": 7, "output": 3}, model="claude-opus-4-5"
    )
    response = post_metrics(member, points, host="laptop.local")
    assert response.status_code == 200
    assert not answer_of(response).HasField("partial_success")
    machine = machine_of(member)
    daily = {row.model: row for row in DailyUsage.objects.filter(machine=machine)}
    sonnet = daily["claude-sonnet-4-5"]
    assert (sonnet.day, sonnet.input_tokens, sonnet.output_tokens) == (AT.date(), 100, 50)
    assert (sonnet.cache_read_tokens, sonnet.cache_creation_tokens) == (1000, 10)
    assert sonnet.total_tokens == 100 + 50 + 1000 + 10
    assert sonnet.cost_usd == Decimal("0.0125")
    assert daily["claude-opus-4-5"].total_tokens == 10
    assert daily["claude-opus-4-5"].cost_usd == Decimal("0.5")
    hour = HourlyUsage.objects.get(machine=machine)
    assert hour.hour == AT.replace(minute=0)
    assert hour.total_tokens == 1170 and hour.cost_usd == Decimal("0.5125")
    assert hour.last_activity == AT + timedelta(minutes=1)
    session = SessionUsage.objects.get(machine=machine)
    assert session.session_id == "session-1" and session.cost_usd == Decimal("0.5125")


def test_resending_the_same_metric_points_counts_them_once(member):
    points = request_points(AT, 0.0125, COUNTS)
    post_metrics(member, points, host="laptop.local")
    before = totals(machine_of(member))
    # An exporter's retry, and a later export holding the same points again plus a new one.
    post_metrics(member, points, host="laptop.local")
    post_metrics(member, [*points, cost(AT + timedelta(minutes=1), 0.25)], host="laptop.local")
    after = totals(machine_of(member))
    assert after["cost"] == before["cost"] + Decimal("0.25")
    assert after["tokens"] == before["tokens"] == 1160
    assert OtlpMetricPoint.objects.filter(machine=machine_of(member)).count() == 6


def test_events_win_over_metrics_of_the_same_session_and_hour_in_both_orders(member, admin):
    # The same API request, seen as an event and as metric points (Claude Code sends both).
    event = api_request(AT, request_id="req_1", cost_usd="0.0125")
    points = request_points(AT + timedelta(seconds=20), 0.0125, COUNTS)
    for user, order in ((member, "events first"), (admin, "metrics first")):
        if order == "events first":
            send_events(user, [event])
            post_metrics(user, points, host="laptop.local")
        else:
            post_metrics(user, points, host="laptop.local")
            send_events(user, [event])
        machine = machine_of(user)
        assert totals(machine) == {"cost": Decimal("0.0125"), "tokens": 1160}, order
        assert HourlyUsage.objects.get(machine=machine).entries == 1, order
        assert SessionUsage.objects.get(machine=machine).cost_usd == Decimal("0.0125"), order


def test_metrics_of_an_hour_or_session_without_events_still_count(member):
    send_events(member, [api_request(AT, request_id="req_1", cost_usd="0.0125")])
    post_metrics(
        member,
        # The same hour but another session, and the same session an hour later.
        request_points(AT, 0.5, {"input": 1}, session="session-2")
        + request_points(AT + timedelta(hours=1), 0.25, {"input": 2}),
        host="laptop.local",
    )
    machine = machine_of(member)
    assert totals(machine)["cost"] == Decimal("0.0125") + Decimal("0.5") + Decimal("0.25")
    sessions = dict(
        SessionUsage.objects.filter(machine=machine).values_list("session_id", "cost_usd")
    )
    assert sessions == {"session-1": Decimal("0.2625"), "session-2": Decimal("0.5")}


def test_a_point_without_session_id_gives_way_to_any_event_of_its_hour(member):
    send_events(member, [api_request(AT, request_id="req_1", cost_usd="0.0125")])
    post_metrics(
        member,
        [cost(AT, 0.0125, session=""), cost(AT + timedelta(hours=2), 0.75, session="")],
        host="laptop.local",
    )
    assert totals(machine_of(member))["cost"] == Decimal("0.0125") + Decimal("0.75")


def test_the_agent_supersedes_metric_facts_in_both_orders(
    member, admin, django_capture_on_commit_callbacks
):
    points = request_points(AT, 0.0125, COUNTS) + request_points(LATER, 0.25, {"input": 5})
    # Metrics first, then the agent reports the 20th and its 09:00 hour.
    post_metrics(member, points, host="laptop.local")
    agent = send_agent(member, django_capture_on_commit_callbacks)
    otlp = machine_of(member)
    assert list(DailyUsage.objects.filter(machine=otlp).values_list("day", flat=True)) == [
        LATER.date()
    ]
    assert list(HourlyUsage.objects.filter(machine=otlp).values_list("hour", flat=True)) == [
        LATER.replace(minute=0)
    ]
    agent_day = DailyUsage.objects.get(machine=agent, day=AT.date()).total_tokens
    # The agent first, then metrics: the agent's day and hour are left out again.
    agent = send_agent(admin, django_capture_on_commit_callbacks)
    post_metrics(admin, points, host="laptop.local")
    otlp = machine_of(admin)
    assert list(DailyUsage.objects.filter(machine=otlp).values_list("day", flat=True)) == [
        LATER.date()
    ]
    day_total = DailyUsage.objects.filter(machine__owner=admin, day=AT.date()).aggregate(
        t=Sum("total_tokens")
    )["t"]
    assert day_total == agent_day


def test_cumulative_points_are_refused_with_the_setting_to_change_and_store_nothing(member):
    client = api_client(token_for(member, ["ingest"]))
    body = metrics_export(request_points(AT, 0.0125, COUNTS), temporality=CUMULATIVE)
    response = client.post("/otlp/v1/metrics", data=body.SerializeToString(), content_type=PROTOBUF)
    assert response.status_code == 200
    answer = answer_of(response)
    assert answer.partial_success.rejected_data_points == 5
    assert "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta" in (
        answer.partial_success.error_message
    )
    assert not OtlpMetricPoint.objects.exists()
    assert not DailyUsage.objects.exists()
    # Archived as received, marked processed with nothing derived.
    assert IngestBatch.objects.get(user=member).counts == {"otlp_metrics": {"data_points": 5}}


def test_a_gauge_or_a_negative_point_is_rejected_and_the_rest_is_stored(member):
    export = metrics_export([cost(AT, 0.5), tokens(AT, "input", -3)])
    gauge = export.resource_metrics[0].scope_metrics[0].metrics.add()
    gauge.name = "claude_code.commit.count"
    gauge.gauge.data_points.add(time_unix_nano=int(AT.timestamp() * 1e9), as_int=1)
    client = api_client(token_for(member, ["ingest"]))
    response = client.post(
        "/otlp/v1/metrics", data=export.SerializeToString(), content_type=PROTOBUF
    )
    answer = answer_of(response)
    assert answer.partial_success.rejected_data_points == 2
    assert "negative" in answer.partial_success.error_message
    assert "gauge" in answer.partial_success.error_message
    assert totals(machine_of(member, "laptop"))["cost"] == Decimal("0.5")


def test_a_broken_metrics_body_is_a_400_and_stores_nothing(member):
    client = api_client(token_for(member, ["ingest"]))
    body = metrics_export([cost(AT, 0.5)]).SerializeToString()
    response = client.post("/otlp/v1/metrics", data=body[:-7], content_type=PROTOBUF)
    assert response.status_code == 400
    assert not IngestBatch.objects.exists() and not OtlpMetricPoint.objects.exists()


def test_a_json_metrics_export_per_the_otlp_spec_becomes_facts_and_is_answered_in_json(member):
    # OTLP/HTTP JSON: camelCase fields, 64-bit integers as strings, enums as numbers.
    end = str(int(AT.timestamp() * 1e9))
    start = str(int((AT - timedelta(minutes=1)).timestamp() * 1e9))

    def attrs(**values):
        return [{"key": k, "value": {"stringValue": v}} for k, v in values.items()]

    body = {
        "resourceMetrics": [
            {
                "resource": {"attributes": attrs(**{"host.name": "json-box"})},
                "scopeMetrics": [
                    {
                        "scope": {"name": "com.anthropic.claude_code"},
                        "metrics": [
                            {
                                "name": "claude_code.cost.usage",
                                "unit": "USD",
                                "sum": {
                                    "aggregationTemporality": 1,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "startTimeUnixNano": start,
                                            "timeUnixNano": end,
                                            "asDouble": 0.125,
                                            "attributes": attrs(
                                                model="claude-sonnet-4-5",
                                                **{"session.id": "s-json"},
                                            ),
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "claude_code.token.usage",
                                "unit": "tokens",
                                "sum": {
                                    "aggregationTemporality": 1,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "startTimeUnixNano": start,
                                            "timeUnixNano": end,
                                            "asInt": "4096",
                                            "attributes": attrs(
                                                type="output",
                                                model="claude-sonnet-4-5",
                                                **{"session.id": "s-json"},
                                            ),
                                        }
                                    ],
                                },
                            },
                        ],
                    }
                ],
            }
        ]
    }
    client = api_client(token_for(member, ["ingest"]))
    response = client.post(
        "/otlp/v1/metrics", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}
    row = DailyUsage.objects.get(machine=machine_of(member, "json-box"))
    assert (row.output_tokens, row.total_tokens, row.cost_usd) == (4096, 4096, Decimal("0.125"))


def test_a_usage_point_beyond_what_one_export_can_hold_is_rejected(member):
    export = metrics_export(
        [cost(AT, 0.5), cost(AT, 1e11, session="s2"), tokens(AT, "input", 2e10)]
    )
    client = api_client(token_for(member, ["ingest"]))
    response = client.post(
        "/otlp/v1/metrics", data=export.SerializeToString(), content_type=PROTOBUF
    )
    answer = answer_of(response)
    assert answer.partial_success.rejected_data_points == 2
    assert "more than one export holds" in answer.partial_success.error_message
    assert totals(machine_of(member, "laptop"))["cost"] == Decimal("0.5")
