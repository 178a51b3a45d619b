"""Celery entry points for accounts: thin wrappers around model methods."""

import logging
import smtplib

from celery import shared_task
from django.core.mail import EmailMessage

from accounts.models import LoginLink, LoginMail
from telemetry_site.queueing import enqueue

log = logging.getLogger(__name__)


@shared_task
def purge_expired_login_links() -> int:
    """Hourly: expired login links are useless; dropping them keeps the table small."""
    deleted = LoginLink.purge_expired() + LoginMail.purge_expired()
    if deleted:
        log.info("purged expired login links", extra={"deleted": deleted})
    return deleted


# SMTP failures retry with backoff: 15, 30, 60, 120, 240 s, about eight minutes, well inside
# the link's fifteen; the sweep keeps trying after that while the link is valid.
SMTP_RETRY = {
    "autoretry_for": (smtplib.SMTPException, OSError),
    "max_retries": 5,
    "retry_backoff": 15,
    "retry_jitter": False,
}


@shared_task(**SMTP_RETRY)
def deliver_login_mail(mail_id: int) -> bool:
    """Send one login email from the outbox (accounts.models.LoginMail); False when there is
    nothing to send (already sent, expired, or being sent by another worker)."""
    mail = LoginMail.claim(mail_id)
    if mail is None:
        return False
    fields = mail.fields()
    try:
        EmailMessage(fields["subject"], fields["body"], fields["from_email"], fields["to"]).send()
    except Exception as exc:
        mail.release(f"{type(exc).__name__}: {exc}")
        log.warning(
            "login email not sent yet",
            extra={"mail": mail.pk, "attempts": mail.attempts, "error": type(exc).__name__},
        )
        raise
    mail.mark_sent()
    log.info("login email sent", extra={"mail": mail.pk})
    return True


@shared_task
def sweep_login_mail() -> int:
    """Every minute: queue the login emails nobody sent (the broker was down when they were
    written, or every retry failed) while their links are still valid."""
    waiting = LoginMail.waiting()
    for mail_id in waiting:
        enqueue(deliver_login_mail, mail_id, then="the next sweep tries again")
    if waiting:
        log.info("login emails queued again", extra={"mails": len(waiting)})
    return len(waiting)


@shared_task(**SMTP_RETRY)
def send_login_mail(subject: str, body: str, from_email: str, to: list[str]) -> None:
    """Messages queued before the outbox existed: sent as they were. Its arguments carry the
    login secret: never log them."""
    EmailMessage(subject, body, from_email, to).send()
    log.info("login email sent")
