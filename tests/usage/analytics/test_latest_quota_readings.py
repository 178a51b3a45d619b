"""The stored latest quota readings (LatestQuotaReading) that rank a team's accounts by
closeness to a limit: after every way readings arrive or go, they equal what the raw
snapshots give (latest_quotas, and a plain recomputation over every snapshot), and the
ranking the database sorts equals the ranking computed from the raw readings."""

import importlib
import threading
import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection, connections, transaction
from django.utils import timezone

from tests.factories import MachineFactory, SubscriptionFactory, snapshot
from tests.usage.ingest.helpers import envelope, post
from usage.analytics import ratelimits
from usage.analytics.blocks import move_machine
from usage.models import LatestQuotaReading, Machine, RateLimitSnapshot, Subscription

pytestmark = pytest.mark.django_db

WINDOW_LENGTH = {"five_hour": timedelta(hours=5), "seven_day": timedelta(days=7)}


def reference(subscription, now) -> dict:
    """Every window's latest reading by brute force over all the subscription's snapshots:
    {window: (used %, resets_at, captured_at, machine id, stale)}."""
    found: dict = {}
    extra_seen = False
    for s in RateLimitSnapshot.objects.filter(subscription=subscription).order_by(
        "-captured_at", "-pk"
    ):
        for window, pct, resets in (
            ("five_hour", s.five_hour_used_pct, s.five_hour_resets_at),
            ("seven_day", s.seven_day_used_pct, s.seven_day_resets_at),
        ):
            if pct is not None and window not in found:
                found[window] = (float(pct), resets, s.captured_at, s.machine_id)
        if s.extra_windows and not extra_seen:
            # The per-model windows all come from the latest snapshot that has any.
            extra_seen = True
            for name, data in s.extra_windows.items():
                if not isinstance(data, dict):
                    continue
                try:
                    pct = float(data.get("used_percentage"))
                except (TypeError, ValueError):
                    continue
                resets = ratelimits.parse_reset(data.get("resets_at"))
                found[name] = (pct, resets, s.captured_at, s.machine_id)
    out = {}
    for window, (pct, resets, captured, machine_id) in found.items():
        until = (
            resets
            if resets is not None
            else captured + WINDOW_LENGTH.get(window, WINDOW_LENGTH["seven_day"])
        )
        out[window] = (pct, resets, captured, machine_id, until <= now)
    return out


def as_tuples(quota) -> dict:
    return {
        r.window: (r.used_pct, r.resets_at, r.captured_at, r.machine_id, r.stale)
        for r in quota.readings
    }


def python_ranking(team, now, *, readings_only=False) -> list[int]:
    """The order headroom_ranking documents, computed from the raw readings in Python."""
    subs = list(Subscription.objects.filter(owner__membership__team=team).select_related("owner"))
    quotas = ratelimits.latest_quotas(subs, now)
    far = now + timedelta(days=3650)
    keyed = [
        (
            -q.closeness,
            -(q.next_reset or far).timestamp(),
            q.subscription.owner.email,
            q.subscription.label,
            q.subscription.pk,
        )
        for q in quotas.values()
        if q.readings or not readings_only
    ]
    return [key[-1] for key in sorted(keyed)]


def assert_stored_equals_raw(team, *moments) -> None:
    subs = list(Subscription.objects.filter(owner__membership__team=team))
    for now in moments:
        stored = ratelimits.stored_quotas([s.pk for s in subs], now)
        raw = ratelimits.latest_quotas(subs, now)
        for sub in subs:
            assert as_tuples(stored[sub.pk]) == as_tuples(raw[sub.pk]) == reference(sub, now)
            assert stored[sub.pk].closeness == raw[sub.pk].closeness
            assert stored[sub.pk].next_reset == raw[sub.pk].next_reset
        for only in (False, True):
            assert list(
                ratelimits.headroom_ranking(team, now, readings_only=only)
            ) == python_ranking(team, now, readings_only=only)


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def capture(at, five=None, five_resets=None, seven=None, seven_resets=None, **extra) -> dict:
    limits = {}
    if five is not None:
        limits["five_hour"] = {"used_percentage": five, "resets_at": five_resets.isoformat()}
    if seven is not None:
        limits["seven_day"] = {"used_percentage": seven, "resets_at": seven_resets.isoformat()}
    for name, (pct, resets) in extra.items():
        limits[name] = {"used_percentage": pct, "resets_at": resets.isoformat()}
    return {"captured_at": at.isoformat(), "session_id": "s", "rate_limits": limits}


