"""5-hour billing blocks: ccusage's block rule applied across every machine of one subscription.

The rule (DESIGN.md, docs/dashboards.md): merge the hourly buckets of all the subscription's
machines in time order; a block starts at the first bucket's hour and lasts 5 hours; a bucket
with activity after start + 5 h opens a new block. ccusage 20.0.24 compares strictly: an entry
stamped exactly at start + 5 h still belongs to the block (checked against the binary in
tests/usage/analytics/test_block_boundaries.py). Because each bucket is one UTC hour of
ccusage's own per-entry grouping (`blocks --session-length 1`), this gives the blocks ccusage
would report if it could read every machine's logs at once; the one case hourly buckets cannot
split is an hour starting exactly at a block's end that holds both an entry stamped exactly at
that instant and later ones (the boundary entry then opens the new block with the others).
"""

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from usage import signals
from usage.figures import COST_PLACES, TOKEN_FIELDS
from usage.models import Block, BlockContribution, HourlyUsage, Machine, Subscription

log = logging.getLogger(__name__)

BLOCK_LENGTH = timedelta(hours=5)


@dataclass(frozen=True)
class Bucket:
    """One UTC hour of one machine's usage."""

    machine_id: int
    hour: datetime
    last_activity: datetime
    # The hour's first entry; None when the agent did not say (then the hour stands in).
    first_activity: datetime | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: Decimal = Decimal("0")
    entries: int = 0
    models: tuple[str, ...] = ()
    limit_reset_at: datetime | None = None

    # HourlyUsage columns in from_values' order.
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "machine_id",
        "hour",
        "last_activity",
        "first_activity",
        "input_tokens",
        "output_tokens",
        "cache_creation_tokens",
        "cache_read_tokens",
        "cost_usd",
        "entries",
        "models_used",
        "limit_reset_at",
    )

    @classmethod
    def from_values(cls, values: tuple) -> "Bucket":
        """A bucket from one row of `HourlyUsage…values_list(*Bucket.COLUMNS)`."""
        (machine_id, hour, last, first, inp, out, cc, cr, cost, entries, models, reset) = values
        return cls(
            machine_id=machine_id,
            hour=hour,
            last_activity=last,
            first_activity=first,
            input_tokens=inp,
            output_tokens=out,
            cache_creation_tokens=cc,
            cache_read_tokens=cr,
            cost_usd=Decimal(cost),
            entries=entries,
            models=tuple(models or ()),
            limit_reset_at=reset,
        )

    @classmethod
    def from_row(cls, row: HourlyUsage) -> "Bucket":
        return cls(
            machine_id=row.machine_id,
            hour=row.hour,
            last_activity=row.last_activity,
            first_activity=row.first_activity,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cache_creation_tokens=row.cache_creation_tokens,
            cache_read_tokens=row.cache_read_tokens,
            cost_usd=Decimal(row.cost_usd),
            entries=row.entries,
            models=tuple(row.models_used or ()),
            limit_reset_at=row.limit_reset_at,
        )


@dataclass
class Totals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: Decimal = Decimal("0")
    entries: int = 0
    last_activity: datetime | None = None

    @property
    def total_tokens(self) -> int:
        return sum(getattr(self, name) for name in TOKEN_FIELDS)

    def add(self, bucket: Bucket) -> None:
        # Spelled out rather than a loop over TOKEN_FIELDS (a test checks it adds each one):
        # this runs once per bucket and per contribution, thousands of times per history.
        self.input_tokens += bucket.input_tokens
        self.output_tokens += bucket.output_tokens
        self.cache_creation_tokens += bucket.cache_creation_tokens
        self.cache_read_tokens += bucket.cache_read_tokens
        self.cost_usd += bucket.cost_usd
        self.entries += bucket.entries
        if self.last_activity is None or bucket.last_activity > self.last_activity:
            self.last_activity = bucket.last_activity


