"""The beat schedule runs the block refresh with a registered task."""

from django.conf import settings

from telemetry_site.celery import app


def test_the_beat_schedule_refreshes_blocks_with_a_registered_task():
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-blocks"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    assert entry["schedule"].total_seconds() <= 600
