"""Quota alerts: a subscription window past its owner's threshold, once per window."""

from datetime import UTC, datetime, timedelta

import pytest

from budgets.models import QuotaAlertSetting
from tests.factories import RateLimitSnapshotFactory, machine_for

pytestmark = pytest.mark.django_db


def snapshot(machine, minutes_ago=1, five=None, five_resets_in=None, **extra):
    now = datetime.now(UTC)
    return RateLimitSnapshotFactory(
        machine=machine,
        captured_at=now - timedelta(minutes=minutes_ago),
        five=five,
        five_hour_resets_at=None if five_resets_in is None else now + five_resets_in,
        **extra,
    )


def test_a_quota_window_past_the_members_threshold_emails_its_owner_once_per_window(
    team_a, member, smtp_server, clock, run
):
    laptop = machine_for(member)
    snapshot(laptop, five=92.5, five_resets_in=timedelta(hours=2, seconds=20))
    assert len(run(team_a)) == 1
    assert smtp_server.recipients == [["member@a.example"]]
    # Rounded half up, as the pages show it (telemetry_site.formatting.pct).
    assert smtp_server.subjects() == ["Claude account 'Claude account' at 93% of its 5-hour limit"]
    assert (
        "It resets Nov 10, 20:00 UTC." in smtp_server.messages[0].get_body(("plain",)).get_content()
    )

    # Another machine reads the same window a few seconds differently: still the same window.
    desk = machine_for(member, "desk")
    snapshot(desk, minutes_ago=0, five=97, five_resets_in=timedelta(hours=2, seconds=5))
    assert run(team_a) == []

    clock.shift(timedelta(hours=3))
    snapshot(laptop, minutes_ago=0, five=91, five_resets_in=timedelta(hours=4))
    assert [a.window for a in run(team_a)] == ["five_hour"]
    assert len(smtp_server.messages) == 2


def test_quota_alerts_follow_the_members_threshold_and_switch(team_a, member, clock, run):
    laptop = machine_for(member)
    setting = QuotaAlertSetting.objects.create(subscription=laptop.subscription, threshold=95)
    snapshot(laptop, five=92, five_resets_in=timedelta(hours=2))
    assert run(team_a) == []
    setting.threshold = 80
    setting.enabled = False
    setting.save()
    assert run(team_a) == []
    setting.enabled = True
    setting.save()
    assert len(run(team_a)) == 1


def test_weekly_and_per_model_windows_alert_too_and_stale_readings_do_not(
    team_a, member, clock, run
):
    laptop = machine_for(member)
    now = datetime.now(UTC)
    RateLimitSnapshotFactory(
        machine=laptop,
        captured_at=now - timedelta(minutes=5),
        five=99,
        five_hour_resets_at=now - timedelta(minutes=1),  # that window is over
        seven=90,
        seven_day_resets_at=now + timedelta(days=3),
        extra_windows={
            "seven_day_opus": {
                "used_percentage": 96,
                "resets_at": int((now + timedelta(days=2)).timestamp()),
            }
        },
    )
    assert sorted(a.window for a in run(team_a)) == ["seven_day", "seven_day_opus"]
