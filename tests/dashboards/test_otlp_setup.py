"""The OTLP set-up page: snippets per OS, a token made on the spot, and the last batch of the
viewer's own Claude Code (never anyone else's)."""

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.models import ApiToken
from tests.conftest import api_client, login, token_for
from tests.usage.ingest.otlp_helpers import LOGS_URL, PROTOBUF, api_request, logs_body

pytestmark = pytest.mark.django_db

PAGE = reverse("otlp_setup")
STATUS = reverse("otlp_status")
AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def send_otlp(token: str, events=None):
    body = logs_body(events or [api_request(AT, request_id="r1"), api_request(AT, request_id="r2")])
    return api_client(token).post(LOGS_URL, data=body, content_type=PROTOBUF)


@pytest.mark.parametrize("role", ["owner", "admin", "member", "outsider"])
def test_every_member_gets_the_snippets_for_each_os(cast, role, settings):
    settings.SITE_URL = "https://telemetry.example"
    response = login(cast[role]).get(PAGE)
    assert response.status_code == 200
    snippets = response.context["snippets"]
    assert (
        'export OTEL_EXPORTER_OTLP_ENDPOINT="https://telemetry.example/otlp"' in (snippets["shell"])
    )
    assert 'export OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf"' in snippets["shell"]
    assert 'export OTEL_RESOURCE_ATTRIBUTES="host.name=$(hostname)"' in snippets["shell"]
    assert (
        '[Environment]::SetEnvironmentVariable("OTEL_EXPORTER_OTLP_HEADERS", '
        '"Authorization=Bearer cct_YOUR_TOKEN", "User")'
    ) in snippets["powershell"]
    managed = json.loads(snippets["managed"])["env"]
    assert managed["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1"
    assert managed["OTEL_LOGS_EXPORTER"] == managed["OTEL_METRICS_EXPORTER"] == "otlp"
    assert managed["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"] == "delta"
    page = response.content.decode()
    assert "/etc/claude-code/managed-settings.json" in page
    assert "C:\\ProgramData\\ClaudeCode\\managed-settings.json" in page
    assert "Nothing received from your Claude Code yet." in page


def test_anonymous_visitors_are_sent_to_log_in():
    for url in (PAGE, STATUS):
        response = login(None).get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert login(None).post(PAGE).status_code == 302
    assert not ApiToken.objects.exists()


def test_creating_a_token_fills_it_in_once_and_it_sends_to_the_receivers(member):
    client = login(member)
    response = client.post(PAGE)
    assert response.status_code == 201
    token = ApiToken.objects.get(user=member)
    assert token.scopes == ["ingest"]
    raw = response.context["raw_token"]
    assert f"Authorization=Bearer {raw}" in response.context["snippets"]["shell"]
    assert json.loads(response.context["snippets"]["managed"])["env"][
        "OTEL_EXPORTER_OTLP_HEADERS"
    ] == (f"Authorization=Bearer {raw}")
    # Shown once: the next visit has the placeholder again.
    assert raw not in client.get(PAGE).content.decode()
    assert send_otlp(raw).status_code == 200


def test_the_status_shows_only_the_viewers_own_last_batch(cast):
    assert login(cast["member"]).get(STATUS).json() == {"last_batch": None}
    assert send_otlp(token_for(cast["member"], ["ingest"])).status_code == 200
    last = login(cast["member"]).get(STATUS).json()["last_batch"]
    assert last["signal"] == "logs"
    assert last["records"] == 2
    assert last["outcome"] == "processed"
    assert last["machine"] == "laptop"
    assert datetime.fromisoformat(last["received_at"]) > AT
    page = login(cast["member"]).get(PAGE).content.decode()
    assert '<span data-field="records">2</span> record(s)' in page
    assert 'data-field="outcome">processed</span>' in page
    for other in ("owner", "admin", "outsider"):
        assert login(cast[other]).get(STATUS).json() == {"last_batch": None}, other
