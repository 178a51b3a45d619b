"""Burn rate and end-of-block projection: ccusage 20.0.24's rule, from the block's first entry.

ccusage (`blocks --active --json`): tokensPerMinute = all tokens / minutes from the first to
the last entry; costPerHour = cost / the same minutes * 60; projection.remainingMinutes =
(end - now) rounded to whole minutes, totalTokens = tokens + tokensPerMinute * that,
totalCost = cost + costPerHour / 60 * that, to the cent. test_burn_rate_matches_ccusage.py
checks the same figures against the binary.
"""

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.factories import utc
from usage.analytics import blocks
from usage.analytics.blocks import Bucket, blocks_for_buckets


def bucket(machine_id, hour, last, tokens, cost, first=None):
    return Bucket(
        machine_id=machine_id,
        hour=hour,
        last_activity=last,
        first_activity=first,
        input_tokens=tokens,
        cost_usd=Decimal(cost),
        entries=1,
    )


# The block: from 11:00, first entry 11:35 on the laptop, the desktop joins at 11:50,
# last activity 12:19:24; seen at 12:25 ("1 h 25 min" after the block's start).
FIRST = utc(2026, 11, 20, 11, 35)
LAST = utc(2026, 11, 20, 12, 19, 24)
NOW = utc(2026, 11, 20, 12, 25)


DESKTOP_FIRST = utc(2026, 11, 20, 11, 50)


def example(first_laptop=FIRST, first_desktop=DESKTOP_FIRST):
    # 674,747 tokens and $0.91575 over the 44.4 minutes from 11:35 to 12:19:24.
    eleven, twelve = utc(2026, 11, 20, 11), utc(2026, 11, 20, 12)
    return blocks_for_buckets(
        [
            bucket(1, eleven, eleven + timedelta(minutes=58), 300_000, "0.40", first_laptop),
            bucket(2, eleven, eleven + timedelta(minutes=59), 174_747, "0.21575", first_desktop),
            bucket(2, twelve, LAST, 200_000, "0.30", twelve + timedelta(minutes=1)),
        ]
    )[0]


def test_the_block_starts_its_burn_rate_at_its_first_entry_not_its_hour():
    span = example()
    assert span.start_time == utc(2026, 11, 20, 11)
    assert span.first_activity == FIRST
    assert blocks.measured_from(span) == FIRST


def test_the_examples_burn_rate_is_ccusages_15197_tokens_a_minute_and_1_2375_dollars_an_hour():
    rate = blocks.burn_rate(example())
    assert round(rate.tokens_per_minute) == 15_197
    assert rate.cost_per_hour == pytest.approx(1.2375)


def test_the_examples_projection_is_5_35_dollars_at_block_end():
    projected = blocks.projection(example(), NOW)
    assert projected.remaining_minutes == 215  # 12:25 → 16:00
    assert projected.cost_usd == 5.35
    assert projected.total_tokens == 674_747 + round(674_747 / 44.4 * 215)


def test_an_old_agents_hours_fall_back_to_the_block_start():
    # Without first entries the rate runs from 11:00, as before: 8.5K tokens/min, $0.69/h.
    span = example(first_laptop=None, first_desktop=None)
    assert span.first_activity is None
    assert blocks.measured_from(span) == utc(2026, 11, 20, 11)
    rate = blocks.burn_rate(span)
    assert rate.tokens_per_minute == pytest.approx(674_747 / 79.4)
    assert rate.cost_per_hour == pytest.approx(0.69, abs=0.005)
    assert blocks.projection(span, NOW).cost_usd == 3.40


def test_a_first_hour_machine_without_a_first_entry_makes_the_blocks_first_entry_unknown():
    # The desktop's first entry could be anywhere from 11:00 on, so 11:35 is not known to be first.
    assert example(first_desktop=None).first_activity is None


def test_an_unknown_first_entry_in_a_later_hour_does_not_hide_a_known_earlier_one():
    span = blocks_for_buckets(
        [
            bucket(1, utc(2026, 11, 20, 11), utc(2026, 11, 20, 11, 40), 100, "0.01", FIRST),
            bucket(2, utc(2026, 11, 20, 12), utc(2026, 11, 20, 12, 10), 100, "0.01"),
        ]
    )[0]
    assert span.first_activity == FIRST


def test_one_entry_has_no_burn_rate_as_in_ccusage():
    span = blocks_for_buckets([bucket(1, utc(2026, 11, 20, 11), FIRST, 500, "0.05", FIRST)])[0]
    assert blocks.burn_rate(span) is None
    assert blocks.projection(span, NOW) is None


@pytest.mark.parametrize(
    ("seconds_left", "minutes"),
    [(12_900, 215), (12_929.999, 215), (12_930, 216), (12_930.001, 216)],
)
def test_minutes_left_are_rounded_half_up_before_projecting(seconds_left, minutes):
    now = utc(2026, 11, 20, 16) - timedelta(seconds=seconds_left)
    span = example()
    projected = blocks.projection(span, max(now, LAST))
    assert projected.remaining_minutes == minutes
    rate = blocks.burn_rate(span)
    assert projected.total_tokens == round(674_747 + rate.tokens_per_minute * minutes)
