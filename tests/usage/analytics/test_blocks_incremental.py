"""Blocks kept by derived work after many ingests equal the rule applied to every hourly fact.

Derived work recomputes only from the earliest hour a batch changed, derives many batches of
many machines in one run, and writes blocks set-based; whatever the order and grouping of
ingests, the stored blocks and contributions must be what a recomputation from all hourly
facts gives.
"""

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.usage.ccusage_runs import envelope, hourly_report
from usage.analytics.blocks import Bucket, Totals, blocks_for_buckets, recompute_blocks
from usage.figures import TOKEN_FIELDS
from usage.ingest.derive import derive_for_batch, derive_pending
from usage.ingest.pipeline import archive, process_batch
from usage.models import Block, BlockContribution, HourlyUsage, IngestBatch, Machine

START = datetime(2026, 11, 1, tzinfo=UTC)


def blocks_report(rng: random.Random, hours: list[datetime]) -> dict:
    """A `ccusage blocks --session-length 1` report with random figures in these hours."""

    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    blocks = []
    for hour in sorted(set(hours)):
        inp, out = rng.randint(1, 5000), rng.randint(1, 5000)
        blocks.append(
            {
                "id": iso(hour),
                "startTime": iso(hour),
                "endTime": iso(hour + timedelta(hours=1)),
                # Sometimes exactly on the hour: the 5-hour boundary cases.
                "actualEndTime": iso(hour + timedelta(minutes=rng.choice([0, 1, 30, 59]))),
                "isActive": False,
                "isGap": False,
                "entries": rng.randint(1, 9),
                "tokenCounts": {
                    "inputTokens": inp,
                    "outputTokens": out,
                    "cacheCreationInputTokens": 0,
                    "cacheReadInputTokens": 0,
                },
                "totalTokens": inp + out,
                "costUSD": round(rng.random(), 4),
                "models": [rng.choice(["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805"])],
                "burnRate": None,
                "projection": None,
            }
        )
    return {"blocks": blocks}


def expected(subscription_id: int) -> list[tuple]:
    rows = HourlyUsage.objects.filter(machine__subscription_id=subscription_id)
    spans = blocks_for_buckets(Bucket.from_values(v) for v in rows.values_list(*Bucket.COLUMNS))
    return [
        (
            s.start_time,
            s.total_tokens,
            s.entries,
            s.cost_usd.quantize(s.cost_usd.__class__("0.0001")),
            s.last_activity,
            s.first_activity,
            s.models_used,
            s.machine_count,
            sorted((m, part.total_tokens, part.entries) for m, part in s.contributions.items()),
        )
        for s in spans
    ]


def stored(subscription_id: int) -> list[tuple]:
    result = []
    for block in Block.objects.filter(subscription_id=subscription_id).order_by("start_time"):
        parts = BlockContribution.objects.filter(block=block)
        result.append(
            (
                block.start_time,
                block.total_tokens,
                block.entries,
                block.cost_usd.quantize(block.cost_usd.__class__("0.0001")),
                block.last_activity,
                block.first_activity,
                block.models_used,
                block.machine_count,
                sorted((p.machine_id, p.total_tokens, p.entries) for p in parts),
            )
        )
    return result


def test_totals_add_every_token_field():
    values = {name: 10 ** (n + 1) for n, name in enumerate(TOKEN_FIELDS)}
    bucket = Bucket(machine_id=1, hour=START, last_activity=START, **values)
    totals = Totals()
    totals.add(bucket)
    totals.add(bucket)
    assert {name: getattr(totals, name) for name in TOKEN_FIELDS} == {
        name: 2 * value for name, value in values.items()
    }


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_random_ingests_derived_in_groups_equal_a_recompute_from_all_hours(seed, member, admin):
    rng = random.Random(seed)
    # Two machines of the member (one subscription, blocks across both) and one of the admin.
    machines = [
        (member, "laptop", uuid.UUID(int=seed * 10 + 1)),
        (member, "desktop", uuid.UUID(int=seed * 10 + 2)),
        (admin, "workstation", uuid.UUID(int=seed * 10 + 3)),
    ]
    for round_ in range(12):
        for _ in range(rng.randint(1, 4)):
            user, name, machine_uuid = rng.choice(machines)
            # Mostly recent hours, sometimes late ones far back (they reshape what follows).
            base = START + timedelta(hours=rng.randint(0, 24 * 6))
            hours = [base + timedelta(hours=rng.choice([0, 1, 2, 4, 5, 6, 9])) for _ in range(5)]
            body = envelope(name, machine_uuid, {"blocks_hourly": blocks_report(rng, hours)})
            body = json.dumps({**json.loads(body), "full": False}).encode()
            process_batch(archive(user, None, body), body=body)
        # Derived in one run for all waiting batches, or batch by batch.
        if rng.random() < 0.5:
            derive_pending()
        else:
            waiting = IngestBatch.objects.filter(derived_at__isnull=True).order_by("?")
            for batch_id in waiting.values_list("pk", flat=True):
                derive_for_batch(batch_id)
        assert not IngestBatch.objects.filter(derived_at__isnull=True).exists(), round_

        for subscription_id in set(Machine.objects.values_list("subscription_id", flat=True)):
            assert stored(subscription_id) == expected(subscription_id), round_
            # A recompute from scratch finds nothing to change.
            assert not recompute_blocks(subscription_id).changed
    # Not vacuous: many blocks, some across both of the member's machines.
    assert Block.objects.count() > 10
    assert Block.objects.filter(machine_count=2).exists()


@pytest.mark.django_db
def test_a_late_hour_days_back_recomputes_only_the_blocks_it_can_reach(member):
    def sync(hours: list[str]) -> IngestBatch:
        body = envelope("laptop", uuid.UUID(int=1), {"blocks_hourly": hourly_report(hours)})
        body = json.dumps({**json.loads(body), "full": False}).encode()
        batch = archive(member, None, body)
        process_batch(batch, body=body)
        return batch

    sync(["2026-11-01T10", "2026-11-03T10", "2026-11-03T13", "2026-11-05T10"])
    derive_pending()
    later = {b.start_time: (b.pk, b.computed_at) for b in Block.objects.all()}
    assert len(later) == 3

    # A late hour inside the first block's reach: the blocks of the 3rd and 5th are not read.
    late = sync(["2026-11-01T12"])
    subscription_id = Machine.objects.get().subscription_id
    hour = datetime(2026, 11, 1, 12, tzinfo=UTC)
    result = recompute_blocks(subscription_id, since=hour, until=hour)
    assert (result.updated, result.unchanged, result.created, result.deleted) == (1, 0, 0, 0)
    derive_for_batch(late.pk)
    for block in Block.objects.exclude(start_time=START + timedelta(hours=10)):
        assert (block.pk, block.computed_at) == later[block.start_time]
    assert stored(subscription_id) == expected(subscription_id)


@pytest.mark.django_db(transaction=True)
def test_a_recompute_outside_any_transaction_makes_its_own(member):
    """Tasks and commands call recompute_blocks with no transaction open; its subscription
    lock (SELECT … FOR UPDATE) needs one, which the function opens itself."""
    from tests.factories import MachineFactory, hour

    machine = MachineFactory(owner=member)
    start = datetime(2026, 11, 20, 9, tzinfo=UTC)
    for h in range(3):
        hour(machine, start + timedelta(hours=h))
    recompute_blocks(machine.subscription_id, now=start + timedelta(days=1))
    assert Block.objects.filter(subscription_id=machine.subscription_id).count() == 1
