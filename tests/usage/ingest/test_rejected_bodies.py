"""Refused report bodies: one copy per distinct body with its repeats counted, a cap per team
beyond which only the metadata and reason are kept, and expiry after the retention days."""

import gzip
import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import Membership
from tests.conftest import api_client, token_for
from tests.usage.ingest.helpers import encode, envelope, fixture_reports, post
from usage import tasks
from usage.ingest.pipeline import IngestError, process_batch
from usage.models import BatchStatus, IngestBatch, Machine

pytestmark = pytest.mark.django_db


def bad_report(name: str = "laptop") -> dict:
    """Well-formed JSON that the parsers refuse: sessions must be a list."""
    return envelope({"claude_session": {"sessions": "not a list"}}, name=name)


def stored_size(body: dict) -> int:
    """What the archive keeps of a body sent with gzip: its compressed bytes."""
    return len(gzip.compress(encode(body), mtime=0))


def test_the_same_refused_body_is_archived_once_and_its_repeats_are_counted(owner_client):
    body = bad_report()
    answers = [post(owner_client, body) for _ in range(3)]

    assert [a.status_code for a in answers] == [400, 400, 400]
    assert len({a.json()["batch_id"] for a in answers}) == 1
    batch = IngestBatch.objects.get()
    assert (batch.status, batch.rejected, batch.repeats) == (BatchStatus.FAILED, True, 2)
    assert "claude_session" in batch.error
    assert batch.body() == encode(body)


def test_a_refused_body_that_goes_through_when_sent_again_keeps_its_batch(
    fixtures_dir, owner_client
):
    body = envelope(fixture_reports())
    assert post(owner_client, envelope({}, machine_uuid=body["machine"]["uuid"])).status_code == 201
    machine = Machine.objects.get(uuid=body["machine"]["uuid"])
    machine.retired_at = timezone.now()
    machine.save()
    refused = post(owner_client, body)
    assert refused.status_code == 409

    machine.retired_at = None
    machine.save()
    stored = post(owner_client, body)
    assert stored.status_code == 201
    assert stored.json()["batch_id"] == refused.json()["batch_id"]
    batch = IngestBatch.objects.get(public_id=stored.json()["batch_id"])
    assert (batch.status, batch.rejected, batch.repeats) == (BatchStatus.PROCESSED, False, 1)
    # A third time it is an ordinary duplicate of a processed batch.
    again = post(owner_client, body)
    assert again.status_code == 200 and again.json()["duplicate"] is True


def test_refused_bodies_past_the_teams_cap_keep_only_their_metadata_and_reason(
    owner, member, outsider, settings
):
    first, second, third = bad_report("one"), bad_report("two"), bad_report("three")
    settings.INGEST_REJECTED_MAX_BYTES_PER_TEAM = stored_size(first) + stored_size(second) - 1
    owner_api, member_api = api_client(token_for(owner)), api_client(token_for(member))

    assert post(owner_api, first).status_code == 400
    # The second one is the member's, in the same team: the cap is the team's.
    answer = post(member_api, second)
    assert answer.status_code == 400
    assert answer.json()["batch_id"]
    kept, discarded = IngestBatch.objects.order_by("id")
    assert not kept.body_discarded and kept.body() == encode(first)
    assert discarded.body_discarded and bytes(discarded.body_gzip) == b""
    assert discarded.rejected and "claude_session" in discarded.error
    assert discarded.sha256 and discarded.size_bytes == len(encode(second))

    # Another team has room of its own.
    assert post(api_client(token_for(outsider)), third).status_code == 400
    other = IngestBatch.objects.get(user=outsider)
    assert not other.body_discarded and other.body() == encode(third)

    # A discarded body sent again is still counted once, and still not kept.
    assert post(member_api, second).status_code == 400
    discarded.refresh_from_db()
    assert (discarded.repeats, discarded.body_discarded) == (1, True)
    assert IngestBatch.objects.count() == 3


def test_refused_bodies_expire_after_the_retention_days_and_nothing_else_does(
    fixtures_dir, owner, owner_client, settings
):
    settings.INGEST_REJECTED_RETENTION_DAYS = 30
    start = timezone.now()
    old_refused = post(owner_client, bad_report("old")).json()["batch_id"]
    stored = post(owner_client, envelope(fixture_reports())).json()["batch_id"]
    sent_again = bad_report("again")
    post(owner_client, sent_again)
    with time_machine.travel(start + timedelta(days=20)):
        post(owner_client, sent_again)  # arrived again: its thirty days start over

    with time_machine.travel(start + timedelta(days=31)):
        assert tasks.expire_rejected_bodies() == 1
    left = set(IngestBatch.objects.values_list("public_id", flat=True))
    assert old_refused not in {str(x) for x in left}
    assert stored in {str(x) for x in left}
    assert IngestBatch.objects.filter(rejected=True).count() == 1
    with time_machine.travel(start + timedelta(days=51)):
        assert tasks.expire_rejected_bodies() == 1
    assert set(IngestBatch.objects.values_list("rejected", flat=True)) == {False}


def test_a_replay_that_fails_never_marks_a_batch_rejected_or_drops_its_body(
    fixtures_dir, owner, owner_client, settings
):
    settings.INGEST_REJECTED_MAX_BYTES_PER_TEAM = 0
    body = envelope(fixture_reports())
    assert post(owner_client, body).status_code == 201
    Membership.objects.filter(user=owner).delete()  # nowhere to go now: a replay fails

    with pytest.raises(CommandError):
        call_command("reprocess_batches", stdout=io.StringIO())
    batch = IngestBatch.objects.get()
    assert batch.status == BatchStatus.FAILED and not batch.rejected
    assert not batch.body_discarded and batch.body() == encode(body)


def test_a_refused_report_kept_without_its_body_is_not_replayed_and_keeps_its_reason(
    owner_client, settings
):
    settings.INGEST_REJECTED_MAX_BYTES_PER_TEAM = 0
    assert post(owner_client, bad_report()).status_code == 400
    batch = IngestBatch.objects.get()
    assert batch.body_discarded
    reason = batch.error

    out = io.StringIO()
    call_command("reprocess_batches", "--failed", stdout=out)
    assert "No batches to reprocess." in out.getvalue()
    with pytest.raises(IngestError, match="was not kept"):
        process_batch(batch, live=False)
    batch.refresh_from_db()
    assert batch.error == reason and batch.status == BatchStatus.FAILED
