"""Celery entry points for accounts: thin wrappers around model methods."""

import logging

from celery import shared_task

from accounts.models import LoginLink

log = logging.getLogger(__name__)


@shared_task
def purge_expired_login_links() -> int:
    """Hourly: expired login links are useless; dropping them keeps the table small."""
    deleted = LoginLink.purge_expired()
    if deleted:
        log.info("purged expired login links", extra={"deleted": deleted})
    return deleted
