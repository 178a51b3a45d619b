"""The hourly purge of login links, and its place in the beat schedule."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from accounts.models import LoginLink
from accounts.tasks import purge_expired_login_links
from telemetry_site.celery import app

pytestmark = pytest.mark.django_db


def test_the_purge_deletes_expired_links_and_keeps_pending_ones(member):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        LoginLink.issue(member)  # expires first
        used, _ = LoginLink.issue(member)
        used.claim(ip=None)
        clock.shift(timedelta(minutes=10))
        fresh, _ = LoginLink.issue(member)
        clock.shift(timedelta(minutes=6))
        assert purge_expired_login_links.delay().get() == 2
        assert list(LoginLink.objects.values_list("pk", flat=True)) == [fresh.pk]
        assert purge_expired_login_links() == 0


def test_the_purge_is_in_the_beat_schedule_under_its_registered_name():
    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired-login-links"]
    assert entry["task"] == purge_expired_login_links.name
    assert entry["task"] in app.tasks
