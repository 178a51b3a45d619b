"""Reports the server answers 202 (stored, processed by its worker): the agent follows the batch
for a while, and a report that is stored but not yet processed leaves the spool all the same."""

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest
import test_end_to_end as e2e
import time_machine
from claude_telemetry.client import Client
from django.utils import timezone

from tests.conftest import DEAD_BROKER_URL, celery_broker
from usage import tasks
from usage.models import BatchStatus, IngestBatch

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

token = e2e.token
connected = e2e.connected

# Every report the agent sends is larger: all of them go to the server's worker.
SMALL = 1024


def test_a_big_first_sync_is_answered_202_followed_and_counted_once(
    server, token, connected, cli, agent_env, settings
):
    settings.INGEST_ASYNC_BODY_BYTES = SMALL

    done = cli("sync")

    assert done.code == 0, done.output
    # What was stored, from the batch's state once the worker finished.
    assert "Sent the whole history" in done.stdout and "19 new sessions" in done.stdout
    assert not list((Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "spool").glob("*.json.gz"))
    assert set(IngestBatch.objects.values_list("status", flat=True)) == {BatchStatus.PROCESSED}
    e2e.assert_same_totals(
        e2e.usage(server, token)["totals"], e2e.ccusage_totals("all-daily-by-agent.json")
    )
    assert e2e.agent_state(agent_env)["full_acked"] is True
    # The next sync is a window again, and counts nothing twice.
    assert cli("sync").code == 0
    e2e.assert_same_totals(
        e2e.usage(server, token)["totals"], e2e.ccusage_totals("all-daily-by-agent.json")
    )


def envelope_bytes() -> bytes:
    from tests.usage.ingest.helpers import encode, envelope, fixture_reports

    return gzip.compress(encode(envelope(fixture_reports())))


def test_a_report_the_worker_has_not_processed_yet_is_acknowledged_and_arrives_later(
    server, token, settings
):
    settings.INGEST_ASYNC_BODY_BYTES = SMALL
    with celery_broker(DEAD_BROKER_URL), Client(server.url, token, follow_seconds=1.5) as client:
        ack = client.ingest(envelope_bytes())
    # Stored, so acknowledged: the spool may let it go; the server still has work to do.
    assert ack.status == 202
    assert ack.data["status"] == "received"
    batch = IngestBatch.objects.get(public_id=ack.data["batch_id"])
    assert batch.status == BatchStatus.RECEIVED

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert tasks.sweep_ingest_backlog() == 1
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROCESSED
    totals = e2e.usage(server, token)["totals"]
    assert totals["total_tokens"] == 7_238_681  # the fixture machine, as ccusage counts it


def test_a_big_report_the_server_refuses_is_acknowledged_with_the_reason(server, token, settings):
    settings.INGEST_ASYNC_BODY_BYTES = SMALL
    body = {
        "schema": 1,
        "machine": {"uuid": "9a1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b", "name": "desk"},
        "reports": {"claude_session": {"sessions": "not a list"}},
        "padding": "x" * 2000,
    }
    with Client(server.url, token, follow_seconds=5) as client:
        ack = client.ingest(gzip.compress(json.dumps(body).encode()))
    assert ack.status == 202
    assert ack.data["status"] == "failed"
    assert "claude_session" in ack.data["detail"]