@dataclass
class BlockSpan(Totals):
    """A computed block; field names match the Block model so both render the same way."""

    # Keyword-only: every span has a start, and Totals' fields before it all have defaults.
    start_time: datetime = field(kw_only=True)
    models_used: list[str] = field(default_factory=list)
    limit_hit_at: datetime | None = None
    contributions: dict[int, Totals] = field(default_factory=dict)
    # Earliest known first entry, and the earliest hour whose first entry is unknown.
    _known_first: datetime | None = field(default=None, repr=False)
    _unknown_hour: datetime | None = field(default=None, repr=False)

    @property
    def first_activity(self) -> datetime | None:
        """The block's first entry (UTC), or None when a bucket that could hold an earlier one
        did not say when its first entry was."""
        known, unknown = self._known_first, self._unknown_hour
        if known is not None and (unknown is None or known < unknown):
            return known
        return None

    @property
    def end_time(self) -> datetime:
        return self.start_time + BLOCK_LENGTH

    @property
    def overlap(self) -> bool:
        return len(self.contributions) >= 2

    @property
    def machine_count(self) -> int:
        return len(self.contributions)

    def is_active_at(self, now: datetime | None = None) -> bool:
        return is_active(self, now)

    def add(self, bucket: Bucket) -> None:
        super().add(bucket)
        if bucket.first_activity is None:
            if self._unknown_hour is None or bucket.hour < self._unknown_hour:
                self._unknown_hour = bucket.hour
        elif self._known_first is None or bucket.first_activity < self._known_first:
            self._known_first = bucket.first_activity
        self.contributions.setdefault(bucket.machine_id, Totals()).add(bucket)
        for model in bucket.models:
            if model not in self.models_used:
                self.models_used.append(model)
        if bucket.limit_reset_at is not None and (
            self.limit_hit_at is None or bucket.hour < self.limit_hit_at
        ):
            self.limit_hit_at = bucket.hour


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def opens_block(bucket: Bucket, current: BlockSpan) -> bool:
    """Does this bucket (taken in hour order) start a new block after `current`?

    ccusage 20.0.24 opens a block for an entry whose time minus the block's start is greater
    than the session length (strictly), or whose time minus the previous entry's is; the second
    test never fires on its own, because a block starts at or before its first entry. A bucket
    holds entries from its hour up to and including the next hour's first instant, so it belongs
    to the block when its last activity is not after the block's end (the module docstring
    names the one hour this cannot split).
    """
    return bucket.last_activity > current.end_time


def blocks_for_buckets(buckets: Iterable[Bucket]) -> list[BlockSpan]:
    """The pure rule: hourly buckets of any number of machines → 5-hour blocks, oldest first."""
    blocks: list[BlockSpan] = []
    current: BlockSpan | None = None
    # Within an hour, a bucket that ends sooner goes first: one whose only entries sit exactly
    # on a block's end must join that block before another machine's bucket opens the next.
    for bucket in sorted(buckets, key=lambda b: (b.hour, b.last_activity, b.machine_id)):
        if current is None or opens_block(bucket, current):
            current = BlockSpan(start_time=floor_hour(bucket.hour))
            blocks.append(current)
        current.add(bucket)
    return blocks


# --- Live figures: activity, burn rate and projection are relative to "now" --------------


def is_active(block, now: datetime | None = None) -> bool:
    """Active while now is before the block's end and its last activity is under 5 hours old
    (both strict, as ccusage's `isActive`): at end_time, or 5 h after the last entry, it is over.
    """
    now = now or timezone.now()
    return now < block.end_time and now - block.last_activity < BLOCK_LENGTH


@dataclass(frozen=True)
class BurnRate:
    tokens_per_minute: float
    cost_per_hour: float


@dataclass(frozen=True)
class Projection:
    total_tokens: int
    cost_usd: float
    remaining_minutes: int


def measured_from(block) -> datetime:
    """Where the burn rate starts: the block's first entry, or its start when unknown (data
    from agents that do not send `hour_first_activity`)."""
    return block.first_activity or block.start_time


