"""/healthz: names each dependency that does not answer.

503 when the database is down (nothing works without it); 200 with status "degraded" when only
the broker or the cache is down, because pages, reads, ingest and login keep working then
(queued work waits for the beat sweeps, rate limits count in process memory).
"""

import logging
import os
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_broker() -> None:
    if settings.REDIS_URL:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            client.ping()
        finally:
            client.close()
        return
    # The embedded broker is a folder: it must exist and be writable by this process.
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    if not (folder.is_dir() and os.access(folder, os.W_OK)):
        raise OSError(f"broker folder {folder.name} is not writable")


def _check_cache() -> None:
    ping = getattr(cache, "ping", None)
    if ping is not None:  # telemetry_site.cache.FallbackRedisCache: ask Redis, not the fallback
        ping()
        return
    cache.set("healthz", "ok", 10)
    if cache.get("healthz") != "ok":
        raise OSError("cache did not keep a value")


# Without these the site cannot answer at all; the others only degrade it.
ESSENTIAL = {"database"}


@never_cache
@require_GET
def healthz(request):
    checks = {"database": _check_database, "broker": _check_broker, "cache": _check_cache}
    status: dict[str, str] = {}
    failing: list[str] = []
    for name, check in checks.items():
        try:
            check()
            status[name] = "ok"
        except Exception as exc:  # any failure of a dependency is a 503, never a 500
            log.warning("health check failed", extra={"check": name, "error": str(exc)})
            status[name] = f"unavailable: {exc.__class__.__name__}"
            failing.append(name)
    down = ESSENTIAL.intersection(failing)
    overall = "unavailable" if down else "degraded" if failing else "ok"
    body: dict[str, Any] = {"status": overall, "checks": status}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if down else 200)
