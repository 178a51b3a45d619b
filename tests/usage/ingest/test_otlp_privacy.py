"""Prompt text, tool inputs and outputs, raw API bodies: never stored, not even in the raw
archive of an OTLP batch (docs/otlp.md, "What is stored"). Bodies as Claude Code sends them
with OTEL_LOG_USER_PROMPTS=1, OTEL_LOG_TOOL_DETAILS=1 and OTEL_LOG_RAW_API_BODIES=1."""

import json
from datetime import UTC, datetime

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tests.conftest import api_client, token_for
from tests.usage.ingest.otlp_helpers import (
    LOGS_URL,
    PROTOBUF,
    api_request,
    logs_body,
    user_prompt,
)
from usage.ingest.otlp.logs import KEPT_ATTRIBUTES
from usage.models import IngestBatch, OtlpRequest

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
SECRETS = [
    "rotate the prod database password",
    "cat ~/.aws/credentials",
    "AKIAEXAMPLESECRET",
    "def billing_rule():",
    "/home/dev/src/secret-project",
]


def tool_result(at) -> dict:
    return {
        "body": "claude_code.tool_result",
        "attributes": {
            "event.name": "tool_result",
            "session.id": "session-1",
            "tool_name": "Bash",
            "success": "true",
            "duration_ms": "40",
            "tool_parameters": json.dumps({"bash_command": "cat", "full_command": SECRETS[1]}),
            "tool_input": json.dumps({"command": SECRETS[1]}),
            "error": SECRETS[2],
        },
        "timestamp": int(at.timestamp() * 1e9),
    }


def raw_body(at) -> dict:
    return {
        "body": "claude_code.api_request_body",
        "attributes": {
            "event.name": "api_request_body",
            "body": json.dumps({"messages": [{"content": SECRETS[3]}]}),
        },
        "timestamp": int(at.timestamp() * 1e9),
    }


def chatty_api_request(at) -> dict:
    event = api_request(at)
    # Attributes an api_request carries that no figure needs, one of them a working folder.
    event["attributes"].update(
        {"prompt.id": "9f7c", "workspace.host_paths": SECRETS[4], "query_source": "main"}
    )
    return event


def test_prompts_tool_details_and_raw_bodies_are_not_in_the_archive(member):
    events = [user_prompt(AT, SECRETS[0]), tool_result(AT), raw_body(AT), chatty_api_request(AT)]
    client = api_client(token_for(member, ["ingest"]))
    response = client.post(LOGS_URL, data=logs_body(events), content_type=PROTOBUF)
    assert response.status_code == 200
    archived = IngestBatch.objects.get(user=member).body()
    for secret in SECRETS:
        assert secret.encode() not in archived, secret
    kept = ExportLogsServiceRequest()
    kept.ParseFromString(archived)
    [record] = [r for rl in kept.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert {pair.key for pair in record.attributes} <= KEPT_ATTRIBUTES
    assert record.body.string_value == "claude_code.api_request"
    # The request itself is stored, with the figures the dashboards need.
    assert OtlpRequest.objects.get().input_tokens == 100


def test_the_json_path_keeps_no_prompt_either(member):
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "pc"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(int(AT.timestamp() * 1e9)),
                                "body": {"stringValue": "claude_code.user_prompt"},
                                "attributes": [
                                    {"key": "prompt", "value": {"stringValue": SECRETS[0]}}
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    client = api_client(token_for(member, ["ingest"]))
    response = client.post(LOGS_URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    # Nothing of use in it: nothing archived at all.
    assert not IngestBatch.objects.exists()
