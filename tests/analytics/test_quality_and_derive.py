"""Data quality flags and the derived work that runs after each ingest batch."""

import json
import uuid
from datetime import date, timedelta

import pytest
from celery.signals import task_prerun

from tests.analytics.ccusage_runs import envelope, hourly_report
from tests.analytics.factories import MachineFactory, daily, session
from usage.analytics import quality
from usage.ingest.derive import derive_for_batch
from usage.ingest.pipeline import IngestError, archive, process_batch
from usage.models import Block, BlockContribution, IngestBatch, Machine
from usage.tasks import derive_after_ingest, recompute_subscription_blocks, sweep_derived_work

pytestmark = pytest.mark.django_db

MACHINE = uuid.UUID("0b6c3a52-8a0e-4c8f-9a57-3f1f0c1d2e3f")


def daily_report(days: list[str]) -> dict:
    """A `ccusage claude daily --instances` report with one row per day."""
    rows = [
        {
            "date": day,
            "project": "-home-dev-src-webapp",
            "inputTokens": 10,
            "outputTokens": 20,
            "cacheCreationTokens": 0,
            "cacheReadTokens": 70,
            "totalTokens": 100,
            "totalCost": 0.5,
            "modelsUsed": ["claude-sonnet-4-5-20250929"],
            "modelBreakdowns": [
                {
                    "modelName": "claude-sonnet-4-5-20250929",
                    "inputTokens": 10,
                    "outputTokens": 20,
                    "cacheCreationTokens": 0,
                    "cacheReadTokens": 70,
                    "cost": 0.5,
                }
            ],
        }
        for day in days
    ]
    return {"projects": {"-home-dev-src-webapp": rows}, "totals": {}}


def ingest(user, reports: dict, *, full: bool = True, capture=None) -> IngestBatch:
    body = envelope("laptop", MACHINE, reports, full=full)
    batch = archive(user, None, body)
    process_batch(batch, body=body)
    batch.refresh_from_db()
    return batch


# --- Lost history --------------------------------------------------------------------------


def test_a_full_report_missing_old_days_flags_the_machine_and_keeps_the_days(member):
    first = ingest(member, {"claude_daily_instances": daily_report(["2026-10-01", "2026-10-02"])})
    derive_for_batch(first.pk)
    assert Machine.objects.get(uuid=MACHINE).lost_history_at is None

    later = ingest(member, {"claude_daily_instances": daily_report(["2026-10-02", "2026-11-01"])})
    assert quality.check_lost_history(later) == [date(2026, 10, 1)]

    machine = Machine.objects.get(uuid=MACHINE)
    assert machine.lost_history_at is not None
    assert machine.lost_history_days == ["2026-10-01"]
    assert machine.daily.filter(day=date(2026, 10, 1)).exists()
    assert "cleanupPeriodDays" in quality.LOST_HISTORY_ADVICE


def test_checking_the_same_batch_twice_flags_nothing_new(member):
    ingest(member, {"claude_daily_instances": daily_report(["2026-10-01", "2026-10-02"])})
    later = ingest(member, {"claude_daily_instances": daily_report(["2026-10-02"])})
    derive_for_batch(later.pk)
    flagged_at = Machine.objects.get(uuid=MACHINE).lost_history_at
    assert quality.check_lost_history(later) == []
    derive_for_batch(later.pk)
    assert Machine.objects.get(uuid=MACHINE).lost_history_at == flagged_at


def test_an_incremental_report_never_counts_as_lost_history(member):
    ingest(member, {"claude_daily_instances": daily_report(["2026-10-01", "2026-10-02"])})
    window = ingest(member, {"claude_daily_instances": daily_report(["2026-10-02"])}, full=False)
    assert quality.check_lost_history(window) == []


def test_a_full_report_without_the_daily_report_judges_nothing(member):
    ingest(member, {"claude_daily_instances": daily_report(["2026-10-01"])})
    other = ingest(member, {"blocks_hourly": hourly_report(["2026-10-05T10"])})
    assert quality.check_lost_history(other) == []


# --- Sessions on two machines --------------------------------------------------------------