def burn_rate(block) -> BurnRate | None:
    """Tokens per minute and USD per hour from the block's first entry to its last activity.

    ccusage 20.0.24's `burnRate`: all four token counts over the minutes between the first and
    the last entry, cost over the same span * 60; none when that span is zero (one entry).
    Without a known first entry the span starts at the block's start (then the rate is lower
    than ccusage's by up to the hour's share; see measured_from).
    """
    minutes = (block.last_activity - measured_from(block)).total_seconds() / 60
    if minutes <= 0:
        return None
    return BurnRate(
        tokens_per_minute=block.total_tokens / minutes,
        cost_per_hour=float(block.cost_usd) / minutes * 60,
    )


def _round_half_up(value: float) -> int:
    # JavaScript's Math.round, which ccusage's figures follow; Python's round() is half-even.
    return math.floor(value + 0.5)


def projection(block, now: datetime | None = None) -> Projection | None:
    """Where an active block ends up if the burn rate holds until its end (ccusage 20.0.24's
    `projection`): minutes left = (end - now) rounded to whole minutes, then
    tokens = total + tokens/min * minutes left (rounded), USD = cost + USD/h / 60 * minutes
    left (to the cent). None for inactive blocks and blocks without a burn rate.
    """
    now = now or timezone.now()
    rate = burn_rate(block)
    if rate is None or not is_active(block, now):
        return None
    remaining = _round_half_up(max(0.0, (block.end_time - now).total_seconds() / 60))
    cost = float(block.cost_usd) + rate.cost_per_hour / 60 * remaining
    return Projection(
        total_tokens=_round_half_up(block.total_tokens + rate.tokens_per_minute * remaining),
        cost_usd=_round_half_up(cost * 100) / 100,
        remaining_minutes=remaining,
    )


# --- Stored blocks per subscription --------------------------------------------------------


def reset_point(hourly, since: datetime) -> datetime | None:
    """The latest time ≤ since from which blocks can be recomputed without older buckets.

    A bucket hour more than 5 hours after the previous bucket hour always opens a block (at
    exactly 5 hours it may still end the earlier block: see opens_block), so everything from
    there on depends only on buckets at or after it. Walks back from `since`
    through the hours of `hourly` (a HourlyUsage queryset); None means "from the beginning".
    """
    start = floor_hour(since)
    hours = hourly.filter(hour__lt=start).values_list("hour", flat=True).distinct()
    return _later_of_first_gap(hours.order_by("-hour"), start)


@dataclass
class RecomputeResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


_BLOCK_FIELDS = (
    *TOKEN_FIELDS,
    "total_tokens",
    "cost_usd",
    "entries",
    "end_time",
    "first_activity",
    "last_activity",
    "models_used",
    "machine_count",
    "overlap",
    "limit_hit_at",
    "is_active",
)
_CONTRIBUTION_FIELDS = (*TOKEN_FIELDS, "total_tokens", "cost_usd", "entries", "last_activity")


