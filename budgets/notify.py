"""Sends deliveries: claim a row, send it by email or webhook, record the outcome, retry later.

Exactly once, as far as a network allows:
- a delivery is claimed with `UPDATE … SET status='sending' WHERE status='pending' AND
  next_attempt_at <= now`, and only the worker whose update changed one row sends it;
- the outcome is written only if the row is still the claim we made (same `claimed_at`);
- a failed attempt goes back to pending with a backoff (exponential with jitter, capped below the
  broker's visibility timeout, so Redis never hands a waiting retry to a second worker);
- the beat sweep re-queues pending rows whose retry was lost and returns rows stuck in 'sending'
  (a worker killed mid-send) to pending after STUCK_AFTER.

That last step is a choice: a worker killed after the receiver got the message but before we
recorded it makes the message go out twice. The alternative, never resending a 'sending' row,
can silently drop an alert. We prefer a rare duplicate, and each webhook carries a stable
`webhook-id` (one per delivery, the same on every attempt) so receivers can drop it.
"""

import logging
import random
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from budgets import discord, signals, slack, teams, webhooks
from budgets.chat import Card
from budgets.messages import Message, compose, with_top_spenders
from budgets.models import Alert, AlertKind, Channel, Delivery
from budgets.reports.compose import compose_delivery

log = logging.getLogger(__name__)

Status = Delivery.Status

ERROR_MAX_CHARS = 2000


def max_attempts() -> int:
    return int(getattr(settings, "ALERT_DELIVERY_MAX_ATTEMPTS", 8))


def retry_base_seconds() -> int:
    return int(getattr(settings, "ALERT_RETRY_BASE_SECONDS", 30))


def stuck_after() -> timedelta:
    # Longer than any send can take (the task's hard time limit), so a live send is never reset.
    minutes = int(getattr(settings, "ALERT_STUCK_AFTER_MINUTES", 15))
    return timedelta(minutes=minutes)


