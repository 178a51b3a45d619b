"""Celery entry points for accounts: thin wrappers around model methods."""

import logging
import smtplib

from celery import shared_task
from django.core.mail import EmailMessage

from accounts.models import LoginLink

log = logging.getLogger(__name__)


@shared_task
def purge_expired_login_links() -> int:
    """Hourly: expired login links are useless; dropping them keeps the table small."""
    deleted = LoginLink.purge_expired()
    if deleted:
        log.info("purged expired login links", extra={"deleted": deleted})
    return deleted


@shared_task(
    autoretry_for=(smtplib.SMTPException, OSError),
    max_retries=5,
    # 15, 30, 60, 120, 240 s: about eight minutes, well inside the link's fifteen.
    retry_backoff=15,
    retry_jitter=False,
)
def send_login_mail(subject: str, body: str, from_email: str, to: list[str]) -> None:
    """Send one login email (accounts.adapter renders it); SMTP failures retry with backoff
    while the link is still valid. Its arguments carry the login secret: never log them."""
    EmailMessage(subject, body, from_email, to).send()
    log.info("login email sent")
