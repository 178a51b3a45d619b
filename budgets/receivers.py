"""Queue budget work on Celery: checks after usage changed (usage.signals, so usage never
imports budgets) and sending of new deliveries (budgets.signals)."""

from django.dispatch import receiver

from budgets import signals, tasks
from telemetry_site.queueing import enqueue
from usage.signals import usage_changed


@receiver(usage_changed, dispatch_uid="budgets.evaluate_after_usage")
def evaluate_after_usage(sender, team_id: int, **kwargs) -> None:
    enqueue(tasks.evaluate_team, team_id)


@receiver(signals.deliveries_ready, dispatch_uid="budgets.send_deliveries")
def send_deliveries(sender, delivery_ids, **kwargs) -> None:
    for delivery_id in delivery_ids:
        enqueue(tasks.send_delivery, delivery_id)
