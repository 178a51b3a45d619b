"""Forecast alerts from the analytics pace, quota alerts per window, stale-agent alerts."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from budgets import evaluate
from budgets.models import Alert, AlertKind, QuotaAlertSetting, StaleAgentSetting
from tests.budgets.conftest import email_channel, machine_for, make_budget, spend
from usage.models import RateLimitSnapshot

pytestmark = pytest.mark.django_db

NOV_10 = datetime(2026, 11, 10, 18, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOV_10, tick=True) as traveller:
        yield traveller


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    def _run(team):
        with django_capture_on_commit_callbacks(execute=True):
            return evaluate.evaluate_team(team.pk)

    return _run


# --- forecast -------------------------------------------------------------------------------


def test_the_pace_forecast_alerts_once_naming_the_day_the_budget_will_be_passed(
    team_a, member, smtp_server, clock, run
):
    budget = make_budget(team_a, "300", channels=[email_channel(team_a)])
    laptop = machine_for(member)
    for day in range(1, 11):
        spend(laptop, date(2026, 11, day), "20")

    fired = run(team_a)
    assert [a.kind for a in fired] == [AlertKind.FORECAST]
    # $200 spent at $20 a day: the remaining $100 is gone five days after today.
    assert fired[0].data["projected_day"] == "2026-11-15"
    assert smtp_server.subjects() == [
        "Budget 'API server' on pace to pass $300.00 on Sunday, Nov 15"
    ]
    body = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert "before the period ends on 2026-11-30" in body

    assert run(team_a) == []
    spend(laptop, date(2026, 11, 10), "90")  # a busier day: still one forecast per period
    assert [a.threshold for a in run(team_a)] == [90]
    assert Alert.objects.filter(budget=budget, kind=AlertKind.FORECAST).count() == 1


def test_a_pace_that_stays_under_the_budget_sends_no_forecast(team_a, member, clock, run):
    make_budget(team_a, "1000")
    laptop = machine_for(member)
    for day in range(1, 11):
        spend(laptop, date(2026, 11, day), "20")
    assert run(team_a) == []


def test_forecast_alerts_can_be_switched_off(team_a, member, clock, run):
    make_budget(team_a, "300", forecast_alerts=False)
    laptop = machine_for(member)
    for day in range(1, 11):
        spend(laptop, date(2026, 11, day), "20")
    assert run(team_a) == []


# --- quota ----------------------------------------------------------------------------------


def snapshot(machine, minutes_ago=1, five=None, five_resets_in=None, **extra):
    now = datetime.now(UTC)
    return RateLimitSnapshot.objects.create(
        subscription=machine.subscription,
        machine=machine,
        captured_at=now - timedelta(minutes=minutes_ago),
        five_hour_used_pct=None if five is None else Decimal(str(five)),
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
    RateLimitSnapshot.objects.create(
        subscription=laptop.subscription,
        machine=laptop,
        captured_at=now - timedelta(minutes=5),
        five_hour_used_pct=Decimal("99"),
        five_hour_resets_at=now - timedelta(minutes=1),  # that window is over
        seven_day_used_pct=Decimal("90"),
        seven_day_resets_at=now + timedelta(days=3),
        extra_windows={
            "seven_day_opus": {
                "used_percentage": 96,
                "resets_at": int((now + timedelta(days=2)).timestamp()),
            }
        },
    )
    assert sorted(a.window for a in run(team_a)) == ["seven_day", "seven_day_opus"]


# --- stale agents -----------------------------------------------------------------------------


def test_a_silent_machine_notifies_its_owner_once_until_it_syncs_again(
    team_a, member, smtp_server, clock, run
):
    laptop = machine_for(member, last_seen_at=NOV_10 - timedelta(hours=23))
    assert run(team_a) == []

    clock.shift(timedelta(hours=2))
    (alert,) = run(team_a)
    assert alert.kind == AlertKind.STALE_AGENT
    assert smtp_server.subjects() == ["Machine 'laptop' has not synced for 25 hours"]
    assert smtp_server.recipients == [["member@a.example"]]
    clock.shift(timedelta(hours=30))
    assert run(team_a) == []

    laptop.last_seen_at = datetime.now(UTC)
    laptop.save()
    assert run(team_a) == []
    clock.shift(timedelta(hours=25))
    assert len(run(team_a)) == 1
    assert len(smtp_server.messages) == 2


def test_the_owner_chooses_how_long_a_machine_may_stay_silent(team_a, member, clock, run):
    machine_for(member, last_seen_at=NOV_10 - timedelta(hours=30))
    machine_for(member, "old", last_seen_at=NOV_10 - timedelta(days=9), retired_at=NOV_10)
    setting = StaleAgentSetting.objects.create(user=member, hours=48)
    assert run(team_a) == []
    setting.hours = 12
    setting.enabled = False
    setting.save()
    assert run(team_a) == []
    setting.enabled = True
    setting.save()
    assert [a.data["machine"] for a in run(team_a)] == ["laptop"]


def test_other_teams_are_not_evaluated_with_this_one(team_a, team_b, member, outsider, run):
    machine_for(outsider, last_seen_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert run(team_a) == []
    assert len(run(team_b)) == 1