def retry_cap_seconds() -> int:
    """Longest wait between attempts: half the broker's visibility timeout, at most 30 min."""
    cap = int(getattr(settings, "ALERT_RETRY_MAX_SECONDS", 1800))
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    visibility = options.get("visibility_timeout")
    if visibility:
        cap = min(cap, int(visibility) // 2)
    return max(1, cap)


def backoff_seconds(attempts: int) -> int:
    """Wait before attempt `attempts + 1`: doubling from the base, capped, with equal jitter."""
    ceiling = min(retry_cap_seconds(), retry_base_seconds() * 2 ** max(0, attempts - 1))
    return max(1, int(ceiling / 2 + random.uniform(0, ceiling / 2)))


def queue_on_commit(delivery_ids: list[int]) -> None:
    """Send these deliveries once the transaction commits (budgets.receivers queues them).
    A broker outage loses nothing: the sweep finds the pending rows."""
    if delivery_ids:
        ids = list(delivery_ids)
        transaction.on_commit(
            lambda: signals.deliveries_ready.send(sender=Delivery, delivery_ids=ids)
        )


def claim(delivery_id: int, now: datetime | None = None) -> Delivery | None:
    """Take a due pending delivery for this worker, or None if it is not ours to send."""
    now = now or timezone.now()
    changed = Delivery.objects.filter(
        pk=delivery_id, status=Status.PENDING, next_attempt_at__lte=now
    ).update(status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if changed != 1:
        return None
    return Delivery.objects.select_related("alert", "alert__team", "channel", "recipient").get(
        pk=delivery_id
    )


@dataclass(frozen=True)
class Outcome:
    status: str
    error: str = ""
    retry_in: int | None = None


class PermanentFailure(Exception):
    """Sending cannot work until someone changes something; no retry."""


def deliver(delivery_id: int, *, single_attempt: bool = False) -> Outcome | None:
    """Send one delivery if it is due and unclaimed; None when another worker has it."""
    delivery = claim(delivery_id)
    if delivery is None:
        return None
    alert, channel = delivery.alert, delivery.channel
    is_test = alert.kind == AlertKind.TEST
    try:
        if channel is not None and not channel.is_enabled and not is_test:
            raise PermanentFailure(f"The channel '{channel.name}' is disabled.")
        if alert.kind == AlertKind.REPORT:
            message = compose_delivery(delivery)
        else:
            message = compose(with_top_spenders(alert))
        _send(delivery, message)
    except (PermanentFailure, webhooks.WebhookError, smtplib.SMTPException, OSError) as exc:
        return _failed(delivery, exc, single_attempt=single_attempt)
    except Exception as exc:
        # A bug must not leave the row in 'sending' until the sweep; record it and retry.
        log.exception("unexpected error sending delivery", extra={"delivery": delivery.pk})
        return _failed(delivery, exc, single_attempt=single_attempt)
    return _sent(delivery)


def _send(delivery: Delivery, message: Message) -> None:
    channel = delivery.channel
    if channel is None:
        recipient = delivery.recipient
        assert recipient is not None, "a delivery without a channel goes to a member"
        if not recipient.is_active:
            raise PermanentFailure(f"{recipient.email} is deactivated.")
        _send_email([recipient.email], message)
    elif channel.kind == Channel.Kind.EMAIL:
        to = channel.recipients()
        if not to:
            raise PermanentFailure(f"The channel '{channel.name}' has no recipients.")
        _send_email(to, message)
    elif channel.kind == Channel.Kind.WEBHOOK:
        webhooks.post(channel.url, channel.secret, f"msg_{delivery.public_id.hex}", message.payload)
    else:
        if message.card is None:
            raise PermanentFailure("This message has no chat form.")
        CHAT_TRANSPORTS[channel.kind](channel.url, message.card)


# One module per chat service; each lays out a budgets.chat.Card in its native format.
CHAT_TRANSPORTS: dict[str, Callable[[str, Card], None]] = {
    Channel.Kind.SLACK: slack.send,
    Channel.Kind.DISCORD: discord.send,
    Channel.Kind.TEAMS: teams.send,
}


def _send_email(to: list[str], message: Message) -> None:
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text,
        to=to,
        headers={
            "Auto-Submitted": "auto-generated",
            "X-Claude-Telemetry-Event": message.event_type,
            **message.headers,
        },
    )
    email.attach_alternative(message.html, "text/html")
    for filename, content, mimetype in message.attachments:
        email.attach(filename, content, mimetype)
    email.send(fail_silently=False)


def _record(delivery: Delivery, **fields) -> bool:
    """Write the outcome only if the row is still our claim (the sweep may have reset it)."""
    changed = Delivery.objects.filter(
        pk=delivery.pk, status=Status.SENDING, claimed_at=delivery.claimed_at
    ).update(**fields)
    if changed != 1:
        log.warning("delivery changed hands while sending", extra={"delivery": delivery.pk})
    return changed == 1


def _sent(delivery: Delivery) -> Outcome:
    now = timezone.now()
    _record(delivery, status=Status.SENT, sent_at=now, last_error="")
    channel = delivery.channel
    if channel is not None and delivery.alert.kind != AlertKind.TEST:
        Channel.objects.filter(pk=channel.pk).update(last_success_at=now, consecutive_failures=0)
    log.info(
        "alert delivered",
        extra={"delivery": delivery.pk, "alert": delivery.alert_id, "attempt": delivery.attempts},
    )
    return Outcome(Status.SENT)


def _failed(delivery: Delivery, exc: Exception, *, single_attempt: bool) -> Outcome:
    now = timezone.now()
    error = (str(exc) or type(exc).__name__)[:ERROR_MAX_CHARS]
    permanent = isinstance(exc, PermanentFailure) or getattr(exc, "permanent", False)
    exhausted = delivery.attempts >= max_attempts()
    channel = delivery.channel
    is_test = delivery.alert.kind == AlertKind.TEST
    if permanent or exhausted or single_attempt:
        _record(delivery, status=Status.FAILED, last_error=error)
        outcome = Outcome(Status.FAILED, error)
    else:
        wait = backoff_seconds(delivery.attempts)
        _record(
            delivery,
            status=Status.PENDING,
            last_error=error,
            next_attempt_at=now + timedelta(seconds=wait),
        )
        outcome = Outcome(Status.PENDING, error, retry_in=wait)
    log.warning(
        "alert delivery failed",
        extra={
            "delivery": delivery.pk,
            "attempt": delivery.attempts,
            "final": outcome.status == Status.FAILED,
            "error": error,
        },
    )
    if channel is None or is_test:
        return outcome
    Channel.objects.filter(pk=channel.pk).update(
        last_error=error, last_error_at=now, consecutive_failures=F("consecutive_failures") + 1
    )
    reason = ""
    if getattr(exc, "gone", False):
        code = getattr(exc, "status_code", None) or 410
        reason = (
            "The receiver answered 410 Gone."
            if code == 410
            else f"The receiver answered {code}: the webhook URL no longer works."
        )
    elif channel.is_http and isinstance(exc, webhooks.UnsafeURL):
        reason = "The URL points to a private address."
    elif channel.is_http and outcome.status == Status.FAILED and exhausted:
        reason = f"{delivery.attempts} failed attempts in a row."
    elif channel.is_http:
        # Attempts of several alerts count together: a receiver that failed
        # ALERT_DELIVERY_MAX_ATTEMPTS times in a row is off, whichever alerts they carried.
        failures = (
            Channel.objects.filter(pk=channel.pk)
            .values_list("consecutive_failures", flat=True)
            .first()
        ) or 0
        if failures >= max_attempts():
            reason = f"{failures} failed attempts in a row."
    if reason:
        disable_channel(channel, reason, now)
    return outcome


def disable_channel(channel: Channel, reason: str, now: datetime | None = None) -> None:
    changed = Channel.objects.filter(pk=channel.pk, disabled_at__isnull=True).update(
        disabled_at=now or timezone.now(), disabled_reason=reason[:300]
    )
    if changed:
        log.warning("alert channel disabled", extra={"channel": channel.pk, "reason": reason})


def resend(delivery_ids) -> int:
    """Put deliveries back in the queue now (the admin's resend action); sent ones stay sent."""
    ids = list(
        Delivery.objects.filter(pk__in=list(delivery_ids), status=Status.FAILED).values_list(
            "pk", flat=True
        )
    )
    Delivery.objects.filter(pk__in=ids, status=Status.FAILED).update(
        status=Status.PENDING, next_attempt_at=timezone.now(), attempts=0
    )
    queue_on_commit(ids)
    return len(ids)


def send_test(channel: Channel, user=None) -> Outcome | None:
    """One immediate attempt through the real path, so the admin sees the true result."""
    return deliver(create_test_delivery(channel, user).pk, single_attempt=True)


def create_test_delivery(channel: Channel, user=None) -> Delivery:
    """A pending test message through `channel` (sent by budgets.tasks.send_test_delivery;
    its row is the result the channels page shows)."""
    with transaction.atomic():
        alert = Alert.objects.create(
            team=channel.team,
            kind=AlertKind.TEST,
            channel=channel,
            data={"channel": channel.name, "requested_by": getattr(user, "email", "")},
        )
        return Delivery.objects.create(alert=alert, channel=channel)


def last_tests(channels) -> dict[int, Delivery]:
    """The newest test delivery of each channel, by channel id (one query)."""
    latest: dict[int, Delivery] = {}
    tests = Delivery.objects.filter(channel__in=channels, alert__kind=AlertKind.TEST).order_by(
        "channel_id", "-created_at", "-pk"
    )
    for delivery in tests:
        if delivery.channel_id is not None:
            latest.setdefault(delivery.channel_id, delivery)
    return latest


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Reset deliveries stuck in 'sending' and re-queue pending ones whose retry was lost."""
    now = now or timezone.now()
    stuck = Delivery.objects.filter(status=Status.SENDING, claimed_at__lt=now - stuck_after())
    stuck_ids = list(stuck.values_list("pk", flat=True)[:500])
    reset = stuck.filter(pk__in=stuck_ids).update(status=Status.PENDING, next_attempt_at=now)
    if reset:
        log.warning("deliveries stuck in sending were reset", extra={"count": reset})
    # A grace period leaves the regular retry (a countdown task) the first go.
    grace = timedelta(seconds=int(getattr(settings, "ALERT_SWEEP_GRACE_SECONDS", 120)))
    due = list(
        Delivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now - grace)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
    ids = stuck_ids + [pk for pk in due if pk not in stuck_ids]
    signals.deliveries_ready.send(sender=Delivery, delivery_ids=ids)
    return {"reset": reset, "queued": len(ids)}
