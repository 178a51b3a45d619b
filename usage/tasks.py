"""Celery entry points for usage: thin wrappers that load ids and call one domain function."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=5, default_retry_delay=30)
def derive_after_ingest(self, batch_id: int) -> None:
    """Blocks, data-quality flags and budget checks for what one ingest batch touched."""
    from usage.derive import derive_for_batch

    derive_for_batch(batch_id)


@shared_task
def sweep_derived_work() -> int:
    """Catch up on batches whose derived work never ran (the broker was down at ingest)."""
    from usage.derive import derive_for_batch
    from usage.models import BatchStatus, IngestBatch

    cutoff = timezone.now() - timedelta(minutes=2)
    pending = IngestBatch.objects.filter(
        status=BatchStatus.PROCESSED, derived_at__isnull=True, received_at__lt=cutoff
    ).values_list("id", flat=True)
    count = 0
    for batch_id in pending.iterator():
        derive_for_batch(batch_id)
        count += 1
    if count:
        log.info("derived work caught up", extra={"batches": count})
    return count
