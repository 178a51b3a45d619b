"""The official quota per subscription: latest capture wins, stale readings, headroom, hits."""

import random
from datetime import timedelta

import pytest

from tests.conftest import make_member
from tests.factories import MachineFactory, SubscriptionFactory, hour, snapshot, utc
from usage.analytics import ratelimits
from usage.models import Subscription

pytestmark = pytest.mark.django_db

NOW = utc(2026, 11, 24, 12)


def test_the_latest_capture_of_any_machine_wins_and_is_never_summed(subscription, laptop, desktop):
    snapshot(laptop, NOW - timedelta(minutes=30), five=40, five_resets=NOW + timedelta(hours=2))
    snapshot(desktop, NOW - timedelta(minutes=5), five=45, five_resets=NOW + timedelta(hours=2))
    quota = ratelimits.latest_quota(subscription, now=NOW)
    assert quota.five_hour.used_pct == 45
    assert quota.five_hour.machine_name == "desktop"
    assert quota.five_hour.captured_at == NOW - timedelta(minutes=5)
    assert quota.five_hour.stale is False


def test_each_window_comes_from_the_latest_capture_that_has_it(subscription, laptop, desktop):
    snapshot(laptop, NOW - timedelta(hours=1), seven=70, seven_resets=NOW + timedelta(days=3))
    snapshot(desktop, NOW - timedelta(minutes=1), five=10, five_resets=NOW + timedelta(hours=4))
    quota = ratelimits.latest_quota(subscription, now=NOW)
    assert (quota.five_hour.used_pct, quota.seven_day.used_pct) == (10, 70)
    assert quota.seven_day.machine_name == "laptop"


def test_a_reading_past_its_reset_is_stale_not_current(subscription, laptop):
    snapshot(
        laptop,
        NOW - timedelta(hours=6),
        five=95,
        five_resets=NOW - timedelta(hours=1),
        seven=50,
        seven_resets=NOW + timedelta(days=2),
    )
    quota = ratelimits.latest_quota(subscription, now=NOW)
    assert quota.five_hour.stale is True
    assert quota.seven_day.stale is False
    # Closeness to a limit only counts current readings.
    assert quota.closeness == 50


def test_per_model_weekly_windows_are_read_from_the_latest_capture(subscription, laptop):
    resets = (NOW + timedelta(days=4)).isoformat()
    snapshot(
        laptop,
        NOW - timedelta(minutes=3),
        seven=20,
        seven_resets=NOW + timedelta(days=4),
        extra={"seven_day_opus": {"used_percentage": 88.5, "resets_at": resets}},
    )
    quota = ratelimits.latest_quota(subscription, now=NOW)
    opus = quota.windows["seven_day_opus"]
    assert (opus.used_pct, opus.resets_at, opus.stale) == (88.5, NOW + timedelta(days=4), False)
    assert quota.closeness == 88.5


def test_a_subscription_without_readings_has_an_empty_quota(subscription):
    quota = ratelimits.latest_quota(subscription, now=NOW)
    assert quota.five_hour is None and quota.seven_day is None and quota.windows == {}
    assert quota.closeness == 0


def test_reset_times_are_read_as_iso_text_or_unix_seconds():
    assert ratelimits.parse_reset("2026-11-24T12:00:00Z") == NOW
    assert ratelimits.parse_reset(NOW.timestamp()) == NOW
    assert ratelimits.parse_reset(str(int(NOW.timestamp()))) == NOW
    assert ratelimits.parse_reset("soon") is None
    assert ratelimits.parse_reset(None) is None


def test_history_lists_every_capture_in_time_order(subscription, laptop, desktop):
    snapshot(desktop, NOW - timedelta(hours=1), five=30)
    snapshot(laptop, NOW - timedelta(hours=2), five=20, seven=5)
    snapshot(laptop, NOW - timedelta(days=9), five=1)
    points = ratelimits.utilization_history(subscription, since=NOW - timedelta(days=1))
    assert [(p.five_hour_used_pct, p.machine_name) for p in points] == [
        (20, "laptop"),
        (30, "desktop"),
    ]


def test_headroom_lists_the_teams_subscriptions_closest_to_a_limit_first(
    member, admin, owner, outsider, subscription, laptop
):
    snapshot(laptop, NOW - timedelta(minutes=2), five=60, five_resets=NOW + timedelta(hours=1))
    admin_pc = MachineFactory(owner=admin)
    snapshot(admin_pc, NOW - timedelta(minutes=2), seven=92, seven_resets=NOW + timedelta(days=1))
    SubscriptionFactory(owner=owner, label="No readings yet")
    snapshot(MachineFactory(owner=outsider), NOW, five=99, five_resets=NOW + timedelta(hours=1))

    rows = ratelimits.team_headroom(member.team, now=NOW)
    assert [(r.member_email, r.quota.closeness) for r in rows] == [
        ("admin@a.example", 92),
        ("member@a.example", 60),
        ("owner@a.example", 0),
    ]


