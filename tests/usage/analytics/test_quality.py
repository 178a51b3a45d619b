"""Data quality flags: lost history in full reports, sessions reported by two machines."""

from datetime import date

import pytest

from tests.factories import MachineFactory, session
from tests.usage.ccusage_runs import hourly_report
from tests.usage.ingest.helpers import PIPELINE_MACHINE, ingest_reports
from usage.analytics import quality
from usage.ingest.derive import derive_for_batch
from usage.models import Machine

pytestmark = pytest.mark.django_db


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


# --- Lost history --------------------------------------------------------------------------


def test_a_full_report_missing_old_days_flags_the_machine_and_keeps_the_days(member):
    first = ingest_reports(
        member, {"claude_daily_instances": daily_report(["2026-10-01", "2026-10-02"])}
    )
    derive_for_batch(first.pk)
    assert Machine.objects.get(uuid=PIPELINE_MACHINE).lost_history_at is None

    later = ingest_reports(
        member, {"claude_daily_instances": daily_report(["2026-10-02", "2026-11-01"])}
    )
    assert quality.check_lost_history(later) == [date(2026, 10, 1)]

    machine = Machine.objects.get(uuid=PIPELINE_MACHINE)
    assert machine.lost_history_at is not None
    assert machine.lost_history_days == ["2026-10-01"]
    assert machine.daily.filter(day=date(2026, 10, 1)).exists()
    assert "cleanupPeriodDays" in quality.LOST_HISTORY_ADVICE


def test_checking_the_same_batch_twice_flags_nothing_new(member):
    ingest_reports(member, {"claude_daily_instances": daily_report(["2026-10-01", "2026-10-02"])})
    later = ingest_reports(member, {"claude_daily_instances": daily_report(["2026-10-02"])})
    derive_for_batch(later.pk)
    flagged_at = Machine.objects.get(uuid=PIPELINE_MACHINE).lost_history_at
    assert quality.check_lost_history(later) == []
    derive_for_batch(later.pk)
    assert Machine.objects.get(uuid=PIPELINE_MACHINE).lost_history_at == flagged_at


def test_an_incremental_report_never_counts_as_lost_history(member):
    ingest_reports(member, {"claude_daily_instances": daily_report(["2026-10-01", "2026-10-02"])})
    window = ingest_reports(
        member, {"claude_daily_instances": daily_report(["2026-10-02"])}, full=False
    )
    assert quality.check_lost_history(window) == []


def test_a_full_report_without_the_daily_report_judges_nothing(member):
    ingest_reports(member, {"claude_daily_instances": daily_report(["2026-10-01"])})
    other = ingest_reports(member, {"blocks_hourly": hourly_report(["2026-10-05T10"])})
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
