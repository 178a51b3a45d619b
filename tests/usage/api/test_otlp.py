"""/otlp/v1/logs and /otlp/v1/metrics: Claude Code's OTLP export, from a real OTLP client."""

import gzip
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.test import override_settings
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from tests.conftest import api_client, token_for
from tests.usage.ingest.otlp_helpers import (
    LOGS_URL,
    METRICS_URL,
    PROTOBUF,
    api_request,
    emit,
    logs_body,
    resource,
)
from usage.models import (
    DailyUsage,
    HourlyUsage,
    IngestBatch,
    Machine,
    OtlpRequest,
    SessionUsage,
)

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def export_with_sdk(url: str, token: str, events: list[dict], host="laptop", gzip_it=False):
    """Claude Code's path: the SDK's LoggerProvider and OTLP/HTTP exporter, one record each."""
    results = []

    class Recording(OTLPLogExporter):
        def export(self, batch):
            result = super().export(batch)
            results.append(result)
            return result

    exporter = Recording(
        endpoint=f"{url}{LOGS_URL}",
        headers={"Authorization": f"Bearer {token}"},
        compression=Compression.Gzip if gzip_it else Compression.NoCompression,
        timeout=10,
    )
    provider = LoggerProvider(resource=resource(host))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    emit(provider, events)
    provider.shutdown()
    return results


@pytest.mark.django_db(transaction=True)
def test_the_sdk_exporter_stores_claude_codes_api_requests_as_facts(live_server, member):
    token = token_for(member, ["ingest"])
    events = [
        api_request(AT, request_id="req_1"),
        api_request(AT.replace(minute=45), request_id="req_2", model="claude-opus-4-5"),
    ]
    results = export_with_sdk(live_server.url, token, events, gzip_it=True)
    assert results == [LogRecordExportResult.SUCCESS] * 2
    machine = Machine.objects.get(owner=member, ingest_path="otlp")
    assert machine.hostname == "laptop"
    assert OtlpRequest.objects.filter(machine=machine).count() == 2
    daily = {row.model: row for row in DailyUsage.objects.filter(machine=machine)}
    assert set(daily) == {"claude-sonnet-4-5", "claude-opus-4-5"}
    assert daily["claude-opus-4-5"].day == AT.date()
    assert daily["claude-opus-4-5"].input_tokens == 100
    assert daily["claude-opus-4-5"].total_tokens == 1160
    assert daily["claude-opus-4-5"].cost_usd == Decimal("0.0125")
    hour = HourlyUsage.objects.get(machine=machine)
    assert hour.hour == AT.replace(minute=0) and hour.entries == 2
    session = SessionUsage.objects.get(machine=machine)
    assert session.session_id == "session-1" and session.cost_usd == Decimal("0.025")

    # The exporter retries a batch it got no answer for: the same events never count twice.
    export_with_sdk(live_server.url, token, events)
    assert OtlpRequest.objects.filter(machine=machine).count() == 2
    assert DailyUsage.objects.filter(machine=machine).aggregate(t=Sum("cost_usd"))["t"] == (
        Decimal("0.025")
    )


@pytest.mark.django_db(transaction=True)
def test_the_sdk_metric_exporter_is_answered_and_claude_code_metrics_are_archived(
    live_server, member
):
    exporter = OTLPMetricExporter(
        endpoint=f"{live_server.url}{METRICS_URL}",
        headers={"Authorization": f"Bearer {token_for(member, ['ingest'])}"},
        timeout=10,
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource(), metric_readers=[reader])
    meter = provider.get_meter("com.anthropic.claude_code", "2.1.0")
    meter.create_counter("claude_code.cost.usage", unit="USD").add(
        0.5, {"model": "claude-sonnet-4-5", "session.id": "session-1"}
    )
    meter.create_counter("some.other.metric").add(3)
    # Shutting down collects and exports once, as Claude Code does on exit.
    provider.shutdown()
    batch = IngestBatch.objects.get(user=member)
    assert batch.ingest_path == "otlp-metrics"
    assert batch.counts == {"otlp_metrics": {"data_points": 1}}
    assert b"some.other.metric" not in batch.body()


def post(client, body: bytes, content_type=PROTOBUF, url=LOGS_URL, **headers):
    return client.post(url, data=body, content_type=content_type, **headers)


@pytest.mark.django_db
def test_a_json_body_per_the_otlp_spec_is_stored_and_answered_in_json(member):
    body = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [
                        {"key": "host.name", "value": {"stringValue": "desktop"}},
                        {"key": "service.name", "value": {"stringValue": "claude-code"}},
                    ]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "com.anthropic.claude_code.events"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(int(AT.timestamp() * 1e9)),
                                "body": {"stringValue": "claude_code.api_request"},
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "attributes": [
                                    {"key": "event.name", "value": {"stringValue": "api_request"}},
                                    {"key": "model", "value": {"stringValue": "claude-haiku-4-5"}},
                                    {"key": "request_id", "value": {"stringValue": "req_j"}},
                                    {"key": "session.id", "value": {"stringValue": "s-j"}},
                                    {"key": "cost_usd", "value": {"doubleValue": 0.5}},
                                    {"key": "input_tokens", "value": {"intValue": "7"}},
                                    {"key": "output_tokens", "value": {"intValue": "3"}},
                                ],
                            },
                            {
                                "timeUnixNano": str(int(AT.timestamp() * 1e9)),
                                "body": {"stringValue": "claude_code.api_request"},
                                "attributes": [
                                    {"key": "request_id", "value": {"stringValue": "no-model"}},
                                ],
                            },
                        ],
                    }
                ],
            }
        ]
    }
    raw = gzip.compress(json.dumps(body).encode())
    client = api_client(token_for(member, ["ingest"]))
    response = post(client, raw, "application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "partialSuccess": {
            "rejectedLogRecords": "1",
            "errorMessage": "an api_request has no model",
        }
    }
    row = DailyUsage.objects.get(machine__owner=member)
    assert (row.model, row.input_tokens, row.output_tokens, row.cost_usd) == (
        "claude-haiku-4-5",
        7,
        3,
        Decimal("0.5"),
    )


