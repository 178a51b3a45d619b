"""Block boundaries at exact instants: the real ccusage on crafted logs, and the rule at ±1 ms.

ccusage 20.0.24 opens a new block when an entry's time minus the block's start is greater than
5 h, or its time minus the previous entry's is (both strict): an entry stamped exactly at
start + 5 h, or exactly 5 h after the previous one, stays in the block. Its one-hour buckets
(`--session-length 1`) follow the same rule, so a bucket keeps an entry stamped exactly on the
next hour. What hourly buckets cannot split: an hour that starts exactly at a block's end and
holds both an entry stamped exactly at that instant and later ones (the last test here).
"""

import uuid
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.crafted_logs import assistant_line, write_session
from tests.factories import MachineFactory, hour, utc
from tests.usage.analytics.test_blocks_match_ccusage import assert_same_blocks, parse_time
from tests.usage.ccusage_runs import envelope, require_ccusage, run_ccusage
from usage.analytics import blocks
from usage.analytics.blocks import BLOCK_LENGTH, Bucket, blocks_for_buckets, recompute_blocks
from usage.ingest.pipeline import archive, process_batch
from usage.models import Block

MS = timedelta(milliseconds=1)
T = utc(2026, 11, 20, 16)  # a block from 16:00; its end is 21:00


def at(hours=0, minutes=0, ms=0) -> datetime:
    return T + timedelta(hours=hours, minutes=minutes, milliseconds=ms)


# --- The real ccusage on crafted logs ------------------------------------------------------

SCENARIOS = {
    # An entry exactly at start + 5 h stays in the block (the machine's 20:00 bucket keeps it).
    "entry_exactly_at_the_end_stays": {"laptop": [at(0, 10), at(4, 30), at(5), at(5, 30)]},
    "entry_one_ms_after_the_end_opens_a_block": {
        "laptop": [at(0, 10), at(4, 30), at(5, ms=1), at(5, 30)]
    },
    "entry_one_ms_before_the_end_stays": {"laptop": [at(0, 10), at(5, ms=-1), at(5, 30)]},
    # Another machine's lone entry exactly at the end joins the block the laptop opened.
    "other_machines_entry_exactly_at_the_end_stays": {
        "laptop": [at(0, 10), at(5, 30)],
        "desktop": [at(5)],
    },
    "gap_of_exactly_five_hours_stays": {"laptop": [at(0), at(5)]},
    "gap_one_ms_over_five_hours_opens_a_block": {"laptop": [at(0), at(5, ms=1)]},
}


def ingest(user, name: str, home, cwd, capture):
    hourly = run_ccusage([home], "blocks", "--session-length", "1", cwd=cwd)
    body = envelope(
        name, uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.example.com"), {"blocks_hourly": hourly}
    )
    with capture(execute=True):
        return process_batch(archive(user, None, body), body=body).machine


def homes_with(tmp_path, machines: dict[str, list[datetime]]):
    homes = {}
    for name, moments in machines.items():
        home = tmp_path / name
        (home / ".config" / "claude" / "projects").mkdir(parents=True)
        write_session(home / ".claude", [assistant_line(m, session_id=name) for m in moments])
        homes[name] = home
    work = tmp_path / "work"
    work.mkdir()
    return homes, work


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_blocks_at_exact_boundaries_equal_ccusage_reading_every_machine(
    name, member, tmp_path, django_capture_on_commit_callbacks
):
    require_ccusage()
    homes, work = homes_with(tmp_path, SCENARIOS[name])
    machines = [
        ingest(member, n, home, work, django_capture_on_commit_callbacks)
        for n, home in homes.items()
    ]
    reported = run_ccusage(list(homes.values()), "blocks", cwd=work)["blocks"]
    stored = list(
        Block.objects.filter(subscription_id=machines[0].subscription_id).order_by("start_time")
    )
    assert_same_blocks(stored, reported)


@pytest.mark.django_db
def test_the_one_case_hourly_buckets_cannot_split(
    member, tmp_path, django_capture_on_commit_callbacks
):
    """An entry exactly at 21:00 with a later one in the same hour on a machine idle at 20:00:
    ccusage gives the 21:00 entry to the 16:00 block; its bucket is one row from 21:00 on, so
    here it opens the 21:00 block with the rest. Everything else about the blocks agrees."""
    require_ccusage()
    homes, work = homes_with(tmp_path, {"laptop": [at(0, 10), at(5), at(5, 30)]})
    machine = ingest(member, "laptop", homes["laptop"], work, django_capture_on_commit_callbacks)
    reported = [
        b for b in run_ccusage([homes["laptop"]], "blocks", cwd=work)["blocks"] if not b["isGap"]
    ]
    assert [(b["startTime"], b["entries"]) for b in reported] == [
        ("2026-11-20T16:00:00.000Z", 2),
        ("2026-11-20T21:00:00.000Z", 1),
    ]
    stored = list(
        Block.objects.filter(subscription_id=machine.subscription_id).order_by("start_time")
    )
    assert [(b.start_time, b.entries) for b in stored] == [(at(0), 1), (at(5), 2)]
    assert [b.start_time for b in stored] == [parse_time(b["startTime"]) for b in reported]


# --- The rule at exact instants, against ccusage's rule on the entries themselves -------------


def ccusage_blocks(entries: list[datetime], length: timedelta) -> list[list[datetime]]:
    """ccusage 20.0.24's grouping of sorted entries (the scenarios above check it on the binary)."""
    groups: list[list[datetime]] = []
    start = None
    for moment in sorted(entries):
        if start is None or moment - start > length or moment - groups[-1][-1] > length:
            start = blocks.floor_hour(moment)
            groups.append([])
        groups[-1].append(moment)
    return groups


