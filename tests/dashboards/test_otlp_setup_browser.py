"""The OTLP set-up page in headless Chromium: create a token, send a batch with it from the
OpenTelemetry SDK's exporter, and "test connection" shows that batch without a reload."""

import re
from datetime import UTC, datetime

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from accounts.models import Role
from tests.browser.conftest import browser, pages, skip_without_chromium  # noqa: F401  # fixtures
from tests.conftest import make_member
from tests.usage.ingest.otlp_helpers import LOGS_URL, api_request, emit, resource

pytestmark = [pytest.mark.browser, skip_without_chromium]


@pytest.mark.django_db(transaction=True)
def test_test_connection_shows_a_new_batch_without_a_reload(pages, live_server, team_a):  # noqa: F811
    make_member(team_a, "member@a.example", Role.MEMBER)
    page = pages.login("member@a.example")
    page.goto("/settings/otlp/")
    assert "Nothing received" in page.locator("#otlp-last").inner_text()
    page.click("#create-otlp-token")
    raw = page.locator("#otlp-token").input_value()
    assert raw.startswith("cct_")
    assert f"Authorization=Bearer {raw}" in page.locator("#snippet-shell").inner_text()

    exporter = OTLPLogExporter(
        endpoint=f"{live_server.url}{LOGS_URL}",
        headers={"Authorization": f"Bearer {raw}"},
        timeout=10,
    )
    provider = LoggerProvider(resource=resource("browser-laptop"))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    emit(provider, [api_request(datetime(2026, 11, 20, 9, 30, tzinfo=UTC))])
    provider.shutdown()

    last = page.locator("#otlp-last")
    # The page asks every 5 seconds; give it two rounds.
    last.filter(has_text=re.compile("processed")).wait_for(timeout=12_000)
    text = last.inner_text()
    assert "1 record(s)" in text and "browser-laptop" in text
    assert pages.errors == []