def test_a_session_reported_by_two_machines_is_flagged_with_both_copies(member, admin):
    laptop = MachineFactory(owner=member, name="laptop")
    desktop = MachineFactory(owner=member, name="desktop")
    session(laptop, "s-copied", cost="2.00")
    session(desktop, "s-copied", cost="1.50")
    session(laptop, "s-only-here")
    # A machine of another member of the team copied it too.
    session(MachineFactory(owner=admin, name="admin-pc"), "s-copied", cost="1.00")

    found = quality.duplicate_sessions(Machine.objects.filter(team=member.team))
    assert [d.session_id for d in found] == ["s-copied"]
    assert [c.machine_name for c in found[0].copies] == ["admin-pc", "desktop", "laptop"]
    assert found[0].double_counted_cost == pytest.approx(2.50)


def test_sessions_of_other_teams_are_not_compared(member, outsider):
    session(MachineFactory(owner=member), "s-1")
    session(MachineFactory(owner=outsider), "s-1")
    assert quality.duplicate_sessions(Machine.objects.filter(team=member.team)) == []


# --- Derived work --------------------------------------------------------------------------


def test_derived_work_computes_blocks_and_marks_the_batch(member):
    batch = ingest(member, {"blocks_hourly": hourly_report(["2026-11-20T10", "2026-11-20T12"])})
    assert derive_after_ingest.delay(batch.pk).get() is True
    block = Block.objects.get()
    assert (block.total_tokens, block.entries) == (200, 4)
    batch.refresh_from_db()
    assert batch.derived_at is not None


def test_running_the_derived_work_twice_changes_nothing(member):
    batch = ingest(member, {"blocks_hourly": hourly_report(["2026-11-20T10", "2026-11-21T12"])})
    derive_for_batch(batch.pk)
    blocks = list(Block.objects.values().order_by("pk"))
    parts = list(BlockContribution.objects.values().order_by("pk"))
    derived_at = IngestBatch.objects.get(pk=batch.pk).derived_at

    derive_for_batch(batch.pk)

    assert list(Block.objects.values().order_by("pk")) == blocks
    assert list(BlockContribution.objects.values().order_by("pk")) == parts
    assert IngestBatch.objects.get(pk=batch.pk).derived_at == derived_at


def test_a_later_batch_with_a_late_hour_reshapes_the_blocks(member):
    first = ingest(member, {"blocks_hourly": hourly_report(["2026-11-20T10", "2026-11-20T14"])})
    derive_for_batch(first.pk)
    assert Block.objects.count() == 1
    late = ingest(
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
        batch = ingest(member, {"blocks_hourly": hourly_report(["2026-11-20T10"])})
        derive_for_batch(batch.pk)
    finally:
        task_prerun.disconnect(record)
    assert ("budgets.tasks.evaluate_team", (member.team.pk,)) in ran


def test_days_are_untouched_by_derived_work(member):
    machine = MachineFactory(owner=member)
    daily(machine, date(2026, 11, 1), "1.00")
    batch = ingest(member, {"blocks_hourly": hourly_report(["2026-11-20T10"])})
    derive_for_batch(batch.pk)
    assert machine.daily.get().cost_usd == 1


def test_the_sweep_catches_up_on_batches_whose_derived_work_never_ran(member):
    batch = ingest(member, {"blocks_hourly": hourly_report(["2026-11-20T10"])})
    IngestBatch.objects.filter(pk=batch.pk).update(
        derived_at=None, received_at=batch.received_at - timedelta(minutes=10)
    )
    Block.objects.all().delete()

    assert sweep_derived_work.delay().get() == 1
    assert Block.objects.count() == 1
    # Running it again finds nothing left to do.
    assert sweep_derived_work.delay().get() == 0


def test_recomputing_a_subscriptions_blocks_twice_changes_nothing_the_second_time(member):
    batch = ingest(member, {"blocks_hourly": hourly_report(["2026-11-20T10"])})
    subscription_id = batch.machine.subscription_id
    Block.objects.all().delete()
    assert recompute_subscription_blocks.delay(subscription_id).get() is True
    assert (
        recompute_subscription_blocks.delay(subscription_id, "2026-11-20T10:00:00+00:00").get()
        is False
    )
