"""The derived work that runs after each ingest batch: blocks, the budget check, the sweep."""

import json
from datetime import date, timedelta

import pytest
from celery.signals import task_prerun

from tests.factories import MachineFactory, daily
from tests.usage.ccusage_runs import hourly_report
from tests.usage.ingest.helpers import ingest_reports
from usage.ingest.derive import derive_for_batch
from usage.ingest.pipeline import IngestError, archive, process_batch
from usage.models import Block, BlockContribution, IngestBatch
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
