"""Stale-agent alerts: a machine silent for longer than its owner allows, once until it syncs."""

from datetime import UTC, datetime, timedelta

import pytest

from budgets.models import AlertKind, StaleAgentSetting
from tests.budgets.conftest import NOV_10
from tests.factories import machine_for

pytestmark = pytest.mark.django_db


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
