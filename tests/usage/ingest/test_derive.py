"""The derived work that runs after each ingest batch: blocks, the budget check, the sweep."""

import json
import uuid
from datetime import date, timedelta

import pytest
from celery.signals import task_prerun
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import MachineFactory, daily
from tests.usage.ccusage_runs import envelope, hourly_report
from tests.usage.ingest.helpers import ingest_reports
from usage.ingest import derive
from usage.ingest.derive import derive_for_batch
from usage.ingest.pipeline import IngestError, archive, process_batch
from usage.models import Block, BlockContribution, IngestBatch
from usage.signals import usage_changed
from usage.tasks import derive_after_ingest, recompute_subscription_blocks, sweep_derived_work

pytestmark = pytest.mark.django_db


def test_derived_work_computes_blocks_and_marks_the_batch(member):
    batch = ingest_reports(
        member, {"blocks_hourly": hourly_report(["2026-11-20T10", "2026-11-20T12"])}
    )
    assert derive_after_ingest.delay(batch.pk).get() is True
    block = Block.objects.get()
    assert (block.total_tokens, block.entries) == (200, 4)
    batch.refresh_from_db()
    assert batch.derived_at is not None


def test_running_the_derived_work_twice_changes_nothing(member):
    batch = ingest_reports(
        member, {"blocks_hourly": hourly_report(["2026-11-20T10", "2026-11-21T12"])}
    )
    derive_for_batch(batch.pk)
    blocks = list(Block.objects.values().order_by("pk"))
    parts = list(BlockContribution.objects.values().order_by("pk"))
    derived_at = IngestBatch.objects.get(pk=batch.pk).derived_at

    derive_for_batch(batch.pk)

    assert list(Block.objects.values().order_by("pk")) == blocks
    assert list(BlockContribution.objects.values().order_by("pk")) == parts
    assert IngestBatch.objects.get(pk=batch.pk).derived_at == derived_at


def test_a_later_batch_with_a_late_hour_reshapes_the_blocks(member):
    first = ingest_reports(
        member, {"blocks_hourly": hourly_report(["2026-11-20T10", "2026-11-20T14"])}
    )
    derive_for_batch(first.pk)
    assert Block.objects.count() == 1
    late = ingest_reports(
        member,
        {"blocks_hourly": hourly_report(["2026-11-20T08"])},
        full=False,
    )
    derive_for_batch(late.pk)
    assert [b.start_time.hour for b in Block.objects.order_by("start_time")] == [8, 14]


def test_derived_work_for_a_failed_or_unknown_batch_does_nothing(member):
    body = json.dumps({"schema": 99}).encode()
    failed = archive(member, None, body)
    with pytest.raises(IngestError):
        process_batch(failed, body=body)
    assert derive_for_batch(failed.pk) is False
    assert IngestBatch.objects.get(pk=failed.pk).derived_at is None
    assert derive_for_batch(999_999) is False


def test_the_budget_check_of_the_team_runs_after_derived_work(member):
    ran = []

    def record(sender=None, args=None, **kwargs):
        ran.append((sender.name, tuple(args or ())))

    task_prerun.connect(record)
    try:
        batch = ingest_reports(member, {"blocks_hourly": hourly_report(["2026-11-20T10"])})
        derive_for_batch(batch.pk)
    finally:
        task_prerun.disconnect(record)
    assert ("budgets.tasks.evaluate_team", (member.team.pk,)) in ran


def test_days_are_untouched_by_derived_work(member):
    machine = MachineFactory(owner=member)
    daily(machine, date(2026, 11, 1), "1.00")
    batch = ingest_reports(member, {"blocks_hourly": hourly_report(["2026-11-20T10"])})
    derive_for_batch(batch.pk)
    assert machine.daily.get().cost_usd == 1


def test_the_sweep_catches_up_on_batches_whose_derived_work_never_ran(member):
    batch = ingest_reports(member, {"blocks_hourly": hourly_report(["2026-11-20T10"])})
    IngestBatch.objects.filter(pk=batch.pk).update(
        derived_at=None, received_at=batch.received_at - timedelta(minutes=10)
    )
    Block.objects.all().delete()

    assert sweep_derived_work.delay().get() == 1
    assert Block.objects.count() == 1
    # Running it again finds nothing left to do.
    assert sweep_derived_work.delay().get() == 0


def test_recomputing_a_subscriptions_blocks_twice_changes_nothing_the_second_time(member):
    batch = ingest_reports(member, {"blocks_hourly": hourly_report(["2026-11-20T10"])})
    subscription_id = batch.machine.subscription_id
    Block.objects.all().delete()
    assert recompute_subscription_blocks.delay(subscription_id).get() is True
    assert (
        recompute_subscription_blocks.delay(subscription_id, "2026-11-20T10:00:00+00:00").get()
        is False
    )


def _sync(user, name: str, machine_uuid, hours: list[str]) -> IngestBatch:
    body = envelope(name, machine_uuid, {"blocks_hourly": hourly_report(hours)}, full=False)
    batch = archive(user, None, body)
    process_batch(batch, body=body)
    return IngestBatch.objects.get(pk=batch.pk)