def hourly_buckets(machine_id: int, entries: list[datetime]) -> list[Bucket]:
    """What `ccusage blocks --session-length 1` reports for one machine: one bucket per group."""
    return [
        Bucket(
            machine_id=machine_id,
            hour=blocks.floor_hour(group[0]),
            last_activity=group[-1],
            first_activity=group[0],
            input_tokens=len(group),
            entries=len(group),
        )
        for group in ccusage_blocks(entries, timedelta(hours=1))
    ]


def straddles(spans, buckets: list[Bucket]) -> bool:
    """A bucket starting exactly at a block's end with an entry on that instant and later ones."""
    ends = {span.end_time for span in spans}
    return any(b.hour in ends and b.first_activity == b.hour < b.last_activity for b in buckets)


# Instants on, just before and just after hour boundaries, where the rule can go wrong.
near_boundaries = st.builds(
    lambda h, offset: T + timedelta(hours=h) + offset,
    st.integers(min_value=0, max_value=14),
    st.sampled_from(
        [
            timedelta(0),
            MS,
            -MS,
            timedelta(minutes=30),
            timedelta(minutes=59, seconds=59, milliseconds=999),
        ]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example([(1, at(0, 10)), (1, at(5, 30)), (2, at(5))])  # the lower id's bucket ends later
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=3), near_boundaries), min_size=1, max_size=12
    )
)
def test_blocks_from_hourly_buckets_equal_ccusages_blocks_of_the_entries(entries):
    by_machine: dict[int, list[datetime]] = {}
    for machine_id, moment in entries:
        by_machine.setdefault(machine_id, []).append(moment)
    buckets = [b for mid, moments in by_machine.items() for b in hourly_buckets(mid, moments)]
    spans = blocks_for_buckets(buckets)
    if straddles(spans, buckets):
        return  # the one case hourly buckets cannot split (see the test above)
    expected = ccusage_blocks([m for _, m in entries], BLOCK_LENGTH)
    assert [s.start_time for s in spans] == [blocks.floor_hour(g[0]) for g in expected]
    assert [s.entries for s in spans] == [len(g) for g in expected]
    assert [s.last_activity for s in spans] == [g[-1] for g in expected]
    assert [s.first_activity for s in spans] == [g[0] for g in expected]


# --- Active until the end, and until 5 h after the last activity (both strict) ---------------


def span_with_last(last: datetime):
    return blocks_for_buckets(
        [Bucket(machine_id=1, hour=blocks.floor_hour(last), last_activity=last, entries=1)]
    )[0]


@pytest.mark.parametrize(("offset", "active"), [(-MS, True), (timedelta(0), False), (MS, False)])
def test_a_block_is_over_at_its_end_instant(offset, active):
    span = span_with_last(at(4, 59))
    assert blocks.is_active(span, span.end_time + offset) is active


@pytest.mark.parametrize(("offset", "active"), [(-MS, True), (timedelta(0), False), (MS, False)])
def test_a_block_is_over_five_hours_after_its_last_activity(offset, active):
    span = span_with_last(at(0, 10))
    assert span.last_activity + BLOCK_LENGTH < span.end_time + BLOCK_LENGTH
    assert blocks.is_active(span, span.last_activity + BLOCK_LENGTH + offset) is (
        active and span.last_activity + BLOCK_LENGTH + offset < span.end_time
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("offset", "still_active"), [(-MS, 1), (timedelta(0), 0)])
def test_stored_blocks_close_at_the_same_instant(laptop, offset, still_active):
    hour(laptop, at(4), minutes=59)
    hour(laptop, at(0), minutes=10)
    recompute_blocks(laptop.subscription_id, now=at(0, 11))
    block = Block.objects.get()
    end = block.end_time + offset
    assert block.is_active_at(end) is bool(still_active)
    blocks.refresh_active(end)
    assert Block.objects.filter(is_active=True).count() == still_active


@pytest.mark.django_db
def test_a_late_hour_exactly_at_a_blocks_end_is_recomputed_into_that_block(laptop):
    hour(laptop, at(0), minutes=10)
    recompute_blocks(laptop.subscription_id)
    # A lone entry stamped exactly at 21:00 arrives later.
    hour(laptop, at(5), minutes=0)
    recompute_blocks(laptop.subscription_id, since=at(5))
    assert [(b.start_time, b.last_activity) for b in Block.objects.order_by("start_time")] == [
        (at(0), at(5))
    ]


# --- Where a recompute may start and stop ---------------------------------------------------


@pytest.mark.django_db
def test_reset_points_are_the_later_hour_of_the_first_gap_over_5_hours_each_way():
    """Hours 00, 01, 06 (exactly 5 h after 01: no reset), 12 (6 h after 06: a reset) and 13:
    walking back from 14:00 or forward from 00:00 finds 12:00; a walk that meets no gap,
    None."""
    machine = MachineFactory()
    day = utc(2026, 11, 20, 0)
    for h in (0, 1, 6, 12, 13):
        hour(machine, day + timedelta(hours=h))
    hourly = machine.hourly.all()
    assert blocks.reset_point(hourly, day + timedelta(hours=14)) == day + timedelta(hours=12)
    assert blocks.reset_point(hourly, day + timedelta(hours=11)) is None
    assert blocks.next_reset_point(hourly, day) == day + timedelta(hours=12)
    assert blocks.next_reset_point(hourly, day + timedelta(hours=12)) is None
