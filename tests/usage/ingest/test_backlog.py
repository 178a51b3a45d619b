"""Big reports answered 202 and processed by the worker; batches left `received` picked up by
the backlog sweep; a batch that never finishes ends failed with the reason."""

import logging
from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from tests.conftest import DEAD_BROKER_URL, api_client, celery_broker, token_for
from tests.usage.ingest.helpers import (
    OUTPUT,
    cents,
    encode,
    envelope,
    expected_totals,
    fixture_reports,
    post,
)
from usage import tasks
from usage.ingest import backlog
from usage.ingest.pipeline import archive
from usage.models import BatchStatus, DailyUsage

pytestmark = pytest.mark.django_db

# Every fixture envelope is larger than this, so it goes to the worker.
SMALL = 1024


def batch_url(batch_id) -> str:
    return f"/api/v1/ingest/batches/{batch_id}/"


def totals(client) -> dict:
    return client.get("/api/v1/usage/", {"group_by": "source"}).json()["totals"]


def assert_fixture_totals(client) -> None:
    got, expected = totals(client), expected_totals(OUTPUT)
    assert got["total_tokens"] == expected["total_tokens"] == 7_238_681
    assert cents(got["cost_usd"]) == cents(expected["cost_usd"])


@pytest.fixture
def unreachable_broker():
    with celery_broker(DEAD_BROKER_URL):
        yield


@override_settings(INGEST_ASYNC_BODY_BYTES=SMALL)
def test_a_big_report_is_answered_202_and_the_worker_stores_it(fixtures_dir, owner_client):
    response = post(owner_client, envelope(fixture_reports()))

    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "received"
    assert answer["status_url"] == batch_url(answer["batch_id"])
    assert response["Location"] == answer["status_url"]
    # Tasks run inline in the tests: the worker has already stored it.
    state = owner_client.get(answer["status_url"]).json()
    assert state["status"] == "processed"
    assert state["batch_id"] == answer["batch_id"]
    assert state["counts"]["claude_daily_instances"]["created"] > 0
    assert state["timezone"] == "UTC" and state["last_day"] == "2026-11-24"
    assert_fixture_totals(owner_client)


@override_settings(INGEST_ASYNC_BODY_BYTES=SMALL)
def test_a_big_report_sent_while_the_broker_is_down_is_processed_by_the_sweep(
    fixtures_dir, owner_client, unreachable_broker, caplog
):
    with caplog.at_level(logging.WARNING, logger="telemetry_site.queueing"):
        response = post(owner_client, envelope(fixture_reports()))
    assert response.status_code == 202
    assert any("backlog sweep processes the batch" in r.getMessage() for r in caplog.records)
    url = response.json()["status_url"]
    assert owner_client.get(url).json()["status"] == "received"
    assert not DailyUsage.objects.exists()

    # Within the grace period the batch may still be on its way to a worker: left alone.
    assert backlog.waiting() == []
    with (
        celery_broker("memory://", eager=True),
        time_machine.travel(timezone.now() + timedelta(minutes=11)),
    ):
        assert tasks.sweep_ingest_backlog() == 1
    assert owner_client.get(url).json()["status"] == "processed"
    assert_fixture_totals(owner_client)
    # Nothing is left for the next sweep.
    with time_machine.travel(timezone.now() + timedelta(minutes=30)):
        assert backlog.waiting() == []


def test_a_small_report_is_still_stored_within_the_request(fixtures_dir, owner_client):
    response = post(owner_client, envelope(fixture_reports()))
    assert response.status_code == 201
    assert response.json()["status"] == "processed"


def test_a_batch_left_received_by_a_request_that_died_is_processed_by_the_sweep(
    fixtures_dir, owner, owner_client, django_capture_on_commit_callbacks
):
    # What a web process killed mid-request leaves: the archive, claimed, and nothing else.
    body = encode(envelope(fixture_reports()))
    batch = archive(owner, None, body)
    assert batch.status == BatchStatus.RECEIVED and batch.claimed_at is not None

    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert tasks.sweep_ingest_backlog() == 0  # the request may still be working on it
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=11)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert tasks.sweep_ingest_backlog() == 1
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROCESSED and batch.attempts == 2
    assert batch.derived_at is not None
    assert_fixture_totals(owner_client)