def test_one_run_derives_every_waiting_batch_and_tells_each_team_once(member, admin, outsider):
    batches = [
        _sync(member, "laptop", uuid.UUID(int=1), ["2026-11-20T10"]),
        _sync(member, "desktop", uuid.UUID(int=2), ["2026-11-20T11"]),
        _sync(admin, "workstation", uuid.UUID(int=3), ["2026-11-20T12"]),
        _sync(outsider, "elsewhere", uuid.UUID(int=4), ["2026-11-20T13"]),
    ]
    heard = []

    def record(sender, team_id, **kwargs):
        heard.append((team_id, sorted(kwargs["batch_ids"]), sorted(kwargs["member_ids"])))

    usage_changed.connect(record)
    try:
        assert derive_after_ingest.delay(batches[2].pk).get() is True
    finally:
        usage_changed.disconnect(record)

    assert not IngestBatch.objects.filter(derived_at__isnull=True).exists()
    # The member's two machines share one subscription: one block across both.
    assert Block.objects.get(subscription__owner=member).machine_count == 2
    assert Block.objects.filter(subscription__owner=admin).count() == 1
    assert sorted(heard) == sorted(
        [
            (member.team.pk, sorted(b.pk for b in batches[:3]), sorted([member.pk, admin.pk])),
            (outsider.team.pk, [batches[3].pk], [outsider.pk]),
        ]
    )
    # The later batches' own tasks find their work done.
    with CaptureQueriesContext(connection) as queries:
        assert derive_after_ingest.delay(batches[3].pk).get() is True
    # Two reads of the batch table (and the cache's, where the cache is the database): no
    # block, fact or batch is read again or written.
    batch_reads = [q["sql"] for q in queries.captured_queries if "usage_" in q["sql"]]
    assert len(batch_reads) <= 2, batch_reads
    assert all(sql.startswith("SELECT") and "usage_ingestbatch" in sql for sql in batch_reads)


def test_a_group_that_fails_still_derives_the_tasks_own_batch_and_leaves_the_rest_waiting(
    member, admin, monkeypatch
):
    mine = _sync(member, "laptop", uuid.UUID(int=1), ["2026-11-20T10"])
    broken = _sync(admin, "workstation", uuid.UUID(int=3), ["2026-11-20T12"])
    real = derive._recompute_blocks

    def failing_for_the_broken_batch(batches):
        if any(batch.pk == broken.pk for batch, _ in batches):
            raise RuntimeError("cannot derive this batch")
        return real(batches)

    monkeypatch.setattr(derive, "_recompute_blocks", failing_for_the_broken_batch)
    assert derive_after_ingest.delay(mine.pk).get() is True

    # Nothing of the failed group was kept; the task's own batch was derived alone.
    assert IngestBatch.objects.get(pk=mine.pk).derived_at is not None
    assert IngestBatch.objects.get(pk=broken.pk).derived_at is None
    assert list(Block.objects.values_list("subscription__owner", flat=True)) == [member.pk]

    # Once it can be derived, the sweep catches up on the one left waiting.
    monkeypatch.setattr(derive, "_recompute_blocks", real)
    IngestBatch.objects.filter(pk=broken.pk).update(
        received_at=broken.received_at - timedelta(minutes=10)
    )
    assert sweep_derived_work.delay().get() == 1
    assert Block.objects.filter(subscription__owner=admin).count() == 1


def _sessions(*session_ids: str) -> dict:
    """A `ccusage claude session` report with one small session per id."""
    counts = {"inputTokens": 1, "outputTokens": 2, "cacheCreationTokens": 0, "cacheReadTokens": 0}
    model = "claude-sonnet-4-5-20250929"
    rows = [
        {
            **counts,
            "totalTokens": 3,
            "totalCost": 0.01,
            "modelsUsed": [model],
            "modelBreakdowns": [{"modelName": model, **counts, "cost": 0.01}],
            "sessionId": session_id,
            "projectPath": "-home-dev-src-webapp",
            "firstActivity": "2026-11-20T09:00:00+00:00",
            "lastActivity": "2026-11-20T10:00:00+00:00",
        }
        for session_id in session_ids
    ]
    return {"claude_session": {"sessions": rows, "totals": {}}}


def test_derived_work_reports_a_session_another_machine_of_the_team_reported(
    member, admin, outsider, caplog
):
    def sync(user, name, n, reports):
        body = envelope(name, uuid.UUID(int=n), reports, full=False)
        process_batch(archive(user, None, body), body=body)

    sync(member, "laptop", 1, _sessions("copied", "own-1"))
    sync(outsider, "elsewhere", 9, _sessions("own-2"))
    derive.derive_pending()
    caplog.clear()
    # The admin's machine (same team) reports a copy of the laptop's session; the outsider's
    # machine one of the admin's sessions (another team: not a copy the team sees).
    sync(admin, "workstation", 3, _sessions("copied", "own-2", "own-3"))
    with caplog.at_level("WARNING", logger="usage.analytics.quality"):
        derive.derive_pending()
    copies = [r for r in caplog.records if "more than one machine" in r.getMessage()]
    assert [(r.sessions, r.example) for r in copies] == [(1, "copied")]


def test_a_batch_processed_again_after_its_derived_work_is_derived_again(member):
    batch = ingest_reports(member, {"blocks_hourly": hourly_report(["2026-11-20T10"])})
    assert derive_after_ingest.delay(batch.pk).get() is True
    derived_at = IngestBatch.objects.get(pk=batch.pk).derived_at
    # As `reprocess_batches --batch` leaves it: processed later than its derived work ran.
    IngestBatch.objects.filter(pk=batch.pk).update(
        processed_at=derived_at + timedelta(microseconds=1)
    )
    Block.objects.all().delete()

    assert derive_after_ingest.delay(batch.pk).get() is True
    assert Block.objects.count() == 1
    again = IngestBatch.objects.get(pk=batch.pk)
    assert again.derived_at >= again.processed_at
