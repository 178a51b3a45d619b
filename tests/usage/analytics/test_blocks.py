"""5-hour blocks across the machines of one subscription: the rule, storage, time and moves."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from tests.factories import MachineFactory, SubscriptionFactory, hour, utc
from usage.analytics import blocks
from usage.analytics.blocks import Bucket, blocks_for_buckets, machine_blocks, recompute_blocks
from usage.models import Block, BlockContribution, Machine
from usage.tasks import refresh_blocks

pytestmark = pytest.mark.django_db


def bucket(machine_id, start, tokens=100, cost="0.01", minutes=30, **kw):
    return Bucket(
        machine_id=machine_id,
        hour=start,
        last_activity=start + timedelta(minutes=minutes),
        input_tokens=tokens,
        cost_usd=Decimal(cost),
        entries=1,
        **kw,
    )


def starts(spans):
    return [s.start_time.strftime("%d %H:%M") for s in spans]


# --- The pure rule --------------------------------------------------------------------------


def test_a_bucket_five_hours_after_the_start_opens_a_new_block():
    spans = blocks_for_buckets([bucket(1, utc(2026, 11, 20, 10)), bucket(1, utc(2026, 11, 20, 15))])
    assert starts(spans) == ["20 10:00", "20 15:00"]


def test_a_bucket_four_hours_after_the_start_stays_in_the_block():
    spans = blocks_for_buckets(
        [bucket(1, utc(2026, 11, 20, 10)), bucket(1, utc(2026, 11, 20, 14), minutes=59)]
    )
    assert starts(spans) == ["20 10:00"]
    assert spans[0].end_time == utc(2026, 11, 20, 15)
    assert spans[0].last_activity == utc(2026, 11, 20, 14, 59)


def test_buckets_of_two_machines_merge_in_time_order_into_one_block():
    # Machine 2 starts first; machine 1's 13:00 hour lies in the block machine 2 opened.
    spans = blocks_for_buckets(
        [
            bucket(1, utc(2026, 11, 20, 13), tokens=300, cost="0.30"),
            bucket(2, utc(2026, 11, 20, 9), tokens=100, cost="0.10"),
            bucket(1, utc(2026, 11, 20, 14), tokens=50, cost="0.05"),
        ]
    )
    assert starts(spans) == ["20 09:00", "20 14:00"]
    first = spans[0]
    assert first.total_tokens == 400
    assert first.cost_usd == Decimal("0.40")
    assert first.overlap is True
    assert {m: c.total_tokens for m, c in first.contributions.items()} == {1: 300, 2: 100}
    assert spans[1].overlap is False


def test_separate_machines_would_report_blocks_the_subscription_does_not_have():
    # Alone, machine 1's 13:00 hour would open its own block; merged it belongs to 09:00.
    one = [bucket(1, utc(2026, 11, 20, 13))]
    both = [*one, bucket(2, utc(2026, 11, 20, 9))]
    assert starts(blocks_for_buckets(one)) == ["20 13:00"]
    assert starts(blocks_for_buckets(both)) == ["20 09:00"]


def test_the_first_hour_with_a_limit_marker_is_the_blocks_limit_hit():
    reset = utc(2026, 11, 20, 16)
    spans = blocks_for_buckets(
        [
            bucket(1, utc(2026, 11, 20, 10)),
            bucket(2, utc(2026, 11, 20, 12), limit_reset_at=reset),
            bucket(1, utc(2026, 11, 20, 13), limit_reset_at=reset),
        ]
    )
    assert spans[0].limit_hit_at == utc(2026, 11, 20, 12)


def test_models_are_listed_once_in_the_order_they_first_appear():
    spans = blocks_for_buckets(
        [
            bucket(1, utc(2026, 11, 20, 10), models=("opus", "haiku")),
            bucket(2, utc(2026, 11, 20, 11), models=("haiku", "sonnet")),
        ]
    )
    assert spans[0].models_used == ["opus", "haiku", "sonnet"]


def test_no_buckets_make_no_blocks():
    assert blocks_for_buckets([]) == []


# --- Burn rate, projection and activity ---------------------------------------------------


def test_burn_rate_runs_from_the_first_bucket_to_the_last_activity():
    span = blocks_for_buckets(
        [
            bucket(1, utc(2026, 11, 20, 10), tokens=6_000, cost="0.60", minutes=40),
            bucket(1, utc(2026, 11, 20, 11), tokens=4_000, cost="0.40", minutes=40),
        ]
    )[0]
    rate = blocks.burn_rate(span)  # 10,000 tokens and $1 over 100 minutes
    assert rate.tokens_per_minute == pytest.approx(100)
    assert rate.cost_per_hour == pytest.approx(0.60)


def test_an_active_block_projects_its_burn_rate_to_its_end():
    span = blocks_for_buckets(
        [bucket(1, utc(2026, 11, 20, 10), tokens=10_000, cost="1.00", minutes=100)]
    )[0]
    projection = blocks.projection(span, now=utc(2026, 11, 20, 12))
    assert projection.remaining_minutes == 180
    assert projection.total_tokens == 28_000
    assert projection.cost_usd == pytest.approx(2.80)


def test_a_finished_block_has_no_projection():
    span = blocks_for_buckets([bucket(1, utc(2026, 11, 20, 10), minutes=30)])[0]
    assert blocks.is_active(span, now=utc(2026, 11, 20, 14, 59)) is True
    assert blocks.is_active(span, now=utc(2026, 11, 20, 15)) is False
    assert blocks.projection(span, now=utc(2026, 11, 20, 15, 30)) is None


def test_a_block_whose_only_activity_is_on_the_hour_has_no_burn_rate():
    span = blocks_for_buckets([bucket(1, utc(2026, 11, 20, 10), minutes=0)])[0]
    assert blocks.burn_rate(span) is None
    assert blocks.projection(span, now=utc(2026, 11, 20, 11)) is None


# --- Stored blocks --------------------------------------------------------------------------


@pytest.fixture
def overlapping(laptop, desktop):
    """Two machines, three blocks: 09-14 (both machines), 14-19 (laptop), next day 10-15."""
    hour(laptop, utc(2026, 11, 20, 9), tokens=1000, cost="0.10")
    hour(desktop, utc(2026, 11, 20, 11), tokens=2000, cost="0.20", minutes=50)
    hour(laptop, utc(2026, 11, 20, 13), tokens=500, cost="0.05", minutes=10)
    hour(laptop, utc(2026, 11, 20, 14), tokens=700, cost="0.07")
    hour(desktop, utc(2026, 11, 21, 10), tokens=900, cost="0.09")
    return laptop, desktop


def test_recompute_stores_each_block_with_its_machines(subscription, overlapping):
    laptop, desktop = overlapping
    result = recompute_blocks(subscription.pk, now=utc(2026, 11, 22))
    assert result.created == 3
    stored = list(Block.objects.filter(subscription=subscription).order_by("start_time"))
    assert [(b.start_time, b.end_time) for b in stored] == [
        (utc(2026, 11, 20, 9), utc(2026, 11, 20, 14)),
        (utc(2026, 11, 20, 14), utc(2026, 11, 20, 19)),
        (utc(2026, 11, 21, 10), utc(2026, 11, 21, 15)),
    ]
    first = stored[0]
    assert (first.total_tokens, first.cost_usd, first.entries) == (3500, Decimal("0.35"), 9)
    assert first.last_activity == utc(2026, 11, 20, 13, 10)
    assert first.overlap is True and first.machine_count == 2
    contributions = {c.machine_id: c.total_tokens for c in first.contributions.all()}
    assert contributions == {laptop.pk: 1500, desktop.pk: 2000}
    assert [b.overlap for b in stored[1:]] == [False, False]


def test_recomputing_twice_changes_nothing(subscription, overlapping):
    recompute_blocks(subscription.pk, now=utc(2026, 11, 22))
    before = list(Block.objects.values().order_by("pk"))
    contributions = list(BlockContribution.objects.values().order_by("pk"))
    again = recompute_blocks(subscription.pk, now=utc(2026, 11, 22))
    assert not again.changed and again.unchanged == 3
    assert list(Block.objects.values().order_by("pk")) == before
    assert list(BlockContribution.objects.values().order_by("pk")) == contributions


def test_a_late_hour_splits_and_merges_the_blocks_after_it(subscription, laptop, desktop):
    hour(laptop, utc(2026, 11, 20, 10))
    hour(laptop, utc(2026, 11, 20, 14))
    hour(desktop, utc(2026, 11, 20, 16))
    recompute_blocks(subscription.pk, now=utc(2026, 11, 22))
    assert starts(Block.objects.order_by("start_time")) == ["20 10:00", "20 16:00"]

    late = hour(desktop, utc(2026, 11, 20, 8))
    result = recompute_blocks(subscription.pk, since=late.hour, now=utc(2026, 11, 22))

    # 08:00 opens the first block, so 14:00 now opens the second and 16:00 joins it.
    assert starts(Block.objects.order_by("start_time")) == ["20 08:00", "20 14:00"]
    assert (result.created, result.deleted) == (2, 2)
    second = Block.objects.get(start_time=utc(2026, 11, 20, 14))
    assert second.overlap is True


def test_a_late_hour_recomputes_only_from_the_block_it_falls_in(subscription, overlapping):
    laptop, _ = overlapping
    recompute_blocks(subscription.pk, now=utc(2026, 11, 22))
    late = hour(laptop, utc(2026, 11, 21, 12), tokens=100, cost="0.01")
    result = recompute_blocks(subscription.pk, since=late.hour, now=utc(2026, 11, 22))
    # Only the 21st's block was looked at; the two before it were not even loaded.
    assert (result.updated, result.unchanged, result.created, result.deleted) == (1, 0, 0, 0)
    block = Block.objects.get(start_time=utc(2026, 11, 21, 10))
    assert block.total_tokens == 1000 and block.overlap is True


def test_a_late_hour_inside_a_chain_of_blocks_walks_back_to_where_the_chain_starts(
    subscription, laptop
):
    # Each hour is under 5 h after the previous one, so every block start depends on 00:00:
    # blocks 00-05 (00, 04), 08-13 (08, 12), 16-21. A late 10:00 belongs to 08-13, not to a
    # new block at 10:00, and only walking back to 00:00 can tell.
    for h in (0, 4, 8, 12, 16):
        hour(laptop, utc(2026, 11, 20, h))
    recompute_blocks(subscription.pk, now=utc(2026, 11, 22))
    late = hour(laptop, utc(2026, 11, 20, 10))
    result = recompute_blocks(subscription.pk, since=late.hour, now=utc(2026, 11, 22))
    assert starts(Block.objects.order_by("start_time")) == ["20 00:00", "20 08:00", "20 16:00"]
    assert Block.objects.get(start_time=utc(2026, 11, 20, 8)).entries == 9
    assert (result.updated, result.unchanged) == (1, 2)


def test_recompute_reads_a_bounded_number_of_queries(
    subscription, overlapping, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        recompute_blocks(subscription.pk, now=utc(2026, 11, 22))
    with django_assert_max_num_queries(8):
        recompute_blocks(subscription.pk, now=utc(2026, 11, 22))


def test_a_subscription_without_hours_has_no_blocks(subscription):
    assert not recompute_blocks(subscription.pk).changed
    assert not Block.objects.exists()


def test_an_unknown_subscription_is_ignored(db):
    assert not recompute_blocks(987654).changed


# --- Time passing --------------------------------------------------------------------------


def test_a_block_is_active_until_its_end_and_the_beat_closes_it(subscription, laptop):
    hour(laptop, utc(2026, 11, 20, 10), minutes=40)
    with time_machine.travel(utc(2026, 11, 20, 11), tick=False):
        recompute_blocks(subscription.pk)
        assert Block.objects.get().is_active is True
        assert refresh_blocks.delay().get() == {"closed": 0, "repaired": 0}
    with time_machine.travel(utc(2026, 11, 20, 15), tick=False):
        assert refresh_blocks.delay().get() == {"closed": 1, "repaired": 0}
        assert Block.objects.get().is_active is False
        # Running the beat task again finds nothing left to close.
        assert refresh_blocks.delay().get() == {"closed": 0, "repaired": 0}


def test_a_recompute_after_the_end_stores_the_block_as_closed(subscription, laptop):
    hour(laptop, utc(2026, 11, 20, 10))
    with time_machine.travel(utc(2026, 11, 21), tick=False):
        recompute_blocks(subscription.pk)
    assert Block.objects.get().is_active is False


# --- Machines changing subscription -------------------------------------------------------


def test_moving_a_machine_recomputes_both_subscriptions(
    member, subscription, laptop, desktop, django_capture_on_commit_callbacks
):
    hour(laptop, utc(2026, 11, 20, 9))
    hour(desktop, utc(2026, 11, 20, 11))
    recompute_blocks(subscription.pk)
    personal = SubscriptionFactory(owner=member, label="Personal")

    with django_capture_on_commit_callbacks(execute=True):
        assert blocks.move_machine(desktop, personal) is True

    work = Block.objects.get(subscription=subscription)
    assert (work.start_time, work.total_tokens, work.overlap) == (
        utc(2026, 11, 20, 9),
        1000,
        False,
    )
    other = Block.objects.get(subscription=personal)
    assert (other.start_time, other.total_tokens) == (utc(2026, 11, 20, 11), 1000)
    assert Machine.objects.get(pk=desktop.pk).subscription == personal


def test_moving_a_machine_to_its_own_subscription_does_nothing(subscription, laptop):
    assert blocks.move_machine(laptop, subscription) is False


def test_the_beat_repairs_blocks_after_a_move_made_elsewhere(member, subscription, laptop, desktop):
    hour(laptop, utc(2026, 11, 20, 9))
    hour(desktop, utc(2026, 11, 20, 11))
    recompute_blocks(subscription.pk)
    personal = SubscriptionFactory(owner=member, label="Personal")
    # As the Django admin would: a plain save, no recompute queued.
    Machine.objects.filter(pk=desktop.pk).update(subscription=personal)

    assert refresh_blocks.delay().get()["repaired"] == 2
    assert Block.objects.get(subscription=subscription).total_tokens == 1000
    assert Block.objects.get(subscription=personal).start_time == utc(2026, 11, 20, 11)
    assert refresh_blocks.delay().get()["repaired"] == 0


# --- One machine on its own ----------------------------------------------------------------


def test_machine_blocks_apply_the_rule_to_one_machine_only(subscription, laptop, desktop):
    hour(desktop, utc(2026, 11, 20, 9))
    hour(laptop, utc(2026, 11, 20, 12))
    hour(laptop, utc(2026, 11, 20, 13))
    spans = machine_blocks(laptop, utc(2026, 11, 20), utc(2026, 11, 21))
    assert starts(spans) == ["20 12:00"]
    assert spans[0].total_tokens == 2000 and spans[0].overlap is False


def test_machine_blocks_find_the_start_of_a_block_that_began_before_the_range(laptop):
    for h in (20, 22):
        hour(laptop, utc(2026, 11, 19, h))
    hour(laptop, utc(2026, 11, 20, 1))
    # The block containing midnight began at 20:00 the day before; 01:00 opens the next.
    spans = machine_blocks(laptop, utc(2026, 11, 20), utc(2026, 11, 21))
    assert starts(spans) == ["19 20:00", "20 01:00"]


def test_machine_blocks_include_hours_past_until_in_a_block_that_started_before_it(laptop):
    hour(laptop, utc(2026, 11, 20, 22))
    hour(laptop, utc(2026, 11, 21, 1))
    spans = machine_blocks(laptop, utc(2026, 11, 20), utc(2026, 11, 21))
    assert starts(spans) == ["20 22:00"] and spans[0].total_tokens == 2000


def test_machine_blocks_of_an_idle_machine_are_empty(member):
    machine = MachineFactory(owner=member)
    assert machine_blocks(machine, utc(2026, 11, 20), utc(2026, 11, 21)) == []
