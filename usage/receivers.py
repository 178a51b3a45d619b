"""Queue the work that follows usage events (usage.signals) on Celery."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Membership
from telemetry_site.queueing import enqueue
from usage import signals, tasks
from usage.analytics import ratelimits
from usage.models import LatestQuotaReading, Machine, RateLimitSnapshot


@receiver(signals.batch_stored, dispatch_uid="usage.derive_after_ingest")
def derive_after_ingest(sender, batch_id: int, **kwargs) -> None:
    enqueue(tasks.derive_after_ingest, batch_id)


@receiver(signals.batch_waiting, dispatch_uid="usage.process_ingest_batch")
def process_ingest_batch(sender, batch_id: int, **kwargs) -> None:
    enqueue(
        tasks.process_ingest_batch,
        batch_id,
        then="the ingest backlog sweep processes the batch",
    )


@receiver(signals.blocks_outdated, dispatch_uid="usage.recompute_blocks")
def recompute_blocks(sender, subscription_ids, **kwargs) -> None:
    for subscription_id in subscription_ids:
        enqueue(tasks.recompute_subscription_blocks, subscription_id)


@receiver(post_save, sender=Membership, dispatch_uid="usage.machines_follow_their_owner")
def machines_follow_their_owner(sender, instance: Membership, **kwargs) -> None:
    # Machine.team is denormalised from the owner's membership: a member moved to another
    # team takes their machines along, so the old team neither counts nor manages them.
    Machine.objects.filter(owner_id=instance.user_id).exclude(team_id=instance.team_id).update(
        team_id=instance.team_id
    )


@receiver(post_save, sender=RateLimitSnapshot, dispatch_uid="usage.store_latest_quota_readings")
def store_latest_quota_readings(sender, instance: RateLimitSnapshot, **kwargs) -> None:
    # A reading saved one at a time (the admin, the demo, tests) keeps the stored latest
    # readings as ingest's bulk upsert does (ratelimits.readings_stored), in its transaction:
    # its own subscription, and one it may have left.
    before = LatestQuotaReading.objects.filter(snapshot=instance).values_list(
        "subscription_id", flat=True
    )
    ratelimits.store_latest_readings({instance.subscription_id, *before})