def test_readings_sent_out_of_order_keep_the_latest_stored(owner, owner_client, team_a, now):
    laptop, desktop = uuid.uuid4(), uuid.uuid4()
    newer = capture(now - timedelta(minutes=5), five=60, five_resets=now + timedelta(hours=2))
    older = capture(
        now - timedelta(hours=1),
        five=90,
        five_resets=now + timedelta(hours=2),
        seven=30,
        seven_resets=now + timedelta(days=3),
        seven_day_opus=(75.5, now + timedelta(days=3)),
    )
    # The desktop sends the newer reading first, the laptop the older one after it.
    for machine, body in ((desktop, newer), (laptop, older)):
        response = post(owner_client, envelope({"statusline": [body]}, machine_uuid=str(machine)))
        assert response.status_code in (200, 201), response.content
    stored = ratelimits.stored_quotas([Subscription.default_for(owner).pk], now)
    quota = stored[Subscription.default_for(owner).pk]
    assert quota.five_hour.used_pct == 60  # the newer one, although it came first
    assert quota.seven_day.used_pct == 30  # only the older reading has a weekly figure
    assert quota.windows["seven_day_opus"].used_pct == 75.5
    assert quota.closeness == 75.5
    # Before, at and after the five-hour reset (then the weekly windows are all that count).
    assert_stored_equals_raw(
        team_a, now, now + timedelta(hours=2), now + timedelta(hours=2, seconds=1)
    )
    # The same reading sent again changes nothing.
    post(owner_client, envelope({"statusline": [older]}, machine_uuid=str(laptop)))
    assert_stored_equals_raw(team_a, now)


def test_readings_saved_one_by_one_in_any_order_equal_the_raw_ones(member, admin, team_a, now):
    mine = MachineFactory(owner=member)
    other = MachineFactory(owner=member, subscription=mine.subscription)
    theirs = MachineFactory(owner=admin)
    snapshot(other, now - timedelta(minutes=1), five=20, five_resets=now + timedelta(hours=3))
    snapshot(mine, now - timedelta(hours=2), five=99, five_resets=now + timedelta(hours=1))
    snapshot(
        mine,
        now - timedelta(hours=3),
        seven=50,
        seven_resets=now + timedelta(days=1),
        extra={"seven_day_opus": {"used_percentage": "bad", "resets_at": None}},
    )
    snapshot(theirs, now - timedelta(days=8), seven=95)  # no reset time: stale after 7 days
    snapshot(
        theirs,
        now - timedelta(hours=1),
        extra={"seven_day_opus": {"used_percentage": 40, "resets_at": 2_000_000_000}},
    )
    assert_stored_equals_raw(team_a, now, now + timedelta(hours=1), now + timedelta(days=2))


def test_a_deleted_machine_hands_over_to_the_next_latest_reading(member, team_a, now):
    laptop = MachineFactory(owner=member)
    desktop = MachineFactory(owner=member, subscription=laptop.subscription)
    snapshot(laptop, now - timedelta(hours=2), five=30, five_resets=now + timedelta(hours=2))
    snapshot(desktop, now - timedelta(minutes=1), five=80, five_resets=now + timedelta(hours=2))
    assert (
        ratelimits.stored_quotas([laptop.subscription_id], now)[
            laptop.subscription_id
        ].five_hour.used_pct
        == 80
    )
    Machine.objects.filter(pk=desktop.pk).delete()
    # The stored reading lost its snapshot; readers recompute before they rank or show.
    assert LatestQuotaReading.objects.filter(snapshot__isnull=True).count() == 1
    assert_stored_equals_raw(team_a, now)
    quota = ratelimits.stored_quotas([laptop.subscription_id], now)[laptop.subscription_id]
    assert (quota.five_hour.used_pct, quota.five_hour.machine_id) == (30, laptop.pk)
    assert not LatestQuotaReading.objects.filter(snapshot__isnull=True).exists()


def test_deleted_readings_leave_the_account_without_or_with_older_ones(member, team_a, now):
    laptop = MachineFactory(owner=member)
    old = snapshot(laptop, now - timedelta(hours=3), seven=10, seven_resets=now + timedelta(days=1))
    new = snapshot(laptop, now - timedelta(hours=1), seven=70, seven_resets=now + timedelta(days=1))
    RateLimitSnapshot.objects.filter(pk=new.pk).delete()
    # The ranking repairs first too.
    assert list(ratelimits.headroom_ranking(team_a, now, readings_only=True)) == [
        laptop.subscription_id
    ]
    assert_stored_equals_raw(team_a, now)
    old.delete()
    assert list(ratelimits.headroom_ranking(team_a, now, readings_only=True)) == []
    assert_stored_equals_raw(team_a, now)
    assert not LatestQuotaReading.objects.exists()