def test_headroom_reads_a_bounded_number_of_queries(member, admin, django_assert_max_num_queries):
    for user in (member, admin):
        for _ in range(3):
            machine = MachineFactory(owner=user, subscription=SubscriptionFactory(owner=user))
            snapshot(machine, NOW, five=10, seven=20)
    with django_assert_max_num_queries(4):
        rows = ratelimits.team_headroom(member.team, now=NOW)
    assert len(rows) == 6


def test_limit_hits_count_hours_per_subscription_and_week_once_per_account(
    member, subscription, laptop, desktop
):
    reset = utc(2026, 11, 23, 16)
    # The same limited hour seen by two machines counts once; the laptop stopped at 14:20.
    hour(laptop, utc(2026, 11, 23, 14), minutes=20, limit_reset_at=reset)
    hour(desktop, utc(2026, 11, 23, 14), minutes=40, limit_reset_at=reset)
    hour(desktop, utc(2026, 11, 23, 15), minutes=10, limit_reset_at=reset)
    # Another week (Monday 30 November).
    hour(laptop, utc(2026, 11, 30, 9), minutes=30, limit_reset_at=utc(2026, 11, 30, 10))
    hour(laptop, utc(2026, 11, 24, 9))

    weeks = ratelimits.limit_hits(laptop.hourly.model.objects.filter(machine__owner=member))
    assert [(w.week_start.isoformat(), w.hours, w.minutes_lost) for w in weeks] == [
        ("2026-11-23", 2, 100),
        ("2026-11-30", 1, 30),
    ]
    assert {w.subscription_id for w in weeks} == {subscription.pk}
    assert {w.member_id for w in weeks} == {member.pk}


def test_limit_hit_weeks_follow_the_teams_timezone(laptop):
    # Sunday 23:30 UTC is already Monday in Tokyo.
    hour(laptop, utc(2026, 11, 29, 23), limit_reset_at=utc(2026, 11, 30, 2))
    utc_week = ratelimits.limit_hits(tz="UTC")[0].week_start.isoformat()
    tokyo_week = ratelimits.limit_hits(tz="Asia/Tokyo")[0].week_start.isoformat()
    assert (utc_week, tokyo_week) == ("2026-11-23", "2026-11-30")


def random_readings(rng: random.Random, team, count: int) -> list:
    """`count` readings at random moments around NOW on random machines of three members'
    accounts (two machines share one): windows missing or present, resets past or future or
    unknown, per-model windows as ISO text, unix seconds or junk."""
    machines = []
    for n in range(3):
        person = make_member(team, f"random{n}@a.example", "member")
        sub = SubscriptionFactory(owner=person)
        machines += [MachineFactory(owner=person, subscription=sub) for _ in range(1 + n % 2)]

    def reset(window: timedelta):
        return rng.choice([None, NOW + rng.uniform(-1, 1) * window])

    def pct():
        return rng.choice([None, round(rng.uniform(0, 100), 2)])

    def extra() -> dict:
        windows = {}
        for name in rng.sample(["seven_day_opus", "seven_day_sonnet"], rng.randint(0, 2)):
            at = reset(timedelta(days=7))
            windows[name] = {
                "used_percentage": rng.choice([rng.uniform(0, 100), rng.randint(0, 100), "junk"]),
                "resets_at": rng.choice([at and at.isoformat(), at and at.timestamp(), None]),
            }
        return windows

    return [
        snapshot(
            rng.choice(machines),
            NOW - timedelta(minutes=rng.randint(0, 60 * 24 * 9)),
            five=pct(),
            five_resets=reset(timedelta(hours=5)),
            seven=pct(),
            seven_resets=reset(timedelta(days=7)),
            extra=extra(),
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_stored_readings_equal_the_raw_ones_on_random_readings(team_a, seed):
    random_readings(random.Random(seed), team_a, 40)
    subs = list(Subscription.objects.filter(owner__membership__team=team_a))
    seen = set()
    for moment in (NOW - timedelta(days=2), NOW, NOW + timedelta(hours=3), NOW + timedelta(days=8)):
        stored = ratelimits.stored_quotas([s.pk for s in subs], moment)
        raw = ratelimits.latest_quotas(subs, moment)
        assert set(stored) == set(raw) == {s.pk for s in subs}
        for sub in subs:
            assert stored[sub.pk].readings == raw[sub.pk].readings
            assert stored[sub.pk].closeness == raw[sub.pk].closeness
            assert stored[sub.pk].next_reset == raw[sub.pk].next_reset
            seen |= {
                (r.window in ("five_hour", "seven_day") and r.window, r.stale)
                for r in raw[sub.pk].readings
            }
    # Current and stale readings of the five-hour, weekly and per-model windows were compared.
    kinds = ("five_hour", "seven_day", False)  # False: a per-model window
    assert seen == {(kind, stale) for kind in kinds for stale in (False, True)}
