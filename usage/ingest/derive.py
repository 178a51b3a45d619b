"""Derived work after an ingest batch: recomputes what the batch's new facts touched.

Ingest stamps only the facts a batch created or changed (usage.ingest.facts), so everything
here is proportional to what changed: blocks of the machine's subscription from the earliest
changed hour on, the copied-session check for the changed sessions, then the budget checks of
what the batch touched (sent as usage_changed; budgets debounces them). Lost history is checked
at ingest, where the parsed report is at hand. Idempotent: running it twice for one batch
leaves the same rows.
"""

import logging
from datetime import date

from django.core.cache import cache
from django.utils import timezone

from usage.analytics import quality
from usage.analytics.blocks import recompute_blocks
from usage.models import BatchStatus, DailyUsage, HourlyUsage, IngestBatch, SessionUsage
from usage.signals import usage_changed

log = logging.getLogger(__name__)


def derive_for_batch(batch_id: int) -> bool:
    """Returns False when there is nothing to derive (unknown or unprocessed batch)."""
    # Without the archived body: derived work reads the rows the batch changed, not its report.
    batch = (
        IngestBatch.objects.select_related("machine").defer("body_gzip").filter(pk=batch_id).first()
    )
    if batch is None:
        log.warning("derived work for a batch that does not exist", extra={"batch": batch_id})
        return False
    if batch.status != BatchStatus.PROCESSED:
        # A received or failed batch stored no facts; reprocessing it queues this again.
        return False
    machine = batch.machine
    if machine is not None:
        earliest = earliest_changed_hour(batch.pk)
        if earliest is not None:
            recompute_blocks(machine.subscription_id, since=earliest)
        reported = _reported_days(batch)
        if reported is not None:
            quality.check_lost_history(batch, reported_days=reported)
        if _wrote(batch, "claude_session"):
            quality.check_duplicate_sessions(
                batch,
                SessionUsage.objects.filter(batch_id=batch.pk).values_list("session_id", flat=True),
            )
        changed = DailyUsage.objects.filter(batch_id=batch.pk)
        # Budgets (an app above usage) hear of it through the signal, never an import.
        usage_changed.send(
            sender=IngestBatch,
            team_id=machine.team_id,
            batch_id=batch.pk,
            member_ids=[machine.owner_id],
            project_ids=sorted(set(changed.values_list("project_id", flat=True))),
            quotas=_wrote(batch, "statusline"),
        )
    IngestBatch.objects.filter(pk=batch.pk, derived_at__isnull=True).update(
        derived_at=timezone.now()
    )
    return True


def earliest_changed_hour(batch_id: int):
    """The earliest hour (UTC) the batch created or changed, or None.

    Read through the batch index and folded here: `MIN(hour) WHERE batch_id = …` lets
    PostgreSQL walk the hour index from the oldest row of every team instead.
    """
    hours = HourlyUsage.objects.filter(batch_id=batch_id).values_list("hour", flat=True)
    return min(hours, default=None)


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


def _reported_days(batch: IngestBatch) -> set[date] | None:
    """The Claude Code days the batch's full report listed; None when it was not a full report
    with a daily report. From the cache ingest filled, else from the archive."""
    try:
        kept = cache.get(_reported_days_key(batch.pk))
    except Exception:
        kept = None
    if kept == NOT_FULL:
        return None
    if isinstance(kept, list):
        return {date.fromisoformat(day) for day in kept}
    envelope = quality.full_batch_envelope(batch)
    if envelope is None or "claude_daily_instances" not in envelope.reports:
        return None
    return {row.day for row in envelope.reports["claude_daily_instances"]}
