"""Derived work after ingest batches: recomputes what the batches' new facts touched.

Ingest stamps only the facts a batch created or changed (usage.ingest.facts), so everything
here is proportional to what changed: blocks of each touched subscription from the earliest
changed hour on, the copied-session check for the changed sessions, then the budget checks of
what the batches touched (sent as usage_changed, once per team; budgets debounces them). Lost
history compares a full report's days, which ingest keeps in the cache, with the stored days.

Many batches are derived together (derive_pending): one task run claims every batch still
waiting, so a burst of syncs costs one block recompute per subscription, one lookup of the
changed sessions and one budget signal per team instead of one of each per batch. A run is one
transaction that ends by setting the batches' derived_at: a worker that dies mid-run leaves
them underived, for the redelivered task or the sweep (usage.tasks.sweep_derived_work).
Idempotent: running it twice for one batch leaves the same rows.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from usage.analytics import quality
from usage.analytics.blocks import recompute_blocks
from usage.models import (
    BatchStatus,
    DailyUsage,
    HourlyUsage,
    IngestBatch,
    Machine,
    SessionUsage,
)
from usage.signals import usage_changed

log = logging.getLogger(__name__)

# Batches one run derives at most; the rest wait for the next run (or the sweep).
RUN_LIMIT = 200
# Batches whose derived work has not run since they were (last) processed.
_underived = Q(derived_at__isnull=True) | Q(derived_at__lt=F("processed_at"))
# Session ids per copied-session lookup (an IN list on the session id index). Small: a short
# list is read through the index even by a plan made without statistics (a table filled since
# its last ANALYZE), where a few hundred ids already make PostgreSQL scan the whole table.
_SESSION_CHUNK = 20


def derive_for_batch(batch_id: int) -> bool:
    """Derive one batch whether or not its derived work already ran; False when there is
    nothing to derive (unknown or unprocessed batch)."""
    return batch_id in derive_batches([batch_id], pending_only=False)


def derive_pending(batch_id: int | None = None, limit: int = RUN_LIMIT) -> bool:
    """Derive `batch_id` together with the other processed batches still waiting for their
    derived work (any machine or team, oldest first, up to `limit` in all).

    Returns True when `batch_id` is derived (by this run or an earlier one) or being derived
    by another run (whose row lock made this one skip it), False when it is unknown or not
    processed. A group that fails is retried as the one batch alone, so one batch that cannot
    be derived never holds back the others (they stay waiting for their own tasks and the
    sweep).
    """
    waiting = IngestBatch.objects.filter(status=BatchStatus.PROCESSED, derived_at__isnull=True)
    ids = list(waiting.order_by("received_at").values_list("pk", flat=True)[:limit])
    if batch_id is not None and batch_id not in ids:
        state = IngestBatch.objects.filter(pk=batch_id).values_list(
            "status", "derived_at", "processed_at"
        )
        status, derived_at, processed_at = state.first() or (None, None, None)
        if status != BatchStatus.PROCESSED:
            ids = []  # unknown or unprocessed: nothing of it to derive
        elif derived_at is None or (processed_at is not None and derived_at < processed_at):
            # Waiting behind older ones, or processed again since its derived work ran
            # (reprocess_batches --batch): this run takes it too.
            ids = [batch_id, *ids[: limit - 1]]
        if not ids:
            return status == BatchStatus.PROCESSED
    if not ids:
        return batch_id is None
    try:
        derive_batches(ids)
    except Exception:
        if batch_id is None or len(ids) == 1:
            raise
        log.exception("derived work of a group failed; deriving one batch alone")
        derive_batches([batch_id])
    return True


@transaction.atomic
def derive_batches(batch_ids: Iterable[int], *, pending_only: bool = True) -> list[int]:
    """Blocks, copied-session checks, lost history and the budget signal for some batches,
    in one transaction; returns the ids derived (processed batches among `batch_ids`; with
    `pending_only`, only those whose derived work has not run, and none another run holds).
    """
    claimed = (
        IngestBatch.objects.filter(pk__in=list(batch_ids), status=BatchStatus.PROCESSED)
        .select_related("machine")
        # Without the archived body: derived work reads the rows the batch changed.
        .defer("body_gzip")
        .order_by("pk")
        # A row lock per batch: two runs never derive one batch at once; NO KEY leaves the
        # facts' foreign keys to it free.
        .select_for_update(skip_locked=True, no_key=True, of=("self",))
    )
    if pending_only:
        claimed = claimed.filter(_underived)
    batches = list(claimed)
    if not batches:
        return []
    ids = [b.pk for b in batches]
    # (batch, its machine): OTLP batches of no known machine derive nothing.
    with_machine = [(b, b.machine) for b in batches if b.machine is not None]
    if with_machine:
        _recompute_blocks(with_machine)
        _check_lost_history(with_machine)
        _check_copied_sessions([p for p in with_machine if _wrote(p[0], "claude_session")])
        _announce(with_machine)
    # Set last: a batch is announced (usage_changed) before it counts as derived
    # (budgets.evaluate.changes_since relies on that order).
    IngestBatch.objects.filter(_underived, pk__in=ids).update(derived_at=timezone.now())
    return ids


Derived = list[tuple[IngestBatch, Machine]]


def _recompute_blocks(batches: Derived) -> None:
    """One recompute per subscription, over the hours any of its batches changed (from the
    earliest to the latest, widened to what those hours can reach); subscriptions in id
    order, so two runs lock them in one order (no deadlock)."""
    changed = changed_hours([b.pk for b, _ in batches])
    spans: dict[int, tuple[datetime, datetime]] = {}
    for batch, machine in batches:
        if batch.pk not in changed:
            continue
        first, last = changed[batch.pk]
        if machine.subscription_id in spans:
            known_first, known_last = spans[machine.subscription_id]
            first, last = min(first, known_first), max(last, known_last)
        spans[machine.subscription_id] = (first, last)
    for subscription_id in sorted(spans):
        first, last = spans[subscription_id]
        recompute_blocks(subscription_id, since=first, until=last)


def earliest_changed_hour(batch_id: int):
    """The earliest hour (UTC) the batch created or changed, or None."""
    first_last = changed_hours([batch_id]).get(batch_id)
    return first_last[0] if first_last else None


def changed_hours(batch_ids: list[int]) -> dict[int, tuple[datetime, datetime]]:
    """The earliest and latest hour (UTC) each batch created or changed (batches that changed
    none are left out).

    Read through the batch index and folded here: `MIN(hour) WHERE batch_id = …` lets
    PostgreSQL walk the hour index from the oldest row of every team instead.
    """
    found: dict[int, tuple[datetime, datetime]] = {}
    rows = HourlyUsage.objects.filter(batch_id__in=batch_ids).values_list("batch_id", "hour")
    for batch_id, hour in rows:
        if batch_id in found:
            first, last = found[batch_id]
            found[batch_id] = (min(first, hour), max(last, hour))
        else:
            found[batch_id] = (hour, hour)
    return found


def _check_lost_history(batches: Derived) -> None:
    kept = _cache_get_many([_reported_days_key(b.pk) for b, _ in batches])
    for batch, _ in batches:
        reported = _reported_days(batch, kept.get(_reported_days_key(batch.pk)))
        if reported is not None:
            quality.check_lost_history(batch, reported_days=reported)


def _check_copied_sessions(batches: Derived) -> None:
    """The copied-session check of each batch, for the sessions it changed that another
    machine of its team also reported (found first by session id through its index, so a
    batch whose sessions are all its own costs no team-wide query)."""
    if not batches:
        return
    changed: dict[int, set[str]] = defaultdict(set)
    for batch_id, session_id in SessionUsage.objects.filter(
        batch_id__in=[b.pk for b, _ in batches]
    ).values_list("batch_id", "session_id"):
        changed[batch_id].add(session_id)
    reporters: dict[str, set[int]] = defaultdict(set)
    wanted = sorted(set().union(*changed.values()))
    for start in range(0, len(wanted), _SESSION_CHUNK):
        rows = SessionUsage.objects.filter(
            session_id__in=wanted[start : start + _SESSION_CHUNK]
        ).values_list("session_id", "machine_id")
        for session_id, machine_id in rows:
            reporters[session_id].add(machine_id)
    others = {m for b, machine in batches for sid in changed[b.pk] for m in reporters[sid]} - {
        machine.pk for _, machine in batches
    }
    # Teams of the other machines: usually there are none, and then no query.
    teams = {machine.pk: machine.team_id for _, machine in batches}
    if others:
        teams |= dict(Machine.objects.filter(pk__in=others).values_list("pk", "team_id"))
    for batch, machine in batches:
        copied = sorted(
            session_id
            for session_id in changed[batch.pk]
            if any(
                m != machine.pk and teams.get(m) == machine.team_id for m in reporters[session_id]
            )
        )
        if copied:
            quality.check_duplicate_sessions(batch, copied)


def _announce(batches: Derived) -> None:
    """usage_changed once per team, for the members and projects its batches changed."""
    projects: dict[int, set[int]] = defaultdict(set)
    for batch_id, project_id in (
        DailyUsage.objects.filter(batch_id__in=[b.pk for b, _ in batches])
        .values_list("batch_id", "project_id")
        .distinct()
    ):
        projects[batch_id].add(project_id)
    by_team: dict[int, Derived] = defaultdict(list)
    for batch, machine in batches:
        by_team[machine.team_id].append((batch, machine))
    for team_id, team_batches in sorted(by_team.items()):
        # Budgets (an app above usage) hear of it through the signal, never an import.
        usage_changed.send(
            sender=IngestBatch,
            team_id=team_id,
            batch_ids=[b.pk for b, _ in team_batches],
            member_ids=sorted({m.owner_id for _, m in team_batches}),
            project_ids=sorted(set().union(*(projects[b.pk] for b, _ in team_batches))),
            quotas=any(_wrote(b, "statusline") for b, _ in team_batches),
        )


def _wrote(batch: IngestBatch, kind: str) -> bool:
    """Did the batch create or change rows of this report kind?"""
    counts = (batch.counts or {}).get(kind) or {}
    return bool(counts.get("created") or counts.get("updated"))


# How long ingest keeps a report's listed days for its derived work (the sweep runs within
# minutes; after this the archive is parsed again).
REPORTED_DAYS_TTL = 24 * 3600
NOT_FULL = "not-full"


def _reported_days_key(batch_id: int) -> str:
    return f"ingest:reported-days:{batch_id}"


def remember_reported_days(batch_id: int, envelope) -> None:
    """Keep the Claude Code days a full report lists (or that the report is
    not full), so the lost-history check after it never parses the archive again."""
    rows = envelope.reports.get("claude_daily_instances")
    if envelope.full and rows is not None:
        value: object = sorted({row.day.isoformat() for row in rows})
    else:
        value = NOT_FULL
    # Set now, not on commit: a batch rolled back is never derived, and its key is rewritten
    # if it is processed again.
    _cache_set(_reported_days_key(batch_id), value)


def _cache_set(key: str, value) -> None:
    try:
        cache.set(key, value, REPORTED_DAYS_TTL)
    except Exception:  # a cache outage costs a second parse later, never data
        log.warning("could not keep a report's days in the cache", extra={"key": key})


def _cache_get_many(keys: list[str]) -> dict:
    try:
        return cache.get_many(keys)
    except Exception:  # a cache outage costs a parse of the archive, never data
        return {}


def _reported_days(batch: IngestBatch, kept=None) -> set[date] | None:
    """The Claude Code days the batch's full report listed; None when it was not a full report
    with a daily report. From what ingest kept in the cache (`kept`, read by the caller),
    else from the archive."""
    if kept == NOT_FULL:
        return None
    if isinstance(kept, list):
        return {date.fromisoformat(day) for day in kept}
    envelope = quality.full_batch_envelope(batch)
    if envelope is None or "claude_daily_instances" not in envelope.reports:
        return None
    return {row.day for row in envelope.reports["claude_daily_instances"]}
