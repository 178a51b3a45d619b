"""Celery entry points for usage: thin wrappers that load ids and call one domain function.

Every task is safe to run twice and to be redelivered after a worker dies mid-task
(acks_late with reject_on_worker_lost): each domain function writes in one transaction and
leaves rows that already match untouched.
"""

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from telemetry_site.queueing import enqueue
from usage import rollups
from usage.analytics.blocks import recompute_blocks, refresh_active, subscriptions_out_of_step
from usage.ingest import backlog, rejected
from usage.ingest.derive import RUN_LIMIT, derive_batches, derive_pending
from usage.models import BatchStatus, IngestBatch

log = logging.getLogger(__name__)

# A database that restarts or a lock that times out is worth another try; bad data is not.
RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 10,
    "retry_backoff_max": 600,
    "max_retries": 5,
}


@shared_task(**RETRY)
def derive_after_ingest(batch_id: int) -> bool:
    """Blocks, data-quality flags and budget checks for what one ingest batch touched, done
    together with every other batch still waiting for them (usage.ingest.derive.derive_pending):
    in a burst of syncs, the first runs take the work of the later ones, which find it done."""
    done = derive_pending(batch_id)
    fold_soon()
    return done


# At most one fold queued per this many seconds by derived work (the beat folds every minute).
FOLD_AFTER_DERIVE_SECONDS = 5


def fold_soon() -> None:
    """Queue a fold of the rollup changes ingest appended, FOLD_AFTER_DERIVE_SECONDS from now,
    unless one is queued already: during a burst of syncs the pending changes every reader
    adds up (budget checks among them) stay a few seconds' worth, not a minute's. A cache or
    broker outage leaves it to the beat."""
    try:
        if not cache.add("usage:rollup-fold-queued", 1, FOLD_AFTER_DERIVE_SECONDS):
            return
    except Exception:
        return
    enqueue(fold_rollups, countdown=FOLD_AFTER_DERIVE_SECONDS, then="the beat folds them")


@shared_task
def sweep_derived_work() -> int:
    """Catch up on batches whose derived work never ran (the broker was down at ingest, or
    a worker died mid-run), RUN_LIMIT batches per transaction."""
    cutoff = timezone.now() - timedelta(minutes=2)
    pending = list(
        IngestBatch.objects.filter(
            status=BatchStatus.PROCESSED, derived_at__isnull=True, received_at__lt=cutoff
        )
        .order_by("received_at")
        .values_list("id", flat=True)
    )
    count = 0
    for start in range(0, len(pending), RUN_LIMIT):
        count += len(derive_batches(pending[start : start + RUN_LIMIT]))
    if count:
        log.info("derived work caught up", extra={"batches": count})
    return count


@shared_task(**RETRY)
def process_ingest_batch(batch_id: int) -> str:
    """Process one archived batch left for the worker (a big report answered 202, or one the
    backlog sweep found waiting): "processed", "failed" or "skipped" (not waiting)."""
    return backlog.process_waiting(batch_id)


@shared_task
def sweep_ingest_backlog() -> int:
    """Queue every batch left `received` past the grace period (the broker was down when it
    was queued, or its worker or request died); returns how many were queued."""
    waiting = backlog.waiting()
    for batch_id in waiting:
        enqueue(process_ingest_batch, batch_id, then="the next sweep tries again")
    if waiting:
        log.info("ingest backlog queued", extra={"batches": len(waiting)})
    return len(waiting)


@shared_task
def expire_rejected_bodies() -> int:
    """Daily: delete refused report bodies older than INGEST_REJECTED_RETENTION_DAYS."""
    deleted = rejected.expire()
    if deleted:
        log.info("refused ingest bodies expired", extra={"deleted": deleted})
    return deleted


@shared_task(**RETRY)
def recompute_subscription_blocks(subscription_id: int, since: str | None = None) -> bool:
    """Blocks of one subscription from `since` (ISO time) on, or all of them."""
    start = datetime.fromisoformat(since) if since else None
    return recompute_blocks(subscription_id, since=start).changed


@shared_task(**RETRY)
def refresh_blocks() -> dict:
    """The beat pass: close blocks that ended or went quiet; repair moved machines' blocks."""
    closed = refresh_active()
    repaired = sorted(subscriptions_out_of_step())
    for subscription_id in repaired:
        recompute_blocks(subscription_id)
    if closed or repaired:
        log.info("blocks refreshed", extra={"closed": closed, "repaired": len(repaired)})
    return {"closed": closed, "repaired": len(repaired)}


@shared_task(**RETRY)
def fold_rollups() -> int:
    """Move the rollup changes ingest appended into the rollups (usage.rollups.fold_deltas);
    readers add pending ones, so this keeps reads short, never correct."""
    return rollups.fold_deltas()