def test_a_batch_is_claimed_by_one_worker_at_a_time(fixtures_dir, owner):
    batch = archive(owner, None, encode(envelope(fixture_reports())), claimed=False)
    first = backlog.claim(batch.pk)
    assert first is not None and first.attempts == 1
    assert backlog.claim(batch.pk) is None
    assert tasks.process_ingest_batch(batch.pk) == backlog.SKIPPED
    # A claim that outlived the grace period was abandoned: it may be taken again.
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert tasks.process_ingest_batch(batch.pk) == backlog.PROCESSED
    assert tasks.process_ingest_batch(batch.pk) == backlog.SKIPPED


@override_settings(INGEST_BACKLOG_MAX_ATTEMPTS=2)
def test_a_batch_whose_processing_never_finishes_ends_failed_with_the_reason(fixtures_dir, owner):
    batch = archive(owner, None, encode(envelope(fixture_reports())), claimed=False)
    now = timezone.now()
    # Two workers took it and died (each claim is an attempt that never finished).
    for minutes in (0, 11):
        with time_machine.travel(now + timedelta(minutes=minutes)):
            assert backlog.claim(batch.pk) is not None
    with time_machine.travel(now + timedelta(minutes=22)):
        assert backlog.waiting() == [batch.pk]
        assert tasks.sweep_ingest_backlog() == 1
        batch.refresh_from_db()
        assert batch.status == BatchStatus.FAILED
        assert batch.error.startswith("Processing did not finish after 2 attempts")
        assert not DailyUsage.objects.exists()
        # Failed is final for the sweep: no loop.
        assert backlog.waiting() == []
    with time_machine.travel(now + timedelta(minutes=60)):
        assert backlog.waiting() == []


@override_settings(INGEST_ASYNC_BODY_BYTES=SMALL)
def test_a_big_report_refused_by_the_worker_says_why_at_its_status_url(owner_client):
    body = envelope({"claude_session": {"sessions": "not a list"}})
    body["padding"] = "x" * 2048
    response = post(owner_client, body)
    assert response.status_code == 202
    state = owner_client.get(response.json()["status_url"]).json()
    assert state["status"] == "failed"
    assert "claude_session" in state["detail"]
    assert "counts" not in state


# --- who may read a batch's state -------------------------------------------------------------
@override_settings(INGEST_ASYNC_BODY_BYTES=SMALL)
def test_only_the_sender_reads_a_batch_and_everyone_else_gets_404(
    fixtures_dir, member, owner, admin, outsider
):
    sender = api_client(token_for(member))
    response = post(sender, envelope(fixture_reports()))
    url = response.json()["status_url"]

    assert sender.get(url).status_code == 200
    for other in (owner, admin, outsider):
        answer = api_client(token_for(other)).get(url)
        assert answer.status_code == 404, other
        assert answer["Content-Type"] == "application/json"
    # The sender's other token, with the ingest scope, may; one without it may not.
    assert api_client(token_for(member, name="second")).get(url).status_code == 200
    read_only = api_client(token_for(member, scopes=("read",), name="reader"))
    assert read_only.get(url).status_code == 403
    assert api_client().get(url).status_code == 401
    assert sender.get(batch_url("not-a-uuid")).status_code == 404
    assert sender.get(batch_url("00000000-0000-0000-0000-000000000001")).status_code == 404


def test_a_browser_session_cannot_read_a_batch(fixtures_dir, member, client):
    response = post(api_client(token_for(member)), envelope(fixture_reports()))
    client.force_login(member)
    assert client.get(batch_url(response.json()["batch_id"])).status_code == 401
