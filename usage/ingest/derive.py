"""Derived work after an ingest batch: recomputes what the batch's new facts touched.

Blocks of the machine's subscription from the earliest changed hour on, data-quality
checks, then the team's budget evaluation. Idempotent: running it twice for one batch
leaves the same rows.
"""

import logging

from django.db.models import Min
from django.utils import timezone

from usage.analytics import quality
from usage.analytics.blocks import recompute_blocks
from usage.models import BatchStatus, HourlyUsage, IngestBatch
from usage.signals import usage_changed

log = logging.getLogger(__name__)


def derive_for_batch(batch_id: int) -> bool:
    """Returns False when there is nothing to derive (unknown or unprocessed batch)."""
    batch = IngestBatch.objects.select_related("machine").filter(pk=batch_id).first()
    if batch is None:
        log.warning("derived work for a batch that does not exist", extra={"batch": batch_id})
        return False
    if batch.status != BatchStatus.PROCESSED:
        # A received or failed batch stored no facts; reprocessing it queues this again.
        return False
    machine = batch.machine
    if machine is not None:
        # Ingest stamps the rows it created or changed with the batch.
        earliest = HourlyUsage.objects.filter(batch_id=batch.pk).aggregate(first=Min("hour"))
        if earliest["first"] is not None:
            recompute_blocks(machine.subscription_id, since=earliest["first"])
        quality.check_lost_history(batch)
        quality.check_duplicate_sessions(batch)
        # Budgets (an app above usage) hear of it through the signal, never an import.
        usage_changed.send(sender=IngestBatch, team_id=machine.team_id)
    IngestBatch.objects.filter(pk=batch.pk, derived_at__isnull=True).update(
        derived_at=timezone.now()
    )
    return True
