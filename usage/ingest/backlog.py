"""Batches processed outside the request: big reports, and batches left `received`.

A body above INGEST_ASYNC_BODY_BYTES is archived and answered 202; the worker processes it
(usage.tasks.process_ingest_batch). A batch can also be left `received` when the broker was
down as it was queued, or when a worker or a web request died while processing it. The beat
sweep (usage.tasks.sweep_ingest_backlog) finds those once INGEST_BACKLOG_GRACE_SECONDS have
passed and queues them again.

Whoever processes a batch first claims it with a conditional UPDATE (status still
`received`, and no claim younger than the grace period), so two workers never run it at once;
running it twice in a row changes nothing anyway (the replace rule of usage.ingest.pipeline).
Each claim counts an attempt: a batch whose processing never finishes (a worker killed each
time) is marked failed with the reason after INGEST_BACKLOG_MAX_ATTEMPTS, instead of looping.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import F, Q
from django.utils import timezone

from usage.ingest.pipeline import IngestError, process_batch
from usage.models import BatchStatus, IngestBatch

log = logging.getLogger(__name__)

PROCESSED = "processed"
FAILED = "failed"
SKIPPED = "skipped"


def _grace() -> timedelta:
    return timedelta(seconds=settings.INGEST_BACKLOG_GRACE_SECONDS)


def claim(batch_id: int, now: datetime | None = None) -> IngestBatch | None:
    """Take a `received` agent batch for processing; None when it is not waiting (processed,
    failed, unknown) or someone took it less than the grace period ago."""
    now = now or timezone.now()
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - _grace())
    taken = (
        IngestBatch.objects.filter(pk=batch_id, status=BatchStatus.RECEIVED, ingest_path="agent")
        .filter(free)
        .update(claimed_at=now, attempts=F("attempts") + 1)
    )
    if taken != 1:
        return None
    return IngestBatch.objects.select_related("user").get(pk=batch_id)


def process_waiting(batch_id: int) -> str:
    """Claim and process one waiting batch: PROCESSED, FAILED (refused, broken, or out of
    attempts; the reason is on the batch) or SKIPPED (not waiting, or taken by another).

    A database that went away mid-way (OperationalError, InterfaceError) leaves the batch
    waiting and raises for the task's retry; the sweep covers the rest.
    """
    batch = claim(batch_id)
    if batch is None:
        return SKIPPED
    if batch.attempts > settings.INGEST_BACKLOG_MAX_ATTEMPTS:
        give_up(batch)
        return FAILED
    try:
        process_batch(batch)
    except IngestError:
        return FAILED  # refused for its content; process_batch stored the reason
    except (OperationalError, InterfaceError):
        raise  # left waiting by process_batch; the task retries, or the sweep takes it
    except Exception:
        return FAILED  # logged and marked failed by process_batch; kept for reprocessing
    return PROCESSED


def give_up(batch: IngestBatch) -> None:
    """Mark a batch failed after INGEST_BACKLOG_MAX_ATTEMPTS attempts that never finished;
    its body is kept, so `reprocess_batches --failed` can try it again after a fix."""
    reason = (
        f"Processing did not finish after {settings.INGEST_BACKLOG_MAX_ATTEMPTS} attempts "
        "(the worker or web process stopped or timed out each time)"
    )
    if batch.error:
        reason += f"; last error: {batch.error}"
    IngestBatch.objects.filter(pk=batch.pk, status=BatchStatus.RECEIVED).update(
        status=BatchStatus.FAILED,
        error=reason[:10_000],
        processed_at=timezone.now(),
        claimed_at=None,
    )
    log.error(
        "ingest batch given up",
        extra={"batch": str(batch.public_id), "attempts": batch.attempts - 1},
    )


def waiting(now: datetime | None = None) -> list[int]:
    """Ids of agent batches left `received` past the grace period, oldest first: never
    claimed since they arrived, or claimed by someone who never finished."""
    now = now or timezone.now()
    cutoff = now - _grace()
    stale = Q(claimed_at__isnull=True, received_at__lt=cutoff) | Q(claimed_at__lt=cutoff)
    return list(
        IngestBatch.objects.filter(status=BatchStatus.RECEIVED, ingest_path="agent")
        .filter(stale)
        .order_by("received_at", "id")
        .values_list("id", flat=True)
    )