def test_a_reading_sent_again_after_its_machine_moved_leaves_the_old_account(
    owner, owner_client, team_a, now
):
    machine_uuid = str(uuid.uuid4())
    body = capture(now - timedelta(minutes=3), five=55, five_resets=now + timedelta(hours=1))
    post(owner_client, envelope({"statusline": [body]}, machine_uuid=machine_uuid))
    machine = Machine.objects.get(uuid=machine_uuid)
    old = machine.subscription
    second = SubscriptionFactory(owner=owner, label="Second")
    move_machine(machine, second)
    # The agent sends the capture again with a new figure: it now belongs to the second account.
    body["rate_limits"]["five_hour"]["used_percentage"] = 56
    post(owner_client, envelope({"statusline": [body]}, machine_uuid=machine_uuid))
    stored = ratelimits.stored_quotas([old.pk, second.pk], now)
    assert stored[old.pk].readings == []
    assert stored[second.pk].five_hour.used_pct == 56
    assert_stored_equals_raw(team_a, now)


def test_a_deleted_account_takes_its_stored_readings_along(member, admin, team_a, now):
    laptop = MachineFactory(owner=member)
    snapshot(laptop, now - timedelta(hours=1), five=10, five_resets=now + timedelta(hours=1))
    theirs = MachineFactory(owner=admin)
    snapshot(theirs, now - timedelta(hours=1), five=20, five_resets=now + timedelta(hours=1))
    # An account goes once its machines have gone (they protect it).
    laptop.delete()
    Subscription.objects.filter(pk=laptop.subscription_id).delete()
    assert list(LatestQuotaReading.objects.values_list("subscription_id", flat=True)) == [
        theirs.subscription_id
    ]
    assert_stored_equals_raw(team_a, now)


def test_the_migration_stores_the_readings_already_there(member, admin, team_a, now):
    one = MachineFactory(owner=member)
    two = MachineFactory(owner=admin)
    snapshot(one, now - timedelta(hours=1), five=35, five_resets=now + timedelta(hours=1))
    snapshot(one, now - timedelta(hours=2), seven=45)
    snapshot(
        two,
        now - timedelta(minutes=2),
        extra={"seven_day_opus": {"used_percentage": 12.5, "resets_at": "2030-01-01T00:00:00Z"}},
    )
    LatestQuotaReading.objects.all().delete()
    migration = importlib.import_module("usage.migrations.0016_headroom")
    migration.store_latest_readings(apps, None)
    assert LatestQuotaReading.objects.count() == 3
    assert_stored_equals_raw(team_a, now, now + timedelta(hours=1))


def test_ranking_and_rows_read_a_bounded_number_of_queries(
    member, admin, team_a, now, django_assert_max_num_queries
):
    for user in (member, admin):
        for _ in range(3):
            machine = MachineFactory(owner=user, subscription=SubscriptionFactory(owner=user))
            snapshot(machine, now, five=10, seven=20)
    with django_assert_max_num_queries(2):
        ids = list(ratelimits.headroom_ranking(team_a, now))
    with django_assert_max_num_queries(2):
        rows = ratelimits.headroom_rows(ids[:4], now)
    assert len(rows) == 4


@pytest.mark.django_db(transaction=True)
def test_two_machines_of_one_account_storing_at_once_both_count(member, team_a):
    """PostgreSQL: the second sync waits for the first one's lock, then sees its reading."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    now = timezone.now().replace(microsecond=0)
    laptop = MachineFactory(owner=member)
    desktop = MachineFactory(owner=member, subscription=laptop.subscription)
    first_stored, first_may_commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def sync(machine, captured_at, pct, *, hold: bool) -> None:
        try:
            with transaction.atomic():
                RateLimitSnapshot.objects.bulk_create(
                    [
                        RateLimitSnapshot(
                            subscription_id=machine.subscription_id,
                            machine=machine,
                            captured_at=captured_at,
                            five_hour_used_pct=pct,
                            five_hour_resets_at=now + timedelta(hours=3),
                        )
                    ]
                )
                ratelimits.store_latest_readings([machine.subscription_id])
                if hold:
                    first_stored.set()
                    first_may_commit.wait(10)
        except BaseException as error:  # handed to the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    first = threading.Thread(
        target=sync, args=(laptop, now - timedelta(minutes=1), 70), kwargs={"hold": True}
    )
    first.start()
    assert first_stored.wait(10)
    # The older reading's sync starts while the newer one is stored but not committed.
    second = threading.Thread(
        target=sync, args=(desktop, now - timedelta(minutes=9), 20), kwargs={"hold": False}
    )
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting for the first one's lock
    first_may_commit.set()
    first.join(10)
    second.join(10)
    assert not errors
    quota = ratelimits.stored_quotas([laptop.subscription_id], now)[laptop.subscription_id]
    assert (quota.five_hour.used_pct, quota.five_hour.machine_id) == (70, laptop.pk)
    assert_stored_equals_raw(team_a, now)
