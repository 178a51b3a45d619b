"""Queue the work that follows usage events (usage.signals) on Celery."""

from django.dispatch import receiver

from telemetry_site.queueing import enqueue
from usage import signals, tasks


@receiver(signals.batch_stored, dispatch_uid="usage.derive_after_ingest")
def derive_after_ingest(sender, batch_id: int, **kwargs) -> None:
    enqueue(tasks.derive_after_ingest, batch_id)


@receiver(signals.blocks_outdated, dispatch_uid="usage.recompute_blocks")
def recompute_blocks(sender, subscription_ids, **kwargs) -> None:
    for subscription_id in subscription_ids:
        enqueue(tasks.recompute_subscription_blocks, subscription_id)