def _values(span: Totals, names, now: datetime | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in names:
        if name == "is_active":
            values[name] = is_active(span, now)
        elif name == "cost_usd":
            values[name] = span.cost_usd.quantize(COST_PLACES)
        else:
            values[name] = getattr(span, name)
    return values


def _differs(obj, values: dict) -> bool:
    for name, value in values.items():
        current = getattr(obj, name)
        if isinstance(value, Decimal) and current is not None:
            # SQLite stores decimals as doubles: equal means within the last stored place.
            if abs(Decimal(current) - value) > COST_PLACES:
                return True
        elif current != value:
            return True
    return False


def next_reset_point(hourly, until: datetime) -> datetime | None:
    """The earliest bucket hour after `until` that opens a block whatever came before it (more
    than 5 hours after the bucket hour before it; see reset_point), or None. Blocks from there
    on depend only on buckets at or after it. Walks forward through the hours of `hourly`."""
    start = floor_hour(until)
    hours = hourly.filter(hour__gt=start).values_list("hour", flat=True).distinct()
    return _later_of_first_gap(hours.order_by("hour"), start)


def _later_of_first_gap(hours, start: datetime) -> datetime | None:
    """Walks `hours` (bucket hours ordered away from `start`, either way), 500 at a time, and
    returns the later hour of the first two neighbours (`start` first) more than BLOCK_LENGTH
    apart; None when there is no such gap."""
    previous, offset, chunk = start, 0, 500
    while True:
        page = list(hours[offset : offset + chunk])
        for hour in page:
            if abs(hour - previous) > BLOCK_LENGTH:
                return max(hour, previous)
            previous = hour
        if len(page) < chunk:
            return None
        offset += chunk


@transaction.atomic
def recompute_blocks(
    subscription_id: int,
    since: datetime | None = None,
    now: datetime | None = None,
    *,
    until: datetime | None = None,
) -> RecomputeResult:
    """Bring the stored blocks of one subscription in line with its hourly facts.

    Only blocks from the one containing `since` (the earliest changed hour) onward are
    recomputed: a late hour can merge or split every block after it, never one before. With
    `until` (the latest changed hour), blocks from the first one after it that no earlier hour
    can reach (next_reset_point) are left as they are too: late hours days back recompute the
    blocks around them, not every block since. Rows that already match are left alone, so a
    second run writes nothing.
    """
    now = now or timezone.now()
    result = RecomputeResult()
    # One recompute per subscription at a time: two workers would otherwise both insert.
    subscription = Subscription.objects.select_for_update().filter(pk=subscription_id).first()
    if subscription is None:
        return result
    hourly = HourlyUsage.objects.filter(machine__subscription_id=subscription_id)
    anchor = reset_point(hourly, since) if since is not None else None
    # Changed hours within the last 5 hours: no later hour can be more than 5 hours after them
    # yet (the walk would find nothing).
    end = (
        next_reset_point(hourly, until)
        if until is not None and now - until > BLOCK_LENGTH
        else None
    )
    if anchor is not None:
        hourly = hourly.filter(hour__gte=anchor)
    if end is not None:
        hourly = hourly.filter(hour__lt=end)
    # Plain tuples rather than model instances: a full history is thousands of hours.
    spans = blocks_for_buckets(
        Bucket.from_values(values)
        for values in hourly.values_list(*Bucket.COLUMNS).iterator(chunk_size=2000)
    )

    stored_qs = Block.objects.filter(subscription_id=subscription_id)
    if anchor is not None:
        stored_qs = stored_qs.filter(start_time__gte=anchor)
    if end is not None:
        stored_qs = stored_qs.filter(start_time__lt=end)
    stored = {b.start_time: b for b in stored_qs}
    parts = _contributions_of([b.pk for b in stored.values()])

    new_blocks: list[tuple[Block, BlockSpan]] = []
    # Every change is gathered first and written with one statement per kind of change and
    # table, however many blocks changed (a late hour can reshape many at once).
    writes = _Writes()
    for span in spans:
        values = _values(span, _BLOCK_FIELDS, now)
        block = stored.pop(span.start_time, None)
        if block is None:
            block = Block(subscription_id=subscription_id, start_time=span.start_time, **values)
            new_blocks.append((block, span))
            continue
        changed = _differs(block, values)
        if changed:
            for name, value in values.items():
                setattr(block, name, value)
            block.computed_at = now
            writes.blocks.append(block)
        changed = _sync_contributions(block, parts.get(block.pk, []), span, writes) or changed
        if changed:
            result.updated += 1
        else:
            result.unchanged += 1
    writes.flush()

    if stored:
        result.deleted = len(stored)
        Block.objects.filter(pk__in=[b.pk for b in stored.values()]).delete()
    if new_blocks:
        _bulk_create(Block, [block for block, _ in new_blocks], with_ids=True)
        _bulk_create(
            BlockContribution,
            [
                BlockContribution(
                    block=block, machine_id=machine_id, **_values(part, _CONTRIBUTION_FIELDS)
                )
                for block, span in new_blocks
                for machine_id, part in span.contributions.items()
            ],
        )
        result.created = len(new_blocks)
    if result.changed:
        log.info(
            "blocks recomputed",
            extra={
                "subscription": subscription_id,
                "since": since.isoformat() if since else None,
                "until": end.isoformat() if end else None,
                "blocks_created": result.created,
                "blocks_updated": result.updated,
                "blocks_deleted": result.deleted,
            },
        )
    return result


@dataclass
class _Writes:
    """Block and contribution changes of one recompute, written together by flush()."""

    blocks: list[Block] = field(default_factory=list)
    new_parts: list[BlockContribution] = field(default_factory=list)
    changed_parts: list[BlockContribution] = field(default_factory=list)
    gone_parts: list[int] = field(default_factory=list)

    def flush(self) -> None:
        if self.blocks:
            _bulk_update(Block, self.blocks, [*_BLOCK_FIELDS, "computed_at"])
        if self.changed_parts:
            _bulk_update(BlockContribution, self.changed_parts, list(_CONTRIBUTION_FIELDS))
        if self.gone_parts:
            BlockContribution.objects.filter(pk__in=self.gone_parts).delete()
        if self.new_parts:
            _bulk_create(BlockContribution, self.new_parts)


# Rows per bulk INSERT, and per UPDATE where it is a CASE per column and row (SQLite).
_WRITE_BATCH = 500


def _bulk_update(model, objs: list, names: list[str]) -> None:
    """Write `names` of `objs` in one statement: UPDATE … FROM unnest(one array per column) on
    PostgreSQL, where Django's bulk_update would build a CASE per row and column (slow to
    build for hundreds of blocks); bulk_update elsewhere."""
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, names, batch_size=_WRITE_BATCH)
        return
    import psycopg  # only on PostgreSQL

    fields = [model._meta.get_field(name) for name in names]
    types = [f.db_type(connection) for f in fields]
    arrays: list[list] = [[o.pk for o in objs]]
    for f, db_type in zip(fields, types, strict=True):
        values = [getattr(o, f.attname) for o in objs]
        arrays.append([json.dumps(v) for v in values] if db_type == "jsonb" else values)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    casts = ["%s::bigint[]"] + ["%s::text[]" if t == "jsonb" else f"%s::{t}[]" for t in types]
    sets = ", ".join(
        f"{quote(f.column)} = v.c{i}" + ("::jsonb" if t == "jsonb" else "")
        for i, (f, t) in enumerate(zip(fields, types, strict=True), start=1)
    )
    aliases = ", ".join(f"c{i}" for i in range(len(arrays)))
    sql = (
        f"UPDATE {table} SET {sets} FROM unnest({', '.join(casts)}) AS v({aliases}) "  # noqa: S608
        f"WHERE {table}.id = v.c0"
    )
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, arrays)


