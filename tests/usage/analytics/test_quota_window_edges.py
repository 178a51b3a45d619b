"""An official quota reading is current until the instant its window resets, and not at it."""

from datetime import timedelta

import pytest

from tests.factories import MachineFactory, snapshot, utc
from usage.analytics.ratelimits import latest_quota

pytestmark = pytest.mark.django_db

MS = timedelta(milliseconds=1)
CAPTURED = utc(2026, 11, 20, 14, 12, 5)
FIVE_RESETS = utc(2026, 11, 20, 16)
SEVEN_RESETS = utc(2026, 11, 23, 9)


@pytest.fixture
def reading(member):
    machine = MachineFactory(owner=member)
    snapshot(
        machine,
        CAPTURED,
        five_resets=FIVE_RESETS,
        seven_resets=SEVEN_RESETS,
        five=40.0,
        seven=60.0,
        subscription=machine.subscription,
    )
    return machine.subscription


@pytest.mark.parametrize(("offset", "stale"), [(-MS, False), (timedelta(0), True), (MS, True)])
def test_the_five_hour_reading_goes_stale_exactly_at_its_reset(reading, offset, stale):
    quota = latest_quota(reading, now=FIVE_RESETS + offset)
    assert quota.five_hour.stale is stale
    assert quota.seven_day.stale is False


@pytest.mark.parametrize(("offset", "stale"), [(-MS, False), (timedelta(0), True)])
def test_the_weekly_reading_goes_stale_exactly_at_its_reset(reading, offset, stale):
    assert latest_quota(reading, now=SEVEN_RESETS + offset).seven_day.stale is stale


@pytest.mark.parametrize(("offset", "stale"), [(-MS, False), (timedelta(0), True)])
def test_without_a_reset_time_a_reading_is_stale_one_window_after_its_capture(
    member, offset, stale
):
    machine = MachineFactory(owner=member)
    snapshot(machine, CAPTURED, five=40.0, seven=60.0, subscription=machine.subscription)
    quota = latest_quota(machine.subscription, now=CAPTURED + timedelta(hours=5) + offset)
    assert quota.five_hour.stale is stale