@pytest.mark.django_db
def test_prompts_and_other_events_are_never_stored(member):
    from tests.usage.ingest.otlp_helpers import user_prompt

    body = logs_body([user_prompt(AT, "secret plan"), api_request(AT)])
    response = post(api_client(token_for(member, ["ingest"])), body)
    assert response.status_code == 200
    batch = IngestBatch.objects.get(user=member)
    assert b"secret plan" not in batch.body()
    assert b"claude_code.api_request" in batch.body()
    assert OtlpRequest.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (logs_body([api_request(AT)])[:-7], PROTOBUF, 400),
        (b"{not json", "application/json", 400),
        (b"[]", "application/json", 400),
        (logs_body([api_request(AT)]), "text/plain", 415),
        (logs_body([api_request(AT)]), "application/grpc", 415),
    ],
    ids=["truncated protobuf", "broken json", "json not an object", "text", "grpc"],
)
def test_a_bad_body_is_refused_with_a_status_and_stores_nothing(member, body, content_type, status):
    response = post(api_client(token_for(member, ["ingest"])), body, content_type)
    assert response.status_code == status
    if content_type == PROTOBUF:
        answer = Status()
        answer.ParseFromString(response.content)
        assert answer.message
    else:
        assert response.json()["message"]
    assert not IngestBatch.objects.exists() and not Machine.objects.exists()


@pytest.mark.django_db
def test_an_oversized_body_gets_413_and_stores_nothing(member):
    body = logs_body([api_request(AT, request_id=f"r{n}") for n in range(20)])
    with override_settings(INGEST_MAX_BODY_BYTES=len(body) - 1):
        response = post(api_client(token_for(member, ["ingest"])), body)
    assert response.status_code == 413
    assert not IngestBatch.objects.exists()


@pytest.mark.django_db
def test_unknown_events_and_metric_names_are_ignored_with_200_and_store_nothing(member):
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    client = api_client(token_for(member, ["ingest"]))
    event = api_request(AT)
    event["body"] = "claude_code.tool_result"
    event["attributes"]["event.name"] = "tool_result"
    response = post(client, logs_body([event]))
    assert response.status_code == 200
    answer = ExportLogsServiceResponse()
    answer.ParseFromString(response.content)
    assert not answer.HasField("partial_success")
    metrics = ExportMetricsServiceRequest()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "process.cpu.time"
    metric.sum.data_points.add().as_double = 1.0
    assert post(client, metrics.SerializeToString(), url=METRICS_URL).status_code == 200
    assert not IngestBatch.objects.exists() and not Machine.objects.exists()


@pytest.mark.django_db
def test_without_a_token_the_answer_is_401_and_without_ingest_scope_403(member):
    body = logs_body([api_request(AT)])
    assert post(api_client(None), body).status_code == 401
    assert post(api_client("cct_not-a-token"), body).status_code == 401
    response = post(api_client(token_for(member, ["read"])), body)
    assert response.status_code == 403
    answer = Status()
    answer.ParseFromString(response.content)
    assert answer.code == 7
    assert not IngestBatch.objects.exists()


@pytest.mark.django_db
def test_throttled_exports_get_429_with_retry_after(member, monkeypatch):
    from telemetry_site.api.throttles import IngestThrottle

    monkeypatch.setattr(IngestThrottle, "THROTTLE_RATES", {"ingest": "1/minute"})
    client = api_client(token_for(member, ["ingest"]))
    body = logs_body([api_request(AT)])
    assert post(client, body).status_code == 200
    response = post(client, body)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert IngestBatch.objects.count() == 1


@pytest.mark.django_db
def test_each_role_writes_only_its_own_machine(owner, admin, member, outsider):
    for user in (owner, admin, member, outsider):
        response = post(api_client(token_for(user, ["ingest"])), logs_body([api_request(AT)]))
        assert response.status_code == 200
    machines = Machine.objects.filter(ingest_path="otlp")
    # The same host.name and request id from four people are four machines, one each.
    assert sorted(m.owner.email for m in machines) == sorted(
        u.email for u in (owner, admin, member, outsider)
    )
    for machine in machines:
        assert machine.team == machine.owner.membership.team
        assert OtlpRequest.objects.filter(machine=machine).count() == 1
        assert DailyUsage.objects.get(machine=machine).cost_usd == Decimal("0.0125")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("cost_usd", "1e11", "cost_usd is above $1,000"),  # used to overflow the column: a 503
        ("cost_usd", "1000.01", "cost_usd is above $1,000"),
        ("input_tokens", "99999999999999999", "input_tokens is above 100,000,000"),
        ("cache_read_tokens", "100000001", "cache_read_tokens is above 100,000,000"),
    ],
)
def test_an_event_beyond_what_one_request_can_hold_is_rejected_and_the_rest_stored(
    member, field, value, reason
):
    absurd = api_request(AT, request_id="absurd", **{field: value})
    body = logs_body([absurd, api_request(AT, request_id="fine")])
    response = post(api_client(token_for(member, ["ingest"])), body)
    assert response.status_code == 200
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 1
    assert reason in answer.partial_success.error_message
    assert list(OtlpRequest.objects.values_list("request_id", flat=True)) == ["fine"]
    assert DailyUsage.objects.get(machine__owner=member).cost_usd == Decimal("0.0125")