def _bulk_create(model, objs: list, *, with_ids: bool = False) -> None:
    """Insert `objs` (new Block or BlockContribution rows), setting their pks if `with_ids`:
    one INSERT … SELECT FROM unnest(one array per column) on PostgreSQL, whose statement stays
    short however many rows (bulk_create's VALUES list, one placeholder per value, takes
    longer to build and to parse than to run); bulk_create elsewhere."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=_WRITE_BATCH)
        return
    import psycopg  # only on PostgreSQL

    quote = connection.ops.quote_name
    table = model._meta.db_table
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        if with_ids:
            # Ids taken from the table's sequence first, so each object knows its own.
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, len(objs)],
            )
            for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk = pk
            fields = [model._meta.pk, *fields]
        types = [f.db_type(connection) for f in fields]
        arrays: list[list] = []
        for f, db_type in zip(fields, types, strict=True):
            # pre_save: what bulk_create would store (computed_at's auto_now among them).
            values = [f.pre_save(o, True) for o in objs]
            if db_type == "jsonb":
                values = [None if v is None else json.dumps(v) for v in values]
            arrays.append(values)
        casts = ["%s::text[]" if t == "jsonb" else f"%s::{t}[]" for t in types]
        select = ", ".join(
            f"v.c{i}::jsonb" if t == "jsonb" else f"v.c{i}" for i, t in enumerate(types)
        )
        aliases = ", ".join(f"c{i}" for i in range(len(arrays)))
        cursor.execute(
            f"INSERT INTO {quote(table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
            f"SELECT {select} FROM unnest({', '.join(casts)}) AS v({aliases})",
            arrays,
        )


# Block ids per contribution lookup: a short IN list is read through the block index even by
# a plan made without statistics (a table filled since its last ANALYZE), where a few hundred
# ids make PostgreSQL scan the whole table.
_PARTS_CHUNK = 20


def _contributions_of(block_ids: list[int]) -> dict[int, list[BlockContribution]]:
    """The stored contributions of these blocks, by block id."""
    found: dict[int, list[BlockContribution]] = {}
    for start in range(0, len(block_ids), _PARTS_CHUNK):
        chunk = block_ids[start : start + _PARTS_CHUNK]
        for part in BlockContribution.objects.filter(block_id__in=chunk):
            found.setdefault(part.block_id, []).append(part)
    return found


def _sync_contributions(
    block: Block, stored: list[BlockContribution], span: BlockSpan, writes: _Writes
) -> bool:
    """Gather the changes that make the block's stored contributions (`stored`) the span's;
    True if any."""
    changed = False
    existing = {c.machine_id: c for c in stored}
    for machine_id, part in span.contributions.items():
        values = _values(part, _CONTRIBUTION_FIELDS)
        contribution = existing.pop(machine_id, None)
        if contribution is None:
            writes.new_parts.append(BlockContribution(block=block, machine_id=machine_id, **values))
            changed = True
        elif _differs(contribution, values):
            for name, value in values.items():
                setattr(contribution, name, value)
            writes.changed_parts.append(contribution)
            changed = True
    if existing:
        writes.gone_parts += [c.pk for c in existing.values()]
        changed = True
    return changed


def refresh_active(now: datetime | None = None) -> int:
    """Clear the active mark of blocks that ended or went quiet; returns how many closed."""
    now = now or timezone.now()
    quiet = Q(end_time__lte=now) | Q(last_activity__lte=now - BLOCK_LENGTH)
    return Block.objects.filter(quiet, is_active=True).update(is_active=False)


def subscriptions_out_of_step() -> set[int]:
    """Subscriptions whose stored blocks credit a machine that has moved elsewhere.

    Both sides need a full recompute: the old one still counts the machine's hours, the new
    one lacks them. Catches moves made outside `move_machine` (e.g. in the Django admin).
    """
    pairs = (
        BlockContribution.objects.exclude(block__subscription_id=F("machine__subscription_id"))
        .values_list("block__subscription_id", "machine__subscription_id")
        .distinct()
    )
    return {sub for pair in pairs for sub in pair}


def move_machine(machine: Machine, subscription: Subscription) -> bool:
    """Attach a machine to another subscription; both sides' blocks are recomputed after
    commit (usage.signals.blocks_outdated; the beat's refresh repairs them if the broker is
    down). False when it already uses that subscription."""
    old_id = machine.subscription_id
    if old_id == subscription.pk:
        return False
    with transaction.atomic():
        Machine.objects.filter(pk=machine.pk).update(subscription=subscription)
        machine.subscription = subscription
        outdated = [old_id, subscription.pk]
        transaction.on_commit(
            lambda: signals.blocks_outdated.send(sender=Machine, subscription_ids=outdated)
        )
    log.info(
        "machine moved",
        extra={"machine": str(machine.uuid), "from": old_id, "to": subscription.pk},
    )
    return True


# --- Per-machine blocks, computed on the fly for the machine view ---------------------------


def machine_blocks(
    machine: Machine, since: datetime, until: datetime, now: datetime | None = None
) -> list[BlockSpan]:
    """The same rule on one machine's buckets: blocks overlapping [since, until)."""
    hourly = HourlyUsage.objects.filter(machine=machine)
    anchor = reset_point(hourly, since)
    rows = hourly.filter(hour__lt=until + BLOCK_LENGTH)
    if anchor is not None:
        rows = rows.filter(hour__gte=anchor)
    spans = blocks_for_buckets(Bucket.from_row(row) for row in rows.iterator(chunk_size=2000))
    return [s for s in spans if s.end_time > since and s.start_time < until]
